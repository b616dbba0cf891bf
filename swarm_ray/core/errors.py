"""Exchange failures, split by what the caller may do next.

- ``OrderDropped``: definite, local. The order broke a symbol filter and was never sent.
- ``DefiniteReject``: definite, venue. The venue refused; retrying the same request is useless.
- ``RateLimited``: the venue (or our own throttler) refused for load; nothing was executed.
  Back off for ``retry_after_s``; order traffic is paused until then.
- ``ClockSkew``: the venue refused the timestamp (-1021); resync the offset, retry once.
- ``UnknownOutcome``: timeout, dropped connection, 5xx, -1007...: the request may or may not
  have been executed. For an order, query it by client order id before doing anything else,
  and never resend while it may exist.

Messages never carry request headers or bodies, so no key or signature can leak through an
exception.

``CommandError`` is the other kind: a failure a command reports in one line, without a
traceback (a cluster that cannot be reached, a folder with no journal).
"""

from __future__ import annotations


class CommandError(Exception):
    """A failure whose message is the whole story for the user of a command."""


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
