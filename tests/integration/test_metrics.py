"""SwarmMetrics on a local Ray cluster: recording from the driver and from an actor works, and
Ray's metrics agent exposes every swarm series on its Prometheus port."""

from __future__ import annotations

import re
import socket
import time
import urllib.request

import pytest

ray = pytest.importorskip("ray")

from swarm_ray.core.domain import Action, OrderStatus, Side  # noqa: E402
from swarm_ray.runtime.metrics import METRICS, SwarmMetrics, prometheus_series  # noqa: E402


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def metrics_port():
    port = _free_port()
    ray.init(
        num_cpus=1,
        include_dashboard=False,
        log_to_driver=False,
        _metrics_export_port=port,
        # Export every second instead of every ten, so that the scrape below is quick.
        _system_config={"metrics_report_interval_ms": 1000},
    )
    yield port
    ray.shutdown()


def _record_everything(m: SwarmMetrics, symbol: str) -> None:
    m.cycle(symbol, Action.QUOTE_TIGHT, 0.8, 0.004, 0.01, 1.5)
    m.cycle(symbol, "stand_aside", 0.5, 0.2, 0.0, -0.25)
    m.order(symbol, OrderStatus.NEW)
    m.order(symbol, "FILLED")
    m.fill(symbol, Side.BUY)
    m.agent_timeout(symbol, "execution")
    m.data_fault(symbol)
    m.kill_switch(symbol, True)
    track = {
        "risk_manager": {"scored": 12, "hit_rate": 0.5, "scored_confidence": 0.56},
        "market_analyst": {"scored": 0, "hit_rate": None, "scored_confidence": None},
    }
    m.agents(symbol, track, {"risk_manager": 0.3, "market_analyst": 0.25})


@ray.remote(num_cpus=0)
class _Recorder:
    def record(self, symbol: str) -> bool:
        _record_everything(SwarmMetrics(), symbol)
        return True


def test_swarm_metrics_record_in_driver_and_actor_without_error(metrics_port):
    driver = SwarmMetrics()
    _record_everything(driver, "BTCUSDT")
    assert SwarmMetrics.if_ray_initialized() is not None
    actor = _Recorder.remote()
    assert ray.get(actor.record.remote("ETHUSDT"), timeout=60)


def _scrape(port: int) -> str | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as r:
            return r.read().decode()
    except OSError:
        return None


def test_prometheus_endpoint_exposes_every_swarm_series(metrics_port):
    _record_everything(SwarmMetrics(), "BTCUSDT")
    wanted = {s for spec in METRICS.values() for s in prometheus_series(spec)}
    deadline, body, reached = time.monotonic() + 30, "", False
    while time.monotonic() < deadline:
        text = _scrape(metrics_port)
        if text is not None:
            reached, body = True, text
            found = set(re.findall(r"^(ray_swarm_\w+)\{", body, re.MULTILINE))
            if wanted <= found and 'symbol="ETHUSDT"' in body:
                break
        time.sleep(1)
    if not reached:
        pytest.skip(f"Ray's metrics agent never answered on port {metrics_port}")
    found = set(re.findall(r"^(ray_swarm_\w+)\{", body, re.MULTILINE))
    assert wanted <= found, f"missing series: {sorted(wanted - found)}"
    decisions = re.search(
        r'^ray_swarm_decisions_total\{[^}]*action="quote_tight"[^}]*symbol="BTCUSDT"[^}]*\} (\S+)',
        body,
        re.MULTILINE,
    )
    assert decisions and float(decisions.group(1)) >= 1
    hit = re.search(
        r'^ray_swarm_agent_hit_rate\{[^}]*agent="risk_manager"[^}]*symbol="BTCUSDT"[^}]*\} (\S+)',
        body,
        re.MULTILINE,
    )
    assert hit and float(hit.group(1)) == 0.5
    unscored = r'^ray_swarm_agent_hit_rate\{[^}]*agent="market_analyst"'
    assert not re.search(unscored, body, re.MULTILINE)  # nothing scored yet: no series
    assert re.search(r'^ray_swarm_kill_switch\{[^}]*symbol="BTCUSDT"[^}]*\} 1\.0', body, re.M)
    assert 'symbol="ETHUSDT"' in body  # the actor's series, through the same agent


def test_declared_event_counters_are_exported_at_zero_before_any_event(metrics_port):
    SwarmMetrics().declare("SOLUSDT", ("risk_manager", "execution_agent"))
    pattern = {
        "faults": r'^ray_swarm_data_faults_total\{[^}]*symbol="SOLUSDT"[^}]*\} (\S+)',
        "timeouts": r'^ray_swarm_agent_timeouts_total\{[^}]*agent="risk_manager"[^}]*'
        r'symbol="SOLUSDT"[^}]*\} (\S+)',
    }
    deadline, found = time.monotonic() + 30, {}
    while time.monotonic() < deadline:
        body = _scrape(metrics_port) or ""
        found = {k: re.search(p, body, re.MULTILINE) for k, p in pattern.items()}
        if all(found.values()):
            break
        time.sleep(1)
    if not body:
        pytest.skip(f"Ray's metrics agent never answered on port {metrics_port}")
    assert all(found.values()), f"not exported: {[k for k, v in found.items() if not v]}"
    assert {k: float(m.group(1)) for k, m in found.items()} == {"faults": 0.0, "timeouts": 0.0}
