"""The paper exchange: the ``Exchange`` interface over a replay of real market data, in process.

What it replays, per symbol: 1-minute Binance klines (a synthetic book around each bar's close)
or Binance L2 depth + trade files (the real book). Time comes only from the injected clock; with
a ``SimulatedClock`` a driver steps it bar by bar (``replay_times_ns``) and a day replays in
seconds.

The venue is a small discrete-event simulation on its own time axis:

- A request sent at clock time ``t`` reaches the venue at ``t + latency`` (never before an
  earlier request: the venue's time only moves forward). It sees every market event stamped at
  or before its arrival and takes effect just after them. An order therefore cannot fill on data
  before it went live, and a cancel does not protect an order from events that reach the venue
  before the cancel does. The answer is returned at once (the simulated clock does not move
  during a call); it is the answer the venue would send from its arrival time.
- Fills use the environment's fill model, ``envs.models.TradeThroughFill``, the very code the
  policies are trained against: a resting buy fills when a later bar's low (kline replay) or a
  later real trade (L2 replay) is strictly below its price, a sell when strictly above, then with
  probability ``touch_fill_prob``. A bar's prices are stamped at its close time, as in the
  environment, where quotes set at bar t's close meet bar t+1's whole range. Resting orders fill
  in full at their own price as maker; market orders, and limit orders that cross the book on
  arrival, fill in full at the touch as taker. There is no market impact.
- Fees are charged in the quote asset (maker/taker bps of notional), for spot as for futures.
- Market snapshots show the book as of the clock (never the venue's arrival time), so neither
  snapshots nor ``recent_klines`` look ahead. A kline replay's snapshot is the book implied by
  the last bar closed: best bid/ask ``half_spread`` around the close, rounded outward to ticks,
  ``book_levels`` levels one tick apart, ``time_ns`` the bar's close time.

Fault injection (``inject_trade``, ``inject_snapshot_fault``, ``set_latency``,
``crash_after_next_accept``) is part of the simulator's public API, for tests.

With ``state_path`` the account (orders, fills, balances, positions, counters, the venue's
replay cursor) lives in SQLite (WAL, synchronous=NORMAL): every call that changed it commits
before it returns, so an order exists at the venue from the moment ``place_order`` accepted it,
and a new ``PaperExchange`` with the same config resumes the account. A process crash loses
nothing committed; an OS crash may lose the last commits (synchronous=NORMAL). One process at a
time per state file.
"""

from __future__ import annotations

import json
import math
import os
import sqlite3
import threading
from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from dataclasses import replace
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from pathlib import Path
from typing import Any

import numpy as np

from envs.config import FillConfig
from envs.data.klines import load_klines
from envs.data.l2 import iter_events
from envs.models import TradeThroughFill
from swarm_ray.core.clock import Clock, SimulatedClock
from swarm_ray.core.config import ConfigError, resolve_path
from swarm_ray.core.domain import (
    BookLevel,
    Fill,
    MarketSnapshot,
    Order,
    OrderIntent,
    OrderStatus,
    OrderType,
    Side,
)
from swarm_ray.core.instruments import Balance, Kline, Position, SymbolRules
from swarm_ray.exchanges.base import Exchange
from swarm_ray.exchanges.config import ExchangeConfig, PaperConfig, PaperSymbolConfig
from swarm_ray.exchanges.errors import DefiniteReject, ExchangeError, OrderNotFound

__all__ = [
    "FAULT_KINDS",
    "KLINE_INTERVALS_MS",
    "PaperExchange",
    "ReplayFinished",
    "ReplayNotStarted",
]

FAULT_KINDS = ("nan", "crossed", "stale", "frozen")
"""Snapshot faults: nan (best bid/ask NaN), crossed (bid above ask), stale (time stamp set back by
``stale_age_s``), frozen (the feed stops: the snapshot of the moment of injection, ageing)."""

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

# Binance's codes, so that callers treat a paper reject like the venue's
CODE_REJECTED = -2010  # duplicate id, would take (post-only), insufficient balance
CODE_UNKNOWN_ORDER = -2011
CODE_MARGIN_INSUFFICIENT = -2019

_MS = 1_000_000
_BPS = Decimal("0.0001")
_ZERO = Decimal(0)
_NAN = float("nan")


class ReplayFinished(ExchangeError):
    """The replay has no more market data for this symbol: the run is over."""


class ReplayNotStarted(ExchangeError):
    """The clock is before the replay's first market data for this symbol."""


# ---------------------------------------------------------------- market data (read-only)


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


