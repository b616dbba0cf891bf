"""What the panel shows and does, read from (and written to) a folder of journals.

Plain Python over :class:`~swarm_ray.journal.Journal`: the overview of every symbol, a symbol's
series, orders and their explanations, the kill switches and the operators' actions. A running
swarm's live status, when there is one, is merged in by the caller (:mod:`.live`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from swarm_ray.journal import Journal
from swarm_ray.journal.series import CARRIED_REASONS

__all__ = ["JournalFolder", "UnknownSymbol"]


class UnknownSymbol(LookupError):
    """A symbol no journal in the folder holds."""


class JournalFolder:
    """The journals of one run's folder (``*.sqlite``; a single file works too)."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)

    def paths(self) -> list[Path]:
        if self.folder.is_file():
            return [self.folder]
        return sorted(self.folder.glob("*.sqlite")) if self.folder.is_dir() else []

    @contextmanager
    def _open(self, path: Path, write: bool = False) -> Iterator[Journal]:
        with Journal(path, read_only=not write) as j:
            yield j

    def symbols(self) -> dict[str, Path]:
        """symbol -> the journal that holds it (the newest file wins a tie)."""
        out: dict[str, Path] = {}
        for p in self.paths():
            with self._open(p) as j:
                for s in j.symbols():
                    out[s] = p
        return dict(sorted(out.items()))

    def _journal_of(self, symbol: str) -> Path:
        path = self.symbols().get(symbol)
        if path is None:
            raise UnknownSymbol(f"no journal under {self.folder} holds symbol {symbol!r}")
        return path

    # -- reads

    def overview(self) -> list[dict[str, Any]]:
        """One row per symbol from its journal's newest cycle (each journal opened once; the
        newest file wins a tie, as in :meth:`symbols`)."""
        rows: dict[str, dict[str, Any]] = {}
        for path in self.paths():
            with self._open(path) as j:
                for symbol in j.symbols():
                    rows[symbol] = _overview_row(j, symbol, path)
        return [rows[s] for s in sorted(rows)]

    def series(self, symbol: str, limit: int) -> dict[str, Any]:
        with self._open(self._journal_of(symbol)) as j:
            return {
                "symbol": symbol,
                "cycles": j.cycle_series(symbol, limit),
                "votes": j.vote_series(symbol, limit),
            }

    def agent_records(self, symbol: str) -> list[dict[str, Any]]:
        with self._open(self._journal_of(symbol)) as j:
            return j.agent_records(symbol)

    def orders(
        self, text: str, symbol: str | None, status: str | None, limit: int, offset: int
    ) -> dict[str, Any]:
        """A page of matching orders over every journal, newest first."""
        total, rows = 0, []
        for p in self.paths():
            with self._open(p) as j:
                n, page = j.search_orders(text, symbol=symbol, status=status, limit=limit + offset)
                total += n
                rows += page
        rows.sort(key=lambda r: r["created_ns"], reverse=True)
        return {"total": total, "orders": rows[offset : offset + limit]}

    def explain(self, client_order_id: str) -> dict[str, Any] | None:
        for p in self.paths():
            with self._open(p) as j:
                if j.order(client_order_id) is not None:
                    return j.explain_order(client_order_id)
        return None

    def audit(self, limit: int = 200) -> list[dict[str, Any]]:
        """Operators' and the swarm's actions, newest first: every kill-switch trip and clear
        and every stop request, with who, why and when (wall time)."""
        out = []
        for p in self.paths():
            with self._open(p) as j:
                # the global switch's events, then each symbol's own (its history also lists
                # the global ones, already taken)
                events = j.kill_switch_history(None) + [
                    e for s in j.symbols() for e in j.kill_switch_history(s) if e["symbol"]
                ]
                out += [{"kind": f"kill_switch_{e['event']}", **e} for e in events]
                for r in j.stop_requests():
                    out.append(
                        {
                            "kind": "emergency_stop" if r.emergency else "stop",
                            "symbol": r.symbol,
                            "reason": r.reason,
                            "actor": r.requested_by,
                            "time_ns": r.requested_ns,
                        }
                    )
        out.sort(key=lambda e: e["time_ns"], reverse=True)
        return out[:limit]

    # -- writes (an operator's decisions, recorded with their name)

    def _targets(self, symbol: str | None) -> list[tuple[Path, str | None]]:
        if symbol is None:
            return [(p, None) for p in self.paths()]
        return [(self._journal_of(symbol), symbol)]

    def trip(self, symbol: str | None, operator: str, reason: str) -> list[str]:
        """Trip the kill switch of ``symbol`` (``None``: every symbol) in the journal; a
        running coordinator stops quoting at its next cycle. Returns the scopes tripped."""
        done = []
        for path, s in self._targets(symbol):
            with self._open(path, write=True) as j:
                j.trip_kill_switch(s, reason, actor=operator)
            done.append(s or "*")
        return done

    def clear(self, symbol: str | None, operator: str, reason: str) -> dict[str, Any]:
        """Clear the kill switch of ``symbol`` (``None``: the one for every symbol, and every
        symbol's own). Returns what was cleared and what still holds."""
        cleared, held = [], {}
        for path, s in self._targets(symbol):
            with self._open(path, write=True) as j:
                scopes = [s] if s is not None else [None, *j.symbols()]
                for scope in scopes:
                    if j.clear_kill_switch(scope, operator, reason):
                        cleared.append(scope or "*")
                for sym in [s] if s is not None else j.symbols():
                    still = j.kill_switch(sym)
                    if still is not None:
                        held[sym] = still.reason
        return {"cleared": cleared, "still_tripped": held}


def _overview_row(j: Journal, symbol: str, path: Path) -> dict[str, Any]:
    last = j.cycles(symbol, limit=1)
    cycle = last[0] if last else None
    decision = (cycle or {}).get("decision") or {}
    ks = j.kill_switch(symbol)
    return {
        "symbol": symbol,
        "journal": path.name,
        "cycle": None if cycle is None else cycle["cycle"],
        "time_ms": None if cycle is None else cycle["time_ns"] // 1_000_000,
        "mid": None if cycle is None else cycle["mid"],
        "position": None if cycle is None else cycle["inventory"],
        "pnl": None if cycle is None else cycle["pnl"],
        "fills": j.fill_count(symbol),
        "decision": {
            "action": decision.get("action"),
            "voted": decision.get("voted_action"),
            "share": decision.get("consensus_share"),
            "reason": decision.get("reason"),
            "carried": decision.get("reason") in CARRIED_REASONS,
            "risk_reasons": decision.get("risk_reasons", []),
        },
        "kill_switch": None if ks is None else dataclasses.asdict(ks),
        "agents": [] if cycle is None else _agents(j.opinions(cycle["id"])),
    }


def _agents(opinions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {
            "agent_id": o["agent_id"],
            "outcome": o["outcome"],
            "action": o["action"],
            "confidence": o["confidence"],
            "model_version": o["model_version"],
        }
        for o in opinions
    ]
