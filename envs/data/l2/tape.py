"""A tick tape: market events as arrays a fill simulator can walk, loaded once per process.

From an L2 recording (``TickTape(files)``: the full book) or from trades and best bid/ask
updates (``TickTape.from_ticks``: Binance's aggTrades and bookTicker files, the touch only).

``TickTape`` holds, on one time axis (Binance's exchange clock, ms, kept monotone):

- the book after each depth event that leaves both sides non-empty (top 20 levels per side,
  best bid/ask), and where it falls in the stream (``book_pos``);
- every trade with its aggressor side and stream position (``trade_pos``);
- every level update a book event made, in stream order (``change_*``), and per price the
  level's size over time (``levels``, ``level_qty``), for a queue model.

Book events and trades share the stream position, so events stamped in the same millisecond
keep the recording's order. ``load_tape`` and ``load_tick_tape`` cache tapes by their files'
resolved paths.
"""

from __future__ import annotations

import math
import threading
from bisect import bisect_right
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from envs.data.l2.book import L2DataError
from envs.data.l2.stream import PathArg, iter_events

__all__ = ["TickTape", "load_tape", "load_tick_tape"]


class _Builder:
    """A tape's events collected in stream order: ``pos`` numbers books and trades alike."""

    def __init__(self) -> None:
        self.book_ms: list[int] = []
        self.book_pos: list[int] = []
        self.bids: list[tuple[tuple[float, float], ...]] = []
        self.asks: list[tuple[tuple[float, float], ...]] = []
        self.trade_ms: list[int] = []
        self.trade_pos: list[int] = []
        self.price: list[float] = []
        self.qty: list[float] = []
        self.taker_buy: list[bool] = []
        # every level a book event set, even to its old size (a queue model sees each update):
        # (bid side?, price, qty, first book index it holds for)
        self.c_bid: list[bool] = []
        self.c_price: list[float] = []
        self.c_qty: list[float] = []
        self.c_book: list[int] = []
        self.pos = 0

    def trade(self, t: int, price: float, qty: float, taker_buy: bool) -> None:
        self.trade_ms.append(t)
        self.trade_pos.append(self.pos)
        self.price.append(price)
        self.qty.append(qty)
        self.taker_buy.append(taker_buy)
        self.pos += 1

    def book(
        self, t: int, bids: tuple[tuple[float, float], ...], asks: tuple[tuple[float, float], ...]
    ) -> int:
        """Add a book; its index."""
        self.book_ms.append(t)
        self.book_pos.append(self.pos)
        self.bids.append(bids)
        self.asks.append(asks)
        self.pos += 1
        return len(self.book_ms) - 1

    def change(self, bid: bool, price: float, qty: float, at: int) -> None:
        """The level ``price`` of one side shows ``qty`` from book ``at`` on."""
        self.c_bid.append(bid)
        self.c_price.append(price)
        self.c_qty.append(qty)
        self.c_book.append(at)

    def fill(self, tape: TickTape, touch_only: bool) -> None:
        bids = self.bids
        tape.book_ms, tape.bids, tape.asks = self.book_ms, bids, self.asks
        tape.best_bid = [b[0][0] for b in bids]
        tape.best_ask = [a[0][0] for a in self.asks]
        tape.book_pos, tape.trade_pos = self.book_pos, self.trade_pos
        tape.trade_ms = np.asarray(self.trade_ms, dtype=np.int64)
        tape.trade_price = np.asarray(self.price, dtype=np.float64)
        tape.trade_qty = np.asarray(self.qty, dtype=np.float64)
        tape.trade_taker_buy = np.where(self.taker_buy, tape.trade_qty, 0.0)
        # plain lists too: the matching reads them one trade at a time
        tape.price_l, tape.qty_l, tape.taker_buy_l = self.price, self.qty, self.taker_buy
        # the level updates in stream order (the fill validation replays them elsewhere)
        tape.change_bid = np.asarray(self.c_bid, dtype=bool)
        tape.change_price = np.asarray(self.c_price, dtype=np.float64)
        tape.change_qty = np.asarray(self.c_qty, dtype=np.float64)
        tape.change_book = np.asarray(self.c_book, dtype=np.int64)
        tape.levels = _level_history(
            tape.change_bid, tape.change_price, tape.change_qty, tape.change_book
        )
        tape.touch_only = touch_only


