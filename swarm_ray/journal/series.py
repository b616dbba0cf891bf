"""The journal's time series, for charts and tables: a symbol's cycles as columns, its agents'
votes over time, their track records, and a search over orders.

:class:`SeriesQueries` is a base of :class:`~swarm_ray.journal.queries.JournalQueries`, so each
method is called as ``journal.cycle_series("BTCUSDT")`` and so on. Every series is oldest first
and cut to the newest ``limit`` cycles; times are the cycles' clock (the replay's clock on the
paper exchange) in milliseconds.
"""

from __future__ import annotations

import sqlite3
from typing import Any

__all__ = ["CARRIED_REASONS", "SeriesQueries"]

CARRIED_REASONS = ("consensus", "emergency_stop")
"""Decision reasons of a vote that carried (the others: no quorum, below threshold, no votes)."""


class SeriesQueries:
    """Columnar reads over one connection (see the module docstring)."""

    _conn: sqlite3.Connection

    def _last_cycles(self, symbol: str, limit: int) -> tuple[int, int]:
        """The id range (inclusive) of the newest ``limit`` cycles of ``symbol``."""
        row = self._conn.execute(
            "SELECT min(id), max(id) FROM (SELECT id FROM cycles WHERE symbol = ?"
            " ORDER BY time_ns DESC, id DESC LIMIT ?)",
            (symbol, int(limit)),
        ).fetchone()
        return (row[0] or 0, row[1] or -1)

    def cycle_series(self, symbol: str, limit: int = 2000) -> dict[str, list[Any]]:
        """The newest ``limit`` cycles as columns: time, mid, best bid/ask, inventory, PnL, the
        decision (action, winning share, whether the vote carried, its reason), the best bid
        and ask placed in that cycle, and the fills between it and the next cycle."""
        lo, hi = self._last_cycles(symbol, limit)
        cols: dict[str, list[Any]] = {
            k: []
            for k in (
                "cycle_id", "cycle", "time_ms", "mid", "best_bid", "best_ask", "inventory", "pnl",
                "action", "share", "carried", "reason", "quote_bid", "quote_ask",
                "fill_buy", "fill_sell",
            )
        }  # fmt: skip
        rows = self._conn.execute(
            "SELECT c.id, c.run_id, c.cycle, c.time_ns, c.mid, c.best_bid, c.best_ask,"
            " c.inventory, c.pnl, d.action, d.consensus_share, d.reason FROM cycles c"
            " LEFT JOIN decisions d ON d.cycle_id = c.id"
            " WHERE c.symbol = ? AND c.id BETWEEN ? AND ? ORDER BY c.time_ns, c.id",
            (symbol, lo, hi),
        ).fetchall()
        if not rows:
            return cols
        quotes: dict[tuple[str, int], list[float | None]] = {}
        for run_id, cycle, side, price in self._conn.execute(
            "SELECT run_id, cycle, side, CAST(price AS REAL) FROM orders"
            " WHERE symbol = ? AND cycle IS NOT NULL AND created_ns >= ?",
            (symbol, rows[0][3]),
        ):
            q = quotes.setdefault((run_id, cycle), [None, None])
            if side == "BUY":
                q[0] = price if q[0] is None else max(q[0], price)
            else:
                q[1] = price if q[1] is None else min(q[1], price)
        times = [r[3] // 1_000_000 for r in rows]
        fills_buy: list[float | None] = [None] * len(rows)
        fills_sell: list[float | None] = [None] * len(rows)
        i = 0
        for t, side, price in self._conn.execute(
            "SELECT time_ms, side, CAST(price AS REAL) FROM fills WHERE symbol = ?"
            " AND time_ms >= ? ORDER BY time_ms, rowid",
            (symbol, times[0]),
        ):
            while i + 1 < len(times) and times[i + 1] <= t:
                i += 1
            (fills_buy if side == "BUY" else fills_sell)[i] = price
        for r, t in zip(rows, times, strict=True):
            q = quotes.get((r[1], r[2]), [None, None])
            for key, value in (
                ("cycle_id", r[0]), ("cycle", r[2]), ("time_ms", t), ("mid", r[4]),
                ("best_bid", r[5]), ("best_ask", r[6]), ("inventory", r[7]), ("pnl", r[8]),
                ("action", r[9]), ("share", r[10]), ("carried", r[11] in CARRIED_REASONS),
                ("reason", r[11]), ("quote_bid", q[0]), ("quote_ask", q[1]),
            ):  # fmt: skip
                cols[key].append(value)
        cols["fill_buy"], cols["fill_sell"] = fills_buy, fills_sell
        return cols

    def vote_series(self, symbol: str, limit: int = 2000) -> dict[str, Any]:
        """Each agent's votes over the newest ``limit`` cycles: ``{"time_ms": [...], "agents":
        {agent: {"action": [...], "confidence": [...], "outcome": [...]}}}``, aligned on the
        cycles (``None`` where an agent has no row in a cycle)."""
        lo, hi = self._last_cycles(symbol, limit)
        cycles = self._conn.execute(
            "SELECT id, time_ns FROM cycles WHERE symbol = ? AND id BETWEEN ? AND ?"
            " ORDER BY time_ns, id",
            (symbol, lo, hi),
        ).fetchall()
        index = {cid: k for k, (cid, _) in enumerate(cycles)}
        agents: dict[str, dict[str, list[Any]]] = {}
        for cid, agent, outcome, action, conf in self._conn.execute(
            "SELECT o.cycle_id, o.agent_id, o.outcome, o.action, o.confidence FROM opinions o"
            " JOIN cycles c ON c.id = o.cycle_id WHERE c.symbol = ? AND c.id BETWEEN ? AND ?",
            (symbol, lo, hi),
        ):
            a = agents.setdefault(
                agent, {k: [None] * len(cycles) for k in ("action", "confidence", "outcome")}
            )
            k = index[cid]
            a["action"][k], a["confidence"][k], a["outcome"][k] = action, conf, outcome
        return {
            "time_ms": [t // 1_000_000 for _, t in cycles],
            "agents": dict(sorted(agents.items())),
        }

    def agent_records(self, symbol: str) -> list[dict[str, Any]]:
        """Each agent's record on ``symbol`` over every journaled cycle: how often it answered,
        timed out or failed, how often its vote was the action the swarm carried, its mean
        confidence, the model versions that answered for it, and its votes scored in hindsight
        (``trading.track``): how many, the share that beat their alternative (ties half), the
        mean confidence they were cast with, and the mean edge of their action in bps."""
        rows = self._conn.execute(
            "SELECT o.agent_id, count(*), sum(o.outcome = 'voted'), sum(o.outcome = 'timeout'),"
            " sum(o.outcome = 'failed'), avg(CASE WHEN o.outcome = 'voted' THEN o.confidence END),"
            " sum(o.outcome = 'voted' AND d.reason IN (?, ?)),"
            " sum(o.outcome = 'voted' AND d.reason IN (?, ?) AND o.action = d.voted_action),"
            " group_concat(DISTINCT o.model_version),"
            " count(o.hindsight), avg(o.hindsight),"
            " avg(CASE WHEN o.hindsight IS NOT NULL THEN o.confidence END), avg(o.edge_bps)"
            " FROM opinions o JOIN cycles c ON c.id = o.cycle_id"
            " LEFT JOIN decisions d ON d.cycle_id = c.id WHERE c.symbol = ?"
            " GROUP BY o.agent_id ORDER BY o.agent_id",
            (*CARRIED_REASONS, *CARRIED_REASONS, symbol),
        ).fetchall()
        out = []
        for row in rows:
            agent, n, voted, timeouts, failed, conf, carried, agreed, versions = row[:9]
            scored, hit_rate, scored_conf, edge = row[9:]
            out.append(
                {
                    "agent_id": agent,
                    "cycles": n,
                    "voted": voted or 0,
                    "timeouts": timeouts or 0,
                    "failed": failed or 0,
                    "answer_rate": (voted or 0) / n if n else None,
                    "mean_confidence": conf,
                    "carried_cycles": carried or 0,
                    "agreed_with_carried": agreed or 0,
                    "agreement": (agreed or 0) / carried if carried else None,
                    "model_versions": sorted(v for v in (versions or "").split(",") if v),
                    "scored": scored or 0,
                    "hit_rate": hit_rate,
                    "scored_confidence": scored_conf,
                    "mean_edge_bps": edge,
                }
            )
        return out

    def agent_notes(self, symbol: str, agent_id: str) -> dict[str, list[Any]]:
        """Every cycle of ``symbol`` in time order, with the mid and ``agent_id``'s rationale
        (``None`` where it did not vote): ``{"time_ns", "mid", "rationale"}``."""
        rows = self._conn.execute(
            "SELECT c.time_ns, c.mid, o.rationale FROM cycles c LEFT JOIN opinions o"
            " ON o.cycle_id = c.id AND o.agent_id = ? AND o.outcome = 'voted'"
            " WHERE c.symbol = ? ORDER BY c.time_ns, c.id",
            (agent_id, symbol),
        ).fetchall()
        return {
            "time_ns": [r[0] for r in rows],
            "mid": [r[1] for r in rows],
            "rationale": [r[2] for r in rows],
        }

    def fill_count(self, symbol: str) -> int:
        return self._conn.execute(
            "SELECT count(*) FROM fills WHERE symbol = ?", (symbol,)
        ).fetchone()[0]

    def search_orders(
        self,
        text: str = "",
        *,
        symbol: str | None = None,
        status: str | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> tuple[int, list[dict[str, Any]]]:
        """Orders whose id, symbol, side, status or reason contains ``text`` (any case), newest
        first: ``(total matching, one page of rows)``."""
        where, args = ["1"], []
        if text:
            like = f"%{text.replace('%', '').replace('_', '')}%"
            where.append(
                "(client_order_id LIKE ? OR symbol LIKE ? OR side LIKE ? OR status LIKE ?"
                " OR coalesce(reason, '') LIKE ?)"
            )
            args += [like] * 5
        if symbol:
            where.append("symbol = ?")
            args.append(symbol)
        if status:
            where.append("status = ?")
            args.append(status)
        cond = " AND ".join(where)
        total = self._conn.execute(f"SELECT count(*) FROM orders WHERE {cond}", args).fetchone()[0]
        rows = self._conn.execute(
            "SELECT client_order_id, symbol, side, price, quantity, status, filled_quantity,"
            f" cycle, reason, created_ns FROM orders WHERE {cond}"
            " ORDER BY created_ns DESC, rowid DESC LIMIT ? OFFSET ?",
            [*args, int(limit), int(offset)],
        ).fetchall()
        keys = (
            "client_order_id", "symbol", "side", "price", "quantity", "status",
            "filled_quantity", "cycle", "reason", "created_ns",
        )  # fmt: skip
        return total, [dict(zip(keys, r, strict=True)) for r in rows]
