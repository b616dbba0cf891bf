"""The market-analysis network in the registry: its architecture, weights and inference."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from swarm_ray.features.analysis import FEATURE_NAMES, N_FEATURES, analysis_features
from swarm_ray.registry.files import (
    CARD,
    WEIGHTS_FILE,
    RegistryError,
    card_section,
    check_servable,
    read_card,
    read_json,
    read_weights,
)

ANALYSIS_CLASSES: tuple[str, ...] = ("strong_sell", "sell", "hold", "buy", "strong_buy")


FEATURE_LAYOUT = "feature_layout.json"


WEIGHTS = WEIGHTS_FILE

NETWORK = "market_analysis_mlp"


def build_network(hidden: tuple[int, int] = (64, 64), dropout: float = 0.2):
    """20 -> 64 -> 64 -> 5 logits (ReLU, dropout); softmax is applied at inference."""
    from torch import nn

    return nn.Sequential(
        nn.Linear(N_FEATURES, hidden[0]),
        nn.ReLU(),
        nn.Dropout(dropout),
        nn.Linear(hidden[0], hidden[1]),
        nn.ReLU(),
        nn.Dropout(dropout),
        nn.Linear(hidden[1], len(ANALYSIS_CLASSES)),
    )


def network_architecture(network: Any) -> dict[str, Any]:
    """The card ``architecture`` of a network made by ``build_network``."""
    from torch import nn

    sizes = [m.out_features for m in network if isinstance(m, nn.Linear)]
    return {
        "network": NETWORK,
        "n_features": N_FEATURES,
        "hidden": sizes[:-1],
        "activation": "relu",
        "n_classes": sizes[-1],
    }


def check_architecture(arch: Mapping[str, Any], card_path: Path) -> tuple[int, int]:
    """The two hidden sizes of a card's ``architecture``, after checking it describes
    ``build_network`` for this code's features and classes."""
    hidden = arch.get("hidden")
    problems = []
    if arch.get("network") != NETWORK:
        problems.append(f"network is {arch.get('network')!r}, this code builds {NETWORK!r}")
    if arch.get("n_features") != N_FEATURES:
        problems.append(f"n_features is {arch.get('n_features')!r}, not {N_FEATURES}")
    if arch.get("n_classes") != len(ANALYSIS_CLASSES):
        problems.append(f"n_classes is {arch.get('n_classes')!r}, not {len(ANALYSIS_CLASSES)}")
    if arch.get("activation") != "relu":
        problems.append(f"activation is {arch.get('activation')!r}, not 'relu'")
    if not (
        isinstance(hidden, list)
        and len(hidden) == 2
        and all(isinstance(h, int) and not isinstance(h, bool) and h > 0 for h in hidden)
    ):
        problems.append(f"hidden must be two positive layer sizes, got {hidden!r}")
    if problems:
        raise RegistryError(f"{card_path}: architecture {'; '.join(problems)}")
    return hidden[0], hidden[1]


def expected_tensors(hidden: tuple[int, int]) -> dict[str, tuple[int, ...]]:
    """Parameter name -> shape of ``build_network(hidden)``."""
    h0, h1 = hidden
    n_out = len(ANALYSIS_CLASSES)
    return {
        "0.weight": (h0, N_FEATURES),
        "0.bias": (h0,),
        "3.weight": (h1, h0),
        "3.bias": (h1,),
        "6.weight": (n_out, h1),
        "6.bias": (n_out,),
    }


class MarketAnalysisModel:
    """The exported network with its feature standardisation, for CPU inference."""

    def __init__(self, network: Any, layout: dict[str, Any], card: dict[str, Any]) -> None:
        self.network = network.eval()
        self.card = card
        self.name: str = card.get("name", "market_analyst")
        self.version: str = card.get("version", "")
        self.feature_names: tuple[str, ...] = tuple(layout["features"])
        self.classes: tuple[str, ...] = tuple(layout["classes"])
        self.ref_vol = float(layout["ref_vol"])
        self._mean = np.asarray(layout["mean"], dtype=np.float32)
        self._std = np.asarray(layout["std"], dtype=np.float32)
        self._layers: list | None = None

    @property
    def scaling(self) -> tuple[np.ndarray, np.ndarray, float]:
        """(feature mean, feature std, reference volatility) the network was fitted with."""
        return self._mean.copy(), self._std.copy(), self.ref_vol

    def features(self, klines: pd.DataFrame) -> np.ndarray:
        """Feature rows of kline rows, with the reference volatility of the training days."""
        return analysis_features(klines, self.ref_vol)

    def predict_proba(self, features: np.ndarray) -> np.ndarray:
        """Class probabilities (n, 5), strong sell .. strong buy, of features (n, 20)."""
        import torch

        x = (
            np.asarray(features, dtype=np.float32).reshape(-1, N_FEATURES) - self._mean
        ) / self._std
        if len(x) <= 64:  # numpy is faster than torch's per-call cost for a few rows
            from swarm_ray.registry.dqn_network import numpy_stack, run_numpy

            if self._layers is None:
                self._layers = numpy_stack(self.network)
            z = run_numpy(x, self._layers)
            e = np.exp(z - z.max(axis=-1, keepdims=True))
            return e / e.sum(axis=-1, keepdims=True)
        with torch.no_grad():
            return torch.softmax(self.network(torch.as_tensor(x)), dim=-1).numpy()


def read_feature_layout(vdir: Path) -> dict[str, Any]:
    """The version's feature layout, checked against this code's features and classes."""
    path = vdir / FEATURE_LAYOUT
    layout = read_json(path, "feature layout")
    if layout.get("features") != list(FEATURE_NAMES):
        raise RegistryError(f"{path}: feature layout differs from this code's FEATURE_NAMES")
    if layout.get("classes") != list(ANALYSIS_CLASSES):
        raise RegistryError(f"{path}: classes differ from this code's ANALYSIS_CLASSES")
    for key in ("mean", "std"):
        values = layout.get(key)
        ok = isinstance(values, list) and len(values) == N_FEATURES
        if not ok or not all(isinstance(v, int | float) and np.isfinite(v) for v in values):
            raise RegistryError(f"{path}: {key!r} must list {N_FEATURES} finite numbers")
    if not all(v > 0 for v in layout["std"]):
        raise RegistryError(f"{path}: 'std' must be positive")
    ref = layout.get("ref_vol")
    if not isinstance(ref, int | float) or not ref > 0:
        raise RegistryError(f"{path}: 'ref_vol' must be a positive number, got {ref!r}")
    return layout


def load_analysis_model(
    models_dir: str | Path, name: str = "market_analyst", version: str | None = None
) -> MarketAnalysisModel:
    """Load the given version of the market-analysis network, or its champion (else newest).

    Reads JSON and safetensors only; the weight file must match the card's sha256.
    """
    from swarm_ray.registry.champions import serving_dir
    from swarm_ray.registry.policies import ANALYSIS_KIND

    vdir = Path(models_dir) / name / version if version else serving_dir(models_dir, name)
    card = read_card(vdir)
    if card.get("kind") != ANALYSIS_KIND:
        raise RegistryError(f"{vdir / CARD}: kind {card.get('kind')!r} is not {ANALYSIS_KIND}")
    check_servable(vdir, card)
    hidden = check_architecture(card_section(card, "architecture", vdir / CARD), vdir / CARD)
    layout = read_feature_layout(vdir)
    tensors = read_weights(vdir, card, expected_tensors(hidden))
    net = build_network(hidden)
    net.load_state_dict(tensors, strict=True)
    return MarketAnalysisModel(net, layout, card)
