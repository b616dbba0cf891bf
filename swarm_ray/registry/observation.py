"""The observation scales the swarm's policies were trained with, read from the registry."""

from __future__ import annotations

import json
import logging
from pathlib import Path

from swarm_ray.features.observation import ObservationSpec
from swarm_ray.registry.policies import SmokeModel, latest_dir, read_card

__all__ = ["observation_spec"]

log = logging.getLogger(__name__)


def observation_spec(models_dir: str | Path) -> ObservationSpec:
    """Scales of the policies' training env, from the newest strategy optimizer's card, and the
    market-analysis network's reference volatility from its feature layout."""
    models = Path(models_dir)
    analysis_ref = 1e-4
    try:
        layout = json.loads(
            (latest_dir(models, "market_analyst") / "feature_layout.json").read_text()
        )
        analysis_ref = float(layout["ref_vol"])
    except SmokeModel:
        raise
    except (FileNotFoundError, KeyError, ValueError):
        log.warning("no market_analyst layout under %s; analysis ref vol 1e-4", models)
    try:
        card = read_card(latest_dir(models, "strategy_optimizer"))
    except FileNotFoundError:
        card = {}
    return ObservationSpec.from_card(card, analysis_ref_vol=analysis_ref)
