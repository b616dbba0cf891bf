"""The gymnasium contract and the step semantics of swarm_ray/MarketMaking-v0."""

from __future__ import annotations

import pickle
import sys

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import envs
from envs.actions import Action
from envs.features import INVENTORY, N_OBS, OBS_COLUMNS, TIME_LEFT, TIME_SINCE_FILL
from envs.market_making import MarketMakingEnv, apply_fill, apply_fill_many
from tests.conftest import kline_day

REPLAY = {
    "preset": "replay",
    "n_steps": 120,
    "midprice": {"kind": "replay", "files": (kline_day("08"),)},
}
CONFIGS = {
    "as2008": {"preset": "as2008"},
    "gaussian_risk_averse": {"reward": {"kind": "risk_averse"}, "midprice": {"drift": 0.5}},
    "replay": REPLAY,
    "replay_spread_capture": {**REPLAY, "reward": {"kind": "spread_capture", "holding_cost": 1}},
    "replay_markout_obligation": {
        **REPLAY,
        "midprice": {**REPLAY["midprice"], "ref_vol": 1e-3, "mean_volume": 30.0},
        "reward": {
            "kind": "risk_averse",
            "markout": True,
            "quote_bonus": 0.05,
            "idle_reduce_cost": 0.01,
        },
    },
}


def rollout(env: gym.Env, seed: int, n: int = 150) -> tuple[np.ndarray, np.ndarray]:
    obs, _ = env.reset(seed=seed)
    rng = np.random.default_rng(123)
    observations, rewards = [obs], []
    for _ in range(n):
        obs, r, term, trunc, _ = env.step(int(rng.integers(0, envs.N_ENV_ACTIONS)))
        observations.append(obs)
        rewards.append(r)
        if term or trunc:
            obs, _ = env.reset()
    return np.array(observations), np.array(rewards)


