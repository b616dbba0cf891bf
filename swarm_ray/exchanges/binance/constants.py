"""Binance venue constants in one place: endpoints, error codes, status mapping, weights.

Weights are the documented request weights of the endpoints we call (spot API v3, USD-M
futures API); the throttler charges them before sending so that we stay under the limits that
``exchangeInfo`` announces. Where a weight depends on a parameter (depth ``limit``) the value
for the sizes we use is given.
"""

from __future__ import annotations

from types import MappingProxyType

from swarm_ray.core.domain import OrderStatus

# REST roots. python-binance appends "/api/v3/..." (spot) or "/fapi/v1/..." (futures) to these.
SPOT_MAINNET_ROOT = "https://api.binance.com"
SPOT_TESTNET_ROOT = "https://testnet.binance.vision"
FUTURES_MAINNET_ROOT = "https://fapi.binance.com"
FUTURES_TESTNET_ROOT = "https://testnet.binancefuture.com"

# Websocket market-data roots (python-binance appends "ws/<stream>" for spot and
# "public/stream?streams=<stream>" for USD-M futures).
SPOT_MAINNET_WS = "wss://stream.binance.com:9443/"
SPOT_TESTNET_WS = "wss://stream.testnet.binance.vision/"
FUTURES_MAINNET_WS = "wss://fstream.binance.com/"
FUTURES_TESTNET_WS = "wss://fstream.binancefuture.com/"

HEADER_API_KEY = "X-MBX-APIKEY"
HEADER_USED_WEIGHT_1M = "X-MBX-USED-WEIGHT-1M"
HEADER_RETRY_AFTER = "Retry-After"

MAX_RECV_WINDOW_MS = 5000

# The book depths the REST depth endpoint accepts (spot and futures).
DEPTH_LIMITS = (5, 10, 20, 50, 100, 500, 1000)

# Error codes (https://developers.binance.com/docs/binance-spot-api-docs/errors).
CODE_UNKNOWN = -1000
CODE_DISCONNECTED = -1001
CODE_TOO_MANY_REQUESTS = -1003
CODE_UNEXPECTED_RESPONSE = -1006
CODE_TIMEOUT = -1007
CODE_SERVER_BUSY = -1008
CODE_TOO_MANY_ORDERS = -1015
CODE_TIMESTAMP_OUTSIDE_RECV_WINDOW = -1021
CODE_INVALID_SIGNATURE = -1022
CODE_FILTER_FAILURE = -1013
CODE_NEW_ORDER_REJECTED = -2010
CODE_CANCEL_REJECTED = -2011
CODE_NO_SUCH_ORDER = -2013
CODE_BAD_API_KEY_FMT = -2014
CODE_REJECTED_MBX_KEY = -2015
CODE_MARGIN_INSUFFICIENT = -2019  # futures

# The request may have been executed: the answer tells us nothing about the order.
UNKNOWN_OUTCOME_CODES = frozenset(
    {CODE_UNKNOWN, CODE_DISCONNECTED, CODE_UNEXPECTED_RESPONSE, CODE_TIMEOUT, CODE_SERVER_BUSY}
)
RATE_LIMIT_CODES = frozenset({CODE_TOO_MANY_REQUESTS, CODE_TOO_MANY_ORDERS})
NOT_FOUND_CODES = frozenset({CODE_NO_SUCH_ORDER, CODE_CANCEL_REJECTED})

STATUS_MAP: MappingProxyType[str, OrderStatus] = MappingProxyType(
    {
        "NEW": OrderStatus.NEW,
        "PARTIALLY_FILLED": OrderStatus.PARTIALLY_FILLED,
        "FILLED": OrderStatus.FILLED,
        "CANCELED": OrderStatus.CANCELED,
        "PENDING_CANCEL": OrderStatus.NEW,  # still on the book until the venue says otherwise
        "REJECTED": OrderStatus.REJECTED,
        "EXPIRED": OrderStatus.EXPIRED,
        "EXPIRED_IN_MATCH": OrderStatus.EXPIRED,
    }
)

# Request weights charged against REQUEST_WEIGHT, by (market, endpoint key).
SPOT_WEIGHTS: MappingProxyType[str, int] = MappingProxyType(
    {
        "time": 1,
        "exchangeInfo": 20,
        "depth": 5,  # limit 1..100
        "klines": 2,
        "order.post": 1,
        "order.get": 4,
        "order.delete": 1,
        "openOrders.get": 6,  # with a symbol
        "openOrders.delete": 1,
        "account": 20,
        "myTrades": 20,
    }
)
FUTURES_WEIGHTS: MappingProxyType[str, int] = MappingProxyType(
    {
        "time": 1,
        "exchangeInfo": 1,
        "depth": 2,  # limit 5..50
        "klines": 1,  # limit < 100
        "klines.500": 2,  # limit 100..499
        "klines.1000": 5,  # limit 500..1000
        "klines.1500": 10,  # limit > 1000
        "order.post": 0,
        "order.get": 1,
        "order.delete": 1,
        "openOrders.get": 1,
        "openOrders.delete": 1,
        "account": 5,
        "balance": 5,
        "positionRisk": 5,
        "userTrades": 5,
    }
)

# Used until exchangeInfo has told us the real limits (the documented defaults).
DEFAULT_SPOT_RATE_LIMITS = (
    {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": 6000},
    {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 100},
)
DEFAULT_FUTURES_RATE_LIMITS = (
    {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": 2400},
    {"rateLimitType": "ORDERS", "interval": "MINUTE", "intervalNum": 1, "limit": 1200},
    {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 300},
)
INTERVAL_SECONDS = MappingProxyType({"SECOND": 1, "MINUTE": 60, "HOUR": 3600, "DAY": 86400})

# Only this share of an announced limit is used: other processes may share the key or IP.
THROTTLE_HEADROOM = 0.8
