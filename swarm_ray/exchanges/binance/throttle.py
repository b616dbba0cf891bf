"""Client-side throttling: stay under the venue's announced limits, honour its back-off."""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from swarm_ray.core.clock import Clock
from swarm_ray.exchanges.binance import constants as C
from swarm_ray.exchanges.errors import RateLimited

__all__ = ["WeightThrottler"]

_NS = 1_000_000_000


@dataclass
class _Window:
    kind: str  # REQUEST_WEIGHT or ORDERS
    span_ns: int
    limit: int
    events: deque[tuple[int, int]] = field(default_factory=deque)  # (time_ns, cost)
    used: int = 0

    def expire(self, now_ns: int) -> None:
        while self.events and self.events[0][0] <= now_ns - self.span_ns:
            _, cost = self.events.popleft()
            self.used -= cost

    def wait_ns(self, now_ns: int, cost: int) -> int:
        """How long until ``cost`` more fits in this window."""
        if cost <= 0 or self.used + cost <= self.limit:
            return 0
        if cost > self.limit:
            return self.span_ns
        need, freed = self.used + cost - self.limit, 0
        for t, c in self.events:
            freed += c
            if freed >= need:
                return t + self.span_ns - now_ns
        return self.span_ns


class WeightThrottler:
    """Sliding windows over request weight and order count, plus a venue-imposed pause.

    ``acquire`` waits (through the injected ``sleep``) when the wait is short, and raises
    ``RateLimited`` without sending when it is longer than ``max_wait_s`` or while a 429/418
    pause is in force.
    """

    def __init__(
        self,
        clock: Clock,
        sleep: object,
        rate_limits: Iterable[Mapping[str, object]],
        max_wait_s: float = 2.0,
        headroom: float = C.THROTTLE_HEADROOM,
    ) -> None:
        self._clock = clock
        self._sleep = sleep
        self._max_wait_ns = int(max_wait_s * _NS)
        self._headroom = headroom
        self._lock = threading.Lock()
        self._paused_until_ns = 0
        self._pause_all = False
        self.windows: list[_Window] = []
        self.configure(rate_limits)

    def configure(self, rate_limits: Iterable[Mapping[str, object]]) -> None:
        """(Re)seed the windows from exchangeInfo's ``rateLimits``."""
        windows = []
        for rl in rate_limits:
            kind = str(rl.get("rateLimitType"))
            if kind not in ("REQUEST_WEIGHT", "ORDERS"):
                continue
            span = C.INTERVAL_SECONDS.get(str(rl.get("interval")), 60) * int(
                rl.get("intervalNum", 1)  # type: ignore[arg-type]
            )
            limit = max(1, int(int(rl.get("limit", 1)) * self._headroom))  # type: ignore[arg-type]
            windows.append(_Window(kind, span * _NS, limit))
        with self._lock:
            self.windows = windows

    def pause(self, seconds: float, all_traffic: bool) -> None:
        """Venue said back off: refuse order traffic (or everything, on a ban) until then."""
        with self._lock:
            until = self._clock.monotonic_ns() + int(seconds * _NS)
            self._paused_until_ns = max(self._paused_until_ns, until)
            self._pause_all = self._pause_all or all_traffic

    def paused_for_s(self) -> float:
        return max(0, self._paused_until_ns - self._clock.monotonic_ns()) / _NS

    def acquire(self, weight: int, orders: int = 0) -> None:
        while True:
            with self._lock:
                now = self._clock.monotonic_ns()
                if now < self._paused_until_ns and (orders > 0 or self._pause_all):
                    left = (self._paused_until_ns - now) / _NS
                    raise RateLimited(f"venue back-off in force for {left:.1f}s more", left)
                if now >= self._paused_until_ns:
                    self._pause_all = False
                wait = 0
                for w in self.windows:
                    w.expire(now)
                    cost = weight if w.kind == "REQUEST_WEIGHT" else orders
                    wait = max(wait, w.wait_ns(now, cost))
                if wait == 0:
                    for w in self.windows:
                        cost = weight if w.kind == "REQUEST_WEIGHT" else orders
                        if cost > 0:
                            w.events.append((now, cost))
                            w.used += cost
                    return
                if wait > self._max_wait_ns:
                    raise RateLimited(
                        f"local throttle: would exceed the venue's limits for {wait / _NS:.2f}s",
                        wait / _NS,
                    )
            self._sleep(wait / _NS)  # type: ignore[operator]

    def observe_used_weight(self, used_1m: int) -> None:
        """Align the one-minute weight window with what the venue says we used."""
        with self._lock:
            now = self._clock.monotonic_ns()
            for w in self.windows:
                if w.kind == "REQUEST_WEIGHT" and w.span_ns == 60 * _NS:
                    w.expire(now)
                    if used_1m > w.used:
                        extra = used_1m - w.used
                        w.events.append((now, extra))
                        w.used += extra