class _L2Data:
    """The synchronised book after each depth event, and every trade, of some L2 files."""

    DEPTH = 20

    def __init__(self, paths: tuple[str, ...]) -> None:
        book_ms: list[int] = []
        bids: list[tuple[tuple[float, float], ...]] = []
        asks: list[tuple[tuple[float, float], ...]] = []
        trade_ms: list[int] = []
        price: list[float] = []
        qty: list[float] = []
        taker_buy: list[bool] = []
        last_ms: int | None = None
        untimed = 0  # book events before any timed message (the spot REST snapshot)
        for ev in iter_events(list(paths), depth=self.DEPTH):
            t = ev.exchange_time_ms
            if t is not None:
                last_ms = t if last_ms is None else max(last_ms, t)  # keep the axis monotone
                book_ms[len(book_ms) - untimed :] = [last_ms] * untimed
                untimed = 0
            if ev.kind == "trade":
                assert ev.trade is not None and last_ms is not None
                trade_ms.append(last_ms)
                price.append(ev.trade.price)
                qty.append(ev.trade.qty)
                taker_buy.append(not ev.trade.is_buyer_maker)
            elif ev.kind == "book" and math.isfinite(ev.best_bid) and math.isfinite(ev.best_ask):
                book_ms.append(last_ms if last_ms is not None else 0)
                untimed += last_ms is None
                bids.append(ev.bids)
                asks.append(ev.asks)
        if not book_ms or untimed:
            raise ConfigError(f"L2 files {list(paths)}: no synchronised, timed book to replay")
        self.book_ms, self.bids, self.asks = book_ms, bids, asks
        self.best_bid = [b[0][0] for b in bids]
        self.best_ask = [a[0][0] for a in asks]
        self.trade_ms = np.asarray(trade_ms, dtype=np.int64)
        self.trade_price = np.asarray(price, dtype=np.float64)
        self.trade_qty = np.asarray(qty, dtype=np.float64)
        self.trade_taker_buy = np.where(taker_buy, self.trade_qty, 0.0)
        self.price_l: list[float] = price


_DATA_CACHE: dict[tuple[str, tuple[str, ...]], _KlineData | _L2Data] = {}
_DATA_LOCK = threading.Lock()


def _load(kind: str, files: Sequence[str]) -> _KlineData | _L2Data:
    """Market data loaded once per process and shared by every symbol and exchange using it."""
    key = (kind, tuple(str(resolve_path(f).resolve()) for f in files))
    with _DATA_LOCK:
        data = _DATA_CACHE.get(key)
        if data is None:
            data = _KlineData(key[1]) if kind == "klines" else _L2Data(key[1])
            _DATA_CACHE[key] = data
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

    def rows(self, now_ns: int) -> tuple[np.ndarray, ...]:
        """(time ms, open, high, low, close, volume, trades, taker-buy volume) of the data known
        at ``now_ns``: closed bars, or trades."""
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

    def rows(self, now_ns: int) -> tuple[np.ndarray, ...]:
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
    def __init__(self, symbol: str, data: _L2Data, offset_ns: int) -> None:
        super().__init__(symbol, offset_ns)
        self.data = data
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

    def rows(self, now_ns: int) -> tuple[np.ndarray, ...]:
        d = self.data
        j = bisect_right(self.fill_ns, now_ns)
        p = d.trade_price[:j]
        t = d.trade_ms[:j] + self.offset_ns // _MS
        return t, p, p, p, p, d.trade_qty[:j], np.ones(j, np.int64), d.trade_taker_buy[:j]


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


def _uniform(seed: int, seq: int, k: int) -> float:
    """A uniform draw in [0, 1) that depends only on (seed, order, event): SplitMix64's
    finaliser. Draws survive restarts and do not depend on how often the caller polls."""
    m = 0xFFFFFFFFFFFFFFFF
    z = (seed * 0x9E3779B97F4A7C15 + seq * 0xD1B54A32D192ED03 + k * 0xAEF17502108EF2D9) & m
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & m
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & m
    return ((z ^ (z >> 31)) >> 11) * (1.0 / (1 << 53))


# ---------------------------------------------------------------- account state


class _Order:
    """The venue's mutable record of one order; ``view()`` is its immutable ``Order``."""

    __slots__ = (
        "_view",
        "cid",
        "exchange_id",
        "filled",
        "live_ns",
        "order_type",
        "price",
        "price_f",
        "qty",
        "reserve",
        "reserve_asset",
        "seq",
        "side",
        "status",
        "symbol",
        "update_ms",
    )

    def __init__(
        self,
        seq: int,
        intent: OrderIntent,
        live_ns: int,
        reserve: Decimal,
        reserve_asset: str,
    ) -> None:
        self.seq = seq
        self.exchange_id = str(seq)
        self.symbol = intent.symbol
        self.side = intent.side
        self.order_type = intent.order_type
        # Binance reports a market order's price as 0
        self.price = _ZERO if intent.order_type is OrderType.MARKET else intent.price
        self.price_f = float(self.price)
        self.qty = intent.quantity
        self.filled = _ZERO
        self.cid = intent.client_order_id
        self.status = OrderStatus.NEW
        self.live_ns = live_ns
        self.update_ms = live_ns // _MS
        self.reserve = reserve  # funds (spot) or margin (futures) still held for the rest
        self.reserve_asset = reserve_asset
        self._view: Order | None = None

    def view(self) -> Order:
        if self._view is None:
            self._view = Order(
                symbol=self.symbol,
                side=self.side,
                price=self.price,
                quantity=self.qty,
                client_order_id=self.cid,
                status=self.status,
                filled_quantity=self.filled,
                exchange_order_id=self.exchange_id,
                order_type=self.order_type,
                update_time_ms=self.update_ms,
            )
        return self._view

    def row(self) -> tuple[Any, ...]:
        return (
            self.cid,
            self.seq,
            self.symbol,
            self.side.value,
            self.order_type.value,
            str(self.price),
            str(self.qty),
            str(self.filled),
            self.status.value,
            self.live_ns,
            self.update_ms,
            str(self.reserve),
            self.reserve_asset,
        )

    @classmethod
    def from_row(cls, r: Sequence[Any]) -> _Order:
        o = cls.__new__(cls)
        o.cid, o.seq, o.symbol = r[0], int(r[1]), r[2]
        o.exchange_id = str(o.seq)
        o.side, o.order_type = Side(r[3]), OrderType(r[4])
        o.price, o.qty, o.filled = Decimal(r[5]), Decimal(r[6]), Decimal(r[7])
        o.price_f = float(o.price)
        o.status = OrderStatus(r[8])
        o.live_ns, o.update_ms = int(r[9]), int(r[10])
        o.reserve, o.reserve_asset = Decimal(r[11]), r[12]
        o._view = None
        return o


