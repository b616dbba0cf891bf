"""An exchange wrapper for fault tests: forwards every call to a real exchange (the paper
exchange) and raises a chosen venue error on chosen calls."""

from __future__ import annotations

from typing import Any

from swarm_ray.core.errors import ExchangeError


class FlakyExchange:
    """``fail(method, error, times)`` makes the next ``times`` calls of ``method`` raise."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self._faults: dict[str, list[ExchangeError]] = {}
        self.calls: dict[str, int] = {}

    def fail(self, method: str, error: ExchangeError, times: int = 1) -> None:
        self._faults.setdefault(method, []).extend([error] * times)

    def __getattr__(self, name: str) -> Any:
        target = getattr(self._inner, name)
        if not callable(target):
            return target

        def call(*args: Any, **kwargs: Any) -> Any:
            self.calls[name] = self.calls.get(name, 0) + 1
            queued = self._faults.get(name)
            if queued:
                raise queued.pop(0)
            return target(*args, **kwargs)

        return call
