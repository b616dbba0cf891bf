"""What each action would have earned in hindsight: the yardstick of votes.

A vote's outcome is the edge of its first-level quotes over the bar they would have rested in,
under the kline fill model the backtest and the paper exchange use (a resting quote fills when
the bar trades strictly through its price), each fill marked to the mid ``horizon`` bars after
the decision and net of the maker fee; a market order (``reduce_*``) pays the taker fee and half
the market spread. Standing aside earns exactly 0. Edges are in basis points of the mid, per
unit of the order size, so they compare across symbols and prices.

Two uses, one implementation: calibrating the models' confidences on validation days, and the
agents' track records while the swarm runs.

What it leaves out: ladder levels beyond the first, quantisation to the tick, and the queue.
A quote that does not fill earns 0, the same as standing aside: a tie.

The market analyst's network is also judged as the classifier it is: its predicted direction
class against the class of the return that followed (``classify_returns``, as in training).
A ``VoteFloor`` is what a model must keep earning, read from its model card.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from envs.actions import N_ENV_ACTIONS, Action

__all__ = [
    "ACTIVE",
    "COIN_FLIP",
    "NOT_MODEL",
    "PASSIVE",
    "OutcomeParams",
    "VoteFloor",
    "action_edges",
    "alternative",
    "classify_returns",
    "is_model_vote",
    "scored_action",
    "side_of",
    "vote_label",
]

ACTIVE = "active"
"""A vote to trade: any quote or market order."""
PASSIVE = "passive"
"""A vote not to trade: ``stand_aside`` or ``emergency_stop``."""
NOT_MODEL = ("rules", "none", "scripted")
"""Opinion versions that are not a model's answer: hard rules, no model, scripted votes."""


def is_model_vote(model_version: str) -> bool:
    """Whether an opinion of this version is a model's vote: the votes calibration and the
    track records score."""
    return model_version not in NOT_MODEL


def scored_action(action: Action | int) -> Action:
    """The action a vote is scored as: an ``emergency_stop`` trades nothing, as standing aside."""
    a = Action(action)
    return Action.STAND_ASIDE if a is Action.EMERGENCY_STOP else a


@dataclass(frozen=True)
class OutcomeParams:
    """How outcomes are scored: the horizon, the fee tier and the action distances."""

    horizon: int
    """Bars after the decision at which fills are marked to the mid."""
    maker_bps: float
    taker_bps: float
    table: tuple[tuple[float, float, int], ...]
    """``envs.market_making.action_table`` in bps: (bid distance, ask distance, direction)."""
    market_half_spread_bps: float = 0.0

    def __post_init__(self) -> None:
        if self.horizon < 1:
            raise ValueError(f"horizon must be >= 1 bar, got {self.horizon}")
        if len(self.table) != N_ENV_ACTIONS:
            raise ValueError(f"table: {len(self.table)} actions, expected {N_ENV_ACTIONS}")


def side_of(action: Action | int) -> str:
    return PASSIVE if Action(action) in (Action.STAND_ASIDE, Action.EMERGENCY_STOP) else ACTIVE


def action_edges(
    p: OutcomeParams,
    mid: Sequence[float] | np.ndarray,
    high: Sequence[float] | np.ndarray,
    low: Sequence[float] | np.ndarray,
    later: Sequence[float] | np.ndarray,
) -> np.ndarray:
    """(n, 7) edge in bps of every environment action at each of ``n`` decisions.

    ``mid``: the mid at each decision; ``high``/``low``: the bar that follows it (where its
    quotes rest); ``later``: the mid ``horizon`` bars after the decision. A non-finite input
    gives a nan row (no outcome).
    """
    mid, high, low, later = (np.asarray(x, dtype=np.float64) for x in (mid, high, low, later))
    out = np.zeros((len(mid), N_ENV_ACTIONS))
    ok = np.isfinite(mid) & np.isfinite(high) & np.isfinite(low) & np.isfinite(later)
    ok &= mid > 0
    m = np.where(ok, mid, 1.0)
    hi, lo, lat = (np.where(ok, x, 1.0) for x in (high, low, later))
    move = (lat - m) / m * 1e4  # bps
    for a, (bid_d, ask_d, direction) in enumerate(p.table):
        if direction:
            out[:, a] = direction * move - p.taker_bps - p.market_half_spread_bps
            continue
        if not math.isnan(bid_d):  # bought at the bid: worth the later mid
            bid = m * (1 - bid_d / 1e4)
            out[:, a] += np.where(lo < bid, (lat - bid) / m * 1e4 - p.maker_bps, 0.0)
        if not math.isnan(ask_d):
            ask = m * (1 + ask_d / 1e4)
            out[:, a] += np.where(hi > ask, (ask - lat) / m * 1e4 - p.maker_bps, 0.0)
    out[~ok] = np.nan
    return out


def alternative(action: Action | int, ranking: Sequence[float] | None = None) -> Action:
    """What a vote is scored against: standing aside for a vote to trade; for a vote not to
    trade, the active action ``ranking`` (a model's Q-values) puts first, else quote_tight."""
    if side_of(action) == ACTIVE:
        return Action.STAND_ASIDE
    if ranking is None:
        return Action.QUOTE_TIGHT
    r = np.asarray(ranking, dtype=np.float64)[1:N_ENV_ACTIONS]
    return Action(1 + int(np.argmax(r)))


def vote_label(edges: np.ndarray, action: Action | int, alt: Action | int) -> float:
    """1 when the vote beat its alternative, 0 when it lost, 0.5 on a tie; nan without an
    outcome. An ``emergency_stop`` scores as standing aside."""
    mine, other = float(edges[int(scored_action(action))]), float(edges[int(alt)])
    if math.isnan(mine) or math.isnan(other):
        return math.nan
    return 1.0 if mine > other else 0.0 if mine < other else 0.5


def classify_returns(ret_bps: np.ndarray, thresholds_bps: tuple[float, float]) -> np.ndarray:
    """Class index 0..4 of returns in bps: strong sell, sell, hold, buy, strong buy."""
    t1, t2 = thresholds_bps
    r = np.asarray(ret_bps, dtype=np.float64)
    cls = np.full(r.shape, 2, dtype=np.int64)
    cls[r > t1] = 3
    cls[r > t2] = 4
    cls[r < -t1] = 1
    cls[r < -t2] = 0
    return cls


COIN_FLIP = 0.5
"""The floor of a model version whose card records none: votes that beat their alternative half
the time (ties counting half) add nothing."""


@dataclass(frozen=True, slots=True)
class VoteFloor:
    """What one model version must keep earning, from its model card (``consensus.mute``)."""

    model: str
    version: str
    measure: Literal["hit_rate", "accuracy"]
    """``hit_rate``: its votes' rate of beating their alternative (ties half), as the track
    records score them; ``accuracy``: a classifier's share of predicted classes that were right."""
    value: float | None
    """The floor; ``None`` (accuracy only): the share of the most common class among the
    outcomes in the agent's rolling window (the majority-class baseline measured live)."""
    source: str
    """Where the floor comes from, for the log and the report."""
    horizon_bars: int | None = None
    """Bars ahead the figure was measured at: the votes' scoring horizon (``hit_rate``), the
    classes' forward-return horizon (``accuracy``, needed to score the predictions)."""
    thresholds_bps: tuple[float, float] | None = None
    """``accuracy``: the class thresholds of the forward return (``classify_returns``)."""
