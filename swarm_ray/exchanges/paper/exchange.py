"""The paper exchange: the ``Exchange`` interface over a replay of real market data, in process.

``PaperExchange`` is the venue and its API; it builds itself from the parts in this package:
the market data (``replay``), the account (``account``), its SQLite state (``store``) and the
fault hooks (``faults``).
"""

from __future__ import annotations

import threading
from bisect import bisect_left, bisect_right
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from envs.config import FillConfig
from envs.models import TradeThroughFill
from envs.queue import QueueModel, QueuePosition, queue_fills
from swarm_ray.core.clock import Clock, SimulatedClock
from swarm_ray.core.domain import (
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
from swarm_ray.exchanges.binance import constants as C
from swarm_ray.exchanges.config import ExchangeConfig, PaperConfig, PaperSymbolConfig
from swarm_ray.exchanges.errors import DefiniteReject, ExchangeError, OrderNotFound
from swarm_ray.exchanges.paper.account import PaperAccount
from swarm_ray.exchanges.paper.faults import FAULT_KINDS, FaultInjector, trade_through
from swarm_ray.exchanges.paper.replay import MarketReplay, _L2Feed
from swarm_ray.exchanges.paper.store import _Order, _Store, state_identity

__all__ = ["PaperExchange"]

_MS = 1_000_000
_ZERO = Decimal(0)


def _uniform(seed: int, seq: int, k: int) -> float:
    """A uniform draw in [0, 1) that depends only on (seed, order, event): SplitMix64's
    finaliser. Draws survive restarts and do not depend on how often the caller polls."""
    m = 0xFFFFFFFFFFFFFFFF
    z = (seed * 0x9E3779B97F4A7C15 + seq * 0xD1B54A32D192ED03 + k * 0xAEF17502108EF2D9) & m
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & m
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & m
    return ((z ^ (z >> 31)) >> 11) * (1.0 / (1 << 53))


def _rules(name: str, spec: PaperSymbolConfig) -> SymbolRules:
    base, quote = spec.assets(name)
    return SymbolRules(
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


class PaperExchange(Exchange):
    """The paper venue (``kind: paper``): Binance-like spot or USD-M futures over a replay of
    real market data.

    Market data: per symbol, Binance 1-minute klines or Binance L2 depth + trade files, each
    symbol on its own ``time_offset_ms``; ``align_to_clock`` shifts the whole replay to start at
    the clock's time. A kline replay's book is built from the last closed bar: best bid/ask
    ``half_spread`` around its close, rounded outward to ticks, ``book_levels`` levels one tick
    apart of ``level_qty`` each, stamped at the bar's close. An L2 replay shows the recorded
    book (up to 20 levels). Snapshots and ``recent_klines`` show the market as of the clock,
    never later. Past the last data they raise ``ReplayFinished``; before the first,
    ``ReplayNotStarted``.

    Time and latency: time comes only from ``clock``; without one, a ``SimulatedClock`` at the
    replay's start, which the caller steps (``replay_times_ns``). A request sent at ``t``
    reaches the venue at ``t + latency_ms`` (never before an earlier request), sees every market
    event stamped up to then and takes effect just after them; its answer is returned at once.
    So an order cannot fill on data from before it was live, and a cancel does not protect an
    order from events that reach the venue before the cancel does.

    Market data reaches the caller ``feed_latency_ms`` after the venue stamped it.

    Fills of resting orders, always at their own price as maker, by ``fill_model``:

    - ``trade_through`` (the environment's model, ``envs.models.TradeThroughFill``): a bar's
      prices are stamped at its close. A resting buy fills in full when a later bar's low (kline
      replay) or a later trade (L2 replay) is strictly below its price, a sell when strictly
      above; then with probability ``touch_fill_prob`` (draws fixed by ``seed``, order and
      event).
    - ``queue`` (L2 replay, the tick model): the order joins the queue behind the size shown at
      its price when it arrives; trades against its side at its price use up the queue ahead
      (``queue_model`` says how others' cancels move it) and then fill it, partly when smaller;
      a trade through its price, or the opposite best price reaching it, fills the rest
      (``envs.queue.queue_fills``, which the environment's tick replay uses too).

    Market orders, and limit orders that cross the book on arrival, fill in full at the touch as
    taker; a ``LIMIT_MAKER`` that would cross is rejected. No market impact.

    Account and fees: fees are ``maker_fee_bps``/``taker_fee_bps`` of the notional, in the quote
    asset. spot: open orders lock funds, the base balance is the position. futures: a signed
    position at average cost, realised PnL and fees settle in the quote wallet, initial margin
    is notional / ``leverage``. Rejects carry Binance's error codes.

    Faults, for tests and chaos runs: ``inject_trade``, ``inject_snapshot_fault`` (see
    ``FAULT_KINDS``), ``set_latency``, ``crash_after_next_accept``.

    Persistence: with ``state_path`` the account (orders, fills, balances, positions, the
    venue's replay cursor) lives in SQLite (WAL, synchronous=NORMAL). Every call that changed it
    commits before it returns, so an order exists from the moment ``place_order`` accepted it,
    and a new exchange with the same config resumes the account. A process crash loses nothing
    committed; an OS crash may lose the last commits. One process at a time per state file.
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
        self._latency_ns = round(config.latency_ms * _MS)
        self._fill_model = TradeThroughFill(
            FillConfig(kind="trade_through", touch_fill_prob=config.touch_fill_prob)
        )
        self._p_lt_1 = config.touch_fill_prob < 1.0
        self._queue_model = (
            QueueModel(config.queue_model, config.queue_power)
            if config.fill_model == "queue"
            else None
        )
        self._queues: dict[str, QueuePosition] = {}  # resting order -> its place in the queue
        self._feed_latency_ns = round(config.feed_latency_ms * _MS)
        self._store: _Store | None = _Store(config.state_path) if config.state_path else None
        meta = self._store.meta() if self._store else {}
        if self._store is not None and meta and meta.get("identity") != state_identity(config):
            self._store.close()
            raise ExchangeError(
                f"paper state {config.state_path} was written for other symbols, data or market; "
                "use another state_path or delete it"
            )
        self.rules: dict[str, SymbolRules] = {n: _rules(n, s) for n, s in config.symbols.items()}
        shift_ns = int(meta["align_ns"]) if "align_ns" in meta else None
        self.replay = MarketReplay(config, self.name, shift_ns, clock)
        self.clock: Clock = clock or SimulatedClock(self.replay.start_ns())
        self.account = PaperAccount(
            self.rules, self.futures, config.maker_fee_bps, config.taker_fee_bps, config.leverage
        )
        self.faults = FaultInjector()

        # the venue's order book and trade tape
        self._orders: dict[str, _Order] = {}
        self._open: dict[str, dict[str, _Order]] = {}  # symbol -> open orders, placement order
        self._fills: dict[str, list[Fill]] = {s: [] for s in self.replay.feeds}
        self._fill_ms: dict[str, list[int]] = {s: [] for s in self.replay.feeds}
        self._venue_ns = 0  # market events up to here are processed
        self._next_seq = 1
        self._next_trade = 1
        # what the next flush writes (with the account's changes)
        self._dirty_orders: dict[str, _Order] = {}
        self._new_fills: list[Fill] = []
        if meta:
            self._restore(meta)
        else:
            for asset, amount in config.initial_balances.items():
                self.account.deposit(asset, amount)
            if self._store is not None:
                self._flush(force=True)

    def _restore(self, meta: dict[str, str]) -> None:
        assert self._store is not None
        venue_ns, next_seq, next_trade = meta["cursor"].split()
        self._venue_ns, self._next_seq, self._next_trade = (
            int(venue_ns),
            int(next_seq),
            int(next_trade),
        )
        open_orders = []
        for o in self._store.orders():
            self._orders[o.cid] = o
            if o.status.is_open:
                self._open.setdefault(o.symbol, {})[o.cid] = o
                open_orders.append(o)
        for f in self._store.fills():
            if f.symbol in self._fills:
                self._fills[f.symbol].append(f)
                self._fill_ms[f.symbol].append(f.time_ms)
        self.account.restore(self._store.balances(), self._store.positions(), open_orders)

    # ------------------------------------------------------------ matching

    def _seen_ns(self) -> int:
        """The venue time whose market data reaches the caller now (feed latency)."""
        return self.clock.now_ns() - self._feed_latency_ns

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
        if self._queue_model is not None:
            self._match_queues(start, t_ns)
            return
        fm, seed, p_lt_1 = self._fill_model, self.config.seed, self._p_lt_1
        hits: list[tuple[int, int, _Order]] = []
        for symbol, orders in self._open.items():
            feed = self.replay.feeds[symbol]
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

    def _join_queue(self, o: _Order, t_ns: int) -> QueuePosition:
        """The order's place when it joins the queue at ``t_ns``: behind all shown there."""
        feed = self.replay.feeds[o.symbol]
        assert isinstance(feed, _L2Feed)  # the config allows the queue model on L2 data only
        i = feed.book_index(t_ns)
        shown = feed.data.level_qty(o.side is Side.BUY, o.price_f, i) if i >= 0 else 0.0
        return QueuePosition(shown)

    def _match_queues(self, start: int, t_ns: int) -> None:
        """The tick model: fill resting orders from the events in ``(start, t_ns]``."""
        model = self._queue_model
        assert model is not None
        hits: list[tuple[int, int, int, _Order, float]] = []
        for symbol, orders in self._open.items():
            feed = self.replay.feeds[symbol]
            assert isinstance(feed, _L2Feed)
            b0 = bisect_right(feed.book_ns, start)
            b1 = bisect_right(feed.book_ns, t_ns, lo=b0)
            t0 = bisect_right(feed.fill_ns, start)
            t1 = bisect_right(feed.fill_ns, t_ns, lo=t0)
            if b0 == b1 and t0 == t1:
                continue
            lot = float(self.rules[symbol].step_size)
            for o in orders.values():
                q = self._queues.get(o.cid)
                if q is None:  # resumed from a state file: back of the queue as of now
                    q = self._queues[o.cid] = self._join_queue(o, start)
                buy = o.side is Side.BUY
                leaves = float(o.qty - o.filled)
                for is_trade, i, pos, qty in queue_fills(
                    feed.data, buy, o.price_f, leaves, q, model, lot, (b0, b1), (t0, t1)
                ):
                    t = feed.fill_ns[i] if is_trade else feed.book_ns[i]
                    hits.append((t, pos, o.seq, o, qty))
        hits.sort(key=lambda h: (h[0], h[1], h[2]))
        for t, _, _, o, qty in hits:
            left = o.qty - o.filled
            step = self.rules[o.symbol].step_size
            q = Decimal(repr(qty)).quantize(step, rounding=ROUND_HALF_EVEN)
            if q >= left or qty >= float(left) - float(step) / 2:
                q = left
            if q > 0:
                self._fill(o, o.price, q, t, maker=True)

    def _fill(self, o: _Order, price: Decimal, qty: Decimal, t_ns: int, maker: bool) -> Fill:
        """Trade ``qty`` of ``o`` at ``price`` at venue time ``t_ns``."""
        final = o.filled + qty >= o.qty
        fee = self.account.settle(o, price, qty, maker)
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
            fee_asset=self.rules[o.symbol].quote_asset,
            time_ms=t_ns // _MS,
            is_maker=maker,
        )
        self._next_trade += 1
        self._fills[o.symbol].append(fill)
        self._fill_ms[o.symbol].append(fill.time_ms)
        self._new_fills.append(fill)
        return fill

    def _close(self, o: _Order) -> None:
        """Take a final order off the book."""
        self._queues.pop(o.cid, None)
        orders = self._open.get(o.symbol)
        if orders is not None:
            orders.pop(o.cid, None)
            if not orders:
                del self._open[o.symbol]

    def _cancel(self, o: _Order, t_ns: int) -> None:
        if o.reserve_asset and o.reserve:
            self.account.release(o, o.reserve)
        o.status = OrderStatus.CANCELED
        o.update_ms = t_ns // _MS
        o._view = None
        self._close(o)
        self._dirty_orders[o.cid] = o

    def _flush(self, force: bool = False) -> None:
        """Commit what changed (one transaction), so it survives this process."""
        account = self.account
        if self._store is None:
            self._dirty_orders.clear()
            self._new_fills.clear()
            account.forget_changes()
            return
        if not (force or self._dirty_orders or self._new_fills or account.changed):
            return
        meta = {"cursor": f"{self._venue_ns} {self._next_seq} {self._next_trade}"}
        if force:  # written once, when the state file is created
            meta.update(identity=state_identity(self.config), align_ns=str(self.replay.shift_ns))
        balances, positions = account.changes()
        self._store.write(meta, self._dirty_orders.values(), self._new_fills, balances, positions)
        self._dirty_orders.clear()
        self._new_fills = []
        account.forget_changes()

    def _sync(self) -> None:
        """A read: process the market up to now, and keep any fills it made."""
        self._catch_up(self.clock.now_ns())
        self._flush()

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
        snap = self.replay.snapshot(symbol, self._seen_ns(), depth)
        return self.faults.apply(snap)

    def recent_klines(self, symbol: str, interval: str = "5m", limit: int = 289) -> list[Kline]:
        """Candles from the replay up to the clock, oldest first; the last one may be partial
        (only bars closed, or trades done, by now are in it)."""
        return self.replay.klines(symbol, self._seen_ns(), interval, limit)

    # ------------------------------------------------------------ Exchange: orders

    def place_order(self, intent: OrderIntent) -> Order:
        with self._lock:
            rules = self.symbol_rules(intent.symbol)
            intent = rules.prepare(intent)  # OrderDropped: nothing placed
            cid = intent.client_order_id
            if cid in self._orders:
                raise DefiniteReject(f"Duplicate order sent: {cid}", code=C.CODE_NEW_ORDER_REJECTED)
            t = self._arrival_ns()
            self._catch_up(t)
            bid, ask = self.replay.touch(intent.symbol, t)
            buy = intent.side is Side.BUY
            market = intent.order_type is OrderType.MARKET
            crosses = market or (
                intent.price >= Decimal(repr(ask)) if buy else intent.price <= Decimal(repr(bid))
            )
            if crosses and intent.order_type is OrderType.LIMIT_MAKER:
                raise DefiniteReject(
                    f"Order would immediately match and take: {cid}",
                    code=C.CODE_NEW_ORDER_REJECTED,
                )
            touch = Decimal(repr(ask if buy else bid))
            need, asset = self.account.required(intent, touch if market else intent.price)
            o = _Order(
                self._next_seq, intent, t, _ZERO if market else need, "" if market else asset
            )
            self._next_seq += 1
            self._orders[cid] = o
            self._dirty_orders[cid] = o
            if not market:
                self.account.hold(o)
                self._open.setdefault(o.symbol, {})[cid] = o
                if self._queue_model is not None and not crosses:
                    self._queues[cid] = self._join_queue(o, t)
            if crosses:
                self._fill(o, touch, o.qty, t, maker=False)
            self._flush()
            self.faults.order_accepted()
            return o.view()

    def cancel_order(self, symbol: str, client_order_id: str) -> Order:
        with self._lock:
            self.replay.feed(symbol)
            o = self._orders.get(client_order_id)
            if o is None or o.symbol != symbol:
                raise OrderNotFound(
                    f"Unknown order sent: {client_order_id}", code=C.CODE_CANCEL_REJECTED
                )
            t = self._arrival_ns()
            self._catch_up(t)
            if o.status.is_open:
                self._cancel(o, t)
            self._flush()
            return o.view()

    def cancel_all(self, symbol: str) -> None:
        with self._lock:
            self.replay.feed(symbol)
            t = self._arrival_ns()
            self._catch_up(t)
            for o in list(self._open.get(symbol, {}).values()):
                self._cancel(o, t)
            self._flush()

    def open_orders(self, symbol: str) -> list[Order]:
        with self._lock:
            self.replay.feed(symbol)
            self._sync()
            return [o.view() for o in self._open.get(symbol, {}).values()]

    def get_order(self, symbol: str, client_order_id: str) -> Order | None:
        with self._lock:
            self.replay.feed(symbol)
            self._sync()
            o = self._orders.get(client_order_id)
            return o.view() if o is not None and o.symbol == symbol else None

    def fills_since(self, symbol: str, since_ms: int) -> list[Fill]:
        with self._lock:
            self.replay.feed(symbol)
            self._sync()
            i = bisect_left(self._fill_ms[symbol], since_ms)
            return self._fills[symbol][i:]

    # ------------------------------------------------------------ Exchange: account

    def balances(self) -> dict[str, Balance]:
        """spot: free and locked per asset. futures: the quote wallet as Binance reports it
        (total = wallet balance, free = available: wallet less position and order margin)."""
        with self._lock:
            self._sync()
            return self.account.balances()

    def position(self, symbol: str) -> Position:
        """spot: the base asset's balance. futures: signed quantity, entry price, and the
        unrealised PnL at the current mid (0 when there is no book)."""
        with self._lock:
            self.symbol_rules(symbol)
            self._sync()
            mark = self.replay.mid(symbol, self.clock.now_ns()) if self.futures else None
            return self.account.position(symbol, mark)

    def close(self) -> None:
        with self._lock:
            if self._store is not None:
                self._flush()
                self._store.close()
                self._store = None

    # ------------------------------------------------------------ replay, for drivers

    @property
    def symbols(self) -> tuple[str, ...]:
        return self.replay.symbols

    def replay_start_ns(self, symbol: str | None = None) -> int:
        """First instant with market data (the first bar's close), of ``symbol`` or of any."""
        return self.replay.start_ns(symbol)

    def replay_end_ns(self, symbol: str | None = None) -> int:
        """Last instant with market data, of ``symbol`` or of all; after it snapshots raise
        ``ReplayFinished``."""
        return self.replay.end_ns(symbol)

    def replay_times_ns(self, symbol: str, every_ns: int | None = None) -> list[int]:
        """Instants to step a ``SimulatedClock`` to: every bar's close (kline replay), or a grid
        from start to end every ``every_ns`` (default: 1 s for L2, the bars for klines)."""
        return self.replay.times_ns(symbol, every_ns)

    # ------------------------------------------------------------ fault injection

    def inject_trade(
        self, symbol: str, price: Decimal | str | float, qty: Decimal | str | float | None = None
    ) -> int:
        """The market trades at ``price``, now (outside the replay): every resting buy at or
        above it and sell at or below it fills as maker at its own price, best price first, up
        to ``qty`` in total (None: all of them). Returns the number of fills."""
        with self._lock:
            self.replay.feed(symbol)
            p = Decimal(str(price))
            left = None if qty is None else Decimal(str(qty))
            self._catch_up(self.clock.now_ns())
            fills = trade_through(self._open.get(symbol, {}).values(), p, left)
            for o, q in fills:
                self._fill(o, o.price, q, self._venue_ns, maker=True)
            self._flush()
            return len(fills)

    def inject_snapshot_fault(self, symbol: str, kind: str, stale_age_s: float = 3600.0) -> None:
        """Make the next snapshots of ``symbol`` bad until ``clear_faults``: see ``FAULT_KINDS``.
        Only the data the caller sees is bad; the venue keeps matching on the replay."""
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault {kind!r}; known: {FAULT_KINDS}")
        with self._lock:
            self.replay.feed(symbol)
            arg: Any = int(stale_age_s * 1e9)
            if kind == "frozen":
                self.faults.clear(symbol)
                arg = self.market_snapshot(symbol)
            self.faults.break_snapshots(symbol, kind, arg)

    def clear_faults(self, symbol: str | None = None) -> None:
        """Snapshots of ``symbol`` (None: every symbol) are sane again."""
        with self._lock:
            self.faults.clear(symbol)

    def set_latency(self, latency_ms: float) -> None:
        """Change the one-way latency of requests from now on."""
        if latency_ms < 0:
            raise ValueError(f"latency must be >= 0, got {latency_ms}")
        with self._lock:
            self._latency_ns = round(latency_ms * _MS)

    def crash_after_next_accept(self, exit_code: int = 70) -> None:
        """The process exits (``os._exit``) right after the venue has accepted and stored the
        next order, before ``place_order`` returns: the answer is lost, the order exists."""
        self.faults.crash_after_next_accept(exit_code)

    def __repr__(self) -> str:
        return f"PaperExchange({self.name}, symbols={list(self.symbols)}, clock={self.clock!r})"
