"""The observation scales the swarm's policies were trained with, read from the registry."""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from pathlib import Path

from swarm_ray.core.roles import POLICY_ROLES
from swarm_ray.features.observation import ObservationSpec
from swarm_ray.registry.champions import serving_dir
from swarm_ray.registry.floors import vote_floors
from swarm_ray.registry.policies import (
    RegistryError,
    SmokeModel,
    layout_of,
    read_card,
)

__all__ = ["observation_spec"]

log = logging.getLogger(__name__)


def observation_spec(models_dir: str | Path) -> ObservationSpec:
    """Scales of the policies' training env, from the strategy optimizer's card, the
    observation layout of each DQN role's policy, and the market-analysis network's
    reference volatility from its feature layout: of the versions served by default (each
    model's champion, else its newest; ``registry.champions``); and the floor each model
    version's votes must keep (``registry.floors``)."""
    models = Path(models_dir)
    analysis_ref = 1e-4
    try:
        layout = json.loads(
            (serving_dir(models, "market_analyst") / "feature_layout.json").read_text()
        )
        analysis_ref = float(layout["ref_vol"])
    except SmokeModel:
        raise
    except (FileNotFoundError, KeyError, ValueError):
        log.warning("no market_analyst layout under %s; analysis ref vol 1e-4", models)
    cards: dict[str, dict] = {}
    for role in POLICY_ROLES:
        try:
            cards[role] = read_card(serving_dir(models, role))
        except FileNotFoundError:
            continue
    layouts = tuple((r, layout_of(c)) for r, c in cards.items() if layout_of(c) != "v2")
    # the sessions, sizes and (for v2) the pinned scales: the strategy optimizer's card, or a
    # v2 policy's when the strategy optimizer is on another layout and one exists
    v2 = [c for c in cards.values() if layout_of(c) == "v2"]
    card = cards.get("strategy_optimizer", {})
    if v2 and layout_of(card) != "v2":
        card = v2[0]
    spec = ObservationSpec.from_card(card, analysis_ref_vol=analysis_ref)
    # the v3 policies' rolling scale window: one for all (the coordinator builds one v3 row)
    windows = {
        r: int(((c.get("env_config") or {}).get("observation") or {}).get("scale_window", 240))
        for r, c in cards.items()
        if layout_of(c) == "v3"
    }
    if len(set(windows.values())) > 1:
        raise RegistryError(
            f"{models}: the layout-v3 policies were trained with different scale windows "
            f"({windows}); the swarm builds one v3 observation per cycle"
        )
    window = next(iter(windows.values()), spec.scale_window)
    floors = vote_floors(models)  # consensus.mute's, of every version
    return replace(spec, layouts=layouts, scale_window=window, floors=floors)
