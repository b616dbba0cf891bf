"""The DQN Q-network as a plain torch module, rebuilt from the architecture in a model card.

It is the inference part of RLlib's ``DefaultDQNTorchRLModule`` (built by ``DQNCatalog``) for a
flat observation and discrete actions, with expected (not distributional) Q-values:

- encoder: ``Linear`` + activation for each size of ``hiddens`` (RLlib's ``fcnet_hiddens`` and
  ``fcnet_activation``; the last size is the latent the heads read);
- ``af``: the advantage head (the Q head without dueling): ``Linear`` + ``head_activation`` for
  each size of ``head_hiddens``, then a linear layer to ``n_actions``;
- ``vf`` (dueling only): the same stack to one value;
- Q = A - mean(A) + V with dueling, else Q = A.

Parameter names are RLlib's (``encoder.net.mlp.0.weight``, ``af.net.mlp.2.bias``, ...), so a
weight file reads like the RLModule's state. It needs torch only, not Ray.
"""

from __future__ import annotations

from collections.abc import Mapping
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from swarm_ray.registry.files import RegistryError

NETWORK = "dqn_mlp"
ACTIVATIONS = ("relu", "tanh", "elu", "silu", "linear")
_ACTIVATION_LAYERS = {"relu": nn.ReLU, "tanh": nn.Tanh, "elu": nn.ELU, "silu": nn.SiLU}
_ALIASES = {"swish": "silu", None: "linear"}


def canonical_activation(name: Any) -> str:
    """RLlib's activation names in the card's spelling (``relu``, ``tanh``, ...)."""
    key = name.lower() if isinstance(name, str) else name
    key = _ALIASES.get(key, key)
    if key not in ACTIVATIONS:
        raise ValueError(f"activation {name!r} is not one of {ACTIVATIONS}")
    return key


def _positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def check_architecture(arch: Mapping[str, Any], card_path: Path | str) -> dict[str, Any]:
    """The card's ``architecture`` of a DQN policy, validated; errors name the card file."""

    def bad(why: str) -> RegistryError:
        return RegistryError(f"{card_path}: architecture {why}")

    if arch.get("network") != NETWORK:
        raise bad(f"network is {arch.get('network')!r}, this code builds {NETWORK!r}")
    for key in ("observation_dim", "n_actions"):
        if not _positive_int(arch.get(key)):
            raise bad(f"{key} must be a positive integer, got {arch.get(key)!r}")
    for key, min_len in (("hiddens", 1), ("head_hiddens", 0)):
        sizes = arch.get(key)
        if not isinstance(sizes, list) or len(sizes) < min_len:
            raise bad(f"{key} must be a list of at least {min_len} layer sizes, got {sizes!r}")
        if not all(_positive_int(s) for s in sizes):
            raise bad(f"{key} must hold positive integers, got {sizes!r}")
    for key in ("activation", "head_activation"):
        if arch.get(key) not in ACTIVATIONS:
            raise bad(f"{key} must be one of {ACTIVATIONS}, got {arch.get(key)!r}")
    if not isinstance(arch.get("dueling"), bool):
        raise bad(f"dueling must be true or false, got {arch.get('dueling')!r}")
    return {
        "network": NETWORK,
        "observation_dim": arch["observation_dim"],
        "n_actions": arch["n_actions"],
        "hiddens": list(arch["hiddens"]),
        "activation": arch["activation"],
        "head_hiddens": list(arch["head_hiddens"]),
        "head_activation": arch["head_activation"],
        "dueling": arch["dueling"],
    }


def _stack(sizes: list[int], activation: str, last_activation: bool) -> list[tuple[int, int, bool]]:
    """(in, out, activation after it) per linear layer."""
    pairs = list(pairwise(sizes))
    return [
        (i, o, activation != "linear" and (last_activation or n < len(pairs) - 1))
        for n, (i, o) in enumerate(pairs)
    ]


def _layer_plan(arch: Mapping[str, Any]) -> dict[str, list[tuple[int, int, bool]]]:
    latent = arch["hiddens"][-1]
    enc = _stack([arch["observation_dim"], *arch["hiddens"]], arch["activation"], True)
    head_act = arch["head_activation"]
    plan = {
        "encoder": enc,
        "af": _stack([latent, *arch["head_hiddens"], arch["n_actions"]], head_act, False),
    }
    if arch["dueling"]:
        plan["vf"] = _stack([latent, *arch["head_hiddens"], 1], head_act, False)
    return plan


