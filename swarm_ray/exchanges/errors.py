"""Exchange failures, split by what the caller may do next.

- ``OrderDropped``: definite, local. The order broke a symbol filter and was never sent.
- ``DefiniteReject``: definite, venue. The venue refused; retrying the same request is useless.
- ``RateLimited``: the venue (or our own throttler) refused for load; nothing was executed.
  Back off for ``retry_after_s``; order traffic is paused until then.
- ``ClockSkew``: the venue refused the timestamp (-1021); resync the offset, retry once.
- ``UnknownOutcome``: timeout, dropped connection, 5xx, -1007...: the request may or may not
  have been executed. For an order, query it by client order id before doing anything else,
  and never resend while it may exist.

``classify`` maps python-binance / requests exceptions onto these classes. Messages never
carry request headers or bodies, so no key or signature can leak through an exception.
"""

from __future__ import annotations

import requests
from binance.exceptions import BinanceAPIException, BinanceRequestException

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


class ExchangeError(Exception):
    """Base class; ``code`` is the venue's error code when there is one."""

    retryable: bool = False

    def __init__(self, message: str, code: int | None = None, status: int | None = None):
        super().__init__(message)
        self.message = message
        self.code = code
        self.status = status

    def __str__(self) -> str:
        extra = []
        if self.status is not None:
            extra.append(f"http {self.status}")
        if self.code is not None:
            extra.append(f"code {self.code}")
        return f"{self.message} ({', '.join(extra)})" if extra else self.message


class OrderDropped(ExchangeError):
    """Definite, local: the order would break a filter and was not sent."""


class DefiniteReject(ExchangeError):
    """Definite, venue: the venue refused the request; do not retry it unchanged."""


class OrderNotFound(DefiniteReject):
    """The venue does not know this order (-2013 on query, -2011 on cancel)."""


class RateLimited(ExchangeError):
    """Refused for load (429, 418 ban, -1003, -1015, or our throttler); nothing executed."""

    retryable = True

    def __init__(
        self,
        message: str,
        retry_after_s: float,
        code: int | None = None,
        status: int | None = None,
        banned: bool = False,
    ):
        super().__init__(message, code, status)
        self.retry_after_s = float(retry_after_s)
        self.banned = banned


class ClockSkew(ExchangeError):
    """Timestamp outside recvWindow (-1021): resync the clock offset and retry once."""

    retryable = True


class UnknownOutcome(ExchangeError):
    """The request may or may not have been executed."""


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
