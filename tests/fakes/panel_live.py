"""A running swarm as the panel's API sees it, for the API's tests: fixed live status, and the
stop requests it was given (the real one, on Ray, is tested in tests/integration/test_panel.py)."""

from __future__ import annotations

from typing import Any


class RecordingLive:
    def __init__(self, status: dict[str, dict[str, Any]]) -> None:
        self._status = status
        self.calls: list[tuple[str | None, bool, str, str]] = []
        self.fail = False

    def status(self) -> dict[str, dict[str, Any]]:
        if self.fail:
            raise ConnectionError("the cluster did not answer")
        return self._status

    def stop(self, symbol: str | None, emergency: bool, reason: str, operator: str) -> list[str]:
        self.calls.append((symbol, emergency, reason, operator))
        return sorted(s for s in self._status if symbol in (None, s))