def expected_tensors(arch: Mapping[str, Any]) -> dict[str, tuple[int, ...]]:
    """Parameter name -> shape of the network an architecture describes."""
    shapes: dict[str, tuple[int, ...]] = {}
    for part, layers in _layer_plan(arch).items():
        index = 0
        for i, o, act in layers:
            shapes[f"{part}.net.mlp.{index}.weight"] = (o, i)
            shapes[f"{part}.net.mlp.{index}.bias"] = (o,)
            index += 2 if act else 1
    return shapes


def build_q_network(arch: Mapping[str, Any]) -> QNetwork:
    """An untrained ``QNetwork`` of the architecture (validated with ``check_architecture``)."""

    def part(layers: list[tuple[int, int, bool]], activation: str) -> nn.Module:
        mods: list[nn.Module] = []
        for i, o, act in layers:
            mods.append(nn.Linear(i, o))
            if act:
                mods.append(_ACTIVATION_LAYERS[activation]())
        holder = nn.Module()
        holder.net = nn.Module()
        holder.net.mlp = nn.Sequential(*mods)
        return holder

    plan = _layer_plan(arch)
    return QNetwork(
        part(plan["encoder"], arch["activation"]),
        part(plan["af"], arch["head_activation"]),
        part(plan["vf"], arch["head_activation"]) if "vf" in plan else None,
    )


class QNetwork(nn.Module):
    """Observations (n, observation_dim) -> Q-values (n, n_actions)."""

    def __init__(self, encoder: nn.Module, af: nn.Module, vf: nn.Module | None) -> None:
        super().__init__()
        self.encoder = encoder
        self.af = af
        self.vf = vf

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        latent = self.encoder.net.mlp(obs)
        adv = self.af.net.mlp(latent)
        if self.vf is None:
            return adv
        # RLlib's centring: the mean over the finite advantages of each row
        mean = torch.nan_to_num(adv, neginf=torch.nan).nanmean(dim=-1, keepdim=True)
        return adv - mean + self.vf.net.mlp(latent)


_NUMPY_ACTIVATIONS = {
    nn.ReLU: lambda x: np.maximum(x, 0.0, out=x),
    nn.Tanh: np.tanh,
    nn.ELU: lambda x: np.where(x > 0, x, np.expm1(np.minimum(x, 0.0))),
    nn.SiLU: lambda x: x / (1.0 + np.exp(-x)),
}


def numpy_stack(seq: nn.Sequential) -> list[tuple[np.ndarray, np.ndarray, Any]]:
    """The (weight, bias, activation) layers of a Linear/activation stack, as numpy."""
    layers: list[tuple[np.ndarray, np.ndarray, Any]] = []
    for mod in seq:
        if isinstance(mod, nn.Linear):
            w = mod.weight.detach().cpu().numpy().astype(np.float32).T.copy()
            layers.append((w, mod.bias.detach().cpu().numpy().astype(np.float32), None))
        elif isinstance(mod, nn.Dropout):  # the identity at inference
            continue
        else:
            w, b, _ = layers[-1]
            layers[-1] = (w, b, _NUMPY_ACTIVATIONS[type(mod)])
    return layers


def run_numpy(x: np.ndarray, layers: list[tuple[np.ndarray, np.ndarray, Any]]) -> np.ndarray:
    """``x`` through the layers of ``numpy_stack``."""
    for w, b, act in layers:
        x = x @ w + b
        if act is not None:
            x = act(x)
    return x


def numpy_forward(network: QNetwork) -> Any:
    """The same Q-values as ``network(obs)``, computed with numpy (float32), for small batches
    where torch's per-call cost dominates: a function (n, dim) float32 -> (n, n_actions)."""
    encoder = numpy_stack(network.encoder.net.mlp)
    af = numpy_stack(network.af.net.mlp)
    vf = numpy_stack(network.vf.net.mlp) if network.vf is not None else None

    def forward(obs: np.ndarray) -> np.ndarray:
        latent = run_numpy(np.asarray(obs, dtype=np.float32), encoder)
        adv = run_numpy(latent, af)
        if vf is None:
            return adv
        finite = np.where(np.isneginf(adv), np.nan, adv)
        return adv - np.nanmean(finite, axis=-1, keepdims=True) + run_numpy(latent, vf)

    return forward
