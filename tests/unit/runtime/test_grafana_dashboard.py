"""The Grafana dashboard queries only metrics the swarm exports, and the metric names are
valid; SwarmMetrics refuses to be built without Ray."""

from __future__ import annotations

import json
import re

import pytest

from swarm_ray.runtime.metrics import METRICS, PROMETHEUS_PREFIX, SwarmMetrics, prometheus_series
from tests.conftest import ROOT

DASHBOARD = ROOT / "configs" / "grafana_swarm_dashboard.json"
EXPORTED = {series for spec in METRICS.values() for series in prometheus_series(spec)}
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}


@pytest.fixture(scope="module")
def dashboard() -> dict:
    return json.loads(DASHBOARD.read_text())


def _panels(dashboard: dict) -> list[dict]:
    out = []
    for panel in dashboard["panels"]:
        out.append(panel)
        out += panel.get("panels", [])  # collapsed rows hold their panels
    return out


def _exprs(dashboard: dict) -> list[str]:
    return [t["expr"] for p in _panels(dashboard) for t in p.get("targets", [])]


def test_dashboard_has_schema_datasource_and_symbol_variables(dashboard):
    assert 36 <= dashboard["schemaVersion"] <= 41
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    symbol = variables["symbol"]
    assert symbol["query"]["query"] == "label_values(ray_swarm_decisions_total, symbol)"
    assert symbol["datasource"] == DATASOURCE
    assert symbol["includeAll"] and symbol["multi"]


def test_every_panel_query_names_only_exported_metrics(dashboard):
    exprs = _exprs(dashboard)
    assert exprs
    for expr in exprs:
        names = set(re.findall(r"\b(ray_[a-zA-Z0-9_:]+)", expr))
        assert names, f"query names no ray_ metric: {expr}"
        assert names <= EXPORTED, f"{expr} uses {sorted(names - EXPORTED)}, not exported"
        assert expr.count("(") == expr.count(")") and expr.count("{") == expr.count("}")
        assert 'symbol=~"$symbol"' in expr, f"query ignores the symbol variable: {expr}"


def test_every_exported_metric_has_a_panel(dashboard):
    used = {n for e in _exprs(dashboard) for n in re.findall(r"\b(ray_[a-zA-Z0-9_:]+)", e)}
    for spec in METRICS.values():
        assert set(prometheus_series(spec)) & used, f"no panel shows {spec.name}"


def test_panels_use_the_datasource_variable_and_do_not_overlap(dashboard):
    panels = _panels(dashboard)
    assert len({p["id"] for p in panels}) == len(panels)
    cells: set[tuple[int, int]] = set()
    for p in panels:
        assert p["datasource"] == DATASOURCE
        assert all(t["datasource"] == DATASOURCE for t in p["targets"])
        g = p["gridPos"]
        assert g["x"] + g["w"] <= 24
        mine = {
            (x, y) for x in range(g["x"], g["x"] + g["w"]) for y in range(g["y"], g["y"] + g["h"])
        }
        assert not cells & mine, f"panel {p['title']!r} overlaps another"
        cells |= mine


def test_latency_panel_takes_p50_and_p99_from_the_histogram(dashboard):
    exprs = _exprs(dashboard)
    for q in ("0.5", "0.99"):
        assert any(
            e.startswith(f"histogram_quantile({q},")
            and "ray_swarm_cycle_latency_seconds_bucket" in e
            and "by (le" in e
            for e in exprs
        )


def test_metric_names_are_valid_and_counters_end_in_total():
    for name, spec in METRICS.items():
        assert name == spec.name and re.fullmatch(r"swarm_[a-z0-9_]+", name)
        assert name.endswith("_total") == (spec.kind == "counter")
        assert set(spec.tag_keys) <= {"symbol", "action", "agent", "status", "side"}
        assert spec.tag_keys[0] == "symbol"
    assert prometheus_series(METRICS["swarm_cycle_latency_seconds"]) == (
        f"{PROMETHEUS_PREFIX}swarm_cycle_latency_seconds_bucket",
        f"{PROMETHEUS_PREFIX}swarm_cycle_latency_seconds_sum",
        f"{PROMETHEUS_PREFIX}swarm_cycle_latency_seconds_count",
    )


def test_swarm_metrics_without_ray_raises_and_if_ray_initialized_gives_none():
    ray = pytest.importorskip("ray")
    if ray.is_initialized():  # pragma: no cover - unit tests never start Ray
        pytest.skip("Ray is initialised in this process")
    with pytest.raises(RuntimeError, match="metrics=None"):
        SwarmMetrics()
    assert SwarmMetrics.if_ray_initialized() is None
