"""Binance L2 stream files read in order: one event per depth, ticker or trade message.

File format (see ``data/PROVENANCE.md``): gzip text, one message per line,
``<local receive time ns> <JSON>``. The JSON is a Binance combined-stream message
``{"stream": "<sym>@depth@100ms" | "<sym>@depth@0ms" | "<sym>@bookTicker" | "<sym>@trade" |
"<sym>@aggTrade", "data": {...}}`` or, once near the start of a recording, a REST depth snapshot
``{"lastUpdateId": ..., "bids": [...], "asks": [...]}``. Messages of other streams are skipped.

The depth messages rebuild an ``envs.data.l2.book.OrderBook`` (its module states the rules). Several
files given in order continue one book: the snapshot of the first file synchronises it and the
diffs of the next files must continue the chain. A later snapshot newer than the book re-syncs
it; one not newer than the book is ignored (the book is already at least as recent).

Times: ``exchange_time_ms`` is the Binance event time ``E`` (trade time ``T`` for trades); spot
``bookTicker`` messages and spot snapshots carry none (``None``). ``local_time_ns`` is the
recorder's receive clock, which is not synchronised with Binance's (in the bundled spot files
it runs about 1.27 s behind ``E``). Events are yielded in file order, which is receive order.
"""

from __future__ import annotations

import gzip
import json
import math
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from envs.data.l2.book import BookGapError, L2DataError, Level, Market, OrderBook

EventKind = Literal["book", "ticker", "trade"]
PathArg = str | os.PathLike[str]

__all__ = [
    "TRADE_COLUMNS",
    "BookTicker",
    "EventKind",
    "L2Event",
    "PathArg",
    "Trade",
    "iter_events",
    "load_trades",
]


@dataclass(frozen=True, slots=True)
class Trade:
    """One trade: trade time ``T`` (ms), price, qty, ``m`` and the trade id (``t``; ``a`` for
    ``aggTrade``)."""

    time_ms: int
    price: float
    qty: float
    is_buyer_maker: bool
    trade_id: int


@dataclass(frozen=True, slots=True)
class BookTicker:
    """One ``bookTicker`` message: its update id ``u`` and best bid/ask with quantities."""

    update_id: int
    bid: float
    bid_qty: float
    ask: float
    ask_qty: float


@dataclass(frozen=True, slots=True)
class L2Event:
    """One message of the stream with the rebuilt book's state after it.

    ``kind`` is "book" (a diff was applied, or the snapshot synchronised the book), "ticker" or
    "trade". ``update_id`` is the book's last applied ``u`` (None before the snapshot); ``best_bid``
    / ``best_ask`` are NaN and ``bids``/``asks`` (top-N, best first, (price, qty)) empty while the
    book is not synchronised. Exactly one of ``ticker``/``trade`` is set for those kinds.
    """

    kind: EventKind
    exchange_time_ms: int | None
    local_time_ns: int
    update_id: int | None
    best_bid: float
    best_ask: float
    bids: tuple[Level, ...]
    asks: tuple[Level, ...]
    ticker: BookTicker | None = None
    trade: Trade | None = None
    changes: tuple[Sequence[Sequence[str | float]], Sequence[Sequence[str | float]]] | None = None
    """"book" events: the levels this event set, (bids, asks) as (price, qty) with absolute
    quantities (0 removes the level), as the message listed them (a level may be listed with its
    size unchanged). With ``reset`` (a snapshot): every level of the new book, and 0 for each
    level of the old book that is gone."""
    reset: bool = False


def _as_paths(files: PathArg | Sequence[PathArg]) -> list[Path]:
    if isinstance(files, str | os.PathLike):
        files = [files]
    paths = [Path(f) for f in files]
    if not paths:
        raise L2DataError("no L2 files given")
    for p in paths:
        if not p.is_file():
            raise L2DataError(f"{p}: L2 file not found")
    return paths


def _lines(paths: Sequence[Path]) -> Iterator[tuple[Path, int, int, bytes]]:
    """(path, line number, local ns, JSON bytes) for every non-empty line of the files."""
    for path in paths:
        with gzip.open(path, "rb") as fh:
            for lineno, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                head, sep, body = line.partition(b" ")
                try:
                    ns = int(head)
                except ValueError:
                    sep = b""
                if not sep:
                    raise L2DataError(f"{path}:{lineno}: expected '<ns> <json>', got {line[:80]!r}")
                yield path, lineno, ns, body


def _parse_trade(d: dict, agg: bool) -> Trade:
    return Trade(
        int(d["T"]), float(d["p"]), float(d["q"]), bool(d["m"]), int(d["a"] if agg else d["t"])
    )


