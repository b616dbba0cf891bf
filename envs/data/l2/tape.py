"""A tick tape: an L2 recording as arrays a fill simulator can walk, loaded once per process.

``TickTape`` holds, on one time axis (Binance's exchange clock, ms, kept monotone):

- the book after each depth event that leaves both sides non-empty (top 20 levels per side,
  best bid/ask), and where it falls in the stream (``book_pos``);
- every trade with its aggressor side and stream position (``trade_pos``);
- every level update a book event made, in stream order (``change_*``), and per price the
  level's size over time (``levels``, ``level_qty``), for a queue model.

Book events and trades share the stream position, so events stamped in the same millisecond
keep the recording's order. ``load_tape`` caches tapes by their files' resolved paths.
"""

from __future__ import annotations

import math
import threading
from bisect import bisect_right
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from envs.data.l2.book import L2DataError
from envs.data.l2.stream import PathArg, iter_events

__all__ = ["TickTape", "load_tape"]


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
        # the level updates in stream order (the fill validation replays them elsewhere)
        self.change_bid = np.asarray(c_bid, dtype=bool)
        self.change_price = np.asarray(c_price, dtype=np.float64)
        self.change_qty = np.asarray(c_qty, dtype=np.float64)
        self.change_book = np.asarray(c_book, dtype=np.int64)
        self.levels = _level_history(c_bid, c_price, c_qty, c_book)

    def level_qty(self, bid: bool, price: float, i: int) -> float:
        """The size shown at ``price`` on one side in book ``i`` (0: no such level)."""
        hist = self.levels.get((bid, price))
        if hist is None:
            return 0.0
        j = bisect_right(hist[0], i) - 1
        return hist[1][j] if j >= 0 else 0.0


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