class TickTape:
    """The synchronised book after each depth event, and every trade, of some L2 files.

    Besides the top of the book it keeps what a queue model needs: every level's size over time
    (``level_qty``), each trade's aggressor side, and where book events and trades fall in the
    stream (``book_pos``, ``trade_pos``: the message order within one exchange millisecond).
    """

    DEPTH = 20

    book_ms: list[int]
    book_pos: list[int]
    bids: list[tuple[tuple[float, float], ...]]
    asks: list[tuple[tuple[float, float], ...]]
    best_bid: list[float]
    best_ask: list[float]
    trade_ms: np.ndarray
    trade_pos: list[int]
    trade_price: np.ndarray
    trade_qty: np.ndarray
    trade_taker_buy: np.ndarray
    price_l: list[float]
    qty_l: list[float]
    taker_buy_l: list[bool]
    change_bid: np.ndarray
    change_price: np.ndarray
    change_qty: np.ndarray
    change_book: np.ndarray
    levels: dict[tuple[bool, float], tuple[list[int], list[float]]]
    touch_only: bool

    def __init__(self, paths: Sequence[PathArg]) -> None:
        b = _Builder()
        last_ms: int | None = None
        untimed = 0  # book events before any timed message (the spot REST snapshot)
        for ev in iter_events(list(paths), depth=self.DEPTH):
            t = ev.exchange_time_ms
            if t is not None:
                last_ms = t if last_ms is None else max(last_ms, t)  # keep the axis monotone
                b.book_ms[len(b.book_ms) - untimed :] = [last_ms] * untimed
                untimed = 0
            if ev.kind == "trade":
                assert ev.trade is not None and last_ms is not None
                b.trade(last_ms, ev.trade.price, ev.trade.qty, not ev.trade.is_buyer_maker)
            elif ev.kind == "book":
                if math.isfinite(ev.best_bid) and math.isfinite(ev.best_ask):
                    at = b.book(last_ms if last_ms is not None else 0, ev.bids, ev.asks)
                    untimed += last_ms is None
                else:
                    at = len(b.book_ms)  # holds from the next book shown
                if ev.changes is not None:
                    for side, levels in ((True, ev.changes[0]), (False, ev.changes[1])):
                        for p, q in levels:
                            b.change(side, float(p), float(q), at)
        if not b.book_ms or untimed:
            raise L2DataError(f"L2 files {list(paths)}: no synchronised, timed book to replay")
        b.fill(self, touch_only=False)

    @classmethod
    def from_ticks(cls, trades: pd.DataFrame, tickers: pd.DataFrame) -> TickTape:
        """A tape from trades and best bid/ask updates (Binance's aggTrades and bookTicker
        files, read by ``envs.data.ticks``) instead of the full book.

        Only the touch is known: a book is the best bid and ask with their sizes. A level
        whose price stops being the best because the best moved past it is empty; one left
        behind by a better price keeps its last known size. ``level_qty`` of a price behind
        the touch never seen there estimates the queue by the touch's size (``touch_only``).
        In one millisecond, trades come before the book update that follows them.
        """
        t_ms = trades["time_ms"].to_numpy(np.int64)
        k_ms = tickers["time_ms"].to_numpy(np.int64)
        if not len(k_ms):
            raise L2DataError("bookTicker: no rows")
        # merge on time, trades first within a millisecond
        kind = np.r_[np.zeros(len(t_ms), np.int8), np.ones(len(k_ms), np.int8)]
        idx = np.r_[np.arange(len(t_ms)), np.arange(len(k_ms))]
        times = np.r_[t_ms, k_ms]
        order = np.lexsort((idx, kind, times))
        times = np.maximum.accumulate(times[order])
        tp = trades["price"].to_numpy(np.float64).tolist()
        tq = trades["qty"].to_numpy(np.float64).tolist()
        tbm = trades["is_buyer_maker"].to_numpy(bool).tolist()
        bb = tickers["bid"].to_numpy(np.float64).tolist()
        bq = tickers["bid_qty"].to_numpy(np.float64).tolist()
        ab = tickers["ask"].to_numpy(np.float64).tolist()
        aq = tickers["ask_qty"].to_numpy(np.float64).tolist()
        b = _Builder()
        prev_bid = prev_ask = math.nan
        for k, i, t in zip(kind[order].tolist(), idx[order].tolist(), times.tolist(), strict=True):
            if k == 0:
                b.trade(t, tp[i], tq[i], not tbm[i])
                continue
            bid, ask = bb[i], ab[i]
            if not (bid > 0 and ask > bid):
                continue  # a crossed or empty quote: not a book
            at = b.book(t, ((bid, bq[i]),), ((ask, aq[i]),))
            if prev_bid > bid:  # the best bid fell past the old level: it is gone
                b.change(True, prev_bid, 0.0, at)
            if prev_ask < ask:
                b.change(False, prev_ask, 0.0, at)
            b.change(True, bid, bq[i], at)
            b.change(False, ask, aq[i], at)
            prev_bid, prev_ask = bid, ask
        if not b.book_ms:
            raise L2DataError("bookTicker: no uncrossed best bid/ask to replay")
        tape = cls.__new__(cls)
        b.fill(tape, touch_only=True)
        return tape

    def level_qty(self, bid: bool, price: float, i: int) -> float:
        """The size shown at ``price`` on one side in book ``i`` (0: no such level). A
        ``touch_only`` tape estimates a price behind the touch that it never saw by the
        touch's size."""
        hist = self.levels.get((bid, price))
        j = bisect_right(hist[0], i) - 1 if hist is not None else -1
        if j >= 0:
            assert hist is not None
            return hist[1][j]
        if self.touch_only:
            best = self.best_bid[i] if bid else self.best_ask[i]
            if (price < best) if bid else (price > best):
                return (self.bids[i] if bid else self.asks[i])[0][1]
        return 0.0


