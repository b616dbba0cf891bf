"""Calibrated confidence: one meaning for every agent's vote.

A model's confidence in its vote is the probability that the vote beats its alternative over
the next ``horizon`` bars at the named fee tier, a tie counting half (``features.outcomes``):
a vote to trade is scored against standing aside, a vote to stand aside against the model's own
best way to trade. The map from the model's raw output to that probability is fitted on
validation days and kept in the model card under ``calibration``:

- DQN policies: the score is the Q-margin of the vote over its alternative (>= 0 for the greedy
  action); the analyst: the probability of its most probable class;
- one logistic (Platt) map per side, ``p = 1 / (1 + exp(-(a * score + b)))``; a side with too
  few votes to fit gets its base rate.

The card also holds the map's reliability (expected calibration error and its bins) on the
validation days and on held-out evaluation days. Loading the map never executes anything: it
is four numbers in JSON.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from swarm_ray.features.outcomes import ACTIVE, PASSIVE, alternative, side_of

__all__ = [
    "CALIBRATION_MEANING",
    "MIN_VOTES",
    "Calibration",
    "fit_platt",
    "platt",
    "policy_scores",
    "reliability",
]

CALIBRATION_MEANING = (
    "probability that the vote beats its alternative (trade vs stand aside) over the next "
    "{horizon} bars at the {fees} fee tier, a tie counting half"
)
MIN_VOTES = 30
"""Fewer votes than this on a side: its map is the side's base rate."""
Q_MARGIN = "q_margin"
CLASS_PROBABILITY = "class_probability"
N_BINS = 10


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(z, -50.0, 50.0)))


def platt(a: float, b: float, x: Any) -> Any:
    """The logistic map ``1 / (1 + exp(-(a x + b)))`` of a score (a float or an array)."""
    p = _sigmoid(a * np.asarray(x, dtype=np.float64) + b)
    return float(p) if p.ndim == 0 else p


def fit_platt(
    scores: Sequence[float] | np.ndarray, labels: Sequence[float] | np.ndarray, l2: float = 1e-3
) -> tuple[float, float]:
    """(a, b) of ``p = sigmoid(a * score + b)`` by maximum likelihood on soft ``labels`` in
    [0, 1] (Newton steps, a small ridge on the standardised slope). Fewer than ``MIN_VOTES``
    votes or a constant score: ``a = 0`` and ``b`` the base rate's logit."""
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(labels, dtype=np.float64)
    if s.shape != y.shape:
        raise ValueError(f"scores {s.shape} and labels {y.shape} differ in shape")
    keep = np.isfinite(s) & np.isfinite(y)
    s, y = s[keep], y[keep]
    if len(s) == 0:
        return 0.0, 0.0
    base = float(np.clip(y.mean(), 1e-3, 1 - 1e-3))
    sd = float(s.std())
    if len(s) < MIN_VOTES or sd < 1e-12:
        return 0.0, math.log(base / (1 - base))
    mu = float(s.mean())
    x = np.stack([(s - mu) / sd, np.ones_like(s)], axis=1)
    w = np.array([0.0, math.log(base / (1 - base))])
    ridge = np.diag([l2 * len(s), 0.0])
    for _ in range(50):
        p = _sigmoid(x @ w)
        grad = x.T @ (p - y) + ridge @ w
        hess = (x * (p * (1 - p))[:, None]).T @ x + ridge + 1e-9 * np.eye(2)
        step = np.linalg.solve(hess, grad)
        w -= step
        if np.abs(step).max() < 1e-10:
            break
    a = float(w[0] / sd)
    return a, float(w[1] - a * mu)


