"""The order book of one Binance symbol, rebuilt from a REST snapshot and diff-depth events.

The book follows Binance's documented procedure (implemented in ``OrderBook``):

* diff events that arrive before the snapshot are buffered;
* after the snapshot, stale events are dropped: spot ``u <= lastUpdateId``; futures
  ``u < lastUpdateId`` (the futures documentation keeps the event with ``u == lastUpdateId``, which
  is the only one that can bridge under the futures rule below);
* the first applied event must bridge the snapshot: spot ``U <= lastUpdateId + 1 <= u``, futures
  ``U <= lastUpdateId <= u``;
* every later event must continue the chain: spot ``U == previous u + 1``, futures
  ``pu == previous u``;
* a level's quantity is absolute, and a quantity of 0 removes the level.

**Gap policy.** A break in the chain raises ``BookGapError`` (the caller always sees it). The book
is then marked out of sync (``OrderBook.synced`` is False, its levels are cleared) and buffers
further diffs until a new snapshot arrives, so a caller that catches the error on a live feed can
resynchronise by applying a fresh snapshot. ``envs.data.l2.iter_events`` and the functions built
on it do not catch it: a replay over a broken recording fails loudly.
"""

from __future__ import annotations

import math
from bisect import bisect_left, insort
from collections.abc import Iterable, Mapping, Sequence
from types import MappingProxyType
from typing import Literal

Market = Literal["spot", "futures"]
Level = tuple[float, float]

__all__ = ["BookGapError", "L2DataError", "Level", "Market", "OrderBook"]


class L2DataError(ValueError):
    """An L2 file that cannot be replayed (missing, malformed, or without a snapshot)."""


class BookGapError(L2DataError):
    """The diff-depth update-id chain is broken: an update was missed.

    ``expected`` is the id the next event had to continue from (the book's last ``u``, or the
    snapshot's ``lastUpdateId`` for the first event); ``first_id``/``last_id``/``prev_id`` are the
    offending event's ``U``/``u``/``pu``.
    """

    def __init__(
        self, message: str, *, expected: int, first_id: int, last_id: int, prev_id: int | None
    ) -> None:
        super().__init__(message)
        self.expected = expected
        self.first_id = first_id
        self.last_id = last_id
        self.prev_id = prev_id


class _Side:
    """One side of the book: price -> qty plus the prices kept sorted ascending."""

    __slots__ = ("prices", "qty")

    def __init__(self) -> None:
        self.qty: dict[float, float] = {}
        self.prices: list[float] = []

    def clear(self) -> None:
        self.qty.clear()
        self.prices.clear()

    def load(self, levels: Iterable[Sequence[str | float]]) -> None:
        self.clear()
        for p, q in levels:
            qf = float(q)
            if qf > 0.0:
                self.qty[float(p)] = qf
        self.prices = sorted(self.qty)

    def update(self, levels: Iterable[Sequence[str | float]]) -> None:
        qty, prices = self.qty, self.prices
        for p, q in levels:
            pf = float(p)
            qf = float(q)
            if qf == 0.0:
                if pf in qty:
                    del qty[pf]
                    del prices[bisect_left(prices, pf)]
            else:
                if pf not in qty:
                    insort(prices, pf)
                qty[pf] = qf


