"""The market-analysis network in the registry: its architecture, weights and inference."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from swarm_ray.features.analysis import FEATURE_NAMES, N_FEATURES, analysis_features

ANALYSIS_CLASSES: tuple[str, ...] = ("strong_sell", "sell", "hold", "buy", "strong_buy")


FEATURE_LAYOUT = "feature_layout.json"


WEIGHTS = "weights.pt"


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

    def features(self, klines: pd.DataFrame) -> np.ndarray:
        """Feature rows of kline rows, with the reference volatility of the training days."""
        return analysis_features(klines, self.ref_vol)

    def predict_proba(self, features: np.ndarray) -> np.ndarray:
        """Class probabilities (n, 5), strong sell .. strong buy, of features (n, 20)."""
        import torch

        x = (
            np.asarray(features, dtype=np.float32).reshape(-1, N_FEATURES) - self._mean
        ) / self._std
        with torch.no_grad():
            return torch.softmax(self.network(torch.as_tensor(x)), dim=-1).numpy()


def load_analysis_model(
    models_dir: str | Path, name: str = "market_analyst", version: str | None = None
) -> MarketAnalysisModel:
    """Load the newest (or the given) version of the market-analysis network."""
    import torch

    from swarm_ray.registry.policies import ANALYSIS_KIND, latest_dir, read_card

    vdir = Path(models_dir) / name / version if version else latest_dir(models_dir, name)
    card = read_card(vdir)
    if card.get("kind") != ANALYSIS_KIND:
        raise ValueError(f"{vdir}: kind {card.get('kind')!r} is not {ANALYSIS_KIND}")
    layout = json.loads((vdir / FEATURE_LAYOUT).read_text())
    if tuple(layout["features"]) != FEATURE_NAMES:
        raise ValueError(f"{vdir}: feature layout differs from this code's FEATURE_NAMES")
    cfg = card.get("config", {})
    net = build_network(tuple(cfg.get("hidden", (64, 64))), float(cfg.get("dropout", 0.2)))
    net.load_state_dict(torch.load(vdir / WEIGHTS, map_location="cpu", weights_only=True))
    return MarketAnalysisModel(net, layout, card)
