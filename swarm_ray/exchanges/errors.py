"""Exchange failures (the classes live in ``swarm_ray.core.errors``) and ``classify``, which maps
python-binance / requests exceptions onto them. Messages never carry request headers or bodies,
so no key or signature can leak through an exception.
"""

from __future__ import annotations

import requests
from binance.exceptions import BinanceAPIException, BinanceRequestException

from swarm_ray.core.errors import (
    ClockSkew,
    DefiniteReject,
    ExchangeError,
    OrderDropped,
    OrderNotFound,
    RateLimited,
    UnknownOutcome,
)
from swarm_ray.exchanges.binance import constants as C

__all__ = [
    "ClockSkew",
    "DefiniteReject",
    "ExchangeError",
    "OrderDropped",
    "OrderNotFound",
    "RateLimited",
    "UnknownOutcome",
    "classify",
]


def _retry_after(response: object, default: float) -> float:
    headers = getattr(response, "headers", None) or {}
    raw = headers.get(C.HEADER_RETRY_AFTER) if hasattr(headers, "get") else None
    try:
        return max(0.0, float(raw)) if raw is not None else default
    except (TypeError, ValueError):
        return default


def classify(exc: BaseException, default_retry_after_s: float = 1.0) -> ExchangeError:
    """Map a python-binance or transport exception onto one of the classes above."""
    if isinstance(exc, ExchangeError):
        return exc
    if isinstance(exc, BinanceAPIException):
        status = int(exc.status_code)
        code = int(exc.code) if exc.code is not None else None
        msg = str(exc.message or "no message")
        if status in (429, 418) or code in C.RATE_LIMIT_CODES:
            retry = _retry_after(exc.response, default_retry_after_s)
            return RateLimited(msg, retry, code, status, banned=status == 418)
        if code == C.CODE_TIMESTAMP_OUTSIDE_RECV_WINDOW:
            return ClockSkew(msg, code, status)
        if status >= 500 or code in C.UNKNOWN_OUTCOME_CODES:
            return UnknownOutcome(msg, code, status)
        if code in C.NOT_FOUND_CODES:
            return OrderNotFound(msg, code, status)
        return DefiniteReject(msg, code, status)
    if isinstance(exc, BinanceRequestException):
        # a 2xx with a body we cannot parse: the request was executed or not, we cannot tell
        return UnknownOutcome(f"unparseable venue answer: {str(exc.message)[:200]}")
    if isinstance(exc, requests.Timeout):
        return UnknownOutcome(f"timeout: {type(exc).__name__}")
    if isinstance(exc, requests.ConnectionError):
        return UnknownOutcome(f"connection failed or dropped: {type(exc).__name__}")
    if isinstance(exc, requests.RequestException):
        return UnknownOutcome(f"transport error: {type(exc).__name__}")
    return UnknownOutcome(f"unexpected error: {type(exc).__name__}: {exc}")
