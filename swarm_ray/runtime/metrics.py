"""The swarm's metrics, exported through ``ray.util.metrics`` to Ray's Prometheus endpoint.

Ray prefixes every application metric with ``ray_`` in Prometheus, and a histogram becomes
``<name>_bucket`` / ``_sum`` / ``_count``. The names live here once (:data:`METRICS`); the
Grafana dashboard (``configs/grafana_swarm_dashboard.json``) and its test use them.

Ray metrics exist only in a process where Ray is initialised (a driver or a worker), so
:class:`SwarmMetrics` refuses to be built elsewhere; plain-Python code takes
``metrics: SwarmMetrics | None`` and unit tests pass ``None``.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from enum import Enum
from types import MappingProxyType
from typing import Any, Literal

__all__ = [
    "LATENCY_BOUNDARIES_S",
    "METRICS",
    "PROMETHEUS_PREFIX",
    "MetricSpec",
    "SwarmMetrics",
    "prometheus_series",
]

PROMETHEUS_PREFIX = "ray_"
LATENCY_BOUNDARIES_S: tuple[float, ...] = (
    0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0,
)  # fmt: skip
"""Cycle-latency histogram buckets: the swarm aims at ~5 ms a cycle, a second is a stall."""


@dataclass(frozen=True, slots=True)
class MetricSpec:
    name: str
    kind: Literal["counter", "gauge", "histogram"]
    description: str
    tag_keys: tuple[str, ...]


_SPECS = (
    MetricSpec("swarm_decisions_total", "counter",
               "Cycles decided, by the action carried out.", ("symbol", "action")),
    MetricSpec("swarm_consensus_share", "gauge",
               "Winning action's share of the weighted vote in the last cycle.", ("symbol",)),
    MetricSpec("swarm_orders_total", "counter",
               "Order state changes (placed, filled, canceled, rejected...), by status.",
               ("symbol", "status")),
    MetricSpec("swarm_fills_total", "counter", "Fills of our orders, by side.",
               ("symbol", "side")),
    MetricSpec("swarm_pnl_usdt", "gauge", "Total PnL in USDT (realised + unrealised).",
               ("symbol",)),
    MetricSpec("swarm_inventory", "gauge", "Inventory in the base asset.", ("symbol",)),
    MetricSpec("swarm_cycle_latency_seconds", "histogram",
               "Wall time of one coordinator cycle.", ("symbol",)),
    MetricSpec("swarm_agent_timeouts_total", "counter",
               "Votes cast without a model answer (late or failed), by agent.",
               ("symbol", "agent")),
    MetricSpec("swarm_data_faults_total", "counter",
               "Cycles whose market data could not be quoted on.", ("symbol",)),
    MetricSpec("swarm_kill_switch", "gauge", "1 while the kill switch is tripped.", ("symbol",)),
    MetricSpec("swarm_agent_hit_rate", "gauge",
               "Share of the agent's scored votes that beat their alternative in hindsight.",
               ("symbol", "agent")),
    MetricSpec("swarm_agent_stated_confidence", "gauge",
               "Mean confidence the agent's scored votes were cast with.", ("symbol", "agent")),
    MetricSpec("swarm_agent_weight", "gauge", "The agent's consensus weight in force.",
               ("symbol", "agent")),
)  # fmt: skip
METRICS: MappingProxyType[str, MetricSpec] = MappingProxyType({m.name: m for m in _SPECS})
"""Every metric the swarm exports, by its Ray name."""


def prometheus_series(spec: MetricSpec) -> tuple[str, ...]:
    """The series names a metric appears under in Ray's Prometheus endpoint."""
    name = PROMETHEUS_PREFIX + spec.name
    if spec.kind == "histogram":
        return (f"{name}_bucket", f"{name}_sum", f"{name}_count")
    return (name,)


_lock = threading.Lock()
_instruments: dict[str, Any] | None = None


