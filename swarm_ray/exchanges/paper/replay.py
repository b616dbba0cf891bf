"""The paper venue's market data: Binance klines or L2 depth + trades, replayed on its time axis.

Files are loaded once per process and shared by every symbol and exchange that replays them.
Each symbol's feed puts them on the venue's time axis (its ``time_offset_ms`` plus the replay's
shift); ``MarketReplay`` holds the feeds of all symbols and answers what the market was at an
instant: the book, the touch, candles aggregated from the data known by then.
"""

from __future__ import annotations

import threading
from bisect import bisect_right
from collections.abc import Sequence
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

import numpy as np

from envs.data.klines import load_klines
from envs.data.l2 import L2DataError
from envs.data.l2.tape import TickTape, load_tape, load_tick_tape
from swarm_ray.core.clock import Clock
from swarm_ray.core.config import ConfigError, resolve_path
from swarm_ray.core.domain import BookLevel, MarketSnapshot
from swarm_ray.core.instruments import Kline
from swarm_ray.exchanges.config import PaperConfig, PaperSymbolConfig
from swarm_ray.exchanges.errors import DefiniteReject, ExchangeError

__all__ = ["KLINE_INTERVALS_MS", "MarketReplay", "ReplayFinished", "ReplayNotStarted"]

KLINE_INTERVALS_MS: dict[str, int] = {
    "1s": 1_000,
    "1m": 60_000,
    "3m": 180_000,
    "5m": 300_000,
    "15m": 900_000,
    "30m": 1_800_000,
    "1h": 3_600_000,
    "2h": 7_200_000,
    "4h": 14_400_000,
    "6h": 21_600_000,
    "8h": 28_800_000,
    "12h": 43_200_000,
    "1d": 86_400_000,
}

_MS = 1_000_000


class ReplayFinished(ExchangeError):
    """The replay has no more market data for this symbol: the run is over."""


class ReplayNotStarted(ExchangeError):
    """The clock is before the replay's first market data for this symbol."""


class _KlineData:
    """1m klines of some files, as plain lists (scalar access) and arrays (aggregation)."""

    def __init__(self, paths: tuple[str, ...]) -> None:
        df = load_klines(list(paths))
        self.open_ms = df["open_time_ms"].to_numpy(np.int64)
        self.close_ms = df["close_time_ms"].to_numpy(np.int64)
        self.open = df["open"].to_numpy(np.float64)
        self.high = df["high"].to_numpy(np.float64)
        self.low = df["low"].to_numpy(np.float64)
        self.close = df["close"].to_numpy(np.float64)
        self.volume = df["volume"].to_numpy(np.float64)
        self.trades = df["number_of_trades"].to_numpy(np.int64)
        self.taker_buy = df["taker_buy_base_volume"].to_numpy(np.float64)
        self.high_l: list[float] = self.high.tolist()
        self.low_l: list[float] = self.low.tolist()
        self.close_l: list[float] = self.close.tolist()
        self.volume_l: list[float] = self.volume.tolist()
        self._touch: dict[tuple[Decimal, Decimal], tuple[list[float], list[float]]] = {}

    def touch(self, tick: Decimal, half_spread: Decimal) -> tuple[list[float], list[float]]:
        """Best bid/ask of the synthetic book of every bar (exact decimals, as floats)."""
        key = (tick, half_spread)
        if key not in self._touch:
            bids, asks = [], []
            for c in self.close_l:
                close = Decimal(repr(c))
                n_bid = ((close - half_spread) / tick).to_integral_value(ROUND_FLOOR)
                n_ask = ((close + half_spread) / tick).to_integral_value(ROUND_CEILING)
                bids.append(float(n_bid * tick))
                asks.append(float(n_ask * tick))
            self._touch[key] = (bids, asks)
        return self._touch[key]


_DATA_CACHE: dict[tuple[str, tuple[str, ...]], _KlineData] = {}
_DATA_LOCK = threading.Lock()


def _load(kind: str, files: Sequence[str]) -> _KlineData | TickTape:
    """Market data loaded once per process and shared by every symbol and exchange using it."""
    paths = tuple(str(resolve_path(f).resolve()) for f in files)
    if kind == "l2":
        try:
            return load_tape(paths)
        except L2DataError as exc:
            raise ConfigError(str(exc)) from None
    key = (kind, paths)
    with _DATA_LOCK:
        data = _DATA_CACHE.get(key)
        if data is None:
            data = _DATA_CACHE[key] = _KlineData(paths)
    return data


