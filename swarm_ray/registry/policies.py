"""The model registry: ``<models_dir>/<name>/<version>/`` holds only what inference needs.

Layout of one version::

    models/risk_manager/v1/
        model_card.json          name, kind, version, role, training days, config, commit,
                                 metrics; ``architecture`` (the Q-network's sizes, activations,
                                 dueling) and ``weights`` (file, format, bytes, sha256)
        observation_layout.json  observation columns, bounds and action names the policy speaks
        weights.safetensors      the Q-network's tensors (no learner, optimizer or buffer)
    models/market_analyst/v1/
        model_card.json          ... with the network's ``architecture`` and ``weights``
        feature_layout.json      the 20 market features, in order, and the 5 classes
        weights.safetensors      the market-analysis network's tensors

Nothing in a version folder is executable: JSON and safetensors only, never a pickle. The
loader checks the weight file's sha256 against the card before reading it and rebuilds the
network from the card (``swarm_ray.registry.dqn_network``), so loading needs torch, not Ray.

The newest version of a name is the one with the highest number (``v2`` beats ``v1``). A
version whose card says ``"smoke": true`` is refused (``SmokeModel``), unless the registry is a
scratch registry (see ``swarm_ray.registry.files``); ``new_version_dir`` keeps smoke exports out
of a serving registry and full exports out of a scratch one.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from envs.actions import ACTION_NAMES, N_ENV_ACTIONS
from envs.baselines import PolicyAgent
from envs.features import LAYOUTS, OBS_COLUMNS, layout_bounds, layout_columns
from swarm_ray.core.config import PROJECT_ROOT
from swarm_ray.registry.champions import serving_dir
from swarm_ray.registry.files import (
    CARD,
    MissingModelFile,
    RegistryError,
    SmokeModel,
    card_section,
    check_servable,
    is_scratch_registry,
    mark_scratch_registry,
    read_card,
    read_json,
    read_weights,
    servable_dir,
    staged_version,
    write_card,
    write_weights,
)

__all__ = [
    "ANALYSIS_KIND",
    "CARD",
    "OBS_LAYOUT",
    "POLICY_KIND",
    "DQNPolicy",
    "MissingModelFile",
    "RegistryError",
    "RegistryPolicyAgent",
    "SmokeModel",
    "latest_dir",
    "layout_of",
    "list_models",
    "load_policies",
    "load_policy",
    "load_policy_agents",
    "new_version_dir",
    "read_card",
    "save_policy",
    "seen_days",
    "versions",
    "write_card",
]

POLICY_KIND = "dqn_policy"
ANALYSIS_KIND = "market_analysis"
OBS_LAYOUT = "observation_layout.json"
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
    """The newest version folder of ``name``; ``SmokeModel`` if it is a smoke-test model (in a
    serving registry)."""
    found = versions(models_dir, name)
    return servable_dir(models_dir, name, found[-1] if found else None)


def new_version_dir(models_dir: str | Path, name: str, version: str | None, smoke: bool) -> Path:
    """The folder an export of ``name`` writes (``version``, else the next ``vN``).

    A smoke export goes only to a scratch registry: a registry that holds a version trained in
    full is refused, any other one is marked scratch. A full export never goes to a scratch
    registry.
    """
    root = Path(models_dir)
    if smoke and not is_scratch_registry(root):
        serving = [
            f"{n.name}/{v}"
            for n in (sorted(root.iterdir()) if root.is_dir() else [])
            if n.is_dir()
            for v in versions(root, n.name)
            if not _is_smoke(root / n.name / v)
        ]
        if serving:
            raise RegistryError(
                f"{root}: a serving registry (it holds {', '.join(serving[:3])}); a smoke run "
                f"exports to a scratch registry instead"
            )
        mark_scratch_registry(root)
    if not smoke and is_scratch_registry(root):
        raise RegistryError(
            f"{root}: a scratch registry of smoke-test models; export a full run to a serving "
            f"registry"
        )
    return root / name / (version or next_version(root, name))


def _is_smoke(vdir: Path) -> bool:
    try:
        return read_card(vdir).get("smoke") is True
    except RegistryError:
        return False


def list_models(models_dir: str | Path, kind: str | None = None) -> list[dict[str, Any]]:
    """The card of the version served by default of every model (its champion, else its
    newest: ``registry.champions``), optionally of one kind, by name."""
    root = Path(models_dir)
    if not root.is_dir():
        return []
    cards = []
    for sub in sorted(p for p in root.iterdir() if p.is_dir()):
        if not versions(root, sub.name):
            continue
        vdir = serving_dir(root, sub.name)
        card = read_card(vdir)
        card["path"] = str(vdir)
        if kind is None or card.get("kind") == kind:
            cards.append(card)
    return cards


def seen_days(card: dict[str, Any]) -> set[str]:
    """Days a model's card says it has seen: trained on, validated or calibrated on (its
    ``data``), and judged on when the learning loop promoted it (its ``lineage``)."""
    data = card.get("data") or {}
    lineage = card.get("lineage") or {}
    days = set(data.get("train_days") or ()) | set(data.get("validation_days") or ())
    return {str(d) for d in days | set(lineage.get("evaluation_days") or ())}


def observation_layout(layout: str = "v2") -> dict[str, Any]:
    """The observation layout file of a policy trained on ``layout`` (``envs.features``)."""
    low, high = layout_bounds(layout)
    return {
        "layout": layout,
        "columns": list(layout_columns(layout)),
        "low": [float(x) for x in low],
        "high": [float(x) for x in high],
        "dtype": "float32",
        "actions": list(ACTION_NAMES[:N_ENV_ACTIONS]),
    }


def layout_of(card: dict[str, Any]) -> str:
    """The observation layout a policy's card names (``env_config.observation.layout``); v2
    for a card written before layouts had names."""
    env = card.get("env_config") or {}
    obs = env.get("observation") or {}
    layout = obs.get("layout", "v2") if isinstance(obs, dict) else obs
    if layout not in LAYOUTS:
        where = f"{card.get('name', '?')} {card.get('version', '?')}"
        raise RegistryError(
            f"model card of {where}: env_config.observation.layout {layout!r} is not one of "
            f"{sorted(LAYOUTS)}"
        )
    return str(layout)


def write_policy_files(
    folder: str | Path, arch: dict[str, Any], tensors: dict[str, Any], card: dict[str, Any]
) -> dict[str, Any]:
    """Write weights, observation layout and card (with ``architecture`` and ``weights``) into
    ``folder``; returns the card written."""
    folder = Path(folder)
    weights = write_weights(folder, tensors)
    layout = observation_layout(layout_of(card))
    (folder / OBS_LAYOUT).write_text(json.dumps(layout, indent=2) + "\n")
    head = {k: card[k] for k in ("name", "kind", "version", "commit") if k in card}
    rest = {k: v for k, v in card.items() if k not in head and k not in ("architecture", "weights")}
    full = {**head, "architecture": arch, "weights": weights, **rest}
    write_card(folder, full)
    return full


def save_policy(policy: DQNPolicy, version_dir: str | Path) -> Path:
    """Write a (possibly modified) policy as the version folder ``version_dir``, its card
    copied with ``version`` set to the folder's name and a new weight sha256."""
    dest = Path(version_dir)
    arch = dict(policy.card["architecture"])
    card = {k: v for k, v in policy.card.items() if k != "path"}
    card["version"] = dest.name
    with staged_version(dest) as stage:
        write_policy_files(stage, arch, policy.network.state_dict(), card)
    return dest