_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS orders(
    cid TEXT PRIMARY KEY, seq INTEGER NOT NULL, symbol TEXT NOT NULL, side TEXT NOT NULL,
    type TEXT NOT NULL, price TEXT NOT NULL, qty TEXT NOT NULL, filled TEXT NOT NULL,
    status TEXT NOT NULL, live_ns INTEGER NOT NULL, update_ms INTEGER NOT NULL,
    reserve TEXT NOT NULL, reserve_asset TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS fills(
    trade_id INTEGER PRIMARY KEY, symbol TEXT NOT NULL, cid TEXT NOT NULL, side TEXT NOT NULL,
    price TEXT NOT NULL, qty TEXT NOT NULL, fee TEXT NOT NULL, fee_asset TEXT NOT NULL,
    time_ms INTEGER NOT NULL, is_maker INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS balances(
    asset TEXT PRIMARY KEY, free TEXT NOT NULL, locked TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS positions(symbol TEXT PRIMARY KEY, qty TEXT NOT NULL, entry TEXT);
"""


class _Store:
    """The account in SQLite: one small transaction per changing call."""

    def __init__(self, path: str) -> None:
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        self.conn = sqlite3.connect(p, isolation_level=None, check_same_thread=False)
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA synchronous=NORMAL")
        self.conn.executescript(_SCHEMA)

    def meta(self) -> dict[str, str]:
        return dict(self.conn.execute("SELECT key, value FROM meta"))

    def write(
        self,
        meta: dict[str, str],
        orders: list[tuple[Any, ...]],
        fills: list[Fill],
        balances: list[tuple[str, str, str]],
        positions: list[tuple[str, str, str | None]],
    ) -> None:
        c = self.conn
        c.execute("BEGIN")
        try:
            c.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)", meta.items())
            if orders:
                c.executemany(
                    "INSERT OR REPLACE INTO orders VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)", orders
                )
            if fills:
                c.executemany(
                    "INSERT INTO fills VALUES (?,?,?,?,?,?,?,?,?,?)",
                    [
                        (
                            int(f.trade_id),
                            f.symbol,
                            f.client_order_id,
                            f.side.value,
                            str(f.price),
                            str(f.quantity),
                            str(f.fee),
                            f.fee_asset,
                            f.time_ms,
                            int(f.is_maker),
                        )
                        for f in fills
                    ],
                )
            if balances:
                c.executemany("INSERT OR REPLACE INTO balances VALUES (?, ?, ?)", balances)
            if positions:
                c.executemany("INSERT OR REPLACE INTO positions VALUES (?, ?, ?)", positions)
        except BaseException:
            c.execute("ROLLBACK")
            raise
        c.execute("COMMIT")

    def close(self) -> None:
        self.conn.close()


# ---------------------------------------------------------------- the exchange


class PaperExchange(Exchange):
    """The embedded paper venue (``kind: paper``); see the module docstring for the model.

    ``clock``: where time comes from; without one, a ``SimulatedClock`` at the earliest replay
    start (``self.clock``), which the caller advances.
    """

    def __init__(self, config: ExchangeConfig | PaperConfig, clock: Clock | None = None) -> None:
        if isinstance(config, ExchangeConfig):
            if config.kind != "paper":
                raise ValueError(f"PaperExchange cannot serve kind {config.kind!r}")
            config = config.paper or PaperConfig()
        self.config = config
        self.futures = config.market == "futures"
        self.name = f"paper-{config.market}"
        self._lock = threading.RLock()
        self._maker = config.maker_fee_bps * _BPS
        self._taker = config.taker_fee_bps * _BPS
        self._reserve_rate = 1 + max(self._maker, self._taker, _ZERO)  # spot buys lock fees too
        self._leverage = Decimal(config.leverage)
        self._latency_ns = round(config.latency_ms * _MS)
        self._fill_model = TradeThroughFill(
            FillConfig(kind="trade_through", touch_fill_prob=config.touch_fill_prob)
        )
        self._p_lt_1 = config.touch_fill_prob < 1.0
        self._store: _Store | None = _Store(config.state_path) if config.state_path else None
        meta = self._store.meta() if self._store else {}
        identity = self._identity()
        if self._store is not None and meta and meta.get("identity") != identity:
            self._store.close()
            raise ExchangeError(
                f"paper state {config.state_path} was written for other symbols, data or market; "
                "use another state_path or delete it"
            )

        self.rules: dict[str, SymbolRules] = {}
        specs: dict[str, PaperSymbolConfig] = {}
        for name, spec in config.symbols.items():
            base, quote = spec.assets(name)
            specs[name] = spec
            self.rules[name] = SymbolRules(
                symbol=name,
                base_asset=base,
                quote_asset=quote,
                tick_size=spec.tick_size,
                step_size=spec.step_size,
                min_qty=spec.min_qty,
                max_qty=spec.max_qty,
                min_notional=spec.min_notional,
                min_price=spec.tick_size,
            )
        raw = {name: self._data_of(name, specs) for name in specs}
        shift_ns = int(meta["align_ns"]) if "align_ns" in meta else 0
        if config.align_to_clock and "align_ns" not in meta:
            if clock is None:
                raise ValueError("align_to_clock needs a clock")
            first = min(_first_ns(d) + specs[n].time_offset_ms * _MS for n, d in raw.items())
            shift_ns = clock.now_ns() - first
        self._shift_ns = shift_ns
        self.feeds: dict[str, _Feed] = {}
        for name, data in raw.items():
            offset = specs[name].time_offset_ms * _MS + shift_ns
            if isinstance(data, _KlineData):
                self.feeds[name] = _KlineFeed(name, data, offset, specs[name])
            else:
                self.feeds[name] = _L2Feed(name, data, offset)
        self.clock: Clock = clock or SimulatedClock(min(f.start_ns for f in self.feeds.values()))

        # account
        self._orders: dict[str, _Order] = {}
        self._open: dict[str, dict[str, _Order]] = {}  # symbol -> open orders, placement order
        self._fills: dict[str, list[Fill]] = {s: [] for s in self.feeds}
        self._fill_ms: dict[str, list[int]] = {s: [] for s in self.feeds}
        self._bal: dict[str, list[Decimal]] = {}  # asset -> [free, locked]; futures: [wallet, 0]
        self._pos: dict[str, list[Any]] = {}  # futures: symbol -> [qty, entry or None]
        self._order_margin: dict[str, Decimal] = {}  # futures: asset -> margin of open orders
        self._pos_margin: dict[str, Decimal] = {}  # futures: symbol -> margin of the position
        self._pos_margin_total: dict[str, Decimal] = {}  # futures: asset -> sum of the above
        self._venue_ns = 0  # market events up to here are processed
        self._next_seq = 1
        self._next_trade = 1
        self._faults: dict[str, tuple[str, Any]] = {}
        self._exit_after_accept: int | None = None
        # what the next flush writes
        self._dirty_orders: dict[str, _Order] = {}
        self._new_fills: list[Fill] = []
        self._dirty_assets: set[str] = set()
        self._dirty_pos: set[str] = set()
        if meta:
            self._restore(meta)
        else:
            for asset, amount in config.initial_balances.items():
                self._bal[asset] = [Decimal(amount), _ZERO]
                self._dirty_assets.add(asset)
            if self._store is not None:
                self._flush(force=True)

    # ------------------------------------------------------------ construction helpers

    def _identity(self) -> str:
        c = self.config
        data = {
            "market": c.market,
            "symbols": {
                n: s.model_dump(mode="json", include={"klines", "l2", "source_symbol"})
                | {"time_offset_ms": s.time_offset_ms}
                for n, s in c.symbols.items()
            },
            "align_to_clock": c.align_to_clock,
        }
        return json.dumps(data, sort_keys=True)

    @staticmethod
    def _data_of(name: str, specs: dict[str, PaperSymbolConfig]) -> _KlineData | _L2Data:
        spec = specs[name]
        if spec.source_symbol is not None:
            spec = specs[spec.source_symbol]
        return _load("klines", spec.klines) if spec.klines else _load("l2", spec.l2)

    def _restore(self, meta: dict[str, str]) -> None:
        assert self._store is not None
        conn = self._store.conn
        venue_ns, next_seq, next_trade = meta["cursor"].split()
        self._venue_ns, self._next_seq, self._next_trade = (
            int(venue_ns),
            int(next_seq),
            int(next_trade),
        )
        for row in conn.execute("SELECT * FROM orders ORDER BY seq"):
            o = _Order.from_row(row)
            self._orders[o.cid] = o
            if o.status.is_open:
                self._open.setdefault(o.symbol, {})[o.cid] = o
                if self.futures:
                    self._add_margin(o.reserve_asset, o.reserve)
        for r in conn.execute("SELECT * FROM fills ORDER BY trade_id"):
            f = Fill(
                symbol=r[1],
                trade_id=str(r[0]),
                client_order_id=r[2],
                side=Side(r[3]),
                price=Decimal(r[4]),
                quantity=Decimal(r[5]),
                fee=Decimal(r[6]),
                fee_asset=r[7],
                time_ms=int(r[8]),
                is_maker=bool(r[9]),
            )
            if f.symbol in self._fills:
                self._fills[f.symbol].append(f)
                self._fill_ms[f.symbol].append(f.time_ms)
        for asset, free, locked in conn.execute("SELECT * FROM balances"):
            self._bal[asset] = [Decimal(free), Decimal(locked)]
        for symbol, qty, entry in conn.execute("SELECT * FROM positions"):
            self._pos[symbol] = [Decimal(qty), Decimal(entry) if entry is not None else None]
            self._set_pos_margin(symbol)

    # ------------------------------------------------------------ replay and time

    def _feed(self, symbol: str) -> _Feed:
        try:
            return self.feeds[symbol]
        except KeyError:
            raise DefiniteReject(f"unknown symbol {symbol!r} at {self.name}") from None

    def _arrival_ns(self) -> int:
        """When a request sent now reaches the venue (requests stay in order)."""
        return max(self.clock.now_ns() + self._latency_ns, self._venue_ns)

    def _catch_up(self, t_ns: int) -> None:
        """Process every market event up to ``t_ns``: fill resting orders it trades through."""
        start = self._venue_ns
        if t_ns <= start:
            return
        self._venue_ns = t_ns
        if not self._open:
            return
        fm, seed, p_lt_1 = self._fill_model, self.config.seed, self._p_lt_1
        hits: list[tuple[int, int, _Order]] = []
        for symbol, orders in self._open.items():
            feed = self.feeds[symbol]
            ns = feed.fill_ns
            i = bisect_right(ns, start)
            j = bisect_right(ns, t_ns, lo=i)
            if i == j:
                continue
            lows, highs = feed.fill_low, feed.fill_high
            # every open order went live at or before ``start``: all events in (start, t_ns] may
            # fill it. The decision is the env's own (its ``mid`` argument is unused here).
            for o in orders.values():
                px, seq = o.price_f, o.seq
                for k in range(i, j):
                    u = _uniform(seed, seq, k) if p_lt_1 else 0.0
                    if o.side is Side.BUY:
                        hit = fm.fill_bid(px, px, lows[k], u)
                    else:
                        hit = fm.fill_ask(px, px, highs[k], u)
                    if hit:
                        hits.append((ns[k], seq, o))
                        break
        hits.sort(key=lambda h: (h[0], h[1]))
        for t, _, o in hits:
            self._fill(o, o.price, o.qty - o.filled, t, maker=True)

    def _touch(self, symbol: str, t_ns: int) -> tuple[float, float]:
        """The venue's best bid/ask at ``t_ns`` (the replay's, never a faulty snapshot)."""
        feed = self.feeds[symbol]
        if t_ns > feed.end_ns:
            raise ReplayFinished(f"{symbol}: the replay ended at {feed.end_ns} ns")
        i = feed.book_index(t_ns)
        if i < 0:
            raise ReplayNotStarted(f"{symbol}: no market data before {feed.start_ns} ns")
        return feed.bid[i], feed.ask[i]

    # ------------------------------------------------------------ account mechanics

    def _add_margin(self, asset: str, amount: Decimal) -> None:
        self._order_margin[asset] = self._order_margin.get(asset, _ZERO) + amount

    def _set_pos_margin(self, symbol: str) -> None:
        q, entry = self._pos[symbol]
        margin = abs(q) * entry / self._leverage if entry is not None else _ZERO
        asset = self.rules[symbol].quote_asset
        total = self._pos_margin_total.get(asset, _ZERO)
        self._pos_margin_total[asset] = total + margin - self._pos_margin.get(symbol, _ZERO)
        self._pos_margin[symbol] = margin

    def _available(self, asset: str) -> Decimal:
        """futures: wallet less the margin of positions and open orders (unrealised PnL is not
        counted: the check is deliberately simple)."""
        wallet = self._bal.get(asset, [_ZERO, _ZERO])[0]
        pos = self._pos_margin_total.get(asset, _ZERO)
        return wallet - pos - self._order_margin.get(asset, _ZERO)

    def _reserve(self, intent: OrderIntent, ref_price: Decimal) -> tuple[Decimal, str]:
        """Check and hold what the order needs: spot funds, futures margin. Raises
        ``DefiniteReject`` naming the shortfall."""
        rules = self.rules[intent.symbol]
        qty, buy = intent.quantity, intent.side is Side.BUY
        if self.futures:
            asset = rules.quote_asset
            q = self._pos.get(intent.symbol, [_ZERO, None])[0]
            signed = qty if buy else -qty
            increase = max(_ZERO, abs(q + signed) - abs(q))  # reducing needs no margin
            need = increase * ref_price / self._leverage
            avail = self._available(asset)
            if need > avail:
                raise DefiniteReject(
                    f"Margin is insufficient: {intent.client_order_id} needs {need} {asset} "
                    f"initial margin, {avail} available",
                    code=CODE_MARGIN_INSUFFICIENT,
                )
            return need, asset
        if buy:
            asset, need = rules.quote_asset, qty * ref_price * self._reserve_rate
        else:
            asset, need = rules.base_asset, qty
        bal = self._bal.setdefault(asset, [_ZERO, _ZERO])
        if bal[0] < need:
            raise DefiniteReject(
                f"Account has insufficient balance for requested action: "
                f"{intent.client_order_id} needs {need} {asset}, {bal[0]} free",
                code=CODE_REJECTED,
            )
        return need, asset

    def _hold(self, o: _Order) -> None:
        if self.futures:
            self._add_margin(o.reserve_asset, o.reserve)
        else:
            bal = self._bal[o.reserve_asset]
            bal[0] -= o.reserve
            bal[1] += o.reserve
            self._dirty_assets.add(o.reserve_asset)

    def _release(self, o: _Order, amount: Decimal) -> None:
        o.reserve -= amount
        if self.futures:
            self._add_margin(o.reserve_asset, -amount)
        else:
            bal = self._bal[o.reserve_asset]
            bal[0] += amount
            bal[1] -= amount
            self._dirty_assets.add(o.reserve_asset)

    def _fill(self, o: _Order, price: Decimal, qty: Decimal, t_ns: int, maker: bool) -> Fill:
        """Trade ``qty`` of ``o`` at ``price`` at venue time ``t_ns``: balances, position, fee."""
        rules = self.rules[o.symbol]
        base, quote = rules.base_asset, rules.quote_asset
        notional = price * qty
        fee = notional * (self._maker if maker else self._taker)
        buy = o.side is Side.BUY
        final = o.filled + qty >= o.qty
        if o.reserve_asset:
            if final:
                release = o.reserve
            elif self.futures:
                release = o.reserve * qty / (o.qty - o.filled)
            else:
                release = qty * o.price * self._reserve_rate if buy else qty
            self._release(o, release)
        bal = self._bal
        if self.futures:
            wallet = bal.setdefault(quote, [_ZERO, _ZERO])
            wallet[0] += self._position_fill(o.symbol, qty if buy else -qty, price) - fee
            self._dirty_assets.add(quote)
        else:
            b, q = bal.setdefault(base, [_ZERO, _ZERO]), bal.setdefault(quote, [_ZERO, _ZERO])
            if buy:
                q[0] -= notional + fee
                b[0] += qty
            else:
                b[0] -= qty
                q[0] += notional - fee
            self._dirty_assets.update((base, quote))
        o.filled += qty
        o.status = OrderStatus.FILLED if final else OrderStatus.PARTIALLY_FILLED
        o.update_ms = t_ns // _MS
        o._view = None
        if final:
            self._close(o)
        self._dirty_orders[o.cid] = o
        fill = Fill(
            symbol=o.symbol,
            trade_id=str(self._next_trade),
            client_order_id=o.cid,
            side=o.side,
            price=price,
            quantity=qty,
            fee=fee,
            fee_asset=quote,
            time_ms=t_ns // _MS,
            is_maker=maker,
        )
        self._next_trade += 1
        self._fills[o.symbol].append(fill)
        self._fill_ms[o.symbol].append(fill.time_ms)
        self._new_fills.append(fill)
        return fill

    def _position_fill(self, symbol: str, signed: Decimal, price: Decimal) -> Decimal:
        """futures: apply a signed trade to the position; returns the realised PnL."""
        pos = self._pos.setdefault(symbol, [_ZERO, None])
        q, entry = pos
        realised = _ZERO
        new_q = q + signed
        if q == 0 or (q > 0) == (signed > 0):
            entry = (abs(q) * (entry or _ZERO) + abs(signed) * price) / abs(new_q)
        else:
            closed = min(abs(q), abs(signed))
            realised = closed * (price - entry) * (1 if q > 0 else -1)
            if new_q == 0:
                entry = None
            elif abs(signed) > abs(q):  # crossed through flat: the rest opens at this price
                entry = price
        pos[0], pos[1] = new_q, entry
        self._set_pos_margin(symbol)
        self._dirty_pos.add(symbol)
        return realised

    def _close(self, o: _Order) -> None:
        """Take a final order off the book."""
        orders = self._open.get(o.symbol)
        if orders is not None:
            orders.pop(o.cid, None)
            if not orders:
                del self._open[o.symbol]

    def _cancel(self, o: _Order, t_ns: int) -> None:
        if o.reserve_asset and o.reserve:
            self._release(o, o.reserve)
        o.status = OrderStatus.CANCELED
        o.update_ms = t_ns // _MS
        o._view = None
        self._close(o)
        self._dirty_orders[o.cid] = o

    def _flush(self, force: bool = False) -> None:
        """Commit what changed (one transaction), so it survives this process."""
        if self._store is None:
            self._dirty_orders.clear()
            self._new_fills.clear()
            self._dirty_assets.clear()
            self._dirty_pos.clear()
            return
        if not (
            force or self._dirty_orders or self._new_fills or self._dirty_assets or self._dirty_pos
        ):
            return
        meta = {"cursor": f"{self._venue_ns} {self._next_seq} {self._next_trade}"}
        if force:  # written once, when the state file is created
            meta.update(identity=self._identity(), align_ns=str(self._shift_ns))
        bal = self._bal
        self._store.write(
            meta,
            [o.row() for o in self._dirty_orders.values()],
            self._new_fills,
            [(a, str(bal[a][0]), str(bal[a][1])) for a in self._dirty_assets],
            [
                (s, str(self._pos[s][0]), None if self._pos[s][1] is None else str(self._pos[s][1]))
                for s in self._dirty_pos
            ],
        )
        self._dirty_orders.clear()
        self._new_fills = []
        self._dirty_assets.clear()
        self._dirty_pos.clear()

    # ------------------------------------------------------------ Exchange: reference data

    def server_time_ms(self) -> int:
        return self.clock.now_ms()

    def symbol_rules(self, symbol: str) -> SymbolRules:
        try:
            return self.rules[symbol]
        except KeyError:
            raise DefiniteReject(f"unknown symbol {symbol!r} at {self.name}") from None

    # ------------------------------------------------------------ Exchange: market data

    def market_snapshot(self, symbol: str, depth: int = 5) -> MarketSnapshot:
        """The book as of the clock; ``ReplayFinished`` once the replay has no more data."""
        feed = self._feed(symbol)
        now = self.clock.now_ns()
        if now > feed.end_ns:
            raise ReplayFinished(
                f"{symbol}: the replay ended at {feed.end_ns} ns, the clock is at {now} ns"
            )
        i = feed.book_index(now)
        if i < 0:
            hint = "" if self.config.align_to_clock else " (align_to_clock maps a live clock)"
            raise ReplayNotStarted(
                f"{symbol}: the replay starts at {feed.start_ns} ns, the clock is at {now} ns"
                + hint
            )
        snap = feed.snapshot(i, depth)
        fault = self._faults.get(symbol)
        return snap if fault is None else self._faulty(snap, fault)

    def recent_klines(self, symbol: str, interval: str = "5m", limit: int = 289) -> list[Kline]:
        """Candles from the replay up to the clock, oldest first; the last one may be partial
        (only bars closed, or trades done, by now are in it)."""
        feed = self._feed(symbol)
        if interval not in KLINE_INTERVALS_MS:
            raise ValueError(
                f"unknown kline interval {interval!r}; known: {list(KLINE_INTERVALS_MS)}"
            )
        interval_ms = KLINE_INTERVALS_MS[interval]
        if interval_ms < feed.unit_ms:
            raise ValueError(f"{symbol} replays 1m bars: cannot serve {interval} klines")
        if not 1 <= limit <= 1000:
            raise ValueError(f"klines limit must be 1..1000, got {limit}")
        return _aggregate(feed.rows(self.clock.now_ns()), interval_ms, limit)

    # ------------------------------------------------------------ Exchange: orders

    def place_order(self, intent: OrderIntent) -> Order:
        with self._lock:
            rules = self.symbol_rules(intent.symbol)
            intent = rules.prepare(intent)  # OrderDropped: nothing placed
            cid = intent.client_order_id
            if cid in self._orders:
                raise DefiniteReject(f"Duplicate order sent: {cid}", code=CODE_REJECTED)
            t = self._arrival_ns()
            self._catch_up(t)
            bid, ask = self._touch(intent.symbol, t)
            buy = intent.side is Side.BUY
            market = intent.order_type is OrderType.MARKET
            crosses = market or (
                intent.price >= Decimal(repr(ask)) if buy else intent.price <= Decimal(repr(bid))
            )
            if crosses and intent.order_type is OrderType.LIMIT_MAKER:
                raise DefiniteReject(
                    f"Order would immediately match and take: {cid}", code=CODE_REJECTED
                )
            touch = Decimal(repr(ask if buy else bid))
            need, asset = self._reserve(intent, touch if market else intent.price)
            o = _Order(
                self._next_seq, intent, t, _ZERO if market else need, "" if market else asset
            )
            self._next_seq += 1
            self._orders[cid] = o
            self._dirty_orders[cid] = o
            if not market:
                self._hold(o)
                self._open.setdefault(o.symbol, {})[cid] = o
            if crosses:
                self._fill(o, touch, o.qty, t, maker=False)
            self._flush()
            if self._exit_after_accept is not None:
                os._exit(self._exit_after_accept)
            return o.view()

    def cancel_order(self, symbol: str, client_order_id: str) -> Order:
        with self._lock:
            self._feed(symbol)
            o = self._orders.get(client_order_id)
            if o is None or o.symbol != symbol:
                raise OrderNotFound(
                    f"Unknown order sent: {client_order_id}", code=CODE_UNKNOWN_ORDER
                )
            t = self._arrival_ns()
            self._catch_up(t)
            if o.status.is_open:
                self._cancel(o, t)
            self._flush()
            return o.view()

    def cancel_all(self, symbol: str) -> None:
        with self._lock:
            self._feed(symbol)
            t = self._arrival_ns()
            self._catch_up(t)
            for o in list(self._open.get(symbol, {}).values()):
                self._cancel(o, t)
            self._flush()

    def open_orders(self, symbol: str) -> list[Order]:
        with self._lock:
            self._feed(symbol)
            self._sync()
            return [o.view() for o in self._open.get(symbol, {}).values()]

    def get_order(self, symbol: str, client_order_id: str) -> Order | None:
        with self._lock:
            self._feed(symbol)
            self._sync()
            o = self._orders.get(client_order_id)
            return o.view() if o is not None and o.symbol == symbol else None

    def fills_since(self, symbol: str, since_ms: int) -> list[Fill]:
        with self._lock:
            self._feed(symbol)
            self._sync()
            i = bisect_left(self._fill_ms[symbol], since_ms)
            return self._fills[symbol][i:]

    # ------------------------------------------------------------ Exchange: account

    def balances(self) -> dict[str, Balance]:
        """spot: free and locked per asset. futures: the quote wallet as Binance reports it
        (total = wallet balance, free = available: wallet less position and order margin)."""
        with self._lock:
            self._sync()
            out = {}
            quotes = {r.quote_asset for r in self.rules.values()} if self.futures else set()
            for asset, (free, locked) in self._bal.items():
                if asset in quotes:
                    avail = self._available(asset)
                    out[asset] = Balance(asset, avail, max(_ZERO, free - avail))
                else:
                    out[asset] = Balance(asset, free, locked)
            return out

    def position(self, symbol: str) -> Position:
        """spot: the base asset's balance. futures: signed quantity, entry price, and the
        unrealised PnL at the current mid (0 when there is no book)."""
        with self._lock:
            rules = self.symbol_rules(symbol)
            self._sync()
            if not self.futures:
                bal = self._bal.get(rules.base_asset, [_ZERO, _ZERO])
                return Position(symbol, bal[0] + bal[1])
            q, entry = self._pos.get(symbol, [_ZERO, None])
            upnl = _ZERO
            if entry is not None:
                feed = self.feeds[symbol]
                i = feed.book_index(min(self.clock.now_ns(), feed.end_ns))
                if i >= 0:
                    mid = (Decimal(repr(feed.bid[i])) + Decimal(repr(feed.ask[i]))) / 2
                    upnl = q * (mid - entry)
            return Position(symbol, q, entry, upnl)

    def _sync(self) -> None:
        """A read: process the market up to now, and keep any fills it made."""
        self._catch_up(self.clock.now_ns())
        self._flush()

    def close(self) -> None:
        with self._lock:
            if self._store is not None:
                self._flush()
                self._store.close()
                self._store = None

    # ------------------------------------------------------------ replay, for drivers

    @property
    def symbols(self) -> tuple[str, ...]:
        return tuple(self.feeds)

    def replay_start_ns(self, symbol: str | None = None) -> int:
        """First instant with market data (the first bar's close), of ``symbol`` or of any."""
        if symbol is None:
            return min(f.start_ns for f in self.feeds.values())
        return self._feed(symbol).start_ns

    def replay_end_ns(self, symbol: str | None = None) -> int:
        """Last instant with market data, of ``symbol`` or of all; after it snapshots raise
        ``ReplayFinished``."""
        if symbol is None:
            return max(f.end_ns for f in self.feeds.values())
        return self._feed(symbol).end_ns

    def replay_times_ns(self, symbol: str, every_ns: int | None = None) -> list[int]:
        """Instants to step a ``SimulatedClock`` to: every bar's close (kline replay), or a grid
        from start to end every ``every_ns`` (default: 1 s for L2, the bars for klines)."""
        feed = self._feed(symbol)
        if every_ns is None and isinstance(feed, _KlineFeed):
            return list(feed.book_ns)
        step = int(every_ns or 1_000_000_000)
        if step <= 0:
            raise ValueError(f"every_ns must be positive, got {every_ns}")
        return list(range(feed.start_ns, feed.end_ns + 1, step))

    # ------------------------------------------------------------ fault injection (tests)

    def inject_trade(
        self, symbol: str, price: Decimal | str | float, qty: Decimal | str | float | None = None
    ) -> int:
        """The market trades at ``price``, now (outside the replay): every resting buy at or
        above it and sell at or below it fills as maker at its own price, best price first, up
        to ``qty`` in total (None: all of them). Returns the number of fills."""
        with self._lock:
            self._feed(symbol)
            p = Decimal(str(price))
            left = None if qty is None else Decimal(str(qty))
            self._catch_up(self.clock.now_ns())
            t = self._venue_ns
            crossed = [
                o
                for o in self._open.get(symbol, {}).values()
                if (o.price >= p if o.side is Side.BUY else o.price <= p)
            ]
            crossed.sort(key=lambda o: (-o.price if o.side is Side.BUY else o.price, o.seq))
            n = 0
            for o in crossed:
                q = o.qty - o.filled if left is None else min(left, o.qty - o.filled)
                if q <= 0:
                    break
                self._fill(o, o.price, q, t, maker=True)
                n += 1
                if left is not None:
                    left -= q
            self._flush()
            return n

    def inject_snapshot_fault(self, symbol: str, kind: str, stale_age_s: float = 3600.0) -> None:
        """Make the next snapshots of ``symbol`` bad until ``clear_faults``: see ``FAULT_KINDS``.
        Only the data the caller sees is bad; the venue keeps matching on the replay."""
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault {kind!r}; known: {FAULT_KINDS}")
        with self._lock:
            self._feed(symbol)
            arg: Any = int(stale_age_s * 1e9)
            if kind == "frozen":
                self._faults.pop(symbol, None)
                arg = self.market_snapshot(symbol)
            self._faults[symbol] = (kind, arg)

    def clear_faults(self, symbol: str | None = None) -> None:
        """Snapshots of ``symbol`` (None: every symbol) are sane again."""
        with self._lock:
            if symbol is None:
                self._faults.clear()
            else:
                self._faults.pop(symbol, None)

    @staticmethod
    def _faulty(snap: MarketSnapshot, fault: tuple[str, Any]) -> MarketSnapshot:
        kind, arg = fault
        if kind == "nan":
            return replace(snap, best_bid=_NAN, best_ask=_NAN)
        if kind == "crossed":
            return replace(snap, best_bid=snap.best_ask, best_ask=snap.best_bid)
        if kind == "stale":
            return replace(snap, time_ns=snap.time_ns - arg)
        return arg  # frozen

    def set_latency(self, latency_ms: float) -> None:
        """Change the one-way latency of requests from now on."""
        if latency_ms < 0:
            raise ValueError(f"latency must be >= 0, got {latency_ms}")
        with self._lock:
            self._latency_ns = round(latency_ms * _MS)

    def crash_after_next_accept(self, exit_code: int = 70) -> None:
        """The process exits (``os._exit``) right after the venue has accepted and stored the
        next order, before ``place_order`` returns: the answer is lost, the order exists."""
        self._exit_after_accept = exit_code

    def __repr__(self) -> str:
        return f"PaperExchange({self.name}, symbols={list(self.feeds)}, clock={self.clock!r})"


def _first_ns(data: _KlineData | _L2Data) -> int:
    if isinstance(data, _KlineData):
        return int(data.close_ms[0]) * _MS
    return data.book_ms[0] * _MS
