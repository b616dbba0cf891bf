"""The running swarm as the panel sees it: its coordinator actors, found by name on the cluster."""

from __future__ import annotations

import logging
from typing import Any

import ray

from swarm_ray.runtime import swarm as runtime

__all__ = ["RayLive"]

log = logging.getLogger(__name__)
LAST_KEYS = ("action", "voted", "share", "reason", "carried", "mid", "latency_ms", "votes")


class RayLive:
    """Live status and stop through the coordinator actors (any swarm on this cluster)."""

    def __init__(self, timeout_s: float = 3.0) -> None:
        self.timeout_s = timeout_s

    def status(self) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for name, st in runtime.swarm_status(self.timeout_s).items():
            if st.get("error") and "symbols" not in st:
                continue
            for symbol, s in st.get("symbols", {}).items():
                last = s.get("last") or {}
                out[symbol] = {
                    "coordinator": name,
                    "running": bool(st.get("running")),
                    "error": st.get("error"),
                    "cycle": s.get("cycle"),
                    "position": s.get("position"),
                    "pnl": s.get("pnl"),
                    "fills": s.get("fills"),
                    "kill_switch": s.get("kill_switch"),
                    "last": {k: last.get(k) for k in LAST_KEYS},
                }
        return out

    def stop(self, symbol: str | None, emergency: bool, reason: str, operator: str) -> list[str]:
        coords = runtime.find_coordinators()
        if symbol is not None:
            traded = runtime.coordinator_symbols(coords, self.timeout_s)
            coords = {n: h for n, h in coords.items() if symbol in traded.get(n, ())}
        refs = {n: h.stop.remote(emergency, reason, operator) for n, h in coords.items()}
        stopped = []
        for name, ref in refs.items():
            try:
                st = ray.get(ref, timeout=30)
                stopped += list(st.get("symbols", {}))
            except Exception as exc:
                log.warning("panel: %s did not stop: %s", name, exc)
        return sorted(stopped)