class _Feed:
    """One symbol's market data on the venue's time axis (ns, offset applied).

    ``fill_*`` are the events that can fill resting orders (bars or trades); ``book_ns`` the
    instants the book changes. ``bid``/``ask`` are the best prices after each book change.
    """

    symbol: str
    start_ns: int
    end_ns: int
    fill_ns: list[int]
    fill_low: list[float]
    fill_high: list[float]
    book_ns: list[int]
    bid: list[float]
    ask: list[float]
    unit_ms: int  # the finest kline interval it can serve

    def __init__(self, symbol: str, offset_ns: int) -> None:
        self.symbol = symbol
        self.offset_ns = offset_ns
        self._cache: tuple[int, int, MarketSnapshot] | None = None

    def book_index(self, t_ns: int) -> int:
        """Index of the book in force at ``t_ns`` (-1 before the first)."""
        return bisect_right(self.book_ns, t_ns) - 1

    def snapshot(self, i: int, depth: int) -> MarketSnapshot:
        cached = self._cache
        if cached is not None and cached[0] == i and cached[1] == depth:
            return cached[2]
        snap = self._snapshot(i, depth)
        self._cache = (i, depth, snap)
        return snap

    def _snapshot(self, i: int, depth: int) -> MarketSnapshot:
        raise NotImplementedError

    def rows(self, now_ns: int, interval_ms: int = 60_000) -> tuple[np.ndarray, ...]:
        """(time ms, open, high, low, close, volume, trades, taker-buy volume) of the data known
        at ``now_ns``: closed bars, or trades (for candles of ``interval_ms``)."""
        raise NotImplementedError


class _KlineFeed(_Feed):
    def __init__(
        self, symbol: str, data: _KlineData, offset_ns: int, spec: PaperSymbolConfig
    ) -> None:
        super().__init__(symbol, offset_ns)
        self.data = data
        self.unit_ms = 60_000
        self.fill_ns = (data.close_ms * _MS + offset_ns).tolist()
        self.book_ns = self.fill_ns
        self.fill_low, self.fill_high = data.low_l, data.high_l
        tick = spec.tick_size
        self.bid, self.ask = data.touch(tick, spec.half_spread or tick)
        # levels k ticks from the touch are exact decimals with the tick's decimal places:
        # rounding the float sum to them gives the float nearest to that decimal
        self.tick_f, self.digits = float(tick), max(0, -int(tick.as_tuple().exponent))
        self.levels = spec.book_levels
        self.level_qty = spec.level_qty
        self.start_ns, self.end_ns = self.fill_ns[0], self.fill_ns[-1]

    def _snapshot(self, i: int, depth: int) -> MarketSnapshot:
        n = max(1, min(depth, self.levels))
        bid, ask, tick, digits, q = (
            self.bid[i],
            self.ask[i],
            self.tick_f,
            self.digits,
            self.level_qty,
        )
        return MarketSnapshot(
            symbol=self.symbol,
            time_ns=self.book_ns[i],
            best_bid=bid,
            best_ask=ask,
            bids=tuple(BookLevel(round(bid - k * tick, digits), q) for k in range(n)),
            asks=tuple(BookLevel(round(ask + k * tick, digits), q) for k in range(n)),
            last_price=self.data.close_l[i],
            volume=self.data.volume_l[i],
        )

    def rows(self, now_ns: int, interval_ms: int = 60_000) -> tuple[np.ndarray, ...]:
        d = self.data
        j = bisect_right(self.fill_ns, now_ns)
        t = d.open_ms[:j] + self.offset_ns // _MS
        return (
            t,
            d.open[:j],
            d.high[:j],
            d.low[:j],
            d.close[:j],
            d.volume[:j],
            d.trades[:j],
            d.taker_buy[:j],
        )