def iter_events(
    files: PathArg | Sequence[PathArg], depth: int = 5, market: Market | None = None
) -> Iterator[L2Event]:
    """Replay L2 files in order, yielding one ``L2Event`` per depth/ticker/trade message.

    ``depth`` is the number of levels per side carried by each event. ``market`` selects the
    continuity rule; None infers it from the data (a diff with ``pu``, or a snapshot with ``E``,
    means futures). Pre-snapshot diffs yield nothing; the snapshot yields one "book" event after it
    and the buffered diffs were applied. Diffs dropped as stale yield nothing.

    Raises ``BookGapError`` on a chain break and ``L2DataError`` on a malformed line or if no
    snapshot was ever seen although diffs were.
    """
    if depth < 0:
        raise ValueError("depth must be >= 0")
    paths = _as_paths(files)
    book: OrderBook | None = None
    nan = math.nan
    top: tuple[tuple[Level, ...], tuple[Level, ...]] = ((), ())
    bb = ba = nan
    uid: int | None = None
    loads = json.loads
    saw_diff = saw_snapshot = False

    def state() -> tuple[float, float, tuple[Level, ...], tuple[Level, ...], int | None]:
        assert book is not None
        if not book.synced:
            return nan, nan, (), (), None
        b, a = book.top_levels(depth)
        return book.best_bid, book.best_ask, tuple(b), tuple(a), book.last_update_id

    for path, lineno, ns, body in _lines(paths):
        try:
            msg = loads(body)
        except ValueError as exc:
            raise L2DataError(f"{path}:{lineno}: invalid JSON: {exc}") from None
        if not isinstance(msg, dict):
            raise L2DataError(f"{path}:{lineno}: expected a JSON object, got {body[:80]!r}")
        stream = msg.get("stream")
        try:
            if stream is None:
                if "lastUpdateId" not in msg:
                    continue
                saw_snapshot = True
                if book is None:
                    book = OrderBook(market or ("futures" if "E" in msg else "spot"))
                lid = int(msg["lastUpdateId"])
                if book.synced and book.last_update_id is not None and lid <= book.last_update_id:
                    continue  # not newer than the book
                before = (set(book.bids), set(book.asks)) if book.synced else (set(), set())
                book.apply_snapshot(lid, msg["bids"], msg["asks"])
                bb, ba, b, a, uid = state()
                top = (b, a)
                e = msg.get("E")
                full = (
                    list(book.bids.items()) + [(p, 0.0) for p in before[0] - book.bids.keys()],
                    list(book.asks.items()) + [(p, 0.0) for p in before[1] - book.asks.keys()],
                )
                yield L2Event(
                    "book",
                    None if e is None else int(e),
                    ns,
                    uid,
                    bb,
                    ba,
                    b,
                    a,
                    changes=full,
                    reset=True,
                )
                continue
            d = msg["data"]
            tail = stream[stream.find("@") :]
            if tail.startswith("@depth"):
                saw_diff = True
                pu = d.get("pu")
                if book is None:
                    book = OrderBook(market or ("futures" if pu is not None else "spot"))
                if not book.apply_diff(d["U"], d["u"], d["b"], d["a"], pu):
                    continue
                bb, ba, b, a, uid = state()
                top = (b, a)
                yield L2Event("book", d["E"], ns, uid, bb, ba, b, a, changes=(d["b"], d["a"]))
            elif tail == "@bookTicker":
                t = BookTicker(d["u"], float(d["b"]), float(d["B"]), float(d["a"]), float(d["A"]))
                yield L2Event("ticker", d.get("E"), ns, uid, bb, ba, top[0], top[1], ticker=t)
            elif tail == "@trade" or tail == "@aggTrade":
                tr = _parse_trade(d, tail == "@aggTrade")
                yield L2Event("trade", tr.time_ms, ns, uid, bb, ba, top[0], top[1], trade=tr)
        except BookGapError as exc:
            raise BookGapError(
                f"{path}:{lineno}: {exc}",
                expected=exc.expected,
                first_id=exc.first_id,
                last_id=exc.last_id,
                prev_id=exc.prev_id,
            ) from None
        except (KeyError, TypeError, ValueError) as exc:
            if isinstance(exc, L2DataError):
                raise
            raise L2DataError(f"{path}:{lineno}: malformed {stream} message: {exc!r}") from None
    if saw_diff and not saw_snapshot:
        raise L2DataError(f"no depth snapshot in {[str(p) for p in paths]}: cannot rebuild a book")


TRADE_COLUMNS: tuple[str, ...] = (
    "time",
    "time_ms",
    "local_time_ns",
    "price",
    "qty",
    "is_buyer_maker",
    "trade_id",
)


def load_trades(files: PathArg | Sequence[PathArg]) -> pd.DataFrame:
    """All trades (``@trade`` or ``@aggTrade``) of the files, in file order, as a DataFrame.

    Columns ``TRADE_COLUMNS``: ``time`` (UTC, from the trade time ``T``), ``time_ms``,
    ``local_time_ns``, ``price``, ``qty``, ``is_buyer_maker`` (``m``), ``trade_id`` (``t``; the
    aggregate id ``a`` for ``aggTrade``). The book is not rebuilt, so this needs no snapshot.
    """
    paths = _as_paths(files)
    rows_ms: list[int] = []
    rows_ns: list[int] = []
    price: list[float] = []
    qty: list[float] = []
    maker: list[bool] = []
    ids: list[int] = []
    loads = json.loads
    for path, lineno, ns, body in _lines(paths):
        if b'@trade"' not in body and b'@aggTrade"' not in body:
            continue
        try:
            msg = loads(body)
            stream = msg["stream"]
            tail = stream[stream.find("@") :]
            if tail != "@trade" and tail != "@aggTrade":
                continue
            tr = _parse_trade(msg["data"], tail == "@aggTrade")
        except (KeyError, TypeError, ValueError) as exc:
            raise L2DataError(f"{path}:{lineno}: malformed trade message: {exc!r}") from None
        rows_ms.append(tr.time_ms)
        rows_ns.append(ns)
        price.append(tr.price)
        qty.append(tr.qty)
        maker.append(tr.is_buyer_maker)
        ids.append(tr.trade_id)
    t = np.asarray(rows_ms, dtype=np.int64)
    return pd.DataFrame(
        {
            "time": pd.to_datetime(t, unit="ms", utc=True),
            "time_ms": t,
            "local_time_ns": np.asarray(rows_ns, dtype=np.int64),
            "price": np.asarray(price, dtype=np.float64),
            "qty": np.asarray(qty, dtype=np.float64),
            "is_buyer_maker": np.asarray(maker, dtype=bool),
            "trade_id": np.asarray(ids, dtype=np.int64),
        }
    )
