"""The model registry: ``<models_dir>/<name>/<version>/`` holds only what inference needs.

Layout of one version::

    models/risk_manager/v1/
        model_card.json          name, kind, version, role, training days, config, commit, metrics
        observation_layout.json  observation columns, bounds and action names the policy speaks
        rl_module/               the RLlib RLModule checkpoint (no learner, optimizer, buffer)
    models/market_analyst/v1/
        model_card.json
        feature_layout.json      the 20 market features, in order, and the 5 classes
        weights.pt               torch state_dict of MarketAnalysisNet

The newest version of a name is the one with the highest number (``v2`` beats ``v1``).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from envs.actions import ACTION_NAMES, N_ENV_ACTIONS
from envs.baselines import PolicyAgent
from envs.features import OBS_COLUMNS, OBS_HIGH, OBS_LOW
from swarm_ray.core.config import PROJECT_ROOT

POLICY_KIND = "dqn_policy"
ANALYSIS_KIND = "market_analysis"
CARD = "model_card.json"
OBS_LAYOUT = "observation_layout.json"
RL_MODULE_DIR = "rl_module"
_VERSION = re.compile(r"^v(\d+)$")


def git_commit(root: str | Path | None = None) -> str:
    """The commit the code was at (``+dirty`` when the tree has changes); ``unknown`` if none."""
    cwd = str(root or PROJECT_ROOT)
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=cwd,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + ("+dirty" if dirty else "")


def versions(models_dir: str | Path, name: str) -> list[str]:
    """Versions of ``name`` in the registry, oldest first."""
    root = Path(models_dir) / name
    if not root.is_dir():
        return []
    found = [(int(m.group(1)), p.name) for p in root.iterdir() if (m := _VERSION.match(p.name))]
    return [v for _, v in sorted(found)]


def next_version(models_dir: str | Path, name: str) -> str:
    existing = versions(models_dir, name)
    return f"v{int(existing[-1][1:]) + 1}" if existing else "v1"


def latest_dir(models_dir: str | Path, name: str) -> Path:
    found = versions(models_dir, name)
    if not found:
        raise FileNotFoundError(f"no version of model {name!r} under {models_dir}")
    return Path(models_dir) / name / found[-1]


def read_card(version_dir: str | Path) -> dict[str, Any]:
    path = Path(version_dir) / CARD
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no model card")
    return json.loads(path.read_text())


def write_card(version_dir: str | Path, card: dict[str, Any]) -> Path:
    path = Path(version_dir) / CARD
    path.write_text(json.dumps(card, indent=2, sort_keys=False, default=str) + "\n")
    return path


def list_models(models_dir: str | Path, kind: str | None = None) -> list[dict[str, Any]]:
    """The card of the newest version of every model (optionally of one kind), by name."""
    root = Path(models_dir)
    if not root.is_dir():
        return []
    cards = []
    for sub in sorted(p for p in root.iterdir() if p.is_dir()):
        if not versions(root, sub.name):
            continue
        vdir = latest_dir(root, sub.name)
        card = read_card(vdir)
        card["path"] = str(vdir)
        if kind is None or card.get("kind") == kind:
            cards.append(card)
    return cards


def observation_layout() -> dict[str, Any]:
    return {
        "columns": list(OBS_COLUMNS),
        "low": [float(x) for x in OBS_LOW],
        "high": [float(x) for x in OBS_HIGH],
        "dtype": "float32",
        "actions": list(ACTION_NAMES[:N_ENV_ACTIONS]),
    }


def module_path_in_checkpoint(checkpoint_dir: str | Path) -> Path:
    """Where an Algorithm checkpoint keeps the trained RLModule (RLlib's component names)."""
    from ray.rllib.core import (
        COMPONENT_LEARNER,
        COMPONENT_LEARNER_GROUP,
        COMPONENT_RL_MODULE,
        DEFAULT_MODULE_ID,
    )

    return (
        Path(checkpoint_dir)
        / COMPONENT_LEARNER_GROUP
        / COMPONENT_LEARNER
        / COMPONENT_RL_MODULE
        / DEFAULT_MODULE_ID
    )


def export_policy(
    checkpoint_dir: str | Path,
    models_dir: str | Path,
    name: str,
    card: dict[str, Any],
    version: str | None = None,
) -> Path:
    """Copy the RLModule of an Algorithm checkpoint into ``models_dir/name/version``.

    Only the module is restored and saved (no learner, optimizer or replay buffer); the card
    gets ``name``, ``kind``, ``version`` and ``commit`` filled in. Returns the version folder.
    """
    from ray.rllib.core.rl_module.rl_module import RLModule

    module = RLModule.from_checkpoint(module_path_in_checkpoint(checkpoint_dir).resolve())
    version = version or next_version(models_dir, name)
    dest = Path(models_dir) / name / version
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    module.save_to_path((dest / RL_MODULE_DIR).resolve())
    (dest / OBS_LAYOUT).write_text(json.dumps(observation_layout(), indent=2) + "\n")
    full = {"name": name, "kind": POLICY_KIND, "version": version, "commit": git_commit(), **card}
    write_card(dest, full)
    return dest


class DQNPolicy:
    """A restored DQN RLModule for CPU inference over a batch of observations."""

    def __init__(self, module: Any, card: dict[str, Any]) -> None:
        import torch

        self.module = module
        self.card = card
        self.name: str = card.get("name", "policy")
        self.version: str = card.get("version", "")
        self._torch = torch
        module.eval()

    def q_values(self, obs: np.ndarray) -> np.ndarray:
        """Q-values (n, 7) of observations (n, 15)."""
        from ray.rllib.algorithms.dqn.dqn_learner import QF_PREDS
        from ray.rllib.core.columns import Columns

        x = self._torch.as_tensor(np.asarray(obs, dtype=np.float32).reshape(-1, len(OBS_COLUMNS)))
        with self._torch.no_grad():
            out = self.module.compute_q_values({Columns.OBS: x})
        return out[QF_PREDS].cpu().numpy()

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        """Greedy actions (n,) of observations (n, 15)."""
        return self.q_values(obs).argmax(axis=-1).astype(np.int64)

    def act_with_confidence(self, obs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Greedy actions and a confidence in [0, 1]: the softmax weight of the chosen Q."""
        q = self.q_values(obs)
        z = q - q.max(axis=-1, keepdims=True)
        p = np.exp(z) / np.exp(z).sum(axis=-1, keepdims=True)
        a = q.argmax(axis=-1)
        return a.astype(np.int64), p[np.arange(len(a)), a]


def load_policy(version_dir: str | Path) -> DQNPolicy:
    """Restore one exported policy (a version folder) for inference on CPU."""
    import torch
    from ray.rllib.core.rl_module.rl_module import RLModule

    vdir = Path(version_dir)
    card = read_card(vdir)
    if card.get("kind") != POLICY_KIND:
        raise ValueError(f"{vdir}: kind {card.get('kind')!r} is not a {POLICY_KIND}")
    layout = json.loads((vdir / OBS_LAYOUT).read_text())
    if layout["columns"] != list(OBS_COLUMNS):
        raise ValueError(f"{vdir}: observation layout differs from envs.features.OBS_COLUMNS")
    torch.set_num_threads(max(1, min(torch.get_num_threads(), 2)))
    module = RLModule.from_checkpoint((vdir / RL_MODULE_DIR).resolve())
    return DQNPolicy(module, card)


def load_policies(models_dir: str | Path, names: Sequence[str] | None = None) -> list[DQNPolicy]:
    """The newest version of every DQN policy in the registry (or of the given names)."""
    cards = list_models(models_dir, kind=POLICY_KIND)
    if names is not None:
        missing = set(names) - {c["name"] for c in cards}
        if missing:
            raise FileNotFoundError(f"no policy {sorted(missing)} under {models_dir}")
        cards = [c for c in cards if c["name"] in names]
    return [load_policy(c["path"]) for c in cards]


class RegistryPolicyAgent(PolicyAgent):
    """A registry policy as an agent, with what a backtest needs to show it the observations it
    was trained on.

    - ``session_steps``: its training episode length. A longer backtest (a whole day) runs in
      sessions that long (``envs.vector.VectorMarketSim(session_steps=...)``): ``time_left``
      restarts every session and the drawdown reference resets, as the swarm does live.
    - ``env_overrides``: the env settings of its observation (the features' pinned scale).
    """

    def __init__(
        self,
        policy: Any,
        name: str,
        session_steps: int | None = None,
        env_overrides: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(policy, name)
        self.session_steps = session_steps
        self.env_overrides = env_overrides or {}

    @classmethod
    def from_policy(cls, policy: DQNPolicy) -> RegistryPolicyAgent:
        env = policy.card.get("env_config", {})
        keys = ("ref_vol", "step_sigma", "mean_volume")
        scale = {k: env.get("midprice", {}).get(k) for k in keys}
        scale = {k: v for k, v in scale.items() if v is not None}
        return cls(policy, policy.name, env.get("n_steps"), {"midprice": scale} if scale else {})


def load_policy_agents(
    models_dir: str | Path, names: Sequence[str] | None = None
) -> list[RegistryPolicyAgent]:
    """One agent per registry policy (newest version), named by model name.

    Each agent's ``act(state)`` runs the RLModule on CPU over all paths of ``state.obs`` at once,
    with the session clock and feature scale of its training (``RegistryPolicyAgent``).
    """
    return [RegistryPolicyAgent.from_policy(p) for p in load_policies(models_dir, names)]
