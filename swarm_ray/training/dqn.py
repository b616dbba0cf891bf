"""RLlib DQN configuration for the role policies, built from a ``TrainConfig``.

The env is the registered gymnasium env ``swarm_ray/MarketMaking-v0``; RLlib receives it
through a Tune env creator that drops our bookkeeping key (``role``) and resolves the replay
files against the project root, so the same config runs on a laptop, in a Tune trial (whose
working directory is the trial folder) and in a ``ray job submit`` working dir.
"""

from __future__ import annotations

from datetime import date
from functools import lru_cache
from pathlib import Path
from typing import Any

import gymnasium as gym

import envs
from envs.config import _deep_merge, make_config
from swarm_ray.core.config import PROJECT_ROOT, ConfigError
from swarm_ray.training.config import TrainConfig

ENV_NAME = envs.ENV_ID
BOOKKEEPING_KEYS = ("role", "num_envs", "mixture")


def resolve_files(env_config: dict[str, Any]) -> dict[str, Any]:
    """``env_config`` with relative replay files made absolute against the project root."""
    mid = env_config.get("midprice")
    if not isinstance(mid, dict) or not mid.get("files"):
        return env_config
    files = [f if Path(f).is_absolute() else str(PROJECT_ROOT / f) for f in mid["files"]]
    return {**env_config, "midprice": {**mid, "files": files}}


def make_role_env(env_config: dict[str, Any]) -> gym.Env:
    """Env creator for RLlib: the registered env, built from a plain dict (``role`` dropped);
    with a ``mixture`` entry ({weight, env}), a ``MixtureEnv`` of it and the simulation env."""
    cfg = {k: v for k, v in dict(env_config).items() if k not in BOOKKEEPING_KEYS}
    mixture = dict(env_config).get("mixture")
    if mixture:
        from envs.mixture import MixtureEnv

        w = float(mixture["weight"])
        return MixtureEnv(
            [resolve_files(cfg), mixture["env"]], [1.0 - w, w], names=["replay", "simulation"]
        )
    return envs.make_env(resolve_files(cfg))


def with_mixture(cfg: TrainConfig, env: dict[str, Any]) -> dict[str, Any]:
    """A trial's env config: ``env`` plus the config's simulation mixture, if any, its
    observation section taken from ``env`` so both share one layout."""
    if cfg.mixture is None or cfg.mixture.weight <= 0:
        return env
    sim = _deep_merge(dict(cfg.mixture.env), {"observation": env.get("observation", {})})
    try:
        make_config(sim)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"mixture.env: {exc}") from None
    return {**env, "mixture": {"weight": cfg.mixture.weight, "env": sim}}


def register_training_env() -> None:
    """Register the env creator with Tune's registry (call before building algorithms)."""
    from ray.tune.registry import register_env

    register_env(ENV_NAME, make_role_env)


@lru_cache(maxsize=8)
def feature_scale(files: tuple[str, ...]) -> dict[str, float]:
    """The replay observation's scale of these kline files, as ``envs.models.ReplayMidprice``
    (and the swarm's ``ObservationSpec``) computes it: ``ref_vol`` (std of one-bar simple
    returns), ``step_sigma`` (std of one-bar price changes) and ``mean_volume``."""
    import numpy as np

    from envs.data.klines import load_klines

    df = load_klines([f if Path(f).is_absolute() else str(PROJECT_ROOT / f) for f in files])
    close = df["close"].to_numpy(np.float64)
    return {
        "ref_vol": float(np.std(np.diff(close) / close[:-1])),
        "step_sigma": float(np.std(np.diff(close))),
        "mean_volume": float(df["volume"].to_numpy(np.float64).mean()),
    }


def role_env_config(
    cfg: TrainConfig, role: str, days: tuple[date, ...] | None = None, smoke: bool = False
) -> dict:
    """The plain-dict env config of one role: base env, role overrides, replay days.

    ``days`` defaults to the training days; relative kline paths stay relative (see
    ``resolve_files``) so the dict is valid on every node. With ``data.pin_feature_scale``
    the features' scale is the training days' whatever ``days`` are replayed.
    """
    if role not in cfg.roles:
        raise ConfigError(f"role {role!r} is not in the config's roles {sorted(cfg.roles)}")
    env = _deep_merge(dict(cfg.env), dict(cfg.roles[role].env))
    if smoke:
        env["n_steps"] = cfg.smoke.episode_steps
    if cfg.mode == "replay":
        files = cfg.data.files(days or cfg.data.train_days, root="")
        midprice: dict[str, Any] = {"kind": "replay", "files": [str(f) for f in files]}
        if cfg.data.pin_feature_scale:
            train = tuple(str(f) for f in cfg.data.files(cfg.data.train_days, root=""))
            given = env.get("midprice", {})
            midprice.update({k: v for k, v in feature_scale(train).items() if k not in given})
        env = _deep_merge(env, {"midprice": midprice})
    try:
        make_config(resolve_files(env))
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"env config of role {role!r}: {exc}") from None
    return {"role": role, **env}


def build_dqn_config(
    cfg: TrainConfig,
    env_config: dict[str, Any] | Any,
    smoke: bool = False,
    seed: int | None = None,
):
    """The ``DQNConfig`` of one trial (``env_config`` may be a Tune search space)."""
    from ray.rllib.algorithms.dqn import DQNConfig

    d, r, s = cfg.dqn, cfg.resources, cfg.smoke
    n_envs = s.num_envs_per_env_runner if smoke else r.num_envs_per_env_runner
    min_steps = (
        s.min_sample_timesteps_per_iteration if smoke else r.min_sample_timesteps_per_iteration
    )
    learn_start = (
        s.num_steps_sampled_before_learning_starts
        if smoke
        else d.num_steps_sampled_before_learning_starts
    )
    replay: dict[str, Any] = {"capacity": d.replay_capacity}
    if d.prioritized_replay:
        replay.update(type="PrioritizedEpisodeReplayBuffer", alpha=0.6, beta=0.4)
    else:
        replay.update(type="EpisodeReplayBuffer")
    training: dict[str, Any] = dict(
        lr=d.lr,
        gamma=d.gamma,
        train_batch_size_per_learner=d.train_batch_size,
        num_steps_sampled_before_learning_starts=learn_start,
        target_network_update_freq=d.target_network_update_freq,
        double_q=d.double_q,
        dueling=d.dueling,
        n_step=d.n_step,
        replay_buffer_config=replay,
        epsilon=[list(p) for p in d.epsilon],
        grad_clip=d.grad_clip,
    )
    if d.training_intensity is not None:
        training["training_intensity"] = d.training_intensity
    config = (
        DQNConfig()
        .environment(ENV_NAME, env_config=env_config)
        .framework("torch")
        .env_runners(
            num_env_runners=r.num_env_runners,
            num_envs_per_env_runner=n_envs,
            rollout_fragment_length=r.rollout_fragment_length,
        )
        .training(**training)
        .rl_module(
            model_config={
                "fcnet_hiddens": list(d.fcnet_hiddens),
                "fcnet_activation": "relu",
                "head_fcnet_hiddens": list(d.head_fcnet_hiddens),
            }
        )
        .reporting(min_sample_timesteps_per_iteration=min_steps)
        .resources(num_cpus_for_main_process=r.num_cpus_per_trial)
        .debugging(seed=cfg.experiment.seed if seed is None else seed)
    )
    return config