def test_importing_envs_registers_the_id_without_ray_or_swarm_ray() -> None:
    assert envs.ENV_ID == "swarm_ray/MarketMaking-v0"
    spec = gym.spec(envs.ENV_ID)
    assert spec.max_episode_steps == 200
    import subprocess

    code = (
        "import envs, sys; print(any(m.split('.')[0] in ('ray', 'swarm_ray') for m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_check_env_passes(name: str) -> None:
    env = gym.make(envs.ENV_ID, config=CONFIGS[name])
    check_env(env.unwrapped, skip_render_check=True)


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_same_seed_same_rollout_and_different_seeds_differ(name: str) -> None:
    env = envs.make_env(CONFIGS[name])
    o1, r1 = rollout(env, seed=11)
    o2, r2 = rollout(env, seed=11)
    np.testing.assert_array_equal(o1, o2)
    np.testing.assert_array_equal(r1, r2)
    o3, _ = rollout(env, seed=12)
    assert not np.array_equal(o1, o3)


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_every_observation_is_in_the_space(name: str) -> None:
    env = envs.make_env(CONFIGS[name])
    obs_all, rewards = rollout(env, seed=3, n=400)
    assert obs_all.dtype == np.float32 and obs_all.shape[1] == N_OBS == len(OBS_COLUMNS)
    for obs in obs_all:
        assert env.observation_space.contains(obs)
    assert np.all(np.isfinite(rewards))


def test_env_pickles_mid_episode_and_continues_identically() -> None:
    env = MarketMakingEnv(CONFIGS["as2008"])
    env.reset(seed=5)
    for a in (1, 3, 4, 1):
        env.step(a)
    clone = pickle.loads(pickle.dumps(env))
    for a in (1, 2, 3, 5, 6, 1):
        o1, r1, t1, _, _ = env.step(a)
        o2, r2, t2, _, _ = clone.step(a)
        np.testing.assert_array_equal(o1, o2)
        assert r1 == r2 and t1 == t2


def test_episode_length_from_registration_and_config() -> None:
    env = envs.make_env({"preset": "as2008", "n_steps": 37})
    env.reset(seed=0)
    steps = 0
    while True:
        _, _, term, trunc, _ = env.step(1)
        steps += 1
        if term or trunc:
            break
    # the env's own horizon terminates the episode (the time limit fires on the same step)
    assert steps == 37 and term
    # the registered limit (200) truncates a longer configured episode
    long_env = gym.make(envs.ENV_ID, config={"n_steps": 500})
    long_env.reset(seed=0)
    steps = 0
    for _ in range(200):
        _, _, term, trunc, _ = long_env.step(0)
        steps += 1
    assert trunc and not term and steps == 200


def test_step_after_end_and_invalid_action_raise() -> None:
    env = MarketMakingEnv({"n_steps": 1})
    env.reset(seed=0)
    with pytest.raises(ValueError, match="outside"):
        env.step(7)
    env.step(0)
    with pytest.raises(RuntimeError, match="reset"):
        env.step(0)


def test_stand_aside_never_fills_and_earns_nothing() -> None:
    env = MarketMakingEnv(CONFIGS["as2008"])
    env.reset(seed=1)
    total = 0.0
    for _ in range(200):
        _, r, term, _, info = env.step(Action.STAND_ASIDE)
        total += r
        assert not info["bid_filled"] and not info["ask_filled"]
    assert total == 0.0 and env.inventory == 0.0 and term


def test_time_left_and_time_since_fill_columns() -> None:
    env = MarketMakingEnv({"n_steps": 10})
    obs, _ = env.reset(seed=0)
    assert obs[TIME_LEFT] == 1.0 and obs[TIME_SINCE_FILL] == 1.0
    for k in range(1, 11):
        obs, *_ = env.step(Action.STAND_ASIDE)
        assert obs[TIME_LEFT] == pytest.approx(1.0 - k / 10)
    assert obs[TIME_LEFT] == 0.0


def test_inventory_limit_stops_quotes_on_the_full_side() -> None:
    env = MarketMakingEnv({"max_inventory": 3.0, "fills": {"A": 1e6}})  # every quote fills
    env.reset(seed=0)
    for _ in range(20):
        obs, *_ = env.step(Action.SKEW_BUY)
        assert -3.0 <= env.inventory <= 3.0
        assert -1.0 <= obs[INVENTORY] <= 1.0
    # both sides fill every step, so inventory stays flat and cash grows by the spread
    assert env.inventory == 0.0 and env.cash > 0


def test_reduce_actions_only_reduce() -> None:
    env = MarketMakingEnv({"fills": {"A": 0.0}, "actions": {"reduce_size": 2.0}})
    env.reset(seed=0)
    env.step(Action.REDUCE_BUY)  # flat: nothing to reduce
    assert env.inventory == 0.0 and env.cash == 0.0
    env._q = 5.0  # long 5 (set directly: quotes never fill with A = 0)
    env._avg = env.mid
    env.step(Action.REDUCE_BUY)
    assert env.inventory == 5.0
    env.step(Action.REDUCE_SELL)
    assert env.inventory == 3.0
    env.step(Action.REDUCE_SELL)
    env.step(Action.REDUCE_SELL)
    assert env.inventory == 0.0


def test_wealth_accounting_with_fees_matches_hand_computation() -> None:
    cfg = {
        "preset": "replay",
        "n_steps": 50,
        "midprice": {"kind": "replay", "files": (kline_day("08"),), "random_start": False},
        "fees": {"maker_bps": 2.0, "taker_bps": 5.0, "market_half_spread": 0.0},
    }
    env = MarketMakingEnv(cfg)
    env.reset(seed=0)
    cash = q = 0.0
    size = env.cfg.actions.order_size
    for _ in range(50):
        mid = env.mid
        d = 3.0 * 1e-4 * mid
        *_, info = env.step(Action.QUOTE_TIGHT)
        t = env.t
        if info["bid_filled"]:
            assert env._lows[t] < mid - d
            cash -= size * (mid - d) * (1 + 2e-4)
            q += size
        if info["ask_filled"]:
            assert env._highs[t] > mid + d
            cash += size * (mid + d) * (1 - 2e-4)
            q -= size
        assert env.inventory == pytest.approx(q)
        assert env.cash == pytest.approx(cash, rel=1e-12, abs=1e-9)
        assert info["wealth"] == pytest.approx(cash + q * info["mid"], rel=1e-12, abs=1e-9)


def test_apply_fill_average_cost() -> None:
    q, avg = apply_fill(0.0, 0.0, 2.0, 100.0)
    q, avg = apply_fill(q, avg, 2.0, 110.0)
    assert (q, avg) == (4.0, 105.0)
    q, avg = apply_fill(q, avg, -1.0, 120.0)  # reducing keeps the cost
    assert (q, avg) == (3.0, 105.0)
    q, avg = apply_fill(q, avg, -5.0, 90.0)  # through flat: remainder opens at 90
    assert (q, avg) == (-2.0, 90.0)
    assert apply_fill(q, avg, 2.0, 80.0) == (0.0, 0.0)


def test_average_cost_of_many_paths_is_the_one_path_rule_elementwise() -> None:
    rng = np.random.default_rng(3)
    n = 400  # paths, each trading through open, add, reduce, flip and close
    q, avg = np.zeros(n), np.zeros(n)
    qs, avgs = [0.0] * n, [0.0] * n
    for _ in range(60):
        qty = rng.choice([-3.0, -2.0, -1.0, 0.0, 1.0, 2.0, 3.0], n)
        px = rng.integers(90, 111, n).astype(float)
        avg = apply_fill_many(q, avg, qty, px)
        q = q + qty
        for i in np.flatnonzero(qty):  # the one-path rule takes only actual trades
            qs[i], avgs[i] = apply_fill(qs[i], avgs[i], qty[i], px[i])
        assert np.array_equal(q, qs)
        np.testing.assert_allclose(avg, avgs, rtol=1e-12)


def test_replay_start_option_and_episode_follows_real_closes() -> None:
    env = MarketMakingEnv(REPLAY)
    env.reset(seed=0, options={"start": 100})
    closes = env.midprice.close
    assert env.mid == closes[100]
    env.step(0)
    assert env.mid == closes[101]


def test_markout_reward_marks_the_steps_trades_to_the_next_mid_and_pays_the_quote_bonus() -> None:
    """markout: dW minus the move of the inventory held into the step, plus the bonus per side."""
    reward = {"kind": "pnl", "markout": True, "quote_bonus": 0.05}
    env = MarketMakingEnv({**REPLAY, "n_steps": 300, "reward": reward})
    plain = MarketMakingEnv({**REPLAY, "n_steps": 300})
    env.reset(seed=0, options={"start": 200})
    plain.reset(seed=0, options={"start": 200})
    rng = np.random.default_rng(7)
    held = 0
    for _ in range(300):
        a = int(rng.choice([Action.STAND_ASIDE, Action.QUOTE_TIGHT, Action.REDUCE_SELL]))
        q, mid = env.inventory, env.mid
        _, r, *_ = env.step(a)
        _, dw, *_ = plain.step(a)  # pnl reward: the change in wealth
        # quote sides placed: both, unless the 0.05 BTC limit (10 lots) blocks one
        sides = (round(q / 0.005) < 10) + (round(q / 0.005) > -10) if a == 1 else 0
        assert r == pytest.approx(dw - q * (env.mid - mid) + 0.05 * sides, abs=1e-9)
        held += q != 0.0 and a == Action.STAND_ASIDE
    assert held > 0  # the carried inventory's mark was actually left out somewhere


def test_idle_reduce_cost_is_charged_only_when_there_is_nothing_to_reduce() -> None:
    env = MarketMakingEnv({"fills": {"A": 0.0}, "reward": {"idle_reduce_cost": 0.25}})
    env.reset(seed=0)
    assert env.step(Action.REDUCE_SELL)[1] == -0.25  # flat
    assert env.step(Action.STAND_ASIDE)[1] == 0.0
    env._q, env._avg = 2.0, env.mid
    env._wealth = env.cash + 2.0 * env.mid
    assert env.step(Action.REDUCE_BUY)[1] == pytest.approx(
        2.0 * (env.mid - env._mids[env.t - 1]) - 0.25
    )  # long: buying does not reduce
    env.step(Action.REDUCE_SELL)
    assert env.inventory == 1.0  # a real reduce is not charged (it pays the market order)


def test_pinned_ref_vol_sets_the_feature_scale_whatever_the_replayed_days() -> None:
    from envs.features import RET_1, VOLATILITY

    own = MarketMakingEnv(REPLAY)
    ref = own.midprice.ref_vol
    pinned = MarketMakingEnv({**REPLAY, "midprice": {**REPLAY["midprice"], "ref_vol": 2 * ref}})
    assert pinned.midprice.ref_vol == 2 * ref
    assert pinned.midprice.step_sigma == pytest.approx(2 * ref * own.midprice.s_ref)
    sigma = MarketMakingEnv({**REPLAY, "midprice": {**REPLAY["midprice"], "step_sigma": 9.0}})
    assert sigma.midprice.step_sigma == 9.0 and sigma.midprice.ref_vol == ref
    a, b = own.midprice.features, pinned.midprice.features
    inside = np.abs(a[:, RET_1]) < 9.0  # unclipped rows
    np.testing.assert_allclose(b[inside, RET_1], a[inside, RET_1] / 2, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(b[:, VOLATILITY], np.minimum(a[:, VOLATILITY], 10) / 2, atol=1e-9)
