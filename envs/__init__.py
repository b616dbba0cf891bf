"""Gymnasium market-making environment for swarm-ray. Imports neither Ray nor swarm_ray.

Importing this package registers ``swarm_ray/MarketMaking-v0``.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym

from envs.actions import ACTION_NAMES, N_ENV_ACTIONS, Action
from envs.config import PRESETS, MarketMakingConfig, make_config
from envs.features import OBS_COLUMNS

ENV_ID = "swarm_ray/MarketMaking-v0"
DEFAULT_EPISODE_STEPS = 200

if ENV_ID not in gym.registry:
    gym.register(
        id=ENV_ID,
        entry_point="envs.market_making:MarketMakingEnv",
        max_episode_steps=DEFAULT_EPISODE_STEPS,
    )


def make_env(
    config: MarketMakingConfig | dict[str, Any] | None = None, **overrides: Any
) -> gym.Env:
    """``gym.make`` of the registered env with its time limit taken from the config."""
    cfg = make_config(config, **overrides)
    return gym.make(ENV_ID, config=cfg, max_episode_steps=cfg.n_steps)


__all__ = [
    "ACTION_NAMES",
    "DEFAULT_EPISODE_STEPS",
    "ENV_ID",
    "N_ENV_ACTIONS",
    "OBS_COLUMNS",
    "PRESETS",
    "Action",
    "MarketMakingConfig",
    "make_config",
    "make_env",
]
