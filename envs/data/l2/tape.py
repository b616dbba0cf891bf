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
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from envs.data.l2.book import L2DataError
from envs.data.l2.stream import PathArg, iter_events

__all__ = ["TickTape", "load_tape", "load_tick_tape"]


class TickTape:
    """The synchronised book after each depth event, and every trade, of some L2 files.

    Besides the top of the book it keeps what a queue model needs: every level's size over time
    (``level_qty``), each trade's aggressor side, and where book events and trades fall in the
    stream (``book_pos``, ``trade_pos``: the message order within one exchange millisecond).
    """

    DEPTH = 20

    def __init__(self, paths: Sequence[PathArg]) -> None:
        book_ms: list[int] = []
        book_pos: list[int] = []
        bids: list[tuple[tuple[float, float], ...]] = []
        asks: list[tuple[tuple[float, float], ...]] = []
        trade_ms: list[int] = []
        trade_pos: list[int] = []
        price: list[float] = []
        qty: list[float] = []
        taker_buy: list[bool] = []
        # every level a book event set, even to its old size (a queue model sees each update):
        # (bid side?, price, qty, first book index it holds for)
        c_bid: list[bool] = []
        c_price: list[float] = []
        c_qty: list[float] = []
        c_book: list[int] = []
        last_ms: int | None = None
        untimed = 0  # book events before any timed message (the spot REST snapshot)
        pos = 0
        for ev in iter_events(list(paths), depth=self.DEPTH):
            t = ev.exchange_time_ms
            if t is not None:
                last_ms = t if last_ms is None else max(last_ms, t)  # keep the axis monotone
                book_ms[len(book_ms) - untimed :] = [last_ms] * untimed
                untimed = 0
            if ev.kind == "trade":
                assert ev.trade is not None and last_ms is not None
                trade_ms.append(last_ms)
                trade_pos.append(pos)
                price.append(ev.trade.price)
                qty.append(ev.trade.qty)
                taker_buy.append(not ev.trade.is_buyer_maker)
                pos += 1
            elif ev.kind == "book":
                if math.isfinite(ev.best_bid) and math.isfinite(ev.best_ask):
                    book_ms.append(last_ms if last_ms is not None else 0)
                    book_pos.append(pos)
                    untimed += last_ms is None
                    bids.append(ev.bids)
                    asks.append(ev.asks)
                    pos += 1
                    at = len(book_ms) - 1
                else:
                    at = len(book_ms)  # holds from the next book shown
                if ev.changes is not None:
                    for side, levels in ((True, ev.changes[0]), (False, ev.changes[1])):
                        for p, q in levels:
                            c_bid.append(side)
                            c_price.append(float(p))
                            c_qty.append(float(q))
                            c_book.append(at)
        if not book_ms or untimed:
            raise L2DataError(f"L2 files {list(paths)}: no synchronised, timed book to replay")
        self._set(
            book_ms, book_pos, bids, asks, trade_ms, trade_pos, price, qty, taker_buy,
            (c_bid, c_price, c_qty, c_book),
        )  # fmt: skip
        self.touch_only = False

    def _set(
        self,
        book_ms: list[int],
        book_pos: list[int],
        bids: list[tuple[tuple[float, float], ...]],
        asks: list[tuple[tuple[float, float], ...]],
        trade_ms: list[int],
        trade_pos: list[int],
        price: list[float],
        qty: list[float],
        taker_buy: list[bool],
        changes: tuple[list[bool], list[float], list[float], list[int]],
    ) -> None:
        self.book_ms, self.bids, self.asks = book_ms, bids, asks
        self.best_bid = [b[0][0] for b in bids]
        self.best_ask = [a[0][0] for a in asks]
        self.book_pos, self.trade_pos = book_pos, trade_pos
        self.trade_ms = np.asarray(trade_ms, dtype=np.int64)
        self.trade_price = np.asarray(price, dtype=np.float64)
        self.trade_qty = np.asarray(qty, dtype=np.float64)
        self.trade_taker_buy = np.where(taker_buy, self.trade_qty, 0.0)
        self.price_l: list[float] = price
        self.qty_l: list[float] = qty
        self.taker_buy_l: list[bool] = taker_buy
        c_bid, c_price, c_qty, c_book = changes
        # the level updates in stream order (the fill validation replays them elsewhere)
        self.change_bid = np.asarray(c_bid, dtype=bool)
        self.change_price = np.asarray(c_price, dtype=np.float64)
        self.change_qty = np.asarray(c_qty, dtype=np.float64)
        self.change_book = np.asarray(c_book, dtype=np.int64)
        self.levels = _level_history(c_bid, c_price, c_qty, c_book)

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
        book_ms: list[int] = []
        book_pos: list[int] = []
        bids: list[tuple[tuple[float, float], ...]] = []
        asks: list[tuple[tuple[float, float], ...]] = []
        trade_ms: list[int] = []
        trade_pos: list[int] = []
        price: list[float] = []
        qty: list[float] = []
        taker_buy: list[bool] = []
        c_bid: list[bool] = []
        c_price: list[float] = []
        c_qty: list[float] = []
        c_book: list[int] = []

        def change(bid: bool, p: float, q: float, at: int) -> None:
            c_bid.append(bid)
            c_price.append(p)
            c_qty.append(q)
            c_book.append(at)

        prev_bid = prev_ask = math.nan
        for pos, (k, i, t) in enumerate(
            zip(kind[order].tolist(), idx[order].tolist(), times.tolist(), strict=True)
        ):
            if k == 0:
                trade_ms.append(t)
                trade_pos.append(pos)
                price.append(tp[i])
                qty.append(tq[i])
                taker_buy.append(not tbm[i])
                continue
            b, a = bb[i], ab[i]
            if not (b > 0 and a > b):
                continue  # a crossed or empty quote: not a book
            at = len(book_ms)
            book_ms.append(t)
            book_pos.append(pos)
            bids.append(((b, bq[i]),))
            asks.append(((a, aq[i]),))
            if prev_bid > b:  # the best bid fell past the old level: it is gone
                change(True, prev_bid, 0.0, at)
            if prev_ask < a:
                change(False, prev_ask, 0.0, at)
            change(True, b, bq[i], at)
            change(False, a, aq[i], at)
            prev_bid, prev_ask = b, a
        if not book_ms:
            raise L2DataError("bookTicker: no uncrossed best bid/ask to replay")
        tape = cls.__new__(cls)
        tape._set(
            book_ms, book_pos, bids, asks, trade_ms, trade_pos, price, qty, taker_buy,
            (c_bid, c_price, c_qty, c_book),
        )  # fmt: skip
        tape.touch_only = True
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
    bid: list[bool], price: list[float], qty: list[float], book: list[int]
) -> dict[tuple[bool, float], tuple[list[int], list[float]]]:
    """(side, price) -> (book indices where the level changed, its size from then on)."""
    if not price:
        return {}
    b = np.asarray(bid, dtype=bool)
    p = np.asarray(price, dtype=np.float64)
    q = np.asarray(qty, dtype=np.float64)
    k = np.asarray(book, dtype=np.int64)
    order = np.lexsort((np.arange(len(p)), p, b))
    b, p, q, k = b[order], p[order], q[order], k[order]
    cut = np.flatnonzero((b[1:] != b[:-1]) | (p[1:] != p[:-1])) + 1
    starts = np.r_[0, cut].tolist()
    ends = np.r_[cut, len(p)].tolist()
    kl, ql, bl, pl = k.tolist(), q.tolist(), b.tolist(), p.tolist()
    return {(bl[s], pl[s]): (kl[s:e], ql[s:e]) for s, e in zip(starts, ends, strict=True)}


_TAPES: dict[tuple[str, ...], TickTape] = {}
_LOCK = threading.Lock()


def load_tape(files: Sequence[PathArg]) -> TickTape:
    """The tape of these L2 files, in this order (read once per process)."""
    key = tuple(str(Path(f).resolve()) for f in files)
    with _LOCK:
        tape = _TAPES.get(key)
        if tape is None:
            tape = _TAPES[key] = TickTape(key)
    return tape


def load_tick_tape(trades: Sequence[PathArg], tickers: Sequence[PathArg]) -> TickTape:
    """The tape of aggTrades and bookTicker CSV files (each list in time order), read once."""
    from envs.data.ticks import load_book_ticker, load_trades_csv

    resolved = [str(Path(f).resolve()) for f in trades]
    key = ("ticks", *resolved, "|", *(str(Path(f).resolve()) for f in tickers))
    with _LOCK:
        tape = _TAPES.get(key)
        if tape is None:
            tape = _TAPES[key] = TickTape.from_ticks(
                load_trades_csv(trades), load_book_ticker(tickers)
            )
    return tape