def _create_instruments() -> dict[str, Any]:
    """Ray's metric objects, created once per process (each process exports its own)."""
    global _instruments
    with _lock:
        if _instruments is None:
            from ray.util.metrics import Counter, Gauge, Histogram

            made: dict[str, Any] = {}
            for spec in METRICS.values():
                if spec.kind == "counter":
                    made[spec.name] = Counter(spec.name, spec.description, spec.tag_keys)
                elif spec.kind == "gauge":
                    made[spec.name] = Gauge(spec.name, spec.description, spec.tag_keys)
                else:
                    made[spec.name] = Histogram(
                        spec.name, spec.description, list(LATENCY_BOUNDARIES_S), spec.tag_keys
                    )
            _instruments = made
        return _instruments


def _tag(value: Any) -> str:
    if isinstance(value, Enum):
        label = getattr(value, "label", None)  # Action's lower-case name
        return label if isinstance(label, str) else str(value.value)
    return str(value)


class SwarmMetrics:
    """Records the swarm's metrics; build it inside a Ray driver or worker."""

    def __init__(self) -> None:
        import ray

        if not ray.is_initialized():
            raise RuntimeError(
                "SwarmMetrics needs an initialised Ray (a driver after ray.init() or a worker); "
                "pass metrics=None to code running without Ray"
            )
        m = _create_instruments()
        self._decisions = m["swarm_decisions_total"]
        self._share = m["swarm_consensus_share"]
        self._orders = m["swarm_orders_total"]
        self._fills = m["swarm_fills_total"]
        self._pnl = m["swarm_pnl_usdt"]
        self._inventory = m["swarm_inventory"]
        self._latency = m["swarm_cycle_latency_seconds"]
        self._timeouts = m["swarm_agent_timeouts_total"]
        self._faults = m["swarm_data_faults_total"]
        self._kill = m["swarm_kill_switch"]
        self._hit_rate = m["swarm_agent_hit_rate"]
        self._stated = m["swarm_agent_stated_confidence"]
        self._weight = m["swarm_agent_weight"]

    @classmethod
    def if_ray_initialized(cls) -> SwarmMetrics | None:
        """A ``SwarmMetrics`` when Ray is initialised in this process, else ``None``."""
        import ray

        return cls() if ray.is_initialized() else None

    def cycle(
        self,
        symbol: str,
        action: Any,
        share: float,
        latency_s: float,
        inventory: float,
        pnl: float,
    ) -> None:
        """One finished cycle: its action, consensus share, latency and the book's state."""
        tags = {"symbol": symbol}
        self._decisions.inc(1, {"symbol": symbol, "action": _tag(action)})
        self._share.set(float(share), tags)
        self._latency.observe(float(latency_s), tags)
        self._inventory.set(float(inventory), tags)
        self._pnl.set(float(pnl), tags)

    def declare(self, symbol: str, agents: Any = ()) -> None:
        """Export the event counters at zero for ``symbol`` (and each agent) from the start, so
        a dashboard panel of agent timeouts or data faults reads 0, not "No data"."""
        self._faults._record(0.0, {"symbol": symbol})  # Counter.inc refuses 0
        for agent in agents:
            self._timeouts._record(0.0, {"symbol": symbol, "agent": str(agent)})

    def order(self, symbol: str, status: Any) -> None:
        self._orders.inc(1, {"symbol": symbol, "status": _tag(status)})

    def fill(self, symbol: str, side: Any) -> None:
        self._fills.inc(1, {"symbol": symbol, "side": _tag(side)})

    def agent_timeout(self, symbol: str, agent: str) -> None:
        self._timeouts.inc(1, {"symbol": symbol, "agent": agent})

    def data_fault(self, symbol: str) -> None:
        self._faults.inc(1, {"symbol": symbol})

    def kill_switch(self, symbol: str, tripped: bool) -> None:
        self._kill.set(1.0 if tripped else 0.0, {"symbol": symbol})

    def agents(
        self, symbol: str, track: dict[str, dict[str, Any]], weights: dict[str, float]
    ) -> None:
        """Each agent's track record (hit rate against stated confidence) and weight."""
        for agent, w in weights.items():
            self._weight.set(float(w), {"symbol": symbol, "agent": agent})
        for agent, t in track.items():
            if t.get("scored"):
                tags = {"symbol": symbol, "agent": agent}
                self._hit_rate.set(float(t["hit_rate"]), tags)
                self._stated.set(float(t["scored_confidence"]), tags)
