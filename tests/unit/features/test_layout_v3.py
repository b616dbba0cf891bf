"""Observation layout v3: scaled by each series' own history (so one policy reads any pair),
built live exactly as in training, through the env, the vector simulator and the registry."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from envs.config import make_config
from envs.data.klines import load_klines
from envs.features import (
    IMBALANCE_5,
    LAYOUTS,
    QUOTE_MARKOUT,
    TOD_COS,
    TOD_SIN,
    VOL_LEVEL,
    layout_bounds,
    market_features_v3,
    rolling_scale,
)
from envs.market_making import MarketMakingEnv
from envs.mixture import MixtureEnv
from envs.vector import VectorMarketSim
from swarm_ray.features.observation import WINDOW, BarWindow, ObservationSpec, agent_observation
from tests.conftest import kline_day
from tests.unit.features.test_live_features import _bars


@pytest.fixture(scope="module")
def days():
    return load_klines([kline_day("12"), kline_day("13")])


def _cols(df, price: float = 1.0, qty: float = 1.0):
    return (
        df["close"].to_numpy() * price,
        df["high"].to_numpy() * price,
        df["low"].to_numpy() * price,
        df["volume"].to_numpy() * qty,
        df["taker_buy_base_volume"].to_numpy() * qty,
        df["open_time_ms"].to_numpy(),
    )


def test_v3_reads_a_pair_at_another_price_and_volume_as_the_same_market(days) -> None:
    rows, scale = market_features_v3(*_cols(days))
    # the same bars as a pair priced 1/600 as high with 40,000 times the volume
    other, other_scale = market_features_v3(*_cols(days, price=1 / 600, qty=40_000))
    np.testing.assert_allclose(other, rows, atol=1e-6)
    np.testing.assert_allclose(other_scale, scale, rtol=1e-9)
    assert rows.shape == (len(days), len(LAYOUTS["v3"])) == (len(days), 22)
    low, high = layout_bounds("v3")
    assert np.all(rows >= low - 1e-9) and np.all(rows <= high + 1e-9)
    # the columns say something: order flow moves, the day has a clock, quotes have markouts
    assert rows[:, IMBALANCE_5].std() > 0.1
    assert np.allclose(rows[:, TOD_SIN] ** 2 + rows[:, TOD_COS] ** 2, 1.0)
    assert rows[:, QUOTE_MARKOUT].std() > 0.01
    np.testing.assert_allclose(np.exp(rows[300:, VOL_LEVEL]) * 1e-4, scale[300:], rtol=1e-6)


def test_v3_uses_no_future_bar(days) -> None:
    full, _ = market_features_v3(*_cols(days))
    for n in (30, 900):
        cut, _ = market_features_v3(*(c[:n] for c in _cols(days)))
        np.testing.assert_allclose(cut, full[:n], atol=1e-12)
    # the first bar's scale does not come from the second
    assert rolling_scale(np.array([100.0, 101.0]))[0] == rolling_scale(np.array([100.0, 150.0]))[0]


@pytest.mark.parametrize("t", [61, 300, 1439, 2879])
def test_live_v3_row_matches_the_training_row_of_the_same_bar(days, t) -> None:
    spec = ObservationSpec(1.2e-4, 10.0, 30.0, 0.005, 0.05, 240, layouts=(("risk_manager", "v3"),))
    w = BarWindow(spec)
    w.extend(_bars(days, max(0, t + 1 - WINDOW), t + 1))
    row, unit = w.market_v3()
    full, scale = market_features_v3(*_cols(days))
    np.testing.assert_allclose(row, full[t], atol=1e-4)
    assert unit == pytest.approx(10 * 0.005 * days["close"].iloc[t] * scale[t], rel=1e-6)
    obs = agent_observation(row, spec, inventory=0.025, unrealized_pnl=unit, drawdown=0.0,
                            bars_since_fill=10, bar_open_ms=0, pnl_unit=unit)  # fmt: skip
    assert obs.shape == (22,) and obs[0] == 0.5 and obs[12] == pytest.approx(1.0)
    assert spec.layout("risk_manager") == "v3" and spec.layout("execution_agent") == "v2"
    with pytest.raises(ValueError, match="matches no layout"):
        agent_observation(row[:20], spec, inventory=0, unrealized_pnl=0, drawdown=0,
                          bars_since_fill=0, bar_open_ms=0)  # fmt: skip


def _replay(layout: str) -> dict:
    return {"preset": "replay", "midprice": {"files": [kline_day("12"), kline_day("13")]},
            "observation": {"layout": layout}}  # fmt: skip


def test_env_and_vector_sim_build_the_same_v3_observation() -> None:
    cfg = make_config(_replay("v3"))
    env = MarketMakingEnv(cfg)
    assert env.observation_space.shape == (22,)
    obs, _ = env.reset(seed=0, options={"start": 500})
    sim = VectorMarketSim(cfg, n_paths=2, seed=0, with_obs=True)
    sim.reset(np.array([500, 500]))
    np.testing.assert_allclose(sim.state().obs[0], obs)
    for a in [1, 1, 3, 4, 2, 1, 0, 5, 6, 1] * 5:
        obs, *_ = env.step(a)
        sim.step_actions(np.full(2, a))
    # trade-through fills are deterministic: the agent columns (inventory, pnl at the step's
    # own scale, drawdown) agree too
    np.testing.assert_allclose(sim.state().obs[0], obs, atol=1e-5)
    assert obs[0] != 0.0 and env.observation_space.contains(obs)


def test_v3_on_the_simulator_has_its_own_scale() -> None:
    env = MarketMakingEnv(make_config({"preset": "as2008", "observation": {"layout": "v3"}}))
    obs, _ = env.reset(seed=3)
    for _ in range(50):
        obs, *_ = env.step(1)
    assert obs.shape == (22,)
    # binomial steps of sigma sqrt(dt) = 0.141 on a mid near 100: about 14 bps a step
    assert np.exp(obs[VOL_LEVEL]) == pytest.approx(14.1, rel=0.25)


def test_mixture_draws_both_markets_and_refuses_two_layouts() -> None:
    mix = MixtureEnv([_replay("v3"), {"preset": "as2008", "observation": {"layout": "v3"}}],
                     [0.5, 0.5], names=["replay", "simulation"])  # fmt: skip
    seen = set()
    for seed in range(12):
        obs, info = mix.reset(seed=seed)
        seen.add(info["component"])
        assert mix.observation_space.contains(obs)
        _, _, _, _, info = mix.step(1)
        assert info["component"] in ("replay", "simulation")
    assert seen == {"replay", "simulation"}
    with pytest.raises(ValueError, match="one observation layout"):
        MixtureEnv([_replay("v3"), {"preset": "as2008"}], [1, 1])
    with pytest.raises(ValueError, match="weights"):
        MixtureEnv([_replay("v3")], [-1])


def test_registry_refuses_a_layout_file_that_is_not_the_cards(tmp_path) -> None:
    from swarm_ray.registry.policies import RegistryError, load_policy
    from tests.conftest import ROOT

    vdir = tmp_path / "risk_manager" / "v2"
    shutil.copytree(ROOT / "models" / "risk_manager" / "v2", vdir)
    assert load_policy(vdir).layout["columns"] == list(LAYOUTS["v2"])
    layout = json.loads((vdir / "observation_layout.json").read_text())
    layout["layout"] = "v3"
    (vdir / "observation_layout.json").write_text(json.dumps(layout))
    with pytest.raises(RegistryError, match="observation columns differ"):
        load_policy(vdir)


def test_a_card_with_an_unknown_layout_or_two_scale_windows_is_refused(tmp_path) -> None:
    from swarm_ray.registry.observation import observation_spec
    from swarm_ray.registry.policies import RegistryError, layout_of, read_card, write_card
    from tests.conftest import ROOT

    card = read_card(ROOT / "models" / "risk_manager" / "v3")
    assert layout_of(card) == "v3"
    bad = {**card, "env_config": {**card["env_config"], "observation": {"layout": "v9"}}}
    with pytest.raises(RegistryError, match=r"risk_manager v3.*observation.layout 'v9'"):
        layout_of(bad)
    for role in ("risk_manager", "strategy_optimizer"):
        shutil.copytree(ROOT / "models" / role / "v3", tmp_path / role / "v3")
    other = read_card(tmp_path / "strategy_optimizer" / "v3")
    other["env_config"]["observation"]["scale_window"] = 120
    write_card(tmp_path / "strategy_optimizer" / "v3", other)
    with pytest.raises(RegistryError, match="different scale windows"):
        observation_spec(tmp_path)


def test_one_model_that_cannot_answer_fails_alone() -> None:
    from serve.models import MODEL_ERRORS, InvalidObservation, ModelUnavailable, answer_models

    def answer(name, rows):
        if name == "bad_rows":
            raise InvalidObservation("observations must be 2-D (n, 22)")
        if name == "bad_output":
            raise ModelUnavailable("non-finite output")
        return [{"action": 0}] * len(rows)

    out = answer_models(answer, {"ok": [[0.0]], "bad_rows": [[0.0]], "bad_output": [[0.0]]})
    assert out["ok"] == [{"action": 0}]
    assert set(out[MODEL_ERRORS]) == {"bad_rows", "bad_output"}
    assert "bad_rows" not in out and "(n, 22)" in out[MODEL_ERRORS]["bad_rows"]
    assert MODEL_ERRORS not in answer_models(answer, {"ok": [[0.0]]})