class DQNPolicy:
    """A registry DQN policy (its Q-network) for CPU inference over a batch of observations."""

    def __init__(
        self, network: Any, card: dict[str, Any], layout: dict[str, Any] | None = None
    ) -> None:
        import torch

        self.network = network.eval()
        self.card = card
        self.layout = layout or observation_layout(layout_of(card))
        self.name: str = card.get("name", "policy")
        self.version: str = card.get("version", "")
        self._torch = torch
        self._dim = int(card.get("architecture", {}).get("observation_dim", len(OBS_COLUMNS)))
        from swarm_ray.registry.dqn_network import numpy_forward

        self._numpy = numpy_forward(self.network)

    # below this many rows numpy answers faster than torch (its per-call cost dominates)
    NUMPY_ROWS = 64

    def q_values(self, obs: np.ndarray) -> np.ndarray:
        """Q-values (n, 7) of observations (n, observation_dim)."""
        x = np.asarray(obs, dtype=np.float32).reshape(-1, self._dim)
        if len(x) <= self.NUMPY_ROWS:
            return self._numpy(x)
        with self._torch.no_grad():
            return self.network(self._torch.as_tensor(x)).cpu().numpy()

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        """Greedy actions (n,) of observations (n, observation_dim)."""
        return self.q_values(obs).argmax(axis=-1).astype(np.int64)

    def act_with_confidence(self, obs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Greedy actions and a confidence in [0, 1]: the softmax weight of the chosen Q."""
        q = self.q_values(obs)
        z = q - q.max(axis=-1, keepdims=True)
        p = np.exp(z) / np.exp(z).sum(axis=-1, keepdims=True)
        a = q.argmax(axis=-1)
        return a.astype(np.int64), p[np.arange(len(a)), a]


def read_observation_layout(vdir: Path, arch: dict[str, Any]) -> dict[str, Any]:
    """The version's observation layout, checked against this code's columns of the layout it
    names (v2 when it names none) and the card."""
    path = vdir / OBS_LAYOUT
    layout = read_json(path, "observation layout")
    name = str(layout.get("layout", "v2"))
    if name not in LAYOUTS:
        raise RegistryError(f"{path}: unknown observation layout {name!r}; known {sorted(LAYOUTS)}")
    columns = layout_columns(name)
    if layout.get("columns") != list(columns):
        raise RegistryError(f"{path}: observation columns differ from envs.features' layout {name}")
    actions = layout.get("actions")
    if not isinstance(actions, list) or len(actions) != arch["n_actions"]:
        raise RegistryError(
            f"{path}: {len(actions) if isinstance(actions, list) else 'no'} action names "
            f"for a network of {arch['n_actions']} actions"
        )
    for key in ("low", "high"):
        bounds = layout.get(key)
        if not isinstance(bounds, list) or len(bounds) != arch["observation_dim"]:
            raise RegistryError(f"{path}: {key!r} must list {arch['observation_dim']} bounds")
    if arch["observation_dim"] != len(columns):
        raise RegistryError(
            f"{vdir / CARD}: observation_dim {arch['observation_dim']} is not the "
            f"{len(columns)} columns of observation layout {name}"
        )
    return layout


def load_policy(version_dir: str | Path) -> DQNPolicy:
    """Load one exported policy (a version folder) for inference on CPU.

    Reads JSON and safetensors only; the weight file must match the card's sha256. A smoke-test
    version loads only from a scratch registry.
    """
    import torch

    from swarm_ray.registry.dqn_network import (
        build_q_network,
        check_architecture,
        expected_tensors,
    )

    vdir = Path(version_dir)
    card = read_card(vdir)
    if card.get("kind") != POLICY_KIND:
        raise RegistryError(f"{vdir / CARD}: kind {card.get('kind')!r} is not a {POLICY_KIND}")
    check_servable(vdir, card)
    arch = check_architecture(card_section(card, "architecture", vdir / CARD), vdir / CARD)
    layout = read_observation_layout(vdir, arch)
    if layout.get("layout", "v2") != layout_of(card):
        raise RegistryError(
            f"{vdir / OBS_LAYOUT}: layout {layout.get('layout', 'v2')!r} is not the card's "
            f"{layout_of(card)!r} (env_config.observation.layout)"
        )
    tensors = read_weights(vdir, card, expected_tensors(arch))
    torch.set_num_threads(max(1, min(torch.get_num_threads(), 2)))
    network = build_q_network(arch)
    network.load_state_dict(tensors, strict=True)
    return DQNPolicy(network, card, layout)


def load_policies(models_dir: str | Path, names: Sequence[str] | None = None) -> list[DQNPolicy]:
    """The version served by default of every DQN policy in the registry (or of the given
    names): its champion, else its newest."""
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
    - ``env_overrides``: the env settings of its observation (its layout, and the features'
      pinned scale for layout v2).
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
        overrides: dict[str, Any] = {"midprice": scale} if scale else {}
        if env.get("observation"):
            overrides["observation"] = dict(env["observation"])
        return cls(policy, policy.name, env.get("n_steps"), overrides)


def load_policy_agents(
    models_dir: str | Path, names: Sequence[str] | None = None
) -> list[RegistryPolicyAgent]:
    """One agent per registry policy (its champion, else its newest version), by model name.

    Each agent's ``act(state)`` runs the RLModule on CPU over all paths of ``state.obs`` at once,
    with the session clock and feature scale of its training (``RegistryPolicyAgent``).
    """
    return [RegistryPolicyAgent.from_policy(p) for p in load_policies(models_dir, names)]
