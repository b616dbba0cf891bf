"""A fake Binance (spot /api/v3 and USD-M futures /fapi) on loopback, for the real python-binance.

It verifies the API-key header and the HMAC-SHA256 signature over the raw query string + body,
enforces recvWindow and the symbol filters, keeps order state and balances, fills resting orders
when told the market traded through them, enforces its own announced rate limits, and injects
faults on demand (``Fault``): the answer lost after the order was accepted, 5xx, 429/418 with
Retry-After, -1021, -1007, slow answers, garbage bodies.

Every accepted order is counted per client order id in ``accepted``; duplicate client ids are
accepted too (``reject_duplicates=False``), so a double send shows up as a count of 2.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import threading
import time
from collections import defaultdict, deque
from dataclasses import dataclass, field
from decimal import Decimal
from http.server import BaseHTTPRequestHandler
from typing import Any, ClassVar
from urllib.parse import parse_qsl, urlsplit

from tests.fakes.loopback import LoopbackServer

# Binance's published example key pair for SIGNED endpoints (test data only).
DOC_API_KEY = "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A"
DOC_API_SECRET = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j"
DOC_PAYLOAD = (
    "symbol=LTCBTC&side=BUY&type=LIMIT&timeInForce=GTC&quantity=1&price=0.1"
    "&recvWindow=5000&timestamp=1499827319559"
)
DOC_SIGNATURE = "c8db56825ae71d6d79447849e617115f4a920fa2acdcab2b053c4b2838bd6b71"


def sign(secret: str, payload: str) -> str:
    return hmac.new(secret.encode(), payload.encode(), hashlib.sha256).hexdigest()


def verify_signature(secret: str, total_params: str) -> bool:
    """Check ``...&signature=<hex>`` the way Binance does: HMAC of everything before it."""
    head, sep, sig = total_params.rpartition("&signature=")
    if not sep or "&" in sig:
        return False
    return hmac.compare_digest(sign(secret, head), sig)


@dataclass
class Fault:
    """One injected misbehaviour for requests matching ``method`` and ``endpoint``.

    kinds: lost (executed, then the connection is closed without an answer), lost_before
    (closed without executing), http500 (``execute`` decides whether it ran first), 1007,
    rate_limit (429), ban (418), clock_skew (-1021, not executed), slow (execute, then
    answer after ``delay_s``), garbage (executed, 200 with a non-JSON body).
    """

    kind: str
    method: str | None = "POST"
    endpoint: str | None = "order"
    times: int = 1
    retry_after: int = 1
    delay_s: float = 0.0
    execute: bool = True


class _ApiError(Exception):
    def __init__(self, status: int, code: int, msg: str, headers: dict[str, str] | None = None):
        self.status, self.code, self.msg, self.headers = status, code, msg, headers or {}


@dataclass
class _Market:
    symbol: str
    base: str
    quote: str
    tick: Decimal
    step: Decimal
    min_qty: Decimal
    max_qty: Decimal
    min_notional: Decimal
    bid: Decimal
    ask: Decimal
    min_price: Decimal = Decimal("0.01")
    max_price: Decimal = Decimal("1000000")
    # PERCENT_PRICE (down, up), spot and futures; PERCENT_PRICE_BY_SIDE bid/ask (down, up), spot.
    # The reference is the book's mid (standing in for spot's average price, futures' mark).
    percent: tuple[Decimal, Decimal] | None = None
    bid_percent: tuple[Decimal, Decimal] | None = None
    ask_percent: tuple[Decimal, Decimal] | None = None

    @property
    def mid(self) -> Decimal:
        return (self.bid + self.ask) / 2


@dataclass
class _Order:
    symbol: str
    order_id: int
    cid: str
    side: str
    type: str
    tif: str
    price: Decimal
    qty: Decimal
    executed: Decimal = Decimal(0)
    status: str = "NEW"
    time_ms: int = 0
    update_ms: int = 0


def _fmt(d: Decimal) -> str:
    return format(d, "f")


@dataclass
class FakeBinance(LoopbackServer):
    api_key: str = DOC_API_KEY
    api_secret: str = DOC_API_SECRET
    time_offset_ms: int = 0  # the fake venue's clock minus the real clock
    reject_duplicates: bool = False
    futures_percent: tuple[Decimal, Decimal] = (Decimal("0.95"), Decimal("1.05"))
    """USD-M PERCENT_PRICE (multiplierDown, multiplierUp) for every futures symbol."""
    rate_limits: list[dict[str, Any]] = field(
        default_factory=lambda: [
            {
                "rateLimitType": "REQUEST_WEIGHT",
                "interval": "MINUTE",
                "intervalNum": 1,
                "limit": 6000,
            },
            {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 100},
        ]
    )
    balances: dict[str, list[Decimal]] = field(
        default_factory=lambda: {
            "USDT": [Decimal("10000"), Decimal(0)],
            "BTC": [Decimal("1"), Decimal(0)],
            "ETH": [Decimal("10"), Decimal(0)],
        }
    )

    def __post_init__(self) -> None:
        self.markets: dict[str, _Market] = {
            "BTCUSDT": _Market(
                "BTCUSDT",
                "BTC",
                "USDT",
                Decimal("0.01"),
                Decimal("0.00001"),
                Decimal("0.00001"),
                Decimal("9000"),
                Decimal("5"),
                Decimal("60000.00"),
                Decimal("60000.01"),
                percent=(Decimal("0.75"), Decimal("1.3")),
                bid_percent=(Decimal("0.8"), Decimal("1.2")),
                ask_percent=(Decimal("0.7"), Decimal("1.25")),
            ),
            "ETHUSDT": _Market(
                "ETHUSDT",
                "ETH",
                "USDT",
                Decimal("0.01"),
                Decimal("0.0001"),
                Decimal("0.0001"),
                Decimal("9000"),
                Decimal("5"),
                Decimal("3000.00"),
                Decimal("3000.05"),
                percent=(Decimal("0.5"), Decimal("2")),
            ),
        }
        self.orders: dict[int, _Order] = {}
        self.klines: dict[str, list[list[Any]]] = {}
        self.accepted: dict[str, int] = defaultdict(int)
        self.trades: list[dict[str, Any]] = []
        self.positions: dict[str, list[Decimal]] = defaultdict(lambda: [Decimal(0), Decimal(0)])
        self.faults: list[Fault] = []
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        self.headers_seen: list[dict[str, str]] = []
        self.rate_limit_violations = 0
        self._events: dict[str, deque[tuple[float, int]]] = defaultdict(deque)
        self._next_id = 1000
        self._lock = threading.RLock()

    # ---------------------------------------------------------------- lifecycle

    def start(self) -> str:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:  # keep test output clean
                pass

            def _serve(self) -> None:
                fake._handle(self)

            do_GET = do_POST = do_DELETE = do_PUT = _serve

        return self.serve(Handler)

    # ---------------------------------------------------------------- test controls

    def now_ms(self) -> int:
        return int(time.time() * 1000) + self.time_offset_ms

    def inject(self, *faults: Fault) -> None:
        with self._lock:
            self.faults.extend(faults)

    def set_book(self, symbol: str, bid: str, ask: str) -> None:
        with self._lock:
            self.markets[symbol].bid, self.markets[symbol].ask = Decimal(bid), Decimal(ask)

    def trade_through(self, symbol: str, price: str) -> int:
        """The market traded at ``price``: fill every resting order it crosses, at its price."""
        p, n = Decimal(price), 0
        with self._lock:
            for o in list(self.orders.values()):
                if o.symbol != symbol or o.status not in ("NEW", "PARTIALLY_FILLED"):
                    continue
                if (o.side == "BUY" and p <= o.price) or (o.side == "SELL" and p >= o.price):
                    self._fill(o, o.price, o.qty - o.executed, maker=True)
                    n += 1
        return n

    def order_by_cid(self, cid: str) -> list[_Order]:
        with self._lock:
            return [o for o in self.orders.values() if o.cid == cid]

    def open_order_count(self, symbol: str | None = None) -> int:
        with self._lock:
            return sum(
                1
                for o in self.orders.values()
                if o.status in ("NEW", "PARTIALLY_FILLED") and symbol in (None, o.symbol)
            )

    # ---------------------------------------------------------------- HTTP plumbing

    def _reply(
        self,
        h: BaseHTTPRequestHandler,
        status: int,
        body: Any,
        headers: dict[str, str] | None = None,
        raw: bytes | None = None,
    ) -> None:
        data = raw if raw is not None else json.dumps(body).encode()
        h.send_response(status)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(data)))
        with self._lock:
            used = sum(w for _, w in self._events["REQUEST_WEIGHT:60"])
        h.send_header("X-MBX-USED-WEIGHT-1M", str(used))
        for k, v in (headers or {}).items():
            h.send_header(k, v)
        h.end_headers()
        h.wfile.write(data)

    def _drop(self, h: BaseHTTPRequestHandler) -> None:
        h.close_connection = True
        with contextlib.suppress(OSError):
            h.connection.shutdown(2)

    def _take_fault(self, method: str, endpoint: str) -> Fault | None:
        with self._lock:
            for f in self.faults:
                if f.method in (None, method) and (f.endpoint is None or f.endpoint == endpoint):
                    f.times -= 1
                    if f.times <= 0:
                        self.faults.remove(f)
                    return f
        return None

    def _handle(self, h: BaseHTTPRequestHandler) -> None:
        parts = urlsplit(h.path)
        length = int(h.headers.get("Content-Length") or 0)
        body = h.rfile.read(length).decode() if length else ""
        query = parts.query
        params = dict(parse_qsl(query)) | dict(parse_qsl(body))
        path = parts.path
        if path.startswith("/api/v3/"):
            futures, endpoint = False, path[len("/api/v3/") :]
        elif path.startswith("/fapi/"):
            futures, endpoint = True, path.split("/", 3)[3]
        else:
            self._reply(h, 404, {"code": -1, "msg": f"no route {path}"})
            return
        method = h.command
        with self._lock:
            self.requests.append((method, endpoint, params))
            self.headers_seen.append(dict(h.headers))
        fault = self._take_fault(method, endpoint)
        try:
            if fault is not None and fault.kind in ("lost_before",):
                self._drop(h)
                return
            if fault is not None and fault.kind == "rate_limit":
                raise _ApiError(
                    429,
                    -1003,
                    "Too many requests; IP banned until later.",
                    {"Retry-After": str(fault.retry_after)},
                )
            if fault is not None and fault.kind == "ban":
                raise _ApiError(
                    418,
                    -1003,
                    "Way too many requests; IP banned.",
                    {"Retry-After": str(fault.retry_after)},
                )
            if fault is not None and fault.kind == "clock_skew":
                raise _ApiError(
                    400, -1021, "Timestamp for this request is outside of the recvWindow."
                )
            if fault is not None and fault.kind in ("http500", "1007") and not fault.execute:
                raise _ApiError(
                    503 if fault.kind == "http500" else 408,
                    -1007 if fault.kind == "1007" else -1000,
                    "Timeout waiting for response from backend server.",
                )
            self._charge(method, endpoint, futures)
            signed = endpoint not in (
                "ping",
                "time",
                "exchangeInfo",
                "depth",
                "klines",
                "ticker/bookTicker",
            )
            if signed:
                self._authenticate(h, query, body, params)
            result = self._route(method, endpoint, params, futures)
        except _ApiError as e:
            self._reply(h, e.status, {"code": e.code, "msg": e.msg}, e.headers)
            return
        if fault is not None:
            if fault.kind == "slow":  # executed at once, answered late
                time.sleep(fault.delay_s)
            if fault.kind == "lost":
                self._drop(h)
                return
            if fault.kind in ("http500", "1007"):
                self._reply(
                    h,
                    503 if fault.kind == "http500" else 408,
                    {"code": -1007, "msg": "Timeout waiting for response from backend server."},
                )
                return
            if fault.kind == "garbage":
                self._reply(h, 200, None, raw=b"<html>bad gateway</html>")
                return
        self._reply(h, 200, result)

    _WEIGHTS: ClassVar[dict[str, int]] = {
        "exchangeInfo": 20,
        "depth": 5,
        "account": 20,
        "myTrades": 20,
        "openOrders": 6,
        "klines": 2,
    }

    def _charge(self, method: str, endpoint: str, futures: bool) -> None:
        weight = self._WEIGHTS.get(endpoint, 1) if not futures else 1
        if endpoint == "order" and method == "GET" and not futures:
            weight = 4
        is_order = endpoint == "order" and method == "POST"
        now = time.monotonic()
        with self._lock:
            for rl in self.rate_limits:
                span = {"SECOND": 1, "MINUTE": 60, "DAY": 86400}[rl["interval"]] * rl["intervalNum"]
                kind = rl["rateLimitType"]
                cost = weight if kind == "REQUEST_WEIGHT" else int(is_order)
                q = self._events[f"{kind}:{span}"]
                while q and q[0][0] <= now - span:
                    q.popleft()
                if cost and sum(c for _, c in q) + cost > rl["limit"]:
                    self.rate_limit_violations += 1
                    code = -1003 if kind == "REQUEST_WEIGHT" else -1015
                    raise _ApiError(429, code, f"Too many requests ({kind}).", {"Retry-After": "1"})
            for rl in self.rate_limits:
                span = {"SECOND": 1, "MINUTE": 60, "DAY": 86400}[rl["interval"]] * rl["intervalNum"]
                kind = rl["rateLimitType"]
                cost = weight if kind == "REQUEST_WEIGHT" else int(is_order)
                if cost:
                    self._events[f"{kind}:{span}"].append((now, cost))

    def _authenticate(
        self, h: BaseHTTPRequestHandler, query: str, body: str, params: dict[str, str]
    ) -> None:
        if h.headers.get("X-MBX-APIKEY") != self.api_key:
            raise _ApiError(401, -2015, "Invalid API-key, IP, or permissions for action.")
        total = query + body if query and body else (query or body)
        if not verify_signature(self.api_secret, total):
            raise _ApiError(400, -1022, "Signature for this request is not valid.")
        try:
            ts, window = int(params["timestamp"]), int(params.get("recvWindow", "5000"))
        except (KeyError, ValueError):
            raise _ApiError(400, -1102, "Mandatory parameter 'timestamp' was not sent.") from None
        if window > 60000:
            raise _ApiError(400, -1131, "recvWindow must be less than 60000")
        now = self.now_ms()
        if ts > now + 1000 or now - ts > window:
            raise _ApiError(400, -1021, "Timestamp for this request is outside of the recvWindow.")

    # ---------------------------------------------------------------- endpoints

    def _route(self, method: str, endpoint: str, p: dict[str, str], futures: bool) -> Any:
        key = (method, endpoint)
        if key == ("GET", "ping"):
            return {}
        if key == ("GET", "time"):
            return {"serverTime": self.now_ms()}
        if key == ("GET", "exchangeInfo"):
            return self._exchange_info(futures)
        if key == ("GET", "depth"):
            m = self._market(p)
            n = int(p.get("limit", 5))
            bids = [[_fmt(m.bid - i * m.tick), "1.5"] for i in range(n)]
            asks = [[_fmt(m.ask + i * m.tick), "1.5"] for i in range(n)]
            out: dict[str, Any] = {"lastUpdateId": 1, "bids": bids, "asks": asks}
            if futures:
                out |= {"E": self.now_ms(), "T": self.now_ms()}
            return out
        if key == ("GET", "klines"):
            m = self._market(p)
            limit = int(p.get("limit", 500))
            if limit > (1500 if futures else 1000):
                raise _ApiError(400, -1130, "Invalid data sent for a parameter.")
            with self._lock:
                rows = self.klines.get(m.symbol) or self._flat_klines(m, p.get("interval", "1m"))
                return [list(r) for r in rows[-limit:]]
        if key == ("POST", "order"):
            return self._new_order(p, futures)
        if key == ("GET", "order"):
            return self._render(self._find(p), futures)
        if key == ("DELETE", "order"):
            return self._cancel(p, futures)
        if key == ("GET", "openOrders"):
            with self._lock:
                return [
                    self._render(o, futures)
                    for o in self.orders.values()
                    if o.symbol == p["symbol"] and o.status in ("NEW", "PARTIALLY_FILLED")
                ]
        if key in (("DELETE", "openOrders"), ("DELETE", "allOpenOrders")):
            return self._cancel_all(p, futures)
        if key == ("GET", "account") and not futures:
            with self._lock:
                return {
                    "canTrade": True,
                    "balances": [
                        {"asset": a, "free": _fmt(v[0]), "locked": _fmt(v[1])}
                        for a, v in self.balances.items()
                    ],
                }
        if key == ("GET", "balance") and futures:
            with self._lock:
                usdt = self.balances["USDT"]
                return [
                    {
                        "accountAlias": "x",
                        "asset": "USDT",
                        "balance": _fmt(usdt[0] + usdt[1]),
                        "availableBalance": _fmt(usdt[0]),
                        "crossUnPnl": "0",
                    }
                ]
        if key == ("GET", "positionRisk") and futures:
            with self._lock:
                amt, entry = self.positions[p["symbol"]]
                return [
                    {
                        "symbol": p["symbol"],
                        "positionSide": "BOTH",
                        "positionAmt": _fmt(amt),
                        "entryPrice": _fmt(entry),
                        "unRealizedProfit": "0",
                    }
                ]
        if key in (("GET", "myTrades"), ("GET", "userTrades")):
            start = int(p.get("startTime", 0))
            from_id = int(p["fromId"]) if "fromId" in p else None
            limit = int(p.get("limit", 500))
            with self._lock:
                rows = [
                    t
                    for t in self.trades
                    if t["symbol"] == p["symbol"]
                    and (t["id"] >= from_id if from_id is not None else t["time"] >= start)
                ]
            rows = rows[:limit]
            return [self._render_trade(t, futures) for t in rows]
        raise _ApiError(404, -1, f"fake has no {method} {endpoint}")

    def _exchange_info(self, futures: bool) -> dict[str, Any]:
        symbols = []
        for m in self.markets.values():
            filters = [
                {
                    "filterType": "PRICE_FILTER",
                    "minPrice": _fmt(m.min_price),
                    "maxPrice": _fmt(m.max_price),
                    "tickSize": _fmt(m.tick),
                },
                {
                    "filterType": "LOT_SIZE",
                    "minQty": _fmt(m.min_qty),
                    "maxQty": _fmt(m.max_qty),
                    "stepSize": _fmt(m.step),
                },
            ]
            if futures:
                filters.append({"filterType": "MIN_NOTIONAL", "notional": _fmt(m.min_notional)})
                filters.append(
                    {
                        "filterType": "PERCENT_PRICE",
                        "multiplierUp": _fmt(self.futures_percent[1]),
                        "multiplierDown": _fmt(self.futures_percent[0]),
                        "multiplierDecimal": "4",
                    }
                )
            else:
                filters.append(
                    {
                        "filterType": "NOTIONAL",
                        "minNotional": _fmt(m.min_notional),
                        "applyMinToMarket": True,
                        "maxNotional": "9000000",
                        "applyMaxToMarket": False,
                        "avgPriceMins": 5,
                    }
                )
                if m.percent is not None:
                    filters.append(
                        {
                            "filterType": "PERCENT_PRICE",
                            "multiplierUp": _fmt(m.percent[1]),
                            "multiplierDown": _fmt(m.percent[0]),
                            "avgPriceMins": 5,
                        }
                    )
                if m.bid_percent is not None and m.ask_percent is not None:
                    filters.append(
                        {
                            "filterType": "PERCENT_PRICE_BY_SIDE",
                            "bidMultiplierUp": _fmt(m.bid_percent[1]),
                            "bidMultiplierDown": _fmt(m.bid_percent[0]),
                            "askMultiplierUp": _fmt(m.ask_percent[1]),
                            "askMultiplierDown": _fmt(m.ask_percent[0]),
                            "avgPriceMins": 1,
                        }
                    )
            entry = {
                "symbol": m.symbol,
                "baseAsset": m.base,
                "quoteAsset": m.quote,
                "filters": filters,
            }
            entry["contractStatus" if futures else "status"] = "TRADING"
            symbols.append(entry)
        return {
            "timezone": "UTC",
            "serverTime": self.now_ms(),
            "rateLimits": self.rate_limits,
            "symbols": symbols,
        }

    def set_klines(self, symbol: str, rows: list[list[Any]]) -> None:
        """Serve these kline rows (Binance's 12-column arrays, oldest first) for ``symbol``."""
        with self._lock:
            self.klines[symbol] = rows

    def _flat_klines(self, m: _Market, interval: str) -> list[list[Any]]:
        step = {"1m": 60_000, "5m": 300_000, "15m": 900_000, "1h": 3_600_000}.get(interval)
        if step is None:
            raise _ApiError(400, -1120, "Invalid interval.")
        start = self.now_ms() // step * step - 499 * step
        px = _fmt(m.mid)
        return [
            [
                start + i * step,
                px,
                px,
                px,
                px,
                "1.0",
                start + (i + 1) * step - 1,
                px,
                1,
                "0.5",
                px,
                "0",
            ]
            for i in range(500)
        ]

    def _market(self, p: dict[str, str]) -> _Market:
        m = self.markets.get(p.get("symbol", ""))
        if m is None:
            raise _ApiError(400, -1121, "Invalid symbol.")
        return m

    def _check_filters(
        self, m: _Market, price: Decimal | None, qty: Decimal, side: str, futures: bool
    ) -> None:
        if price is not None and (
            price < m.min_price or price > m.max_price or (price - m.min_price) % m.tick
        ):
            raise _ApiError(400, -1013, "Filter failure: PRICE_FILTER")
        if price is not None and futures:
            # the mark-price band; the venue enforces it on both sides (-4016 / -4024)
            down, up = self.futures_percent
            if price > m.mid * up:
                raise _ApiError(400, -4016, f"Limit price can't be higher than {m.mid * up}.")
            if price < m.mid * down:
                raise _ApiError(400, -4024, f"Limit price can't be lower than {m.mid * down}.")
        elif price is not None:
            if m.percent is not None and not (
                m.mid * m.percent[0] <= price <= m.mid * m.percent[1]
            ):
                raise _ApiError(400, -1013, "Filter failure: PERCENT_PRICE")
            by_side = m.bid_percent if side == "BUY" else m.ask_percent
            if by_side is not None and not (m.mid * by_side[0] <= price <= m.mid * by_side[1]):
                raise _ApiError(400, -1013, "Filter failure: PERCENT_PRICE_BY_SIDE")
        if qty < m.min_qty or qty > m.max_qty or (qty - m.min_qty) % m.step:
            raise _ApiError(400, -1013, "Filter failure: LOT_SIZE")
        ref = price if price is not None else m.ask
        if ref * qty < m.min_notional:
            raise _ApiError(400, -1013, "Filter failure: NOTIONAL")

    def _new_order(self, p: dict[str, str], futures: bool) -> dict[str, Any]:
        m = self._market(p)
        side, typ, tif = p["side"], p["type"], p.get("timeInForce", "")
        qty = Decimal(p["quantity"])
        price = Decimal(p["price"]) if "price" in p else None
        cid = p.get("newClientOrderId", f"fake{self._next_id}")
        if typ in ("LIMIT", "LIMIT_MAKER") and price is None:
            raise _ApiError(400, -1102, "Mandatory parameter 'price' was not sent.")
        self._check_filters(m, price, qty, side, futures)
        with self._lock:
            if self.reject_duplicates and any(
                o.cid == cid and o.status in ("NEW", "PARTIALLY_FILLED")
                for o in self.orders.values()
            ):
                raise _ApiError(400, -4116 if futures else -2010, "Duplicate order sent.")
            crosses = price is not None and (
                (side == "BUY" and price >= m.ask) or (side == "SELL" and price <= m.bid)
            )
            if typ == "LIMIT_MAKER" and crosses:
                raise _ApiError(400, -2010, "Order would immediately match and take.")
            if not futures:
                self._lock_funds(m, side, qty, price or m.ask)
            now = self.now_ms()
            o = _Order(
                m.symbol,
                self._next_id,
                cid,
                side,
                typ,
                tif,
                price or Decimal(0),
                qty,
                time_ms=now,
                update_ms=now,
            )
            self._next_id += 1
            self.orders[o.order_id] = o
            self.accepted[cid] += 1
            if futures and tif == "GTX" and crosses:
                o.status = "EXPIRED"
            elif typ == "MARKET" or crosses:
                self._fill(o, m.ask if side == "BUY" else m.bid, qty, maker=False)
            return self._render(o, futures)

    def _lock_funds(self, m: _Market, side: str, qty: Decimal, price: Decimal) -> None:
        asset, amount = (m.quote, qty * price) if side == "BUY" else (m.base, qty)
        bal = self.balances.setdefault(asset, [Decimal(0), Decimal(0)])
        if bal[0] < amount:
            raise _ApiError(400, -2010, "Account has insufficient balance for requested action.")
        bal[0] -= amount
        bal[1] += amount

    def _unlock(self, o: _Order) -> None:
        m = self.markets[o.symbol]
        rest = o.qty - o.executed
        asset, amount = (m.quote, rest * o.price) if o.side == "BUY" else (m.base, rest)
        bal = self.balances[asset]
        bal[0] += amount
        bal[1] -= amount

    def _fill(self, o: _Order, price: Decimal, qty: Decimal, maker: bool) -> None:
        m = self.markets[o.symbol]
        now = self.now_ms()
        o.executed += qty
        o.status = "FILLED" if o.executed >= o.qty else "PARTIALLY_FILLED"
        o.update_ms = now
        if o.type != "MARKET":
            # funds were locked at the order price; settle at the fill price
            if o.side == "BUY":
                self.balances[m.quote][1] -= qty * o.price
                self.balances[m.quote][0] += qty * (o.price - price)
                self.balances[m.base][0] += qty
            else:
                self.balances[m.base][1] -= qty
                self.balances[m.quote][0] += qty * price
        pos = self.positions[o.symbol]
        signed = qty if o.side == "BUY" else -qty
        if pos[0] + signed != 0 and (pos[0] == 0 or (pos[0] > 0) == (signed > 0)):
            pos[1] = (pos[0] * pos[1] + signed * price) / (pos[0] + signed)
        pos[0] += signed
        self.trades.append(
            {
                "symbol": o.symbol,
                "id": len(self.trades) + 1,
                "orderId": o.order_id,
                "side": o.side,
                "price": price,
                "qty": qty,
                "time": now,
                "maker": maker,
            }
        )

    def _find(self, p: dict[str, str]) -> _Order:
        with self._lock:
            for o in self.orders.values():
                if o.symbol != p.get("symbol"):
                    continue
                if ("origClientOrderId" in p and o.cid == p["origClientOrderId"]) or (
                    "orderId" in p and o.order_id == int(p["orderId"])
                ):
                    return o
        raise _ApiError(400, -2013, "Order does not exist.")

    def _cancel(self, p: dict[str, str], futures: bool) -> dict[str, Any]:
        with self._lock:
            try:
                o = self._find(p)
            except _ApiError:
                raise _ApiError(400, -2011, "Unknown order sent.") from None
            if o.status not in ("NEW", "PARTIALLY_FILLED"):
                raise _ApiError(400, -2011, "Unknown order sent.")
            if o.symbol in self.markets and not futures:
                self._unlock(o)
            o.status, o.update_ms = "CANCELED", self.now_ms()
            out = self._render(o, futures)
            if not futures:  # spot names the cancel request with a fresh client id
                out["origClientOrderId"], out["clientOrderId"] = o.cid, f"cancel{o.order_id}"
            return out

    def _cancel_all(self, p: dict[str, str], futures: bool) -> Any:
        with self._lock:
            open_ = [
                o
                for o in self.orders.values()
                if o.symbol == p["symbol"] and o.status in ("NEW", "PARTIALLY_FILLED")
            ]
            if not open_ and not futures:
                raise _ApiError(400, -2011, "Unknown order sent.")
            out = [
                self._cancel({"symbol": o.symbol, "orderId": str(o.order_id)}, futures)
                for o in open_
            ]
        if futures:
            return {"code": 200, "msg": "The operation of cancel all open order is done."}
        return out

    def _render(self, o: _Order, futures: bool) -> dict[str, Any]:
        base = {
            "symbol": o.symbol,
            "orderId": o.order_id,
            "clientOrderId": o.cid,
            "price": _fmt(o.price),
            "origQty": _fmt(o.qty),
            "executedQty": _fmt(o.executed),
            "status": o.status,
            "timeInForce": o.tif or "GTC",
            "type": o.type,
            "side": o.side,
        }
        if futures:
            return base | {
                "origType": o.type,
                "updateTime": o.update_ms,
                "avgPrice": "0",
                "positionSide": "BOTH",
                "reduceOnly": False,
            }
        return base | {
            "orderListId": -1,
            "transactTime": o.time_ms,
            "time": o.time_ms,
            "updateTime": o.update_ms,
            "cummulativeQuoteQty": "0",
        }

    def _render_trade(self, t: dict[str, Any], futures: bool) -> dict[str, Any]:
        common = {
            "symbol": t["symbol"],
            "id": t["id"],
            "orderId": t["orderId"],
            "price": _fmt(t["price"]),
            "qty": _fmt(t["qty"]),
            "quoteQty": _fmt(t["price"] * t["qty"]),
            "commission": "0",
            "commissionAsset": "USDT",
            "time": t["time"],
        }
        if futures:
            return common | {
                "side": t["side"],
                "maker": t["maker"],
                "buyer": t["side"] == "BUY",
                "realizedPnl": "0",
                "positionSide": "BOTH",
            }
        return common | {
            "isBuyer": t["side"] == "BUY",
            "isMaker": t["maker"],
            "isBestMatch": True,
            "orderListId": -1,
        }


def exchange_on(fake: FakeBinance, kind: str = "binance-spot", **overrides: Any) -> Any:
    """A real ``BinanceExchange`` (real python-binance client) pointed at ``fake``."""
    from pydantic import SecretStr

    from swarm_ray.exchanges.binance import BinanceExchange
    from swarm_ray.exchanges.config import BinanceCredentials, ExchangeConfig

    cfg: dict[str, Any] = {
        "kind": kind,
        "base_url": fake.url,
        "use_websocket": False,
        "recv_window_ms": 150,
        "unknown_resolve_margin_ms": 30,
        "request_timeout_s": 1.0,
    }
    cfg.update(overrides)
    creds = BinanceCredentials(SecretStr(fake.api_key), SecretStr(fake.api_secret))
    return BinanceExchange(ExchangeConfig(**cfg), creds)
