"""The journal's read side: orders, fills, kill-switch state, stop requests, cycles with their
votes, and the operator's views built from them (an order's explanation, a status summary).

:class:`JournalQueries` reads one SQLite connection and never writes to it; :class:`Journal`
(:mod:`swarm_ray.journal.store`) is a ``JournalQueries`` with the write side added, so every
method here is called as ``journal.explain_order(...)``, ``journal.summary()`` and so on.
"""

from __future__ import annotations

import dataclasses
import json
import sqlite3
from array import array
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from decimal import Decimal
from typing import Any

from swarm_ray.core.domain import Fill, Order, OrderStatus
from swarm_ray.journal.records import KillSwitch, StopRequest
from swarm_ray.journal.schema import (
    FILL_COLUMNS,
    GLOBAL_SCOPE,
    ORDER_COLUMNS,
    dec_text,
    fill_dict,
    fill_from_row,
    from_scope,
    order_from_row,
    to_scope,
)
from swarm_ray.journal.series import SeriesQueries

__all__ = ["UNRESOLVED_STATUSES", "JournalQueries"]

UNRESOLVED_STATUSES: tuple[OrderStatus, ...] = (
    OrderStatus.PENDING,
    OrderStatus.UNKNOWN,
    OrderStatus.NEW,
    OrderStatus.PARTIALLY_FILLED,
)
"""Orders whose state at the venue a restarted coordinator must check before quoting again."""