def reliability(
    p: Sequence[float] | np.ndarray, y: Sequence[float] | np.ndarray, n_bins: int = N_BINS
) -> dict[str, Any]:
    """Expected calibration error and its bins (equal widths on [0, 1]): per bin the votes, their
    mean predicted probability and mean outcome; ECE weights each bin's gap by its votes."""
    p = np.asarray(p, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    keep = np.isfinite(p) & np.isfinite(y)
    p, y = p[keep], y[keep]
    idx = np.minimum((p * n_bins).astype(int), n_bins - 1) if len(p) else np.zeros(0, int)
    bins = []
    ece = 0.0
    for b in range(n_bins):
        m = idx == b
        n = int(m.sum())
        if n == 0:
            continue
        pm, ym = float(p[m].mean()), float(y[m].mean())
        ece += n / len(p) * abs(pm - ym)
        bins.append({"lo": b / n_bins, "hi": (b + 1) / n_bins, "n": n, "p": pm, "y": ym})
    return {
        "ece": float(ece) if len(p) else None,
        "n": len(p),
        "mean_p": float(p.mean()) if len(p) else None,
        "mean_y": float(y.mean()) if len(y) else None,
        "bins": bins,
    }


def policy_scores(q_values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Greedy actions of (n, n_actions) Q-values and each one's margin over its alternative."""
    q = np.asarray(q_values, dtype=np.float64)
    actions = q.argmax(axis=-1)
    alts = np.array([int(alternative(int(a), row)) for a, row in zip(actions, q, strict=True)])
    margin = q[np.arange(len(q)), actions] - q[np.arange(len(q)), alts]
    return actions, margin


@dataclass(frozen=True)
class Calibration:
    """A fitted map from a model's raw output to the calibrated confidence of its vote."""

    score: str
    """``q_margin`` (DQN policies) or ``class_probability`` (the analyst)."""
    maps: dict[str, tuple[float, float]]
    """(a, b) per side: ``active`` (votes to trade), ``passive`` (votes to stand aside)."""
    horizon: int
    fees: str
    maker_bps: float
    taker_bps: float
    days: tuple[str, ...] = ()
    """The days the map was fitted on."""
    extra: dict[str, Any] = field(default_factory=dict)
    """Reliability figures, counts and the plot's file name, kept in the card as they are."""

    def __post_init__(self) -> None:
        if self.score not in (Q_MARGIN, CLASS_PROBABILITY):
            known = f"{Q_MARGIN} or {CLASS_PROBABILITY}"
            raise ValueError(f"calibration.score: {self.score!r} is not {known}")
        for side in (ACTIVE, PASSIVE):
            a, b = self.maps.get(side, (0.0, 0.0))
            if not (math.isfinite(a) and math.isfinite(b)):
                raise ValueError(f"calibration.maps.{side}: not finite ({a}, {b})")

    @property
    def meaning(self) -> str:
        return CALIBRATION_MEANING.format(horizon=self.horizon, fees=self.fees)

    def probability(self, score: np.ndarray, sides: Sequence[str]) -> np.ndarray:
        a = np.array([self.maps.get(s, (0.0, 0.0))[0] for s in sides])
        b = np.array([self.maps.get(s, (0.0, 0.0))[1] for s in sides])
        return _sigmoid(a * np.asarray(score, dtype=np.float64) + b)

    def confidence(self, outputs: np.ndarray, actions: np.ndarray) -> np.ndarray:
        """Calibrated confidence of each row's vote: ``outputs`` are Q-values or class
        probabilities (n, k), ``actions`` the greedy actions (policies) or classes."""
        out = np.asarray(outputs, dtype=np.float64)
        if self.score == Q_MARGIN:
            acts, score = policy_scores(out)
            sides = [side_of(int(a)) for a in acts]
        else:
            score = out[np.arange(len(out)), np.asarray(actions)]
            sides = [ACTIVE] * len(out)
        return self.probability(score, sides)

    def to_card(self) -> dict[str, Any]:
        return {
            "kind": "platt",
            "meaning": self.meaning,
            "score": self.score,
            "maps": {s: list(ab) for s, ab in self.maps.items()},
            "horizon_bars": self.horizon,
            "fees": {"tier": self.fees, "maker_bps": self.maker_bps, "taker_bps": self.taker_bps},
            "fitted_on": list(self.days),
            **self.extra,
        }

    @classmethod
    def from_card(cls, card: Mapping[str, Any]) -> Calibration | None:
        """The card's map, or None when the card has none. A malformed map is an error that
        names the key."""
        c = card.get("calibration")
        if c is None:
            return None
        try:
            if c.get("kind") != "platt":
                raise ValueError(f"kind {c.get('kind')!r} (expected platt)")
            maps = {str(s): (float(ab[0]), float(ab[1])) for s, ab in dict(c["maps"]).items()}
            fees = c["fees"]
            known = {"kind", "meaning", "score", "maps", "horizon_bars", "fees", "fitted_on"}
            return cls(
                score=str(c["score"]),
                maps=maps,
                horizon=int(c["horizon_bars"]),
                fees=str(fees["tier"]),
                maker_bps=float(fees["maker_bps"]),
                taker_bps=float(fees["taker_bps"]),
                days=tuple(str(d) for d in c.get("fitted_on", ())),
                extra={k: v for k, v in c.items() if k not in known},
            )
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            raise ValueError(f"model card calibration: {exc}") from exc
