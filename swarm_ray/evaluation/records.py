"""What a strategy did on one replayed day, in one form for every engine (the vectorised
simulator, the in-process swarm), so that every figure is computed by one implementation.

Time runs over bar boundaries ``0..T``: ``mid[t]`` is the mid at boundary ``t``, a quote placed
at boundary ``t`` rests during bar ``t`` (from ``t`` to ``t + 1``), and a fill during that bar
has ``fills.t == t``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from swarm_ray.core.domain import Opinion

__all__ = ["DayRecord", "FillTable"]


@dataclass(frozen=True)
class FillTable:
    """Fills of one day, one row each, in time order."""

    t: np.ndarray
    """int64: bar index of the fill (the quote rested from boundary t to t + 1)."""
    side: np.ndarray
    """int8: +1 bought, -1 sold."""
    price: np.ndarray
    """float64: execution price (quote currency per base unit)."""
    qty: np.ndarray
    """float64: base units, positive."""
    fee: np.ndarray
    """float64: fee paid in the quote currency (negative: a rebate)."""
    maker: np.ndarray
    """bool: a resting limit order filled (False: a market order)."""

    @classmethod
    def empty(cls) -> FillTable:
        return cls(
            np.zeros(0, np.int64),
            np.zeros(0, np.int8),
            np.zeros(0),
            np.zeros(0),
            np.zeros(0),
            np.zeros(0, bool),
        )

    @classmethod
    def from_rows(cls, rows: list[tuple[int, int, float, float, float, bool]]) -> FillTable:
        """From ``(t, side, price, qty, fee, maker)`` rows (sorted by ``t``, stable)."""
        if not rows:
            return cls.empty()
        rows = sorted(rows, key=lambda r: r[0])
        t, side, price, qty, fee, maker = zip(*rows, strict=True)
        return cls(
            np.asarray(t, np.int64),
            np.asarray(side, np.int8),
            np.asarray(price, np.float64),
            np.asarray(qty, np.float64),
            np.asarray(fee, np.float64),
            np.asarray(maker, bool),
        )

    def __len__(self) -> int:
        return len(self.t)

    @property
    def notional(self) -> np.ndarray:
        return self.price * self.qty


@dataclass(frozen=True)
class DayRecord:
    """One strategy on one day of one symbol."""

    strategy: str
    symbol: str
    date: str
    """YYYY-MM-DD (UTC) of the day's first bar."""
    mid: np.ndarray
    """(T + 1,) mid at each bar boundary."""
    equity: np.ndarray
    """(T + 1,) PnL in the quote currency marked to the mid, net of fees; starts at 0."""
    position: np.ndarray
    """(T + 1,) position in base units at each boundary."""
    quoting: np.ndarray
    """(T,) bool: at least one quote rested during bar t."""
    fills: FillTable = field(default_factory=FillTable.empty)
    decisions: tuple[str, ...] = ()
    """Swarm only: the decided action of each cycle."""
    carried: tuple[bool, ...] = ()
    """Swarm only: whether each cycle's vote carried (reached the threshold with a quorum)."""
    votes: tuple[dict[str, str], ...] = ()
    """Swarm only: each cycle's votes, agent -> action."""
    opinions: tuple[tuple[Opinion, ...], ...] = ()
    """Swarm only, when asked for: each cycle's opinions with the inputs their models saw."""
    bid: np.ndarray | None = None
    """(T,) the best bid quoted for bar t (nan: none), for plots."""
    ask: np.ndarray | None = None
    """(T,) the best ask quoted for bar t (nan: none)."""

    @property
    def n_bars(self) -> int:
        return len(self.mid) - 1
