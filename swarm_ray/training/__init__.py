"""Training: RLlib DQN role policies through Ray Tune, the market-analysis network, and the
model registry they are exported to.

Inference entry points (no Ray cluster needed):

- ``load_policy_agents(models_dir)``: one ``envs.baselines.PolicyAgent`` per registry policy
- ``load_policies(models_dir)``: the ``DQNPolicy`` objects (actions, Q-values, confidence)
- ``load_analysis_model(models_dir)``: the market-analysis network with its feature layout
"""

from __future__ import annotations

from swarm_ray.registry.policies import (
    DQNPolicy,
    list_models,
    load_policies,
    load_policy,
    load_policy_agents,
)
from swarm_ray.training.analysis import (
    ANALYSIS_CLASSES,
    FEATURE_NAMES,
    MarketAnalysisModel,
    analysis_features,
    load_analysis_model,
)
from swarm_ray.training.config import ROLES, TrainConfig, load_train_config

__all__ = [
    "ANALYSIS_CLASSES",
    "FEATURE_NAMES",
    "ROLES",
    "DQNPolicy",
    "MarketAnalysisModel",
    "TrainConfig",
    "analysis_features",
    "list_models",
    "load_analysis_model",
    "load_policies",
    "load_policy",
    "load_policy_agents",
    "load_train_config",
]