def _level_history(
    b: np.ndarray, p: np.ndarray, q: np.ndarray, k: np.ndarray
) -> dict[tuple[bool, float], tuple[list[int], list[float]]]:
    """(side, price) -> (book indices where the level changed, its size from then on), from
    the level updates in stream order (side, price, size, book index)."""
    if not len(p):
        return {}
    order = np.lexsort((np.arange(len(p)), p, b))
    b, p, q, k = b[order], p[order], q[order], k[order]
    cut = np.flatnonzero((b[1:] != b[:-1]) | (p[1:] != p[:-1])) + 1
    starts = np.r_[0, cut].tolist()
    ends = np.r_[cut, len(p)].tolist()
    kl, ql, bl, pl = k.tolist(), q.tolist(), b.tolist(), p.tolist()
    return {(bl[s], pl[s]): (kl[s:e], ql[s:e]) for s, e in zip(starts, ends, strict=True)}


_TAPES: dict[tuple[str, ...], TickTape] = {}
_LOCK = threading.Lock()


def _cached(key: tuple[str, ...], build: Callable[[], TickTape]) -> TickTape:
    with _LOCK:
        tape = _TAPES.get(key)
        if tape is None:
            tape = _TAPES[key] = build()
    return tape


def _resolved(files: Sequence[PathArg]) -> tuple[str, ...]:
    return tuple(str(Path(f).resolve()) for f in files)


def load_tape(files: Sequence[PathArg]) -> TickTape:
    """The tape of these L2 files, in this order (read once per process)."""
    key = _resolved(files)
    return _cached(key, lambda: TickTape(key))


def load_tick_tape(trades: Sequence[PathArg], tickers: Sequence[PathArg]) -> TickTape:
    """The tape of aggTrades and bookTicker CSV files (each list in time order), read once."""
    from envs.data.ticks import load_book_ticker, load_trades_csv

    key = ("ticks", *_resolved(trades), "|", *_resolved(tickers))
    return _cached(
        key, lambda: TickTape.from_ticks(load_trades_csv(trades), load_book_ticker(tickers))
    )
