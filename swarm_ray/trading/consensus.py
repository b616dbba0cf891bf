"""Weighted consensus over the agents' opinions: a pure function, no Ray, no I/O.

score(a) = sum of weight_i * confidence_i over the agents voting for a. The top-scoring action
wins when its share of the total score reaches the threshold and the agents that answered carry
at least the quorum of the configured weight. When the vote splits (below the threshold) the
``no_consensus`` rule decides: the safe action, a wide quote, or the last action a vote carried;
without a quorum (or without votes) the safe action applies. The risk manager's
``emergency_stop`` overrides everything, whatever the other votes say.

With ``vote_on: ladder`` the votes to quote (``quote_tight``, ``quote_wide``, ``skew_*``) count
as one side: when its score carries, the ladder's bid and ask distances are the means of the
quoting votes' distances weighted by weight x confidence, so a skew voted with more confidence
moves the ladder further; the action recorded is the top-scoring quoting action.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from pydantic import Field, field_validator, model_validator

from envs.actions import Action
from swarm_ray.core.config import StrictModel
from swarm_ray.core.domain import Opinion
from swarm_ray.core.roles import RISK_MANAGER, ROLES

__all__ = [
    "QUOTING",
    "ROLES",
    "SAFETY_RANK",
    "AdaptConfig",
    "Consensus",
    "ConsensusConfig",
    "MuteConfig",
    "adapt_weights",
    "decide",
]

QUOTING = frozenset({Action.QUOTE_TIGHT, Action.QUOTE_WIDE, Action.SKEW_BUY, Action.SKEW_SELL})
"""Actions that rest quotes on both sides: the ones ``vote_on: ladder`` blends."""


# Lower is safer; ties between equal scores go to the safer action so the outcome is
# deterministic and never more aggressive than a tie warrants.
SAFETY_RANK: dict[Action, int] = {
    Action.EMERGENCY_STOP: 0,
    Action.STAND_ASIDE: 1,
    Action.REDUCE_BUY: 2,
    Action.REDUCE_SELL: 2,
    Action.QUOTE_WIDE: 3,
    Action.SKEW_BUY: 4,
    Action.SKEW_SELL: 4,
    Action.QUOTE_TIGHT: 5,
}


class AdaptConfig(StrictModel):
    """Weights that follow each agent's track record (multiplicative weights), within bounds."""

    enabled: bool = Field(False, description="adapt the weights online (off: the configured)")
    eta: float = Field(0.05, gt=0, le=1, description="learning rate per vote scored")
    min_factor: float = Field(0.5, gt=0, le=1, description="lowest weight, x the configured")
    max_factor: float = Field(2.0, ge=1, le=10, description="highest weight, x the configured")


class MuteConfig(StrictModel):
    """Mute (or down-weight) an agent whose model has stopped earning, until its model changes.

    A policy's rolling hit rate (its votes' rate of beating their alternative, ties half) is
    held against the beat rate its model card measured on its validation days; the market
    analyst's rolling accuracy (its predicted classes) against the majority-class baseline."""

    enabled: bool = Field(False, description="mute agents whose votes stopped earning")
    window: int = Field(
        500, ge=10, le=100_000, description="scored votes (predictions) in the rolling rate"
    )
    min_votes: int = Field(
        200, ge=1, le=100_000, description="scored votes in the window before an agent is judged"
    )
    margin: float = Field(
        0.05, ge=0, le=0.5, description="how far below its floor the rolling rate must fall"
    )
    factor: float = Field(
        0.0, ge=0, le=1, description="weight multiplier of a muted agent (0: no say at all)"
    )

    @model_validator(mode="after")
    def _enough_window(self) -> MuteConfig:
        if self.min_votes > self.window:
            raise ValueError(
                f"min_votes ({self.min_votes}) must not exceed window ({self.window}): the "
                "window would never hold enough votes to judge"
            )
        return self


