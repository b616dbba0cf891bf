"""The model registry: versioned model folders with a model card, loaded for inference.

- ``load_policy_agents(models_dir)``: one ``envs.baselines.PolicyAgent`` per registry policy
- ``load_policies(models_dir)``: the ``DQNPolicy`` objects (actions, Q-values, confidence)
- ``load_analysis_model(models_dir)``: the market-analysis network with its feature layout
- ``serving_version(models_dir, name)``: the version used by default, the champion that
  ``champions.json`` names (the learning loop and ``swarm-ray models rollback`` write it), else
  the newest

A version folder holds JSON and one ``weights.safetensors`` (checked against the sha256 in its
model card); nothing in it is unpickled, and loading does not import Ray. A file that cannot be
loaded raises ``RegistryError`` (a ``ValueError``) naming it; a smoke-test version (``"smoke":
true`` in its card) raises ``SmokeModel`` unless its registry is a scratch registry.
"""

from __future__ import annotations

from swarm_ray.registry.analysis_model import (
    ANALYSIS_CLASSES,
    MarketAnalysisModel,
    load_analysis_model,
)
from swarm_ray.registry.champions import (
    champion,
    previous_champion,
    record_champion,
    record_rejected,
    serving_dir,
    serving_version,
)
from swarm_ray.registry.files import MissingModelFile, RegistryError, SmokeModel
from swarm_ray.registry.policies import (
    DQNPolicy,
    latest_dir,
    list_models,
    load_policies,
    load_policy,
    load_policy_agents,
    read_card,
    versions,
)

__all__ = [
    "ANALYSIS_CLASSES",
    "DQNPolicy",
    "MarketAnalysisModel",
    "MissingModelFile",
    "RegistryError",
    "SmokeModel",
    "champion",
    "latest_dir",
    "list_models",
    "load_analysis_model",
    "load_policies",
    "load_policy",
    "load_policy_agents",
    "previous_champion",
    "read_card",
    "record_champion",
    "record_rejected",
    "serving_dir",
    "serving_version",
    "versions",
]
