"""From a trained RLlib checkpoint to a registry version: the Q-network's tensors in
safetensors and its architecture in the model card (the registry itself never imports RLlib)."""

from __future__ import annotations

from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import Any

import numpy as np

from swarm_ray.registry.files import RegistryError, staged_version
from swarm_ray.registry.policies import POLICY_KIND, git_commit, new_version_dir, write_policy_files

__all__ = ["export_policy", "module_path_in_checkpoint", "policy_from_rllib"]


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


def policy_from_rllib(module: Any, source: str | Path = "RLModule") -> tuple[dict, dict]:
    """The card ``architecture`` and the Q-network tensors of a restored RLlib DQN RLModule.

    Only what ``swarm_ray.registry.dqn_network`` rebuilds is accepted (a flat observation,
    discrete actions, an MLP encoder and heads, expected Q-values); the rebuilt network must
    give the module's Q-values, or the export is refused. ``source`` names it in errors.
    """
    import gymnasium as gym
    import torch
    from ray.rllib.algorithms.dqn.dqn_learner import QF_PREDS
    from ray.rllib.core.columns import Columns
    from ray.rllib.core.rl_module.default_model_config import DefaultModelConfig

    from swarm_ray.registry.dqn_network import (
        NETWORK,
        build_q_network,
        canonical_activation,
        check_architecture,
        expected_tensors,
    )

    def refuse(why: str) -> RegistryError:
        return RegistryError(f"{source}: cannot export this policy: {why}")

    if not hasattr(module, "compute_q_values") or not hasattr(module, "uses_dueling"):
        raise refuse(f"{type(module).__name__} is not an RLlib DQN module")
    if int(getattr(module, "num_atoms", 1)) != 1:
        raise refuse("distributional Q-learning (num_atoms > 1) is not supported")
    obs_space, act_space = module.observation_space, module.action_space
    if not (isinstance(obs_space, gym.spaces.Box) and len(obs_space.shape) == 1):
        raise refuse(f"observation space {obs_space} is not a flat Box")
    if not isinstance(act_space, gym.spaces.Discrete):
        raise refuse(f"action space {act_space} is not Discrete")
    given = module.model_config
    given = asdict(given) if is_dataclass(given) else dict(given or {})
    mc = {**asdict(DefaultModelConfig()), **given}
    for flag in ("use_lstm", "fcnet_use_layernorm", "head_fcnet_use_layernorm"):
        if mc.get(flag):
            raise refuse(f"model_config {flag} is not supported")
    try:
        arch = {
            "network": NETWORK,
            "observation_dim": int(obs_space.shape[0]),
            "n_actions": int(act_space.n),
            "hiddens": [int(h) for h in mc["fcnet_hiddens"]],
            "activation": canonical_activation(mc["fcnet_activation"]),
            "head_hiddens": [int(h) for h in mc["head_fcnet_hiddens"]],
            "head_activation": canonical_activation(mc["head_fcnet_activation"]),
            "dueling": bool(module.uses_dueling),
        }
        arch = check_architecture(arch, source)
    except ValueError as exc:
        raise refuse(str(exc)) from None
    state = module.state_dict()
    tensors = {}
    for key, shape in expected_tensors(arch).items():
        if key not in state:
            raise refuse(f"its state has no tensor {key!r}")
        t = torch.as_tensor(state[key])
        if tuple(t.shape) != shape:
            raise refuse(f"tensor {key!r} is {tuple(t.shape)}, expected {shape}")
        tensors[key] = t.detach().to(torch.float32).clone()
    network = build_q_network(arch)
    network.load_state_dict(tensors, strict=True)
    low = np.nan_to_num(obs_space.low, neginf=-10.0, posinf=10.0).clip(-10.0, 10.0)
    high = np.nan_to_num(obs_space.high, neginf=-10.0, posinf=10.0).clip(-10.0, 10.0)
    probe = np.random.default_rng(0).uniform(low, high, (64, len(low))).astype(np.float32)
    x = torch.as_tensor(probe)
    module.eval()
    with torch.no_grad():
        want = module.compute_q_values({Columns.OBS: x})[QF_PREDS].cpu().numpy()
        got = network.eval()(x).numpy()
    if not np.allclose(got, want, rtol=1e-5, atol=1e-5):
        raise refuse(
            f"the rebuilt Q-network differs from the module by {np.abs(got - want).max():.3g}"
        )
    return arch, tensors


def export_policy(
    checkpoint_dir: str | Path,
    models_dir: str | Path,
    name: str,
    card: dict[str, Any],
    version: str | None = None,
) -> Path:
    """Export the RLModule of an Algorithm checkpoint to ``models_dir/name/version``.

    The module is restored with RLlib (the training output is ours), its Q-network goes to
    ``weights.safetensors`` and its architecture to the card; the RLlib checkpoint itself stays
    in the training output. The card gets ``name``, ``kind``, ``version``, ``commit`` and
    ``smoke`` (false unless ``card`` says true: then ``models_dir`` must be a scratch registry)
    filled in. The folder appears complete or not at all. Returns the version folder.
    """
    from ray.rllib.core.rl_module.rl_module import RLModule

    source = module_path_in_checkpoint(checkpoint_dir).resolve()
    module = RLModule.from_checkpoint(source)
    arch, tensors = policy_from_rllib(module, source)
    smoke = card.get("smoke") is True
    dest = new_version_dir(models_dir, name, version, smoke)
    version = dest.name
    full = {"name": name, "kind": POLICY_KIND, "version": version, "commit": git_commit()}
    full |= {"smoke": smoke, **card}
    with staged_version(dest) as stage:
        write_policy_files(stage, arch, tensors, full)
    return dest
