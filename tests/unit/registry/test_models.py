"""Midprice, fill, fee and reward models; the vectorised simulator against the env; the
registry models: the shipped ones answer as recorded, export writes what the loader reads."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from envs.actions import N_ENV_ACTIONS, Action
from envs.config import FillConfig, RewardConfig, make_config
from envs.data.klines import KlineDataError, load_klines
from envs.market_making import MarketMakingEnv
from envs.models import BrownianMidprice, PoissonFill, RewardModel, TradeThroughFill
from envs.vector import VectorMarketSim
from tests.conftest import ROOT, kline_day


def test_binomial_midprice_moves_exactly_sigma_sqrt_dt() -> None:
    cfg = make_config({"preset": "as2008"})
    model = BrownianMidprice(cfg.midprice, cfg.dt, cfg.warmup)
    data = model.sample(np.random.default_rng(0), 500, 200, with_features=False)
    assert data.mid.shape == (201, 500)
    assert np.all(data.mid[0] == 100.0)
    steps = np.abs(np.diff(data.mid, axis=0))
    np.testing.assert_allclose(steps, 2.0 * math.sqrt(0.005), rtol=1e-9)
    # up and down equally likely
    assert abs(np.mean(np.diff(data.mid, axis=0) > 0) - 0.5) < 0.01


def test_gaussian_midprice_variance_and_drift() -> None:
    cfg = make_config({"midprice": {"sigma": 2.0, "drift": 3.0}, "dt": 0.01, "n_steps": 100})
    model = BrownianMidprice(cfg.midprice, cfg.dt, cfg.warmup)
    data = model.sample(np.random.default_rng(1), 20000, 100, with_features=False)
    final = data.mid[-1] - data.mid[0]  # T = 1
    assert np.mean(final) == pytest.approx(3.0, abs=0.05)
    assert np.var(final) == pytest.approx(4.0, rel=0.05)


def test_poisson_fill_probability_formula_and_frequency() -> None:
    fill = PoissonFill(FillConfig(A=140, k=1.5), dt=0.005)
    assert fill.probability(0.5) == pytest.approx(140 * math.exp(-0.75) * 0.005)
    assert fill.probability(-100.0) == 1.0  # a quote through the mid always fills
    expo = PoissonFill(FillConfig(A=140, k=1.5, probability="exponential"), dt=0.005)
    assert expo.probability(0.5) == pytest.approx(1 - math.exp(-140 * math.exp(-0.75) * 0.005))
    rng = np.random.default_rng(0)
    hits = sum(fill.fill_bid(99.5, 100.0, 0.0, u) for u in rng.random(40000))
    assert hits / 40000 == pytest.approx(fill.probability(0.5), abs=0.01)
    # the vector form agrees with the scalar form, and nan (no quote) never fills
    u = rng.random(1000)
    d = rng.uniform(0, 3, 1000)
    vec, _ = fill.fill_many(d, np.full(1000, np.nan), np.full(1000, 100.0), None, None, u, u)
    scalar = [fill.fill_bid(100.0 - di, 100.0, 0.0, ui) for di, ui in zip(d, u, strict=True)]
    np.testing.assert_array_equal(vec, scalar)
    assert not fill.fill_many(
        np.array([np.nan]),
        np.array([np.nan]),
        np.array([1.0]),
        0,
        0,
        np.array([0.0]),
        np.array([0.0]),
    )[0][0]


def test_trade_through_needs_the_price_strictly_traded_through() -> None:
    fill = TradeThroughFill(FillConfig(kind="trade_through"))
    assert fill.fill_bid(99.0, 100.0, low_next=98.99, u=0.5)
    assert not fill.fill_bid(99.0, 100.0, low_next=99.0, u=0.5)  # touched, not through
    assert fill.fill_ask(101.0, 100.0, high_next=101.01, u=0.5)
    assert not fill.fill_ask(101.0, 100.0, high_next=101.0, u=0.5)
    thin = TradeThroughFill(FillConfig(kind="trade_through", touch_fill_prob=0.3))
    assert thin.fill_bid(99.0, 100.0, 90.0, u=0.2) and not thin.fill_bid(99.0, 100.0, 90.0, u=0.4)


def test_reward_kinds() -> None:
    sigma, dt = 2.0, 0.005
    pnl = RewardModel(RewardConfig(kind="pnl", scale=2.0), sigma, dt)
    assert pnl.step(4.0, 3.0, 1.0, 0.5) == 2.0
    inv = RewardModel(RewardConfig(kind="inventory_penalty", inventory_penalty=10.0), sigma, dt)
    assert inv.step(4.0, 3.0, 1.0, 0.5) == pytest.approx(4.0 - 10.0 * 0.005 * 9)
    ra = RewardModel(RewardConfig(kind="risk_averse", gamma=0.1), sigma, dt)
    assert ra.step(4.0, 3.0, 1.0, 0.5) == pytest.approx(4.0 - 0.05 * 4.0 * 9 * 0.005)
    sc = RewardModel(RewardConfig(kind="spread_capture", holding_cost=1.0), sigma, dt)
    assert sc.step(4.0, -3.0, 1.0, 0.5) == pytest.approx(1.0 - 0.5 - 3 * 2.0 * math.sqrt(dt))
    term = RewardModel(RewardConfig(terminal_inventory_penalty=0.5), sigma, dt)
    assert term.terminal(-2.0) == -2.0
    np.testing.assert_allclose(
        ra.step_many(np.array([4.0]), np.array([3.0]), np.array([1.0]), np.array([0.5])),
        [ra.step(4.0, 3.0, 1.0, 0.5)],
    )


def test_markout_quote_bonus_and_idle_reduce_terms() -> None:
    sigma, dt = 2.0, 0.005
    extra = {"markout": True, "quote_bonus": 0.1, "idle_reduce_cost": 0.3}
    ra = RewardModel(RewardConfig(kind="risk_averse", gamma=0.1, **extra), sigma, dt)
    # dW 4 of which 2.5 is the carried inventory's move: 1.5 marked out, 2 sides quoted
    want = 1.5 - 0.05 * 4.0 * 9 * 0.005 + 0.2
    assert ra.step(4.0, 3.0, 1.0, 0.5, carry=2.5, sides=2) == pytest.approx(want)
    assert ra.step(4.0, 3.0, 1.0, 0.5, 2.5, 0, idle_reduce=True) == pytest.approx(want - 0.5)
    # spread capture with markout: the fills' markout (net of fees) replaces edge minus fees
    sc = RewardModel(RewardConfig(kind="spread_capture", holding_cost=1.0, markout=True), sigma, dt)
    assert sc.step(4.0, -3.0, 1.0, 0.5, carry=2.5) == pytest.approx(1.5 - 3 * 2.0 * math.sqrt(dt))
    many = ra.step_many(
        np.array([4.0, 4.0]),
        np.array([3.0, 3.0]),
        np.array([1.0, 1.0]),
        np.array([0.5, 0.5]),
        np.array([2.5, 2.5]),
        np.array([2, 2]),
        np.array([False, True]),
    )
    np.testing.assert_allclose(many, [want, want - 0.3])
    # off by default: the old kinds are unchanged whatever carry and sides are passed
    plain = RewardModel(RewardConfig(kind="pnl"), sigma, dt)
    assert plain.step(4.0, 3.0, 1.0, 0.5, carry=2.5, sides=2, idle_reduce=True) == 4.0


def test_vector_sim_rewards_match_the_env_with_markout_bonus_and_idle_reduce() -> None:
    reward = {"kind": "risk_averse", "markout": True, "quote_bonus": 0.03, "idle_reduce_cost": 0.01}
    cfg = make_config(
        {
            "preset": "replay",
            "n_steps": 300,
            "midprice": {"kind": "replay", "files": (kline_day("05"),), "ref_vol": 1e-3},
            "reward": reward,
        }
    )
    starts = np.array([40, 700])
    actions = np.random.default_rng(4).integers(0, 7, (300, 2))
    sim = VectorMarketSim(cfg, n_paths=2, seed=0, with_obs=True)
    sim.reset(starts)
    rewards = np.array([sim.step_actions(actions[t]) for t in range(300)])
    env = MarketMakingEnv(cfg)
    for p in range(2):
        env.reset(seed=0, options={"start": int(starts[p])})
        got = [env.step(int(actions[t, p]))[1] for t in range(300)]
        np.testing.assert_allclose(got, rewards[:, p], rtol=1e-9, atol=1e-9)


def test_vector_sim_replays_exactly_what_the_env_does() -> None:
    """Replay fills are deterministic (touch prob 1), so the same actions from the same bar
    must give the same wealth and inventory, step by step, in both implementations."""
    cfg = make_config(
        {
            "preset": "replay",
            "n_steps": 300,
            "midprice": {"kind": "replay", "files": (kline_day("05"),)},
            "fees": {"maker_bps": 1.0, "taker_bps": 4.0, "market_half_spread": 0.5},
            "actions": {"order_size": 0.01, "reduce_size": 0.01},
        }
    )
    starts = np.array([40, 700])
    rng = np.random.default_rng(4)
    actions = rng.integers(0, 7, (300, 2))
    sim = VectorMarketSim(cfg, n_paths=2, seed=0, with_obs=True)
    sim.reset(starts)
    sim_w, sim_q, sim_obs = [], [], []
    for t in range(300):
        sim.step_actions(actions[t])
        sim_w.append(sim.wealth.copy())
        sim_q.append(sim.q.copy())
        sim_obs.append(sim.state().obs)
    env = MarketMakingEnv(cfg)
    for p in range(2):
        obs, _ = env.reset(seed=0, options={"start": int(starts[p])})
        np.testing.assert_allclose(obs[2:12], sim.data.features[0, p, 2:12], atol=1e-5)
        for t in range(300):
            obs, _, _, _, info = env.step(int(actions[t, p]))
            assert info["wealth"] == pytest.approx(sim_w[t][p], rel=1e-9, abs=1e-9)
            assert info["inventory"] == pytest.approx(sim_q[t][p], abs=1e-12)
            np.testing.assert_allclose(obs, sim_obs[t][p], atol=1e-4)
    assert np.abs(np.array(sim_q)).max() > 0  # something actually traded


def test_vector_sim_poisson_fill_rate_matches_the_env_statistically() -> None:
    cfg = make_config({"preset": "as2008"})
    sim = VectorMarketSim(cfg, n_paths=2000, seed=1)
    sim.reset()
    while not sim.done:
        sim.step_actions(np.full(2000, int(Action.QUOTE_TIGHT)))
    env = MarketMakingEnv(cfg)
    fills = []
    for seed in range(100):
        env.reset(seed=seed)
        for _ in range(200):
            env.step(Action.QUOTE_TIGHT)
        fills.append(env._fills)
    expected = 2 * 200 * 140 * math.exp(-1.5 * 0.65) * 0.005
    assert np.mean(sim.fills) == pytest.approx(expected, rel=0.02)
    assert np.mean(fills) == pytest.approx(expected, rel=0.05)


def test_vector_sim_rejects_bad_input() -> None:
    sim = VectorMarketSim({"n_steps": 3}, n_paths=4, seed=0)
    with pytest.raises(RuntimeError, match="reset"):
        sim.step_actions(np.zeros(4, dtype=int))
    sim.reset()
    with pytest.raises(ValueError, match="actions"):
        sim.step_actions(np.array([0, 1, 2, 7]))
    with pytest.raises(ValueError, match="n_paths"):
        VectorMarketSim(n_paths=0)


def test_load_real_klines() -> None:
    df = load_klines([kline_day("08"), kline_day("09")])
    assert len(df) == 2880
    assert df.index.is_monotonic_increasing and str(df.index.tz) == "UTC"
    assert (df["low"] <= df[["open", "close"]].min(axis=1)).all()
    assert df["close"].iloc[0] == pytest.approx(55089.99)


def test_kline_loader_names_file_and_row_of_bad_data(tmp_path) -> None:
    rows = Path(kline_day("08")).read_text().splitlines()[:5]
    parts = rows[3].split(",")
    parts[3] = str(float(parts[2]) + 1000)  # low above high
    rows[3] = ",".join(parts)
    bad = tmp_path / "bad.csv"
    bad.write_text("\n".join(rows) + "\n")
    with pytest.raises(KlineDataError, match=r"bad\.csv: invalid prices at row 4"):
        load_klines(bad)
    with pytest.raises(KlineDataError, match="not found"):
        load_klines(tmp_path / "missing.csv")
    with pytest.raises(KlineDataError, match="strictly increasing"):
        load_klines([kline_day("09"), kline_day("08")])


def test_replay_with_intensity_fitted_from_the_data() -> None:
    """Replay prices with Poisson fills whose A and k are fitted on other real days: the fill
    rate of a quote at distance d is the fitted A e^(-k d) per bar."""
    from envs.baselines import fit_as_parameters

    fit_df = load_klines([kline_day("01"), kline_day("02")])
    p = fit_as_parameters(fit_df["close"], fit_df["high"], fit_df["low"], dt=1.0)
    cfg = {
        "preset": "replay",
        "n_steps": 1000,
        "midprice": {"kind": "replay", "files": (kline_day("03"),)},
        "fills": {"kind": "poisson", "A": p.A, "k": p.k, "probability": "exponential"},
        "fees": {"maker_bps": 0.0},
        "max_inventory": 1e9,
        "actions": {"unit": "price", "tight": 20.0, "wide": 40.0},
    }
    sim = VectorMarketSim(cfg, n_paths=200, seed=0)
    sim.reset()
    while not sim.done:
        sim.step_actions(np.full(200, int(Action.QUOTE_TIGHT)))
    expected = 2 * 1000 * (1 - math.exp(-p.A * math.exp(-p.k * 20.0)))
    assert np.mean(sim.fills) == pytest.approx(expected, rel=0.03)


def test_vector_sim_sessions_restart_time_left_and_the_drawdown_reference() -> None:
    """A whole-day run in sessions of a policy's training length: time_left cycles, the
    drawdown column restarts from zero each session, wealth and inventory carry over."""
    from envs.features import DRAWDOWN, TIME_LEFT

    cfg = {"preset": "replay", "n_steps": 600, "midprice": {"files": (kline_day("05"),)}}
    starts = np.array([0])
    runs = {}
    for session in (None, 200):
        sim = VectorMarketSim(cfg, n_paths=1, seed=0, with_obs=True, session_steps=session)
        sim.reset(starts)
        obs, wealth = [sim.state().obs[0]], []
        while not sim.done:
            sim.step_actions(np.array([int(Action.QUOTE_TIGHT)]))
            obs.append(sim.state().obs[0])
            wealth.append(sim.wealth[0])
        runs[session] = (np.array(obs), np.array(wealth))
    (day_obs, day_w), (ses_obs, ses_w) = runs[None], runs[200]
    np.testing.assert_array_equal(day_w, ses_w)  # the same trading
    np.testing.assert_allclose(ses_obs[[0, 1, 199, 200, 400], TIME_LEFT], [1, 0.995, 0.005, 1, 1])
    np.testing.assert_allclose(day_obs[[0, 300], TIME_LEFT], [1, 0.5])
    assert ses_obs[200, DRAWDOWN] == 0.0 and ses_obs[400, DRAWDOWN] == 0.0
    assert day_obs[200, DRAWDOWN] > 0.0  # one whole-run session keeps the earlier peak
    with pytest.raises(ValueError, match="session_steps"):
        VectorMarketSim(cfg, n_paths=1, session_steps=0)


# --- the registry models -----------------------------------------------------------------

REFERENCE = json.loads((Path(__file__).parent / "data" / "registry_reference.json").read_text())
MODELS = ROOT / "models"


@pytest.mark.parametrize("key", sorted(REFERENCE["q_values"]))
def test_shipped_policies_give_the_recorded_q_values_and_actions(key: str) -> None:
    from swarm_ray.registry import load_policy

    policy = load_policy(MODELS / key)
    layout = policy.layout.get("layout", "v2")
    rows = REFERENCE["policy_observations" if layout == "v2" else f"policy_observations_{layout}"]
    obs = np.array(rows, dtype=np.float32)
    want = np.array(REFERENCE["q_values"][key], dtype=np.float32)
    q = policy.q_values(obs)
    assert q.shape == want.shape == (len(obs), N_ENV_ACTIONS)
    np.testing.assert_allclose(q, want, rtol=0, atol=1e-5)
    actions, confidence = policy.act_with_confidence(obs)
    assert actions.tolist() == REFERENCE["actions"][key] == policy(obs).tolist()
    assert ((confidence > 0) & (confidence <= 1)).all()


def test_shipped_analyst_gives_the_recorded_probabilities() -> None:
    from swarm_ray.registry import load_analysis_model

    model = load_analysis_model(MODELS)
    feats = np.array(REFERENCE["analysis_features"], dtype=np.float32)
    want = np.array(REFERENCE["probabilities"]["market_analyst/v1"], dtype=np.float32)
    np.testing.assert_allclose(model.predict_proba(feats), want, rtol=0, atol=1e-5)


def test_shipped_registry_holds_only_json_and_checked_safetensors() -> None:
    from swarm_ray.registry.files import sha256_of

    files = [f for f in MODELS.rglob("*") if f.is_file()]
    # JSON, the weights, and reliability diagrams (PNG: read by people, never loaded)
    assert files and {f.suffix for f in files} == {".json", ".safetensors", ".png"}
    for png in (f for f in files if f.suffix == ".png"):
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", png
    cards = sorted(MODELS.glob("*/v*/model_card.json"))
    assert len(cards) == 10  # the analyst v1; each DQN role v1, v2 and v3
    for path in cards:
        card = json.loads(path.read_text())
        weights = path.parent / card["weights"]["file"]
        assert card["weights"]["sha256"] == sha256_of(weights.read_bytes())
        assert card["weights"]["bytes"] == weights.stat().st_size
        assert card["architecture"]["network"] in ("dqn_mlp", "market_analysis_mlp")


def test_loading_the_registry_does_not_import_ray() -> None:
    code = (
        "import sys\n"
        "from swarm_ray.registry import load_analysis_model, load_policy_agents\n"
        f"agents = load_policy_agents({str(MODELS)!r})\n"
        f"load_analysis_model({str(MODELS)!r})\n"
        "print(len(agents), sorted(m for m in sys.modules if m.split('.')[0] == 'ray'))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    assert out.stdout.split() == ["3", "[]"]


def _rllib_dqn_module(model_config: dict, dueling: bool = True, num_atoms: int = 1):
    import gymnasium as gym
    import torch
    from ray.rllib.algorithms.dqn.torch.default_dqn_torch_rl_module import (
        DefaultDQNTorchRLModule,
    )

    from envs.features import OBS_HIGH, OBS_LOW

    torch.manual_seed(0)
    config = {"dueling": dueling, "double_q": True, "num_atoms": num_atoms, "epsilon": [[0, 1.0]]}
    return DefaultDQNTorchRLModule(
        observation_space=gym.spaces.Box(OBS_LOW, OBS_HIGH),
        action_space=gym.spaces.Discrete(N_ENV_ACTIONS),
        inference_only=False,
        model_config={**model_config, **config, "v_min": -10.0, "v_max": 10.0},
    )


@pytest.mark.parametrize(
    ("model_config", "dueling"),
    [
        ({"fcnet_hiddens": [64, 64], "fcnet_activation": "relu", "head_fcnet_hiddens": [64]}, True),
        (
            {
                "fcnet_hiddens": [32, 16, 8],
                "fcnet_activation": "tanh",
                "head_fcnet_hiddens": [8, 4],
                "head_fcnet_activation": "elu",
            },
            False,
        ),
    ],
    ids=["shipped-architecture", "other-architecture"],
)
def test_export_policy_writes_safetensors_that_answer_as_the_rllib_module(
    tmp_path: Path, model_config: dict, dueling: bool
) -> None:
    """An Algorithm checkpoint's RLModule -> registry folder -> the same Q-values and greedy
    actions as RLlib's ``compute_q_values`` and ``forward_inference``."""
    pytest.importorskip("ray.rllib")
    import torch
    from ray.rllib.core.columns import Columns

    from envs.features import OBS_HIGH, OBS_LOW
    from swarm_ray.registry import load_policy
    from swarm_ray.training.export import export_policy, module_path_in_checkpoint

    module = _rllib_dqn_module(model_config, dueling)
    checkpoint = tmp_path / "results" / "checkpoint_000001"
    module.save_to_path(module_path_in_checkpoint(checkpoint).resolve())
    dest = export_policy(checkpoint, tmp_path / "models", "trial", {"role": "risk_manager"})
    assert dest == tmp_path / "models" / "trial" / "v1"
    names = sorted(p.name for p in (tmp_path / "models").rglob("*"))
    assert names == sorted(
        ["trial", "v1", "model_card.json", "observation_layout.json", "weights.safetensors"]
    )
    card = json.loads((dest / "model_card.json").read_text())
    assert card["kind"] == "dqn_policy" and card["role"] == "risk_manager"
    arch = card["architecture"]
    assert arch["hiddens"] == model_config["fcnet_hiddens"] and arch["dueling"] is dueling
    assert arch["head_activation"] == model_config.get("head_fcnet_activation", "relu")
    policy = load_policy(dest)
    obs = np.random.default_rng(3).uniform(OBS_LOW, OBS_HIGH, (64, 15)).astype(np.float32)
    with torch.no_grad():
        batch = {Columns.OBS: torch.as_tensor(obs)}
        want = module.compute_q_values(batch)["qf_preds"].numpy()
        greedy = module.forward_inference(batch)[Columns.ACTIONS].numpy()
    np.testing.assert_allclose(policy.q_values(obs), want, rtol=0, atol=1e-6)
    assert policy(obs).tolist() == greedy.tolist()