class JournalQueries(SeriesQueries):
    """Queries on one journal connection (see the module docstring)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    @contextmanager
    def _snapshot(self) -> Iterator[sqlite3.Connection]:
        """A read transaction, so that a query of several statements sees one state."""
        if self._conn.in_transaction:
            yield self._conn
            return
        self._conn.execute("BEGIN")
        try:
            yield self._conn
        finally:
            self._conn.execute("COMMIT")

    # -- orders

    def order(self, client_order_id: str) -> Order | None:
        row = self._conn.execute(
            f"SELECT {ORDER_COLUMNS} FROM orders WHERE client_order_id = ?", (client_order_id,)
        ).fetchone()
        return None if row is None else order_from_row(row)

    def orders(
        self,
        symbol: str | None = None,
        statuses: Iterable[OrderStatus] | None = None,
        *,
        limit: int | None = None,
    ) -> list[Order]:
        """Journaled orders (every run), oldest first, optionally by symbol and status."""
        sql = f"SELECT {ORDER_COLUMNS} FROM orders WHERE 1"
        args: list[Any] = []
        if symbol is not None:
            sql += " AND symbol = ?"
            args.append(symbol)
        if statuses is not None:
            values = [OrderStatus(s).value for s in statuses]
            sql += f" AND status IN ({', '.join('?' * len(values))})"
            args += values
        sql += " ORDER BY created_ns, rowid"
        if limit is not None:
            sql += " LIMIT ?"
            args.append(int(limit))
        return [order_from_row(r) for r in self._conn.execute(sql, args)]

    def unresolved_orders(self, symbol: str) -> list[Order]:
        """Orders of ``symbol`` (any run) that reconcile must check at the venue."""
        return self.orders(symbol, UNRESOLVED_STATUSES)

    # -- fills

    def fills(
        self,
        symbol: str | None = None,
        *,
        client_order_id: str | None = None,
        since_ms: int | None = None,
    ) -> list[Fill]:
        sql = f"SELECT {FILL_COLUMNS} FROM fills WHERE 1"
        args: list[Any] = []
        for column, value, op in (
            ("symbol", symbol, "="),
            ("client_order_id", client_order_id, "="),
            ("time_ms", since_ms, ">="),
        ):
            if value is not None:
                sql += f" AND {column} {op} ?"
                args.append(value)
        sql += " ORDER BY time_ms, rowid"
        return [fill_from_row(r) for r in self._conn.execute(sql, args)]

    def last_fill_time_ms(self, symbol: str) -> int | None:
        """Venue time of the newest journaled fill of ``symbol`` (ask the venue from here)."""
        return self._conn.execute(
            "SELECT max(time_ms) FROM fills WHERE symbol = ?", (symbol,)
        ).fetchone()[0]

    # -- symbols

    def symbols(self) -> list[str]:
        """Every symbol with a cycle, an order or a kill-switch event in this journal."""
        rows = self._conn.execute(
            "SELECT symbol FROM cycles UNION SELECT symbol FROM orders"
            " UNION SELECT scope FROM kill_switch_events WHERE scope != ?",
            (GLOBAL_SCOPE,),
        ).fetchall()
        return sorted(r[0] for r in rows)

    # -- kill switch

    def _kill_state(self, scope: str) -> KillSwitch | None:
        last = self._conn.execute(
            "SELECT event FROM kill_switch_events WHERE scope = ? ORDER BY id DESC LIMIT 1",
            (scope,),
        ).fetchone()
        if last is None or last[0] != "trip":
            return None
        # The first trip since the last clear: the original cause, not a later repetition.
        row = self._conn.execute(
            "SELECT reason, actor, time_ns FROM kill_switch_events WHERE scope = ?"
            " AND event = 'trip' AND id > coalesce((SELECT max(id) FROM kill_switch_events"
            " WHERE scope = ? AND event = 'clear'), 0) ORDER BY id LIMIT 1",
            (scope, scope),
        ).fetchone()
        return KillSwitch(from_scope(scope), row[0], row[1], row[2])

    def kill_switch(self, symbol: str | None) -> KillSwitch | None:
        """The tripped switch that stops ``symbol`` (the global one first), or ``None``.
        With ``symbol`` ``None``, only the global switch is looked at."""
        state = self._kill_state(GLOBAL_SCOPE)
        if state is None and symbol is not None:
            state = self._kill_state(to_scope(symbol))
        return state

    def kill_switch_history(self, symbol: str | None = None) -> list[dict[str, Any]]:
        """Every trip and clear, oldest first (of ``symbol`` and the global switch)."""
        scopes = [GLOBAL_SCOPE] if symbol is None else [GLOBAL_SCOPE, to_scope(symbol)]
        rows = self._conn.execute(
            "SELECT scope, event, reason, actor, time_ns FROM kill_switch_events"
            f" WHERE scope IN ({', '.join('?' * len(scopes))}) ORDER BY id",
            scopes,
        )
        return [
            {"symbol": from_scope(s), "event": e, "reason": r, "actor": a, "time_ns": t}
            for s, e, r, a, t in rows
        ]

    # -- operator stop requests

    def stop_requests(self, symbol: str | None = None) -> list[StopRequest]:
        """Every stop request that concerns ``symbol`` (its own and the global ones; ``None``:
        all), oldest first: who asked, why, when (wall time), whether an emergency."""
        sql = "SELECT id, scope, emergency, reason, requested_by, requested_ns FROM stop_requests"
        args: tuple[Any, ...] = ()
        if symbol is not None:
            sql += " WHERE scope IN (?, ?)"
            args = (to_scope(symbol), GLOBAL_SCOPE)
        rows = self._conn.execute(sql + " ORDER BY id", args).fetchall()
        return [StopRequest(r[0], from_scope(r[1]), bool(r[2]), r[3], r[4], r[5]) for r in rows]

    def pending_stop(self, symbol: str, *, since_ns: int = 0) -> StopRequest | None:
        """The oldest stop request for ``symbol`` (or every symbol) made at or after
        ``since_ns`` that this symbol has not acknowledged. A coordinator passes its run's
        start so that a request left over from an earlier run does not stop it."""
        row = self._conn.execute(
            "SELECT id, scope, emergency, reason, requested_by, requested_ns FROM stop_requests r"
            " WHERE scope IN (?, ?) AND requested_ns >= ? AND NOT EXISTS"
            " (SELECT 1 FROM stop_acks a WHERE a.stop_id = r.id AND a.symbol = ?)"
            " ORDER BY emergency DESC, id LIMIT 1",
            (to_scope(symbol), GLOBAL_SCOPE, since_ns, symbol),
        ).fetchone()
        if row is None:
            return None
        return StopRequest(row[0], from_scope(row[1]), bool(row[2]), row[3], row[4], row[5])

    # -- cycles and votes

    def opinions(self, cycle_id: int) -> list[dict[str, Any]]:
        """Every agent's vote (or timeout/failure) in one cycle, by agent id."""
        rows = self._conn.execute(
            "SELECT agent_id, outcome, action, confidence, weight, model_version, rationale,"
            " features FROM opinions WHERE cycle_id = ? ORDER BY agent_id",
            (cycle_id,),
        )
        out = []
        for agent, outcome, action, conf, weight, version, rationale, features in rows:
            out.append(
                {
                    "agent_id": agent,
                    "outcome": outcome,
                    "action": action,
                    "confidence": conf,
                    "weight": weight,
                    "model_version": version,
                    "rationale": rationale,
                    "features": list(array("d", features)) if features else [],
                }
            )
        return out

    _CYCLE_SELECT = (
        "SELECT c.id, c.run_id, c.symbol, c.cycle, c.time_ns, c.mid, c.best_bid, c.best_ask,"
        " c.data_problems, c.latency_ms, c.inventory, c.pnl, d.action, d.voted_action,"
        " d.consensus_share, d.winning_score, d.responding_weight, d.scores, d.reason,"
        " d.risk_allowed, d.risk_reasons, d.ladder"
        " FROM cycles c LEFT JOIN decisions d ON d.cycle_id = c.id"
    )

    @staticmethod
    def _cycle_dict(r: tuple) -> dict[str, Any]:
        decision = None
        if r[12] is not None:
            decision = {
                "action": r[12],
                "voted_action": r[13],
                "consensus_share": r[14],
                "winning_score": r[15],
                "responding_weight": r[16],
                "scores": json.loads(r[17]),
                "reason": r[18],
                "risk_allowed": bool(r[19]),
                "risk_reasons": json.loads(r[20]),
                "ladder_bps": json.loads(r[21]) if r[21] else None,
            }
        return {
            "id": r[0],
            "run_id": r[1],
            "symbol": r[2],
            "cycle": r[3],
            "time_ns": r[4],
            "mid": r[5],
            "best_bid": r[6],
            "best_ask": r[7],
            "data_problems": json.loads(r[8]),
            "latency_ms": r[9],
            "inventory": r[10],
            "pnl": r[11],
            "decision": decision,
        }

    def cycle(self, cycle_id: int) -> dict[str, Any] | None:
        row = self._conn.execute(f"{self._CYCLE_SELECT} WHERE c.id = ?", (cycle_id,)).fetchone()
        return None if row is None else self._cycle_dict(row)

    def cycles(self, symbol: str | None = None, limit: int = 20) -> list[dict[str, Any]]:
        """The newest ``limit`` cycles (with their decisions), newest first."""
        sql, args = self._CYCLE_SELECT, []
        if symbol is not None:
            sql += " WHERE c.symbol = ?"
            args.append(symbol)
        sql += " ORDER BY c.time_ns DESC, c.id DESC LIMIT ?"
        return [self._cycle_dict(r) for r in self._conn.execute(sql, [*args, int(limit)])]

    # -- explanations and summaries

    def explain_order(self, client_order_id: str) -> dict[str, Any]:
        """Why an order exists: the order, its fills, and its cycle's market view, every
        agent's vote, the consensus and the risk gate. Raises ``KeyError`` if unknown."""
        with self._snapshot():
            return self._explain_order(client_order_id)

    def _explain_order(self, client_order_id: str) -> dict[str, Any]:
        row = self._conn.execute(
            f"SELECT {ORDER_COLUMNS}, run_id, cycle, time_in_force, reason, created_ns,"
            " updated_ns FROM orders WHERE client_order_id = ?",
            (client_order_id,),
        ).fetchone()
        if row is None:
            raise KeyError(f"no order {client_order_id!r} in the journal")
        order = order_from_row(row[:10])
        run_id, cycle_no = row[10], row[11]
        out: dict[str, Any] = {
            "order": {
                "client_order_id": order.client_order_id,
                "symbol": order.symbol,
                "side": order.side.value,
                "type": order.order_type.value,
                "time_in_force": row[12],
                "price": dec_text(order.price),
                "quantity": dec_text(order.quantity),
                "status": order.status.value,
                "filled_quantity": dec_text(order.filled_quantity),
                "exchange_order_id": order.exchange_order_id,
                "reason": row[13],
                "run_id": run_id,
                "cycle": cycle_no,
                "created_ns": row[14],
                "updated_ns": row[15],
                "update_time_ms": order.update_time_ms,
            },
            "fills": [fill_dict(f) for f in self.fills(client_order_id=client_order_id)],
            "cycle": None,
            "opinions": [],
            "cycle_orders": [],
        }
        if cycle_no is None:
            out["note"] = "not tied to a cycle (placed outside one, or adopted from the venue)"
            return out
        cycle_row = self._conn.execute(
            f"{self._CYCLE_SELECT} WHERE c.run_id = ? AND c.symbol = ? AND c.cycle = ?",
            (run_id, order.symbol, cycle_no),
        ).fetchone()
        if cycle_row is None:
            out["note"] = f"cycle {cycle_no} was not recorded (the coordinator stopped first)"
        else:
            out["cycle"] = self._cycle_dict(cycle_row)
            out["opinions"] = self.opinions(cycle_row[0])
        out["cycle_orders"] = [
            {"client_order_id": c, "side": s, "price": p, "quantity": q, "status": st}
            for c, s, p, q, st in self._conn.execute(
                "SELECT client_order_id, side, price, quantity, status FROM orders"
                " WHERE run_id = ? AND symbol = ? AND cycle = ? ORDER BY rowid",
                (run_id, order.symbol, cycle_no),
            )
        ]
        return out

    def summary(self, symbol: str | None = None) -> dict[str, Any]:
        """Counts and totals for the CLI's status view (``symbol`` ``None``: all symbols)."""
        with self._snapshot():
            return self._summary(symbol)

    def _summary(self, symbol: str | None) -> dict[str, Any]:
        where, args = ("WHERE symbol = ?", [symbol]) if symbol is not None else ("", [])
        where_c = "WHERE c.symbol = ?" if symbol is not None else ""
        conn = self._conn
        n_cycles, first_ns, last_ns = conn.execute(
            f"SELECT count(*), min(time_ns), max(time_ns) FROM cycles {where}", args
        ).fetchone()
        decisions = dict(
            conn.execute(
                f"SELECT d.action, count(*) FROM decisions d JOIN cycles c ON c.id = d.cycle_id"
                f" {where_c} GROUP BY d.action ORDER BY d.action",
                args,
            ).fetchall()
        )
        timeouts = dict(
            conn.execute(
                f"SELECT o.agent_id, count(*) FROM opinions o JOIN cycles c ON c.id = o.cycle_id"
                f" {where_c} {'AND' if where_c else 'WHERE'} o.outcome != 'voted'"
                " GROUP BY o.agent_id ORDER BY o.agent_id",
                args,
            ).fetchall()
        )
        orders = dict(
            conn.execute(
                f"SELECT status, count(*) FROM orders {where} GROUP BY status ORDER BY status",
                args,
            ).fetchall()
        )
        fees: dict[str, Decimal] = {}
        filled: dict[str, Decimal] = {"BUY": Decimal(0), "SELL": Decimal(0)}
        n_fills = 0
        for side, qty, fee, asset in conn.execute(
            f"SELECT side, quantity, fee, fee_asset FROM fills {where}", args
        ):
            n_fills += 1
            filled[side] += Decimal(qty)
            fees[asset] = fees.get(asset, Decimal(0)) + Decimal(fee)
        last = self.cycles(symbol, limit=1)
        ks = self.kill_switch(symbol)
        return {
            "symbol": symbol,
            "cycles": n_cycles,
            "first_time_ns": first_ns,
            "last_time_ns": last_ns,
            "decisions": decisions,
            "agents_missing": timeouts,
            "orders": orders,
            "fills": n_fills,
            "filled_quantity": {k: dec_text(v) for k, v in filled.items()},
            "fees": {k: dec_text(v) for k, v in sorted(fees.items())},
            "last_cycle": last[0] if last else None,
            "kill_switch": None if ks is None else dataclasses.asdict(ks),
        }
