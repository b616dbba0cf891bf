"""What each model's votes must keep earning, read from its model cards (``consensus.mute``).

- A policy (the risk manager, the strategy optimizer, the execution agent): its validation
  level, the rate at which its votes beat their alternative (ties counting half) on its
  validation days, where its calibration was fitted (``calibration.reliability.fit.calibrated
  .mean_y``), the yardstick the track records score live votes with; else the same rate on the
  held-out days of the calibration check (``check``); a card without a calibration: 0.5, a coin
  flip against its alternative.
- The market analyst (a classifier): the majority-class baseline, the accuracy of always
  predicting the most common class, on its validation days
  (``metrics.validation.majority_class.accuracy``; else the most common class's share of
  ``metrics.validation.class_counts``; else measured live over its rolling window), against
  which its predicted classes are scored at the card's ``config.horizon`` and
  ``config.thresholds_bps``. Without those two its votes are judged as a policy's, against 0.5.

Every version in the registry gets its floor, not only the one served at start, so a model
replaced while the swarm runs is judged against its own card.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from swarm_ray.core.roles import ROLES
from swarm_ray.features.outcomes import COIN_FLIP, VoteFloor
from swarm_ray.registry.files import RegistryError, read_card
from swarm_ray.registry.policies import versions

__all__ = ["card_floor", "vote_floors"]

log = logging.getLogger(__name__)


def _number(x: Any) -> float | None:
    if isinstance(x, int | float) and not isinstance(x, bool) and 0.0 <= x <= 1.0:
        return float(x)
    return None


def _get(d: Any, *keys: str) -> Any:
    for k in keys:
        if not isinstance(d, dict):
            return None
        d = d.get(k)
    return d


def _days(days: Any) -> str:
    if isinstance(days, list) and days:
        return f"{days[0]}..{days[-1]}" if len(days) > 1 else str(days[0])
    return "?"


def _classifier_floor(model: str, version: str, card: dict[str, Any]) -> VoteFloor | None:
    cfg = card.get("config") or {}
    horizon, thresholds = cfg.get("horizon"), cfg.get("thresholds_bps")
    if not (isinstance(horizon, int) and horizon >= 1):
        return None
    if not (isinstance(thresholds, list | tuple) and len(thresholds) == 2):
        return None
    val = _get(card, "metrics", "validation") or {}
    days = _days(_get(card, "data", "validation_days"))
    value = _number(_get(val, "majority_class", "accuracy"))
    source = f"majority-class baseline on its {version} card, validation days {days}"
    counts = val.get("class_counts")
    if value is None and isinstance(counts, list) and counts and sum(counts) > 0:
        value = _number(max(counts) / sum(counts))
        source = f"most common class's share on its {version} card, validation days {days}"
    if value is None:
        source = "majority-class baseline of its rolling window, none on its card"
    return VoteFloor(
        model, version, "accuracy", value, source, horizon, (float(thresholds[0]),
        float(thresholds[1]))
    )  # fmt: skip


def card_floor(model: str, version: str, card: dict[str, Any]) -> VoteFloor:
    """The floor of one model version from its card (see the module's docstring)."""
    if card.get("kind") == "market_analysis":
        floor = _classifier_floor(model, version, card)
        if floor is not None:
            return floor
    cal = card.get("calibration") or {}
    horizon = cal.get("horizon_bars") if isinstance(cal.get("horizon_bars"), int) else None
    for part, what in (("fit", "validation"), ("check", "held-out")):
        rate = _number(_get(cal, "reliability", part, "calibrated", "mean_y"))
        if rate is not None:
            days = _days(cal.get("fitted_on" if part == "fit" else "checked_on"))
            source = f"{what} beat rate on its {version} card, days {days}"
            return VoteFloor(model, version, "hit_rate", rate, source, horizon)
    source = f"a coin flip: its {version} card records no beat rate"
    return VoteFloor(model, version, "hit_rate", COIN_FLIP, source, horizon)


def vote_floors(models_dir: str | Path) -> tuple[VoteFloor, ...]:
    """The floor of every version of every role's model in the registry at ``models_dir``
    (a version whose card cannot be read has none: it is judged against a coin flip)."""
    out: list[VoteFloor] = []
    for role in ROLES:
        for version in versions(models_dir, role):
            try:
                card = read_card(Path(models_dir) / role / version)
            except (RegistryError, OSError) as exc:
                log.warning("%s %s: no model card for its vote floor (%s)", role, version, exc)
                continue
            out.append(card_floor(role, version, card))
    return tuple(out)
