"""Binance spot and USD-M futures through python-binance's REST client.

One code path serves testnet, mainnet and fakes: only the REST/websocket roots differ, and they
come from the configuration. Safety properties:

- Every signed request carries recvWindow <= 5000 ms and a timestamp corrected by the offset
  measured against the venue's clock; a -1021 answer resyncs the offset and retries once.
- A client-side throttler, seeded from exchangeInfo's rateLimits, charges each endpoint's weight
  before the request goes out; 429/418 pause traffic for the venue's Retry-After.
- An order is sent once. When its answer is lost (timeout, dropped connection, 5xx, -1007) the
  adapter asks for the order by its client id. It is declared never placed only once the venue's
  clock is past the request's timestamp + recvWindow (+ a margin): after that Binance can no
  longer execute the request. Until then it is not resent.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from binance.client import Client

from swarm_ray.core.clock import Clock, LiveClock
from swarm_ray.core.domain import (
    Fill,
    MarketSnapshot,
    Order,
    OrderIntent,
    OrderStatus,
    OrderType,
)
from swarm_ray.core.instruments import Balance, Kline, Position, SymbolRules, decimal_str
from swarm_ray.exchanges.base import Exchange
from swarm_ray.exchanges.binance import constants as C
from swarm_ray.exchanges.binance.parsing import (
    _levels,
    parse_balances,
    parse_futures_balances,
    parse_futures_position,
    parse_klines,
    parse_order,
    parse_symbol_rules,
    parse_trade,
)
from swarm_ray.exchanges.binance.stream import _BookStream
from swarm_ray.exchanges.binance.throttle import WeightThrottler
from swarm_ray.exchanges.config import BinanceCredentials, ExchangeConfig
from swarm_ray.exchanges.errors import (
    ClockSkew,
    DefiniteReject,
    ExchangeError,
    OrderNotFound,
    RateLimited,
    UnknownOutcome,
    classify,
)

__all__ = ["BinanceExchange", "OrderNotPlaced"]

log = logging.getLogger(__name__)


class OrderNotPlaced(DefiniteReject):
    """The answer was lost, and the venue confirms the order does not exist and cannot appear."""


@dataclass
class _Unresolved:
    intent: OrderIntent
    not_after_ms: int  # venue time after which the lost request can no longer execute


class BinanceExchange(Exchange):
    """Binance spot (``kind: binance-spot``) or USD-M futures (``kind: binance-futures``)."""

    def __init__(
        self,
        config: ExchangeConfig,
        credentials: BinanceCredentials | None,
        clock: Clock | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if config.kind not in ("binance-spot", "binance-futures"):
            raise ValueError(f"BinanceExchange cannot serve kind {config.kind!r}")
        self.config = config
        self.futures = config.kind == "binance-futures"
        self.name = config.kind + ("" if config.is_mainnet else "-testnet")
        self._clock = clock or LiveClock()
        self._sleep = sleep
        key = credentials.api_key.get_secret_value() if credentials else None
        secret = credentials.api_secret.get_secret_value() if credentials else None
        client = Client(
            key, secret, requests_params={"timeout": config.request_timeout_s}, ping=False
        )
        root = config.rest_root()
        # the library picks URLs from these attributes; testnet=False keeps it from overriding
        client.API_URL = root + "/api"
        client.FUTURES_URL = root + "/fapi"
        client.REQUEST_RECVWINDOW = config.recv_window_ms
        self._client = client
        self._weights = C.FUTURES_WEIGHTS if self.futures else C.SPOT_WEIGHTS
        self.throttler = WeightThrottler(
            self._clock,
            sleep,
            C.DEFAULT_FUTURES_RATE_LIMITS if self.futures else C.DEFAULT_SPOT_RATE_LIMITS,
            max_wait_s=config.max_throttle_wait_s,
        )
        self._lock = threading.RLock()
        self._rules: dict[str, SymbolRules] = {}
        self._cid_by_order_id: dict[str, str] = {}
        self._unresolved: dict[str, _Unresolved] = {}
        self._streams: dict[str, _BookStream] = {}
        self._last_mid: dict[str, tuple[int, Decimal]] = {}  # symbol -> (monotonic ns, mid)
        self.clock_offset_ms: int | None = None
        self._last_sync_ns: int | None = None

    def __repr__(self) -> str:
        return f"BinanceExchange(name={self.name!r}, root={self.config.rest_root()!r})"

    # ------------------------------------------------------------ plumbing

    def _call(
        self, key: str, fn: Callable[..., Any], orders: int = 0, signed: bool = True, **params: Any
    ) -> Any:
        """One request: throttle, sync the clock if due, classify failures, retry -1021 once."""
        with self._lock:
            if signed:
                self._maybe_sync_time()
            for attempt in (0, 1):
                self.throttler.acquire(self._weights.get(key, 1), orders)
                try:
                    result = fn(**dict(params))
                except Exception as exc:
                    err = classify(exc)
                    self._observe_headers()
                    if isinstance(err, RateLimited) and err.status is not None:
                        whole_ip = err.status in (418, 429)
                        self.throttler.pause(err.retry_after_s, all_traffic=whole_ip)
                    log.warning("%s %s: %s: %s", self.name, key, type(err).__name__, err)
                    if isinstance(err, ClockSkew) and attempt == 0:
                        self.sync_time()
                        continue
                    raise err from None
                self._observe_headers()
                return result
        raise AssertionError("unreachable")

    def _observe_headers(self) -> None:
        response = getattr(self._client, "response", None)
        used = response.headers.get(C.HEADER_USED_WEIGHT_1M) if response is not None else None
        if used is not None and str(used).isdigit():
            self.throttler.observe_used_weight(int(used))

    def _maybe_sync_time(self) -> None:
        due = self._last_sync_ns is None or (
            self._clock.monotonic_ns() - self._last_sync_ns > self.config.time_sync_interval_s * 1e9
        )
        if due:
            self.sync_time()

    def sync_time(self) -> int:
        """Measure the venue clock's offset from ours and sign with it from now on."""
        fn = self._client.futures_time if self.futures else self._client.get_server_time
        t0 = self._clock.now_ms()
        server = int(self._call("time", fn, signed=False)["serverTime"])
        t1 = self._clock.now_ms()
        offset = server - (t0 + t1) // 2
        with self._lock:
            self._client.timestamp_offset = offset
            self.clock_offset_ms = offset
            self._last_sync_ns = self._clock.monotonic_ns()
        return offset

    def server_time_ms(self) -> int:
        fn = self._client.futures_time if self.futures else self._client.get_server_time
        return int(self._call("time", fn, signed=False)["serverTime"])

    def _venue_now_ms(self) -> int:
        return self._clock.now_ms() + int(self._client.timestamp_offset)

    # ------------------------------------------------------------ reference data

    def load_rules(self) -> dict[str, SymbolRules]:
        """Fetch exchangeInfo: every symbol's filters, and the rate limits for the throttler."""
        fn = self._client.futures_exchange_info if self.futures else self._client.get_exchange_info
        info = self._call("exchangeInfo", fn, signed=False)
        if info.get("rateLimits"):
            self.throttler.configure(info["rateLimits"])
        rules = {}
        for s in info.get("symbols", []):
            try:
                rules[s["symbol"]] = parse_symbol_rules(s)
            except (ExchangeError, KeyError, ArithmeticError, ValueError) as exc:
                log.warning("skipping symbol %s: %s", s.get("symbol"), exc)
        with self._lock:
            self._rules = rules
        return rules

    def symbol_rules(self, symbol: str) -> SymbolRules:
        if symbol not in self._rules:
            self.load_rules()
        try:
            return self._rules[symbol]
        except KeyError:
            raise DefiniteReject(f"unknown symbol {symbol!r} at {self.name}") from None

    # ------------------------------------------------------------ market data

    def start_market_stream(self, symbol: str) -> None:
        """Stream the book for ``symbol``; ``market_snapshot`` uses it while it is fresh."""
        if not self.config.use_websocket:
            return
        running = self._streams.get(symbol)
        if running is not None and running.is_alive():
            return  # a stream that gave up (reconnects exhausted) is replaced
        stream = _BookStream(self.futures, self.config.ws_root(), symbol, self._clock)
        self._streams[symbol] = stream
        stream.start()

    def market_snapshot(self, symbol: str, depth: int = 5) -> MarketSnapshot:
        stream = self._streams.get(symbol)
        latest = stream.latest() if stream is not None else None
        max_age_ns = int(self.config.market_data_max_age_s * 1e9)
        if latest is not None and self._clock.now_ns() - latest[0] <= max_age_ns:
            t_ns, bids, asks = latest
            source_bids, source_asks = bids, asks
        else:
            limit = next((n for n in C.DEPTH_LIMITS if n >= depth), C.DEPTH_LIMITS[-1])
            fn = self._client.futures_order_book if self.futures else self._client.get_order_book
            book = self._call("depth", fn, signed=False, symbol=symbol, limit=limit)
            t_ns = self._clock.now_ns()
            source_bids, source_asks = _levels(book["bids"], depth), _levels(book["asks"], depth)
        if not source_bids or not source_asks:
            raise DefiniteReject(f"{symbol}: empty book side at {self.name}")
        mid = (Decimal(str(source_bids[0].price)) + Decimal(str(source_asks[0].price))) / 2
        self._last_mid[symbol] = (self._clock.monotonic_ns(), mid)
        return MarketSnapshot(
            symbol=symbol,
            time_ns=t_ns,
            best_bid=source_bids[0].price,
            best_ask=source_asks[0].price,
            bids=source_bids[:depth],
            asks=source_asks[:depth],
        )

    def recent_klines(self, symbol: str, interval: str = "5m", limit: int = 289) -> list[Kline]:
        """REST klines (spot /api/v3/klines, futures /fapi/v1/klines), oldest first."""
        max_limit = 1500 if self.futures else 1000
        if not 1 <= limit <= max_limit:
            raise ValueError(f"klines limit must be 1..{max_limit}, got {limit}")
        fn = self._client.futures_klines if self.futures else self._client.get_klines
        weight_key = "klines" if not self.futures else _futures_klines_weight_key(limit)
        rows = self._call(
            weight_key, fn, signed=False, symbol=symbol, interval=interval, limit=limit
        )
        return parse_klines(rows)

    # ------------------------------------------------------------ orders

    def _order_params(self, intent: OrderIntent) -> dict[str, Any]:
        p: dict[str, Any] = {
            "symbol": intent.symbol,
            "side": intent.side.value,
            "quantity": decimal_str(intent.quantity),
            "newClientOrderId": intent.client_order_id,
        }
        if intent.order_type is OrderType.MARKET:
            p["type"] = "MARKET"
        elif intent.order_type is OrderType.LIMIT_MAKER:
            p["price"] = decimal_str(intent.price)
            if self.futures:
                p.update(type="LIMIT", timeInForce="GTX")
            else:
                p["type"] = "LIMIT_MAKER"
        else:
            p.update(
                type="LIMIT", price=decimal_str(intent.price), timeInForce=intent.time_in_force
            )
        p["newOrderRespType"] = "RESULT"
        return p

    def reference_price(self, symbol: str) -> Decimal:
        """The last known mid, refreshed when older than ``reference_price_max_age_s``: what the
        percent-price filters are checked against before an order is sent."""
        known = self._last_mid.get(symbol)
        max_age_ns = int(self.config.reference_price_max_age_s * 1e9)
        if known is None or self._clock.monotonic_ns() - known[0] > max_age_ns:
            self.market_snapshot(symbol)
            known = self._last_mid[symbol]
        return known[1]

    def place_order(self, intent: OrderIntent) -> Order:
        rules = self.symbol_rules(intent.symbol)
        ref = self.reference_price(intent.symbol) if rules.has_price_band else None
        intent = rules.prepare(intent, reference_price=ref)  # OrderDropped: never sent
        cid = intent.client_order_id
        with self._lock:
            if cid in self._unresolved:
                known = self.resolve(intent.symbol, cid)
                if known is not None:
                    return known  # it exists or still may: never a second order for one intent
            fn = self._client.futures_create_order if self.futures else self._client.create_order
            try:
                data = self._call("order.post", fn, orders=1, **self._order_params(intent))
            except UnknownOutcome as exc:
                # the library's timestamp was taken before this instant, on the same offset
                not_after = (
                    self._venue_now_ms()
                    + self.config.recv_window_ms
                    + self.config.unknown_resolve_margin_ms
                )
                self._unresolved[cid] = _Unresolved(intent, not_after)
                log.warning("%s: order %s outcome unknown (%s); querying", self.name, cid, exc)
                return self._settle_unknown(intent)
            order = parse_order(data)
            self._remember(order)
            return order

    def _settle_unknown(self, intent: OrderIntent) -> Order:
        """Query until the order shows up or provably cannot; bounded by recvWindow + margin."""
        cid = intent.client_order_id
        pending = self._unresolved[cid]
        give_up_ms = pending.not_after_ms + 2 * self.config.recv_window_ms
        last = _unknown_order(intent)
        while True:
            try:
                known = self.resolve(intent.symbol, cid)
                if known is None:
                    raise OrderNotPlaced(
                        f"{cid}: answer lost; the venue has no such order and the request "
                        "has expired, so it never will (safe to send again)"
                    )
                if known.status is not OrderStatus.UNKNOWN:
                    return known
                last = known
            except (UnknownOutcome, RateLimited) as exc:
                log.warning("%s: cannot resolve %s yet: %s", self.name, cid, exc)
            if self._venue_now_ms() > give_up_ms:
                log.error("%s: order %s still unresolved; not resending", self.name, cid)
                return last
            self._sleep(min(0.25, max(0.02, self.config.recv_window_ms / 20_000)))

    def resolve(self, symbol: str, client_order_id: str) -> Order | None:
        """Settle a lost order: the venue's order, or ``None`` when it does not (and, for a lost
        request, provably never will) exist. ``UNKNOWN`` while a lost request could still execute.
        """
        with self._lock:
            pending = self._unresolved.get(client_order_id)
            order = self.get_order(symbol, client_order_id)
            if order is not None:
                self._unresolved.pop(client_order_id, None)
                return order
            if pending is None:
                return None
            if self.server_time_ms() > pending.not_after_ms:
                self._unresolved.pop(client_order_id, None)
                return None
            return _unknown_order(pending.intent)  # the request may still execute

    def unresolved(self) -> list[str]:
        """Client ids whose fate is still unknown (the coordinator must not reuse them)."""
        return list(self._unresolved)

    def _remember(self, order: Order) -> None:
        if order.exchange_order_id is not None:
            self._cid_by_order_id[order.exchange_order_id] = order.client_order_id

    def get_order(self, symbol: str, client_order_id: str) -> Order | None:
        fn = self._client.futures_get_order if self.futures else self._client.get_order
        try:
            data = self._call("order.get", fn, symbol=symbol, origClientOrderId=client_order_id)
        except OrderNotFound:
            return None
        order = parse_order(data)
        self._remember(order)
        return order

    def cancel_order(self, symbol: str, client_order_id: str) -> Order:
        fn = self._client.futures_cancel_order if self.futures else self._client.cancel_order
        for attempt in (0, 1):
            try:
                data = self._call(
                    "order.delete", fn, symbol=symbol, origClientOrderId=client_order_id
                )
                return parse_order(data)
            except OrderNotFound:
                # already final (filled/cancelled) or never existed: the query tells which
                order = self.get_order(symbol, client_order_id)
                if order is None:
                    raise
                return order
            except UnknownOutcome:
                order = self.get_order(symbol, client_order_id)
                if order is not None and (order.status.is_final or attempt == 1):
                    return order
                if order is None:
                    raise OrderNotFound(f"{client_order_id}: no such order") from None
        raise AssertionError("unreachable")

    def cancel_all(self, symbol: str) -> None:
        fn = (
            self._client.futures_cancel_all_open_orders
            if self.futures
            else self._client.cancel_all_open_orders
        )
        try:
            self._call("openOrders.delete", fn, symbol=symbol)
        except OrderNotFound:
            pass  # spot answers -2011 when there was nothing to cancel
        except UnknownOutcome:
            # idempotent: a second attempt is safe
            with contextlib.suppress(OrderNotFound):
                self._call("openOrders.delete", fn, symbol=symbol)

    def open_orders(self, symbol: str) -> list[Order]:
        fn = self._client.futures_get_open_orders if self.futures else self._client.get_open_orders
        orders = [parse_order(d) for d in self._call("openOrders.get", fn, symbol=symbol)]
        for o in orders:
            self._remember(o)
        return orders

    # ------------------------------------------------------------ account

    def fills_since(self, symbol: str, since_ms: int) -> list[Fill]:
        if self.futures:
            fn, key = self._client.futures_account_trades, "userTrades"
        else:
            fn, key = self._client.get_my_trades, "myTrades"
        trades: list[dict[str, Any]] = []
        page = self._call(key, fn, symbol=symbol, startTime=int(since_ms), limit=1000)
        trades.extend(page)
        while len(page) == 1000:
            page = self._call(key, fn, symbol=symbol, fromId=int(page[-1]["id"]) + 1, limit=1000)
            trades.extend(page)
        fills = []
        for t in trades:
            if int(t["time"]) < since_ms:
                continue
            oid = str(t["orderId"])
            cid = self._cid_by_order_id.get(oid) or self._cid_for_order_id(symbol, oid)
            fills.append(parse_trade(t, symbol, cid, self.futures))
        fills.sort(key=lambda f: (f.time_ms, f.trade_id))
        return fills

    def _cid_for_order_id(self, symbol: str, order_id: str) -> str:
        fn = self._client.futures_get_order if self.futures else self._client.get_order
        order = parse_order(self._call("order.get", fn, symbol=symbol, orderId=int(order_id)))
        self._remember(order)
        return order.client_order_id

    def balances(self) -> dict[str, Balance]:
        if self.futures:
            return parse_futures_balances(
                self._call("balance", self._client.futures_account_balance)
            )
        return parse_balances(self._call("account", self._client.get_account))

    def position(self, symbol: str) -> Position:
        if not self.futures:
            rules = self.symbol_rules(symbol)
            bal = self.balances().get(rules.base_asset)
            return Position(symbol, bal.total if bal else Decimal(0))
        rows = self._call("positionRisk", self._client.futures_position_information, symbol=symbol)
        return parse_futures_position(symbol, rows)

    def close(self) -> None:
        for stream in list(self._streams.values()):
            stream.stop()
        self._streams.clear()
        self._client.session.close()


def _futures_klines_weight_key(limit: int) -> str:
    if limit < 100:
        return "klines"
    return "klines.500" if limit < 500 else "klines.1000" if limit <= 1000 else "klines.1500"


def _unknown_order(intent: OrderIntent) -> Order:
    return Order(
        symbol=intent.symbol,
        side=intent.side,
        price=intent.price,
        quantity=intent.quantity,
        client_order_id=intent.client_order_id,
        status=OrderStatus.UNKNOWN,
        order_type=intent.order_type,
    )
