"""A swarm whose policies were trained on different observation layouts: each model is asked
with the observation of its own layout, in the same cycle."""

from __future__ import annotations

import os
from functools import partial

import pytest

from swarm_ray.core.config import PROJECT_ROOT, load_config
from swarm_ray.evaluation.backtest_config import BacktestConfig
from swarm_ray.evaluation.runner import run_backtest, run_in_process
from swarm_ray.registry.observation import observation_spec
from swarm_ray.registry.policies import layout_of, read_card, versions

MODELS = PROJECT_ROOT / "models"
DAY = PROJECT_ROOT / "data" / "binance-spot-1m" / "BTCUSDT-1m-2024-08-18.csv"


def _v3_version(role: str) -> str | None:
    return next(
        (v for v in versions(MODELS, role) if layout_of(read_card(MODELS / role / v)) == "v3"),
        None,
    )


@pytest.fixture(scope="module")
def mixed_registry(tmp_path_factory):
    """The shipped analyst, a v3 risk manager and the v2 strategy optimizer and execution
    agent (links to the shipped version folders)."""
    v3 = _v3_version("risk_manager")
    if v3 is None:
        pytest.fail("the registry ships no layout-v3 risk_manager")
    root = tmp_path_factory.mktemp("mixed")
    keep = {"market_analyst": versions(MODELS, "market_analyst")[-1], "risk_manager": v3,
            "strategy_optimizer": "v2", "execution_agent": "v2"}  # fmt: skip
    for role, version in keep.items():
        (root / role).mkdir()
        os.symlink(MODELS / role / version, root / role / version)
    return root


def test_each_policy_gets_the_observation_of_its_layout(mixed_registry) -> None:
    spec = observation_spec(mixed_registry)
    assert spec.layouts == (("risk_manager", "v3"),)
    assert spec.layout("strategy_optimizer") == "v2" and spec.needs_v3
    cfg = load_config(PROJECT_ROOT / "configs" / "backtest.yaml", BacktestConfig)
    cfg = cfg.model_copy(update={"models_dir": str(mixed_registry)})
    executor = partial(run_in_process, cache={"keep_opinions": True})
    res = run_backtest(cfg, [str(DAY)], strategies=["swarm"], executor=executor)
    (rec,) = res.records["swarm"]
    widths: dict[str, set[int]] = {}
    for cycle in rec.opinions:
        for op in cycle:
            if op.features:
                widths.setdefault(op.agent_id, set()).add(len(op.features))
    assert widths["risk_manager"] == {22}
    assert widths["strategy_optimizer"] == widths["execution_agent"] == {15}
    assert widths["market_analyst"] == {20}
    # the v3 rows are those of the day's bars, not a placeholder
    rows = {op.features for cycle in rec.opinions for op in cycle if op.agent_id == "risk_manager"}
    assert len(rows) > 1000