def test_export_policy_refuses_a_module_it_cannot_rebuild(tmp_path: Path) -> None:
    pytest.importorskip("ray.rllib")
    from swarm_ray.registry import RegistryError
    from swarm_ray.training.export import export_policy, module_path_in_checkpoint

    config = {"fcnet_hiddens": [16], "fcnet_activation": "relu", "head_fcnet_hiddens": []}
    module = _rllib_dqn_module(config, num_atoms=5)
    checkpoint = tmp_path / "checkpoint"
    module.save_to_path(module_path_in_checkpoint(checkpoint).resolve())
    with pytest.raises(RegistryError, match="num_atoms"):
        export_policy(checkpoint, tmp_path / "models", "trial", {})
    assert not list((tmp_path / "models").rglob("*.json"))


def test_export_analysis_writes_safetensors_the_loader_reads(tmp_path: Path) -> None:
    import torch

    from swarm_ray.features.analysis import N_FEATURES
    from swarm_ray.registry import load_analysis_model
    from swarm_ray.registry.analysis_model import build_network
    from swarm_ray.training.analysis import AnalysisTrainingResult, export_analysis

    torch.manual_seed(0)
    net = build_network((16, 8))
    result = AnalysisTrainingResult(
        network=net,
        mean=np.zeros(N_FEATURES),
        std=np.ones(N_FEATURES),
        ref_vol=1e-3,
        metrics={"validation": {}},
        history=[],
    )
    dest = export_analysis(result, tmp_path, "market_analyst", {"role": "market_analyst"})
    assert sorted(p.name for p in dest.iterdir()) == [
        "feature_layout.json",
        "model_card.json",
        "weights.safetensors",
    ]
    model = load_analysis_model(tmp_path)
    assert model.card["architecture"]["hidden"] == [16, 8]
    x = np.random.default_rng(0).normal(size=(5, N_FEATURES)).astype(np.float32)
    with torch.no_grad():
        want = torch.softmax(net.eval()(torch.as_tensor(x)), dim=-1).numpy()
    np.testing.assert_allclose(model.predict_proba(x), want, rtol=0, atol=1e-6)
