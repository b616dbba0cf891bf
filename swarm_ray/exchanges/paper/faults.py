"""Fault injection for the paper venue, for tests and chaos runs: bad snapshots, a trade from
outside the replay, a crash right after an order is accepted.

Snapshot faults change only what callers see; the venue keeps matching on the replay.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import replace
from decimal import Decimal
from typing import Any

from swarm_ray.core.domain import MarketSnapshot, Side
from swarm_ray.exchanges.paper.store import _Order

__all__ = ["FAULT_KINDS", "FaultInjector", "trade_through"]

FAULT_KINDS = ("nan", "crossed", "stale", "frozen")
"""Snapshot faults: nan (best bid/ask NaN), crossed (bid above ask), stale (time stamp set back by
``stale_age_s``), frozen (the feed stops: the snapshot of the moment of injection, ageing)."""

_NAN = float("nan")


class FaultInjector:
    """The faults in force: per-symbol snapshot faults, and a pending crash."""

    def __init__(self) -> None:
        self._snapshot: dict[str, tuple[str, Any]] = {}
        self._exit_after_accept: int | None = None

    def break_snapshots(self, symbol: str, kind: str, arg: Any) -> None:
        """From now on ``symbol``'s snapshots have fault ``kind`` (one of ``FAULT_KINDS``);
        ``arg``: the age in ns (stale), the snapshot to repeat (frozen)."""
        self._snapshot[symbol] = (kind, arg)

    def clear(self, symbol: str | None = None) -> None:
        """No snapshot faults on ``symbol`` (None: on any symbol)."""
        if symbol is None:
            self._snapshot.clear()
        else:
            self._snapshot.pop(symbol, None)

    def apply(self, snap: MarketSnapshot) -> MarketSnapshot:
        """The snapshot as the caller sees it."""
        fault = self._snapshot.get(snap.symbol)
        if fault is None:
            return snap
        kind, arg = fault
        if kind == "nan":
            return replace(snap, best_bid=_NAN, best_ask=_NAN)
        if kind == "crossed":
            return replace(snap, best_bid=snap.best_ask, best_ask=snap.best_bid)
        if kind == "stale":
            return replace(snap, time_ns=snap.time_ns - arg)
        return arg  # frozen

    def crash_after_next_accept(self, exit_code: int) -> None:
        self._exit_after_accept = exit_code

    def order_accepted(self) -> None:
        """Called once an accepted order is stored: exits the process if a crash is pending."""
        if self._exit_after_accept is not None:
            os._exit(self._exit_after_accept)


def trade_through(
    orders: Iterable[_Order], price: Decimal, qty: Decimal | None
) -> list[tuple[_Order, Decimal]]:
    """The fills (order, quantity) of a trade at ``price``: every resting buy at or above it and
    sell at or below it, best price first, then oldest, up to ``qty`` in total (None: all)."""
    crossed = [o for o in orders if (o.price >= price if o.side is Side.BUY else o.price <= price)]
    crossed.sort(key=lambda o: (-o.price if o.side is Side.BUY else o.price, o.seq))
    fills: list[tuple[_Order, Decimal]] = []
    left = qty
    for o in crossed:
        q = o.qty - o.filled if left is None else min(left, o.qty - o.filled)
        if q <= 0:
            break
        fills.append((o, q))
        if left is not None:
            left -= q
    return fills