class _L2Feed(_Feed):
    def __init__(
        self, symbol: str, data: TickTape, offset_ns: int, history: _KlineData | None = None
    ) -> None:
        super().__init__(symbol, offset_ns)
        self.data = data
        self.history: tuple[np.ndarray, ...] | None = None
        if history is not None:  # the bars closed before the recording's first trade
            first = int(data.trade_ms[0]) if len(data.trade_ms) else data.book_ms[0]
            j = int(np.searchsorted(history.close_ms, first, side="left"))
            h = history
            self.history = (
                h.open_ms[:j] + offset_ns // _MS,
                h.open[:j], h.high[:j], h.low[:j], h.close[:j], h.volume[:j],
                h.trades[:j], h.taker_buy[:j],
            )  # fmt: skip
        self.unit_ms = 1_000
        self.book_ns = [t * _MS + offset_ns for t in data.book_ms]
        self.bid, self.ask = data.best_bid, data.best_ask
        self.fill_ns = (data.trade_ms * _MS + offset_ns).tolist()
        self.fill_low = self.fill_high = data.price_l
        self.start_ns = self.book_ns[0]
        self.end_ns = max(self.book_ns[-1], self.fill_ns[-1] if self.fill_ns else 0)

    def _snapshot(self, i: int, depth: int) -> MarketSnapshot:
        t = self.book_ns[i]
        k = bisect_right(self.fill_ns, t) - 1
        return MarketSnapshot(
            symbol=self.symbol,
            time_ns=t,
            best_bid=self.bid[i],
            best_ask=self.ask[i],
            bids=tuple(BookLevel(p, q) for p, q in self.data.bids[i][:depth]),
            asks=tuple(BookLevel(p, q) for p, q in self.data.asks[i][:depth]),
            last_price=self.fill_low[k] if k >= 0 else None,
        )

    def rows(self, now_ns: int, interval_ms: int = 1_000) -> tuple[np.ndarray, ...]:
        d = self.data
        j = bisect_right(self.fill_ns, now_ns)
        p = d.trade_price[:j]
        t = d.trade_ms[:j] + self.offset_ns // _MS
        ticks = (t, p, p, p, p, d.trade_qty[:j], np.ones(j, np.int64), d.trade_taker_buy[:j])
        if self.history is None or interval_ms < 60_000:
            return ticks
        return tuple(np.concatenate([h, x]) for h, x in zip(self.history, ticks, strict=True))


