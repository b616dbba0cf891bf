"""Episodes drawn from several markets: each ``reset`` picks one of the component envs.

Training on a mixture (for example the Avellaneda-Stoikov simulator and a replay of real days)
needs one observation layout and one action vocabulary across the components; the layout v3
(``envs.features``) scales every series by its own recent history, so the components' columns
mean the same thing.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numpy as np

from envs.config import MarketMakingConfig, make_config
from envs.market_making import MarketMakingEnv


class MixtureEnv(gym.Env):
    """Each episode runs in component ``i`` with probability ``weights[i]``; ``info['component']``
    names it. The observation and action spaces are the components' (which must agree)."""

    metadata: dict[str, Any] = {"render_modes": []}  # noqa: RUF012

    def __init__(
        self,
        configs: Sequence[MarketMakingConfig | dict[str, Any]],
        weights: Sequence[float],
        names: Sequence[str] | None = None,
    ) -> None:
        if len(configs) != len(weights) or not configs:
            raise ValueError("mixture: one weight per component config, at least one")
        w = np.asarray(weights, dtype=np.float64)
        if np.any(w < 0) or w.sum() <= 0:
            raise ValueError(f"mixture weights must be >= 0 with a positive sum, got {weights}")
        self.weights = w / w.sum()
        self.envs = [MarketMakingEnv(make_config(c)) for c in configs]
        self.names = list(names or [f"component_{i}" for i in range(len(configs))])
        first = self.envs[0]
        for name, env in zip(self.names, self.envs, strict=True):
            if env.observation_space != first.observation_space:
                raise ValueError(
                    f"mixture: {name}'s observation space {env.observation_space} is not "
                    f"{first.observation_space}; use one observation layout"
                )
        self.observation_space = first.observation_space
        self.action_space = first.action_space
        self.active = first
        self.component = self.names[0]

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        i = int(self.np_random.choice(len(self.envs), p=self.weights))
        self.active, self.component = self.envs[i], self.names[i]
        sub_seed = int(self.np_random.integers(2**31))
        obs, info = self.active.reset(seed=sub_seed, options=options)
        return obs, {**info, "component": self.component}

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        obs, reward, terminated, truncated, info = self.active.step(action)
        return obs, reward, terminated, truncated, {**info, "component": self.component}
