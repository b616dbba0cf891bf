"""Binance L2 stream files: order-book rebuild, a time-ordered event stream, sampled frames, trades.

File format (see ``data/PROVENANCE.md``): gzip text, one message per line,
``<local receive time ns> <JSON>``. The JSON is a Binance combined-stream message
``{"stream": "<sym>@depth@100ms" | "<sym>@depth@0ms" | "<sym>@bookTicker" | "<sym>@trade" |
"<sym>@aggTrade", "data": {...}}`` or, once near the start of a recording, a REST depth snapshot
``{"lastUpdateId": ..., "bids": [...], "asks": [...]}``. Messages of other streams are skipped.

The book is rebuilt with Binance's documented procedure (implemented in ``OrderBook``):

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
resynchronise by applying a fresh snapshot. ``iter_events`` and the functions built on it do not
catch it: a replay over a broken recording fails loudly.

Several files given in order continue one book: the snapshot of the first file synchronises it and
the diffs of the next files must continue the chain. A later snapshot newer than the book re-syncs
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
from bisect import bisect_left, insort
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Literal

import numpy as np
import pandas as pd

Market = Literal["spot", "futures"]
EventKind = Literal["book", "ticker", "trade"]
Level = tuple[float, float]
PathArg = str | os.PathLike[str]

__all__ = [
    "BookGapError",
    "BookTicker",
    "EventKind",
    "L2DataError",
    "L2Event",
    "Level",
    "Market",
    "OrderBook",
    "Trade",
    "iter_events",
    "load_trades",
    "sample_l2",
]


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


# ---------------------------------------------------------------------- events
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
                book.apply_snapshot(lid, msg["bids"], msg["asks"])
                bb, ba, b, a, uid = state()
                top = (b, a)
                e = msg.get("E")
                yield L2Event("book", None if e is None else int(e), ns, uid, bb, ba, b, a)
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
                yield L2Event("book", d["E"], ns, uid, bb, ba, b, a)
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


# ----------------------------------------------------------------------- frames
SAMPLE_COLUMNS: tuple[str, ...] = (
    "time",
    "best_bid",
    "best_ask",
    "mid",
    "spread",
    "imbalance5",
    "volume",
    "trade_count",
    "high",
    "low",
)


def _interval_ms(interval: str | pd.Timedelta) -> int:
    td = pd.Timedelta(interval)
    ms = td // pd.Timedelta(milliseconds=1)
    if ms <= 0 or pd.Timedelta(milliseconds=ms) != td:
        raise ValueError(
            f"interval must be a positive whole number of milliseconds, got {interval}"
        )
    return int(ms)


def sample_events(events: Iterable[L2Event], interval: str | pd.Timedelta = "1s") -> pd.DataFrame:
    """Sample an event stream on a fixed exchange-time grid (same convention as klines).

    Row ``time`` (UTC) is the start of the interval ``[time, time + interval)``. The book columns
    are the book as of the close of the interval (the last "book" event with exchange time before
    ``time + interval``), forward-filled, NaN before the book is synchronised; ``imbalance5`` is
    ``(sum bid qty - sum ask qty) / (sum bid qty + sum ask qty)`` over the top 5 levels per side
    (over fewer if the events carry fewer). ``volume``, ``trade_count``, ``high``, ``low`` cover the
    trades with trade time in the interval (``high``/``low`` NaN when there were none). The grid
    runs from the interval holding the first timed event to the one holding the last. Times are
    Binance's clock: ``E`` for book events (a snapshot without ``E`` takes the latest exchange time
    seen so far), ``T`` for trades; tickers are not used.
    """
    dt = _interval_ms(interval)
    bt: list[int] = []
    bid: list[float] = []
    ask: list[float] = []
    imb: list[float] = []
    tt: list[int] = []
    tp: list[float] = []
    tq: list[float] = []
    last_t: int | None = None
    held: list[L2Event] = []  # book events without a time, before any timed event

    def add_book(ev: L2Event, t: int) -> None:
        sb = sum(q for _, q in ev.bids[:5])
        sa = sum(q for _, q in ev.asks[:5])
        bt.append(t)
        bid.append(ev.best_bid)
        ask.append(ev.best_ask)
        imb.append((sb - sa) / (sb + sa) if sb + sa > 0 else math.nan)

    for ev in events:
        if ev.exchange_time_ms is not None:
            t = ev.exchange_time_ms
            last_t = t if last_t is None else max(last_t, t)
            for h in held:
                add_book(h, last_t)
            held.clear()
        if ev.kind == "trade":
            tr = ev.trade
            assert tr is not None
            tt.append(tr.time_ms)
            tp.append(tr.price)
            tq.append(tr.qty)
        elif ev.kind == "book":
            if last_t is None:
                held.append(ev)
            else:
                add_book(ev, last_t)
    all_t = bt + tt
    if not all_t:
        return pd.DataFrame({c: pd.Series(dtype=np.float64) for c in SAMPLE_COLUMNS})
    t0 = (min(all_t) // dt) * dt
    n = (max(all_t) - t0) // dt + 1
    starts = t0 + dt * np.arange(n, dtype=np.int64)

    book_t = np.maximum.accumulate(np.asarray(bt, dtype=np.int64)) if bt else np.empty(0, np.int64)
    idx = np.searchsorted(book_t, starts + dt, side="left") - 1
    have = idx >= 0
    take = np.where(have, idx, 0)

    def at_close(values: list[float]) -> np.ndarray:
        if not values:
            return np.full(n, np.nan)
        return np.where(have, np.asarray(values, dtype=np.float64)[take], np.nan)

    best_bid, best_ask, imbalance = at_close(bid), at_close(ask), at_close(imb)

    ti = (np.asarray(tt, dtype=np.int64) - t0) // dt
    p = np.asarray(tp, dtype=np.float64)
    volume = np.bincount(ti, weights=np.asarray(tq, dtype=np.float64), minlength=n)
    count = np.bincount(ti, minlength=n).astype(np.int64)
    high = np.full(n, -np.inf)
    low = np.full(n, np.inf)
    np.maximum.at(high, ti, p)
    np.minimum.at(low, ti, p)
    high[count == 0] = np.nan
    low[count == 0] = np.nan

    return pd.DataFrame(
        {
            "time": pd.to_datetime(starts, unit="ms", utc=True),
            "best_bid": best_bid,
            "best_ask": best_ask,
            "mid": (best_bid + best_ask) / 2.0,
            "spread": best_ask - best_bid,
            "imbalance5": imbalance,
            "volume": volume,
            "trade_count": count,
            "high": high,
            "low": low,
        }
    )


def sample_l2(
    files: PathArg | Sequence[PathArg],
    interval: str | pd.Timedelta = "1s",
    market: Market | None = None,
) -> pd.DataFrame:
    """Replay L2 files and sample them on a fixed grid: ``sample_events(iter_events(files))``.

    Columns ``SAMPLE_COLUMNS`` (see ``sample_events``), one row per interval, e.g. "100ms", "1s".
    """
    return sample_events(iter_events(files, depth=5, market=market), interval)


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