def _aggregate(rows: tuple[np.ndarray, ...], interval_ms: int, limit: int) -> list[Kline]:
    """The last ``limit`` candles of ``interval_ms`` built from finer rows (bars or trades)."""
    t, o, h, lo, c, v, n, tb = rows
    if len(t) == 0:
        return []
    first = (int(t[-1]) // interval_ms - limit + 1) * interval_ms
    a = int(np.searchsorted(t, first, side="left"))
    t, o, h, lo, c, v, n, tb = (x[a:] for x in (t, o, h, lo, c, v, n, tb))
    bucket = t // interval_ms
    starts = np.flatnonzero(np.r_[True, bucket[1:] != bucket[:-1]])
    ends = np.r_[starts[1:], len(t)] - 1
    highs = np.maximum.reduceat(h, starts)
    lows = np.minimum.reduceat(lo, starts)
    vols = np.add.reduceat(v, starts)
    counts = np.add.reduceat(n, starts)
    taker = np.add.reduceat(tb, starts)
    opens, closes = o[starts].tolist(), c[ends].tolist()
    begin = (bucket[starts] * interval_ms).tolist()
    rows_out = zip(
        begin,
        opens,
        highs.tolist(),
        lows.tolist(),
        closes,
        vols.tolist(),
        counts.tolist(),
        taker.tolist(),
        strict=True,
    )
    return [
        Kline(b, op, hi, lw, cl, vol, b + interval_ms - 1, int(cnt), tbv)
        for b, op, hi, lw, cl, vol, cnt, tbv in rows_out
    ]


def _first_ns(data: _KlineData | TickTape) -> int:
    if isinstance(data, _KlineData):
        return int(data.close_ms[0]) * _MS
    return data.book_ms[0] * _MS


def _data_of(name: str, config: PaperConfig) -> _KlineData | TickTape:
    spec = config.data_spec(name)
    if spec.trades:
        try:
            return load_tick_tape(
                [resolve_path(f) for f in spec.trades], [resolve_path(f) for f in spec.book_ticker]
            )
        except L2DataError as exc:
            raise ConfigError(f"symbols.{name}: {exc}") from None
    return _load("klines", spec.klines) if spec.klines else _load("l2", spec.l2)


class MarketReplay:
    """Every configured symbol's market data on the venue's time axis.

    ``shift_ns``: how far the whole replay is shifted in time (the value kept in the state file).
    None: no shift, or with ``align_to_clock`` the shift that starts the replay at ``clock``'s
    time. ``venue``: the exchange's name, for error messages.
    """

    def __init__(
        self,
        config: PaperConfig,
        venue: str,
        shift_ns: int | None = None,
        clock: Clock | None = None,
    ) -> None:
        specs = config.symbols
        raw = {name: _data_of(name, config) for name in specs}
        if shift_ns is None:
            shift_ns = 0
            if config.align_to_clock:
                if clock is None:
                    raise ValueError("align_to_clock needs a clock")
                first = min(_first_ns(d) + specs[n].time_offset_ms * _MS for n, d in raw.items())
                shift_ns = clock.now_ns() - first
        self.shift_ns = shift_ns
        self.venue = venue
        self._aligned = config.align_to_clock
        self.feeds: dict[str, _Feed] = {}
        for name, data in raw.items():
            offset = specs[name].time_offset_ms * _MS + shift_ns
            if isinstance(data, _KlineData):
                self.feeds[name] = _KlineFeed(name, data, offset, specs[name])
            else:
                spec = config.data_spec(name)
                history = _load("klines", spec.history_klines) if spec.history_klines else None
                assert history is None or isinstance(history, _KlineData)
                self.feeds[name] = _L2Feed(name, data, offset, history)

    @property
    def symbols(self) -> tuple[str, ...]:
        return tuple(self.feeds)

    def feed(self, symbol: str) -> _Feed:
        try:
            return self.feeds[symbol]
        except KeyError:
            raise DefiniteReject(f"unknown symbol {symbol!r} at {self.venue}") from None

    def snapshot(self, symbol: str, now_ns: int, depth: int) -> MarketSnapshot:
        """The book in force at ``now_ns``; ``ReplayFinished`` after the last data."""
        feed = self.feed(symbol)
        if now_ns > feed.end_ns:
            raise ReplayFinished(
                f"{symbol}: the replay ended at {feed.end_ns} ns, the clock is at {now_ns} ns"
            )
        i = feed.book_index(now_ns)
        if i < 0:
            hint = "" if self._aligned else " (align_to_clock maps a live clock)"
            raise ReplayNotStarted(
                f"{symbol}: the replay starts at {feed.start_ns} ns, the clock is at {now_ns} ns"
                + hint
            )
        return feed.snapshot(i, depth)

    def touch(self, symbol: str, t_ns: int) -> tuple[float, float]:
        """The best bid/ask at ``t_ns``."""
        feed = self.feeds[symbol]
        if t_ns > feed.end_ns:
            raise ReplayFinished(f"{symbol}: the replay ended at {feed.end_ns} ns")
        i = feed.book_index(t_ns)
        if i < 0:
            raise ReplayNotStarted(f"{symbol}: no market data before {feed.start_ns} ns")
        return feed.bid[i], feed.ask[i]

    def mid(self, symbol: str, t_ns: int) -> Decimal | None:
        """The mid at ``t_ns`` (the last book after the end), None before the first book."""
        feed = self.feeds[symbol]
        i = feed.book_index(min(t_ns, feed.end_ns))
        if i < 0:
            return None
        return (Decimal(repr(feed.bid[i])) + Decimal(repr(feed.ask[i]))) / 2

    def klines(self, symbol: str, now_ns: int, interval: str, limit: int) -> list[Kline]:
        """The last ``limit`` candles of ``interval`` known at ``now_ns``, oldest first."""
        feed = self.feed(symbol)
        if interval not in KLINE_INTERVALS_MS:
            raise ValueError(
                f"unknown kline interval {interval!r}; known: {list(KLINE_INTERVALS_MS)}"
            )
        interval_ms = KLINE_INTERVALS_MS[interval]
        if interval_ms < feed.unit_ms:
            raise ValueError(f"{symbol} replays 1m bars: cannot serve {interval} klines")
        if not 1 <= limit <= 1000:
            raise ValueError(f"klines limit must be 1..1000, got {limit}")
        return _aggregate(feed.rows(now_ns, interval_ms), interval_ms, limit)

    def start_ns(self, symbol: str | None = None) -> int:
        if symbol is None:
            return min(f.start_ns for f in self.feeds.values())
        return self.feed(symbol).start_ns

    def end_ns(self, symbol: str | None = None) -> int:
        if symbol is None:
            return max(f.end_ns for f in self.feeds.values())
        return self.feed(symbol).end_ns

    def times_ns(self, symbol: str, every_ns: int | None = None) -> list[int]:
        """Every bar's close (kline replay), or a grid every ``every_ns`` (default 1 s)."""
        feed = self.feed(symbol)
        if every_ns is None and isinstance(feed, _KlineFeed):
            return list(feed.book_ns)
        step = int(every_ns or 1_000_000_000)
        if step <= 0:
            raise ValueError(f"every_ns must be positive, got {every_ns}")
        return list(range(feed.start_ns, feed.end_ns + 1, step))
