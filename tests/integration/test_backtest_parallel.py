"""``swarm-ray backtest --parallel``: strategy-days as Ray tasks give the in-process figures."""

from __future__ import annotations

import pytest

ray = pytest.importorskip("ray")

from swarm_ray.core.config import load_config  # noqa: E402
from swarm_ray.evaluation.backtest_config import BacktestConfig  # noqa: E402
from swarm_ray.evaluation.runner import run_backtest  # noqa: E402
from swarm_ray.runtime.backtest import run_on_ray  # noqa: E402
from tests.conftest import ROOT, kline_day  # noqa: E402


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def test_parallel_backtest_equals_the_in_process_one(local_ray) -> None:
    cfg = load_config(ROOT / "configs" / "backtest.yaml", BacktestConfig)
    files = [kline_day("17"), kline_day("18")]
    strategies = ["fixed_spread", "avellaneda_stoikov", "risk_manager"]
    done = []
    par = run_backtest(
        cfg, files, strategies, executor=lambda jobs, cb: run_on_ray(jobs, cb),
        progress=done.append,
    )  # fmt: skip
    seq = run_backtest(cfg, files, strategies)
    assert len(done) == len(strategies) * 2
    assert par.days == seq.days
    for name in strategies:
        assert par.strategies[name] == seq.strategies[name]