class ConsensusConfig(StrictModel):
    """Agent weights, the winning share and the quorum of responding weight."""

    weights: dict[str, float] = Field(
        default_factory=lambda: {
            "market_analyst": 0.25,
            "risk_manager": 0.30,
            "strategy_optimizer": 0.20,
            "execution_agent": 0.25,
        },
        description="vote weight of each agent role",
    )
    threshold: float = Field(0.65, gt=0, le=1, description="share of the score the winner needs")
    quorum: float = Field(
        0.5, gt=0, le=1, description="share of the configured weight that must answer"
    )
    safe_action: Action = Field(
        Action.STAND_ASIDE, description="what applies without a quorum or without votes"
    )
    no_consensus: Literal["stand_aside", "quote_wide", "keep_quotes"] = Field(
        "stand_aside",
        description="when the vote splits below the threshold: stand_aside (the safe action), "
        "quote_wide, or keep_quotes (keep quoting the last action a vote carried, re-centred "
        "on the mid; the safe action until a vote has carried)",
    )
    adapt: AdaptConfig = AdaptConfig()
    mute: MuteConfig = MuteConfig()
    vote_on: Literal["action", "ladder"] = Field(
        "action",
        description="action: the top-scoring action carries; ladder: the votes to quote count "
        "as one side and, when it carries, the ladder's distances are their weight x "
        "confidence weighted means",
    )

    @field_validator("weights")
    @classmethod
    def _weights(cls, v: dict[str, float]) -> dict[str, float]:
        if not v:
            raise ValueError("at least one agent weight is needed")
        unknown = sorted(set(v) - set(ROLES))
        if unknown:  # a misspelt role would silently never count
            raise ValueError(f"unknown agent roles {unknown}; the roles are {list(ROLES)}")
        for name, w in v.items():
            if not (w >= 0):
                raise ValueError(f"weight of {name!r} must be >= 0, got {w}")
        if sum(v.values()) <= 0:
            raise ValueError("weights must not all be zero")
        return v

    @field_validator("safe_action", mode="before")
    @classmethod
    def _action_by_name(cls, v: object) -> object:
        if isinstance(v, str) and not v.isdigit():
            try:
                return Action[v.upper()]
            except KeyError:
                raise ValueError(f"unknown action {v!r}") from None
        return v

    @model_validator(mode="after")
    def _safe(self) -> ConsensusConfig:
        if self.safe_action not in (Action.STAND_ASIDE, Action.EMERGENCY_STOP):
            raise ValueError("safe_action must be stand_aside or emergency_stop")
        return self

    @property
    def total_weight(self) -> float:
        return float(sum(self.weights.values()))


@dataclass(frozen=True, slots=True)
class Consensus:
    """The outcome of one vote."""

    action: Action
    """What the swarm does (before the risk gate)."""
    winner: Action | None
    """The top-scoring action, whether or not it carried."""
    share: float
    """The winner's share of the total score, in [0, 1] (0 without votes)."""
    confidence: float
    """The winner's score over the responding weight: the weighted confidence behind it."""
    responding_weight: float
    """Share of the configured weight whose agents answered, in [0, 1]."""
    reason: str
    """``consensus``, ``emergency_stop``, ``no_quorum``, ``below_threshold`` or ``no_votes``."""
    scores: Mapping[str, float] = field(default_factory=dict)
    """score by action name, for the journal and the dashboard."""
    ladder: tuple[float, float] | None = None
    """``vote_on: ladder``: the carried ladder's (bid, ask) distances from the mid, in bps."""
    winning_score: float = 0.0
    """The winner's score: its action's, or with ``vote_on: ladder`` the quoting side's."""

    @property
    def carried(self) -> bool:
        return self.reason in ("consensus", "emergency_stop")


def _tie_key(item: tuple[Action, float]) -> tuple[float, int, int]:
    action, score = item
    return (-score, SAFETY_RANK[action], int(action))


def _blend(
    seen: Mapping[str, Opinion], weights: Mapping[str, float], table: Sequence[tuple]
) -> tuple[float, float] | None:
    """Weight x confidence weighted mean (bid, ask) distances of the votes to quote."""
    total = bid = ask = 0.0
    for agent, op in seen.items():
        if op.action in QUOTING:
            w = weights[agent] * op.confidence
            b, a, _ = table[int(op.action)]
            total, bid, ask = total + w, bid + w * b, ask + w * a
    return (bid / total, ask / total) if total > 0 else None