class OrderBook:
    """A Binance L2 order book rebuilt from a REST snapshot and diff-depth events.

    ``market`` selects the continuity rules (see the module docstring). Prices and quantities are
    floats (identical decimal strings map to identical floats, so they are exact dict keys).
    Diffs applied before the first snapshot are buffered and replayed by ``apply_snapshot``.
    """

    def __init__(self, market: Market = "spot") -> None:
        if market not in ("spot", "futures"):
            raise ValueError(f"market must be 'spot' or 'futures', not {market!r}")
        self.market: Market = market
        self._bids = _Side()
        self._asks = _Side()
        self._synced = False
        self._awaiting_first = False  # snapshot loaded, no diff applied yet
        self._snapshot_id: int | None = None
        self._last_id: int | None = None
        # Diffs received while out of sync: (U, u, pu, bids, asks).
        self._buffer: list[tuple[int, int, int | None, list, list]] = []

    # ----------------------------------------------------------------- state
    @property
    def synced(self) -> bool:
        """True once a snapshot was applied and the chain has been unbroken since."""
        return self._synced

    @property
    def last_update_id(self) -> int | None:
        """The ``u`` of the last applied diff (the snapshot's ``lastUpdateId`` before any)."""
        return self._last_id

    @property
    def bids(self) -> Mapping[float, float]:
        """Read-only view price -> qty of the bid side."""
        return MappingProxyType(self._bids.qty)

    @property
    def asks(self) -> Mapping[float, float]:
        """Read-only view price -> qty of the ask side."""
        return MappingProxyType(self._asks.qty)

    @property
    def best_bid(self) -> float:
        """Highest bid price, NaN when the side is empty."""
        p = self._bids.prices
        return p[-1] if p else math.nan

    @property
    def best_ask(self) -> float:
        """Lowest ask price, NaN when the side is empty."""
        p = self._asks.prices
        return p[0] if p else math.nan

    def top_levels(self, n: int) -> tuple[list[Level], list[Level]]:
        """The best ``n`` levels per side: (bids best first, asks best first), each (price, qty)."""
        bq, bp = self._bids.qty, self._bids.prices
        aq, ap = self._asks.qty, self._asks.prices
        bids = [(p, bq[p]) for p in bp[: -n - 1 : -1]] if n > 0 else []
        asks = [(p, aq[p]) for p in ap[:n]]
        return bids, asks

    # --------------------------------------------------------------- updates
    def apply_snapshot(
        self,
        last_update_id: int,
        bids: Iterable[Sequence[str | float]],
        asks: Iterable[Sequence[str | float]],
    ) -> None:
        """Replace the book with a REST snapshot, then replay the buffered diffs that follow it.

        Raises ``BookGapError`` if a buffered diff breaks the chain.
        """
        self._bids.load(bids)
        self._asks.load(asks)
        self._snapshot_id = self._last_id = int(last_update_id)
        self._synced = True
        self._awaiting_first = True
        buffered, self._buffer = self._buffer, []
        for first_id, last_id, prev_id, b, a in buffered:
            self.apply_diff(first_id, last_id, b, a, prev_id)

    def apply_diff(
        self,
        first_id: int,
        last_id: int,
        bids: Sequence[Sequence[str | float]],
        asks: Sequence[Sequence[str | float]],
        prev_id: int | None = None,
    ) -> bool:
        """Apply one diff-depth event (``U``, ``u``, ``b``, ``a`` and, for futures, ``pu``).

        Returns True if the event was applied, False if it was buffered (no snapshot yet) or
        dropped as stale. Raises ``BookGapError`` on a chain break (the book then goes out of sync
        and buffers until the next snapshot; the offending event is kept in the buffer).
        """
        if not self._synced:
            self._buffer.append((first_id, last_id, prev_id, list(bids), list(asks)))
            return False
        futures = self.market == "futures"
        if self._awaiting_first:
            sid = self._snapshot_id
            assert sid is not None
            if last_id < sid or (last_id == sid and not futures):
                return False  # stale: already in the snapshot
            bridge = sid if futures else sid + 1
            if not first_id <= bridge <= last_id:
                self._gap(
                    f"first diff after snapshot {sid} does not bridge it: needs "
                    f"U <= {bridge} <= u, got U={first_id} u={last_id}",
                    sid,
                    first_id,
                    last_id,
                    prev_id,
                    bids,
                    asks,
                )
            self._awaiting_first = False
        else:
            prev = self._last_id
            assert prev is not None
            if futures:
                if prev_id is None:
                    raise L2DataError("futures diff without 'pu' (previous final update id)")
                ok = prev_id == prev
                if not ok and last_id <= prev:
                    return False  # an old, already-covered event (e.g. duplicated)
                why = f"pu={prev_id} != previous u={prev}"
            else:
                ok = first_id == prev + 1
                if not ok and last_id <= prev:
                    return False
                why = f"U={first_id} != previous u+1={prev + 1}"
            if not ok:
                self._gap(
                    f"diff-depth chain broken: {why} (event U={first_id} u={last_id})",
                    prev,
                    first_id,
                    last_id,
                    prev_id,
                    bids,
                    asks,
                )
        self._bids.update(bids)
        self._asks.update(asks)
        self._last_id = last_id
        return True

    def _gap(
        self,
        message: str,
        expected: int,
        first_id: int,
        last_id: int,
        prev_id: int | None,
        bids: Sequence[Sequence[str | float]],
        asks: Sequence[Sequence[str | float]],
    ) -> None:
        self._synced = False
        self._awaiting_first = False
        self._bids.clear()
        self._asks.clear()
        self._buffer = [(first_id, last_id, prev_id, list(bids), list(asks))]
        raise BookGapError(
            message, expected=expected, first_id=first_id, last_id=last_id, prev_id=prev_id
        )
