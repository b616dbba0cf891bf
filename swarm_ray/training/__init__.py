"""Training: RLlib DQN role policies through Ray Tune and the market-analysis network, exported
to the model registry (``swarm_ray.registry``)."""

from __future__ import annotations

from swarm_ray.training.config import TrainConfig, load_train_config

__all__ = ["TrainConfig", "load_train_config"]