def decide(
    opinions: Iterable[Opinion],
    cfg: ConsensusConfig,
    last_agreed: Action | None = None,
    table: Sequence[tuple[float, float, int]] | None = None,
    quorum_of: float | None = None,
) -> Consensus:
    """The consensus of ``opinions`` (one per agent that answered in time) under ``cfg``.

    Opinions from agents without a configured weight are ignored; a second opinion from the
    same agent is ignored too (the first one counts). ``last_agreed`` is the last action a vote
    carried (not an emergency stop), which ``no_consensus: keep_quotes`` keeps. ``table``: each
    action's (bid, ask, direction) in bps (``QuotingParams.table()``), which ``vote_on:
    ladder`` needs. ``quorum_of``: the weight the quorum is a share of (default: the total of
    ``cfg.weights``); with agents muted, the total before muting, so that a muted agent's
    weight does not count as answering.
    """
    if cfg.vote_on == "ladder" and table is None:
        raise ValueError("consensus.vote_on: ladder needs the quoting table")
    weights = cfg.weights
    total = cfg.total_weight if quorum_of is None else quorum_of
    seen: dict[str, Opinion] = {}
    for op in opinions:
        if op.agent_id in weights and op.agent_id not in seen:
            seen[op.agent_id] = op
    responding = sum(weights[a] for a in seen) / total if total > 0 else 0.0
    risk = seen.get(RISK_MANAGER)
    scores: dict[Action, float] = {}
    for agent, op in seen.items():
        scores[op.action] = scores.get(op.action, 0.0) + weights[agent] * op.confidence
    score_sum = sum(scores.values())
    named = {a.label: s for a, s in sorted(scores.items())}

    if risk is not None and risk.action is Action.EMERGENCY_STOP:
        share = scores[Action.EMERGENCY_STOP] / score_sum if score_sum > 0 else 1.0
        conf = risk.confidence
        return Consensus(
            Action.EMERGENCY_STOP, Action.EMERGENCY_STOP, share, conf, responding,
            "emergency_stop", named, winning_score=scores[Action.EMERGENCY_STOP],
        )  # fmt: skip
    if not seen:
        return Consensus(cfg.safe_action, None, 0.0, 0.0, 0.0, "no_votes", named)
    ladder = None
    if cfg.vote_on == "ladder" and any(a in QUOTING for a in scores):
        # the votes to quote are one side, named after its top-scoring action
        quoting = {a: s for a, s in scores.items() if a in QUOTING}
        top = min(quoting.items(), key=_tie_key)[0]
        sides = {a: s for a, s in scores.items() if a not in QUOTING}
        sides[top] = sum(quoting.values())
        winner, best = min(sides.items(), key=_tie_key)
        if winner in QUOTING:
            assert table is not None
            ladder = _blend(seen, weights, table)
    else:
        winner, best = min(scores.items(), key=_tie_key)
    share = best / score_sum if score_sum > 0 else 0.0
    resp_w = sum(weights[a] for a in seen)
    confidence = best / resp_w if resp_w > 0 else 0.0
    if responding + 1e-12 < cfg.quorum:
        reason = "no_quorum"
    elif score_sum <= 0 or share + 1e-12 < cfg.threshold:
        reason = "below_threshold"
    else:
        reason = "consensus"
    # a non-risk agent voting emergency_stop has no override power: it is just a vote, and a
    # carried emergency_stop vote is honoured as such
    if reason == "consensus":
        action = winner
        return Consensus(action, winner, share, confidence, responding, reason, named, ladder, best)
    if reason == "below_threshold" and cfg.no_consensus == "quote_wide":
        action = Action.QUOTE_WIDE
    elif reason == "below_threshold" and cfg.no_consensus == "keep_quotes" and last_agreed:
        action = last_agreed
    else:
        action = cfg.safe_action
    return Consensus(
        action, winner, share, confidence, responding, reason, named, winning_score=best
    )


def adapt_weights(
    weights: dict[str, float], cfg: ConsensusConfig, scored: Iterable[tuple[str, float]]
) -> dict[str, float]:
    """Multiplicative weights: each scored vote ``(agent, label)`` multiplies its agent's weight
    by exp(eta (label - 0.5)), so a vote that beat its alternative raises it, one that lost
    lowers it and a tie leaves it; each weight stays within ``[min_factor, max_factor]`` x its
    configured one. Returns the new weights."""
    a, base = cfg.adapt, cfg.weights
    out = dict(weights)
    for agent, label in scored:
        if agent in out:
            w = out[agent] * math.exp(a.eta * (label - 0.5))
            out[agent] = min(max(w, base[agent] * a.min_factor), base[agent] * a.max_factor)
    return out
