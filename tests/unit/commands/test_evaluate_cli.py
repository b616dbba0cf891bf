"""The evaluate command end to end (no Ray). The demo runs the swarm: tests/integration."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from swarm_ray.cli import main
from tests.conftest import kline_day


def test_evaluate_preset_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        main(["evaluate", "--preset", "as2008", "--episodes", "300", "--seed", "4", "--json"]) == 0
    )
    out = json.loads(capsys.readouterr().out)
    assert set(out) == {"inventory", "symmetric"}
    for strategy in out.values():
        assert {"mean_pnl", "std_pnl", "mean_q", "std_q"} <= set(strategy)
    assert out["inventory"]["std_pnl"] < out["symmetric"]["std_pnl"]
    # the same seed gives the same numbers
    main(["evaluate", "--preset", "as2008", "--episodes", "300", "--seed", "4", "--json"])
    assert json.loads(capsys.readouterr().out) == out


def test_evaluate_preset_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["evaluate", "--preset", "as2008", "--episodes", "100"]) == 0
    out = capsys.readouterr().out
    assert "inventory" in out and "symmetric" in out and "std pnl" in out


def test_evaluate_data_json_and_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    days = [kline_day("18"), kline_day("19")]
    rc = main(["evaluate", "--data", *days, "--json", "--out", str(tmp_path / "rep")])
    assert rc == 0
    res = json.loads(capsys.readouterr().out)
    assert {"fixed_spread", "avellaneda_stoikov"} <= set(res)
    for m in res.values():
        assert {"pnl", "sharpe", "sortino", "max_drawdown", "map", "fills"} <= set(m)
        assert m["fills"] > 0 and m["max_drawdown"] >= 0 and m["map"] >= 0
    report = (tmp_path / "rep" / "report.md").read_text()
    assert "fixed_spread" in report and "2024-08-18" in report
    for png in ("pnl.png", "inventory.png", "quotes.png"):
        data = (tmp_path / "rep" / png).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000


def test_evaluate_refuses_to_evaluate_on_fit_days(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(ValueError, match="also fit days"):
        main(["evaluate", "--data", kline_day("18"), "--fit-data", kline_day("18"), "--json"])


def test_evaluate_bad_config_exits_2_naming_the_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("fixed_spread:\n  half_spread: 3\n")
    rc = main(["evaluate", "--data", kline_day("18"), "--config", str(cfg)])
    assert rc == 2
    err = capsys.readouterr().err
    assert "fixed_spread.half_spread" in err and str(cfg) in err


def test_evaluate_missing_data_file(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["evaluate", "--data", "no/such/day.csv"]) == 2
    assert "not found" in capsys.readouterr().err


def test_evaluate_with_the_shipped_registry(capsys: pytest.CaptureFixture[str]) -> None:
    """Every registry policy is evaluated next to the baselines, by its name."""
    rc = main(["evaluate", "--data", kline_day("17"), "--models", "models", "--json"])
    assert rc == 0
    res = json.loads(capsys.readouterr().out)
    assert {"risk_manager", "strategy_optimizer", "execution_agent"} <= set(res)
    assert {"fixed_spread", "avellaneda_stoikov"} <= set(res)
    for m in res.values():
        assert m["map"] <= 0.05 + 1e-12  # max_inventory of configs/evaluate.yaml
    assert main(["evaluate", "--data", kline_day("17"), "--models", "no/such/dir"]) == 2
    assert "no model registry" in capsys.readouterr().err


def test_backtest_shows_a_policy_its_session_clock_and_training_feature_scale() -> None:
    """A whole-day backtest runs a registry policy's time_left at its training episode's pace
    (restarting every session) and builds its features at its pinned scale."""
    import numpy as np

    from envs.config import make_config
    from envs.features import DRAWDOWN, TIME_LEFT, VOLATILITY
    from envs.models import ReplayMidprice
    from swarm_ray.core.config import load_config
    from swarm_ray.evaluation.backtest import EvaluateConfig, evaluate_days
    from swarm_ray.registry.policies import RegistryPolicyAgent

    seen: list[np.ndarray] = []

    def policy(obs: np.ndarray) -> np.ndarray:
        seen.append(obs.copy())
        return np.zeros(len(obs), dtype=np.int64)

    ref_vol = 1e-3
    agent = RegistryPolicyAgent(policy, "p", 240, {"midprice": {"ref_vol": ref_vol}})
    cfg = load_config("configs/evaluate.yaml", EvaluateConfig)
    day = kline_day("17")
    results, _, _ = evaluate_days([day], cfg, [agent])
    assert results["p"]["fills"] == 0 and len(seen) == 1439
    clock = np.array([o[0, TIME_LEFT] for o in seen])
    np.testing.assert_allclose(clock[[0, 1, 239, 240, 480]], [1, 1 - 1 / 240, 1 / 240, 1, 1])
    assert clock.min() > 0
    assert all(o[0, DRAWDOWN] == 0.0 for o in seen)  # it never quotes: never a drawdown
    scaled = ReplayMidprice(
        make_config(
            {"preset": "replay", "midprice": {"files": (day,), "ref_vol": ref_vol}}
        ).midprice,
        30,
    )
    np.testing.assert_allclose(
        [o[0, VOLATILITY] for o in seen], scaled.features[:1439, VOLATILITY], atol=1e-5
    )
    own = ReplayMidprice(
        make_config({"preset": "replay", "midprice": {"files": (day,)}}).midprice, 30
    )
    assert not np.allclose(own.features[:1439, VOLATILITY], scaled.features[:1439, VOLATILITY])
