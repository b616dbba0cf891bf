"""The training config (no Ray): day splits, roles, env overrides."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from swarm_ray.core.config import ConfigError
from swarm_ray.training.analysis import classify_returns, macro_f1
from swarm_ray.training.config import load_train_config
from swarm_ray.training.dqn import role_env_config
from tests.conftest import ROOT

CONFIG = ROOT / "configs" / "train_dqn.yaml"


def _write(tmp_path: Path, mutate, config: Path = CONFIG) -> Path:
    data = yaml.safe_load(config.read_text())
    mutate(data)
    path = tmp_path / f"{config.stem}_changed.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_bundled_config_has_disjoint_days_and_three_roles():
    cfg = load_train_config(CONFIG)
    days = [cfg.data.train_days, cfg.data.validation_days, cfg.data.evaluation_days]
    assert all(days)
    assert len(set().union(*map(set, days))) == sum(map(len, days))
    assert set(cfg.roles) == {"risk_manager", "strategy_optimizer", "execution_agent"}
    for d in days:
        for f in cfg.data.files(d, root=CONFIG.parents[1]):
            assert Path(f).is_file(), f


def test_config_rejects_training_on_a_validation_day(tmp_path):
    path = _write(tmp_path, lambda d: d["data"]["validation_days"].append("2024-08-01"))
    with pytest.raises(ConfigError, match="validation_days overlap train_days"):
        load_train_config(path)


def test_config_names_an_unknown_key(tmp_path):
    path = _write(tmp_path, lambda d: d["dqn"].update(learning_rate=0.1))
    with pytest.raises(ConfigError, match=r"dqn\.learning_rate"):
        load_train_config(path)


def test_role_env_config_replays_training_days_with_the_role_reward():
    cfg = load_train_config(CONFIG)
    env = role_env_config(cfg, "execution_agent")
    assert env["role"] == "execution_agent"
    assert env["reward"]["kind"] == "spread_capture"
    assert len(env["midprice"]["files"]) == len(cfg.data.train_days)
    assert all("2024-08-13" not in f for f in env["midprice"]["files"])
    assert role_env_config(cfg, "risk_manager", smoke=True)["n_steps"] == cfg.smoke.episode_steps


def test_role_env_config_pins_the_feature_scale_to_the_training_days():
    """Validation (and every other) replay shows a policy the training days' feature scale."""
    from envs.config import make_config
    from envs.models import ReplayMidprice
    from swarm_ray.training.dqn import resolve_files

    cfg = load_train_config(CONFIG)
    train = role_env_config(cfg, "risk_manager")
    val = role_env_config(cfg, "risk_manager", cfg.data.validation_days)
    assert train["midprice"]["ref_vol"] == val["midprice"]["ref_vol"]
    for key in ("mean_volume", "step_sigma"):
        assert train["midprice"][key] == val["midprice"][key]
    env = {k: v for k, v in train.items() if k != "role"}
    unpinned = {**env, "midprice": {"kind": "replay", "files": env["midprice"]["files"]}}
    own = ReplayMidprice(make_config(resolve_files(unpinned)).midprice, 30)
    assert train["midprice"]["ref_vol"] == pytest.approx(own.ref_vol, rel=1e-12)
    assert train["midprice"]["step_sigma"] == pytest.approx(own.step_sigma, rel=1e-12)
    val_own = ReplayMidprice(
        make_config(
            resolve_files({**unpinned, "midprice": {"files": val["midprice"]["files"]}})
        ).midprice,
        30,
    )
    assert abs(val_own.ref_vol / own.ref_vol - 1) > 0.1  # the days differ: pinning matters


def test_role_env_config_rejects_a_bad_env_override(tmp_path):
    path = _write(tmp_path, lambda d: d["roles"]["risk_manager"]["env"].update(n_steps=0))
    cfg = load_train_config(path)
    with pytest.raises(ConfigError, match="risk_manager"):
        role_env_config(cfg, "risk_manager")


def test_classify_returns_uses_both_thresholds_symmetrically():
    got = classify_returns([-30.0, -10.0, 0.0, 10.0, 30.0, 20.0, -5.0], (5.0, 20.0))
    assert got.tolist() == [0, 1, 2, 3, 4, 3, 2]


def test_macro_f1_is_one_for_perfect_and_lower_for_a_constant_guess():
    y = [0, 1, 2, 3, 4, 2]
    assert macro_f1(y := __import__("numpy").array(y), y) == 1.0
    assert macro_f1(y, __import__("numpy").full(6, 2)) < 0.3


V3 = ROOT / "configs" / "train_dqn_v3.yaml"


def test_v3_config_trains_layout_v3_without_a_quote_bonus_on_a_mixture():
    from swarm_ray.training.dqn import make_role_env, with_mixture

    cfg = load_train_config(V3)
    assert cfg.mixture is not None and 0 < cfg.mixture.weight < 1
    for role in cfg.roles:
        env = role_env_config(cfg, role)
        assert env["observation"]["layout"] == "v3"
        reward = env.get("reward", {})
        assert not reward.get("quote_bonus") and reward.get("markout") is True
        trial = with_mixture(cfg, env)
        assert trial["mixture"]["env"]["observation"] == env["observation"]
    made = make_role_env(with_mixture(cfg, role_env_config(cfg, "risk_manager")))
    assert made.names == ["replay", "simulation"] and made.observation_space.shape == (22,)
    assert made.weights[1] == pytest.approx(cfg.mixture.weight)


def test_mixture_needs_a_replay_and_a_valid_simulation_env(tmp_path):
    from swarm_ray.training.dqn import with_mixture

    def sim_mode(d):
        d["mode"] = "simulation"

    with pytest.raises(ConfigError, match="mixture"):
        load_train_config(_write(tmp_path, sim_mode, V3))
    bad = load_train_config(_write(tmp_path, lambda d: d["mixture"]["env"].update(dt=-1), V3))
    with pytest.raises(ConfigError, match=r"mixture\.env"):
        with_mixture(bad, role_env_config(bad, "risk_manager"))
