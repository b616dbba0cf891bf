"""Clocks: logic reads time from an injected clock, never from ``time.time()`` directly."""

from __future__ import annotations

import time
from typing import Protocol, runtime_checkable


@runtime_checkable
class Clock(Protocol):
    def now_ns(self) -> int:
        """Current time in nanoseconds since the Unix epoch."""
        ...

    def now_ms(self) -> int: ...

    def monotonic_ns(self) -> int:
        """A non-decreasing counter for measuring durations."""
        ...


class LiveClock:
    """Wall-clock time for live and testnet trading."""

    def now_ns(self) -> int:
        return time.time_ns()

    def now_ms(self) -> int:
        return time.time_ns() // 1_000_000

    def monotonic_ns(self) -> int:
        return time.monotonic_ns()

    def __repr__(self) -> str:
        return "LiveClock()"


class SimulatedClock:
    """A clock that moves only when told to, so replays and tests are deterministic."""

    def __init__(self, start_ns: int = 0) -> None:
        if start_ns < 0:
            raise ValueError(f"start_ns must be >= 0, got {start_ns}")
        self._now_ns = int(start_ns)

    def now_ns(self) -> int:
        return self._now_ns

    def now_ms(self) -> int:
        return self._now_ns // 1_000_000

    def monotonic_ns(self) -> int:
        return self._now_ns

    def advance(self, delta_ns: int) -> int:
        if delta_ns < 0:
            raise ValueError(f"a simulated clock cannot go backwards (delta_ns={delta_ns})")
        self._now_ns += int(delta_ns)
        return self._now_ns

    def set(self, t_ns: int) -> int:
        if t_ns < self._now_ns:
            raise ValueError(f"a simulated clock cannot go backwards ({t_ns} < {self._now_ns})")
        self._now_ns = int(t_ns)
        return self._now_ns

    def __repr__(self) -> str:
        return f"SimulatedClock(now_ns={self._now_ns})"
