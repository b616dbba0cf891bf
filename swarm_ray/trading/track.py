"""Each agent's track record: its votes scored in hindsight, as calibration scores them.

A vote cast at a cycle waits until the market has shown what it would have earned: the bar its
quotes would have rested in (the bar opening at the next bar boundary, or at the cycle's own
time on a boundary) and the mid ``horizon_bars`` later (the close of the bar opening
``horizon_bars - 1`` bars after it). Then ``features.outcomes`` scores it against the
alternative its confidence was stated against (``Opinion.alternative``: standing aside for a
trade, the model's best trade for standing aside, the model's own choice for a vote cast for
its alternative; without one, ``features.outcomes.alternative``): 1 won, 0 lost, 0.5 a tie.
Only the models' votes are scored: not hard rules, scripted votes, or the safe vote of an
agent without its model (bad data, no answer). With cycles shorter than a bar, a vote cast
inside a bar is scored on the next whole bar.

A classifier's predictions (``Opinion.prediction``: the market analyst network's direction
class) are scored too, as in its training: against the class of the return from the close of
the newest bar its features saw to the close ``horizon`` bars later, once per bar.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
from pydantic import Field

from envs.actions import Action
from swarm_ray.core.config import StrictModel
from swarm_ray.core.domain import Opinion
from swarm_ray.core.instruments import Kline
from swarm_ray.features.outcomes import (
    OutcomeParams,
    action_edges,
    alternative,
    classify_returns,
    is_model_vote,
    scored_action,
    vote_label,
)

__all__ = ["AgentTrack", "ScoredPrediction", "ScoredVote", "TrackConfig", "TrackRecords"]

BAR_MS = 60_000


class TrackConfig(StrictModel):
    """How the agents' votes are scored in hindsight (their track records)."""

    horizon_bars: int = Field(5, ge=1, le=240, description="bars to the mid fills are marked to")
    maker_bps: float = Field(2.0, ge=-10, le=100, description="maker fee the hindsight pays")
    taker_bps: float = Field(5.0, ge=0, le=100, description="taker fee of reduce_* votes")
    market_half_spread_bps: float = Field(
        0.0, ge=0, le=100, description="market-order cost beyond the mid, of reduce_* votes"
    )


@dataclass(frozen=True)
class ScoredVote:
    cycle: int
    agent_id: str
    label: float
    """1 beat its alternative, 0 lost to it, 0.5 a tie."""
    edge_bps: float
    """What the vote's action would have earned, bps of the mid, net of fees."""
    confidence: float
    model_version: str = ""
    """The version of the model that cast it."""


@dataclass(frozen=True)
class ScoredPrediction:
    """A classifier's predicted class against the class the market then showed."""

    cycle: int
    agent_id: str
    model_version: str
    predicted: int
    realized: int

    @property
    def hit(self) -> float:
        return 1.0 if self.predicted == self.realized else 0.0


@dataclass(frozen=True)
class _Prediction:
    cycle: int
    agent_id: str
    model_version: str
    predicted: int
    bar_open_ms: int
    """The open time of the newest bar the features saw."""
    close: float
    """Its close."""
    due_open_ms: int
    """The open time of the bar whose close the prediction is scored on."""
    thresholds_bps: tuple[float, float]


@dataclass
class AgentTrack:
    """One agent's running record."""

    scored: int = 0
    hits: float = 0.0
    confidence: float = 0.0
    edge_bps: float = 0.0

    def add(self, v: ScoredVote) -> None:
        self.scored += 1
        self.hits += v.label
        self.confidence += v.confidence
        self.edge_bps += v.edge_bps

    def as_dict(self) -> dict[str, float | int | None]:
        n = self.scored
        return {
            "scored": n,
            "hit_rate": self.hits / n if n else None,
            "scored_confidence": self.confidence / n if n else None,
            "mean_edge_bps": self.edge_bps / n if n else None,
        }


@dataclass
class _Pending:
    cycle: int
    rest_open_ms: int
    mid: float
    votes: list[tuple[str, Action, Action, float, str]] = field(default_factory=list)


class TrackRecords:
    """Votes waiting for their outcome, and every agent's record so far."""

    def __init__(self, cfg: TrackConfig, table: Sequence[tuple[float, float, int]]) -> None:
        self.cfg = cfg
        self.params = OutcomeParams(
            horizon=cfg.horizon_bars,
            maker_bps=cfg.maker_bps,
            taker_bps=cfg.taker_bps,
            table=tuple(table),
            market_half_spread_bps=cfg.market_half_spread_bps,
        )
        # votes wait horizon_bars + 1 bars: room for cycles of a second, and a bound if bars stop
        self._pending: deque[_Pending] = deque(maxlen=100_000)
        self.agents: dict[str, AgentTrack] = {}
        self._edge_sum = np.zeros(len(table))
        self._edge_n = 0
        self._predictions: deque[_Prediction] = deque(maxlen=100_000)
        self._predicted: set[tuple[str, int]] = set()  # (agent, bar) of the pending ones

    def set_table(self, table: Sequence[tuple[float, float, int]]) -> None:
        """New quoting distances (a re-tune): votes scored from now on, including those still
        waiting, are scored with them."""
        self.params = replace(self.params, table=tuple(table))

    def add(self, cycle: int, time_ns: int, mid: float, opinions: Iterable[Opinion]) -> None:
        """The votes of a cycle, to score once their bars have closed."""
        if not (mid > 0):
            return
        votes = [
            (
                o.agent_id,
                o.action,
                o.alternative or alternative(o.action),
                o.confidence,
                o.model_version,
            )
            for o in opinions
            if is_model_vote(o.model_version)
        ]
        if votes:
            t_ms = time_ns // 1_000_000
            rest = -(-t_ms // BAR_MS) * BAR_MS  # the next bar boundary (this one if on it)
            self._pending.append(_Pending(cycle, rest, mid, votes))

    def resolve(self, bars: Sequence[Kline]) -> list[ScoredVote]:
        """Score every pending vote whose bars are in ``bars`` (the coordinator's window)."""
        if not self._pending or not bars:
            return []
        by_open = {b.open_time_ms: b for b in bars}
        h = self.params.horizon
        out: list[ScoredVote] = []
        while self._pending:
            p = self._pending[0]
            rest = by_open.get(p.rest_open_ms)
            later = by_open.get(p.rest_open_ms + (h - 1) * BAR_MS)
            if later is None:
                if bars[-1].open_time_ms < p.rest_open_ms + (h - 1) * BAR_MS:
                    break  # not yet closed: neither are the votes after it
                self._pending.popleft()  # a gap in the bars: this vote cannot be scored
                continue
            self._pending.popleft()
            if rest is None:
                continue
            (edges,) = action_edges(
                self.params, [p.mid], [float(rest.high)], [float(rest.low)], [float(later.close)]
            )
            if not np.isfinite(edges).all():
                continue
            self._edge_sum += edges
            self._edge_n += 1
            for agent, action, alt, conf, version in p.votes:
                label = vote_label(edges, action, alt)
                edge = float(edges[int(scored_action(action))])
                v = ScoredVote(p.cycle, agent, label, edge, conf, version)
                self.agents.setdefault(agent, AgentTrack()).add(v)
                out.append(v)
        return out

    def add_predictions(
        self,
        cycle: int,
        bar: Kline | None,
        opinions: Iterable[Opinion],
        horizons: Mapping[tuple[str, str], tuple[int, tuple[float, float]]],
    ) -> None:
        """The classifiers' predictions of a cycle whose features ended with ``bar``, to score
        once the bar ``horizon`` bars after it has closed. ``horizons``: (horizon, class
        thresholds in bps) of each (agent, model version) whose predictions are scored; one
        prediction per agent and bar (cycles shorter than a bar repeat it)."""
        if bar is None or not (float(bar.close) > 0):
            return
        for o in opinions:
            if o.prediction is None or not is_model_vote(o.model_version):
                continue
            spec = horizons.get((o.agent_id, o.model_version))
            if spec is None or (o.agent_id, bar.open_time_ms) in self._predicted:
                continue
            h, thresholds = spec
            due = bar.open_time_ms + h * BAR_MS
            self._predicted.add((o.agent_id, bar.open_time_ms))
            self._predictions.append(
                _Prediction(
                    cycle, o.agent_id, o.model_version, int(o.prediction), bar.open_time_ms,
                    float(bar.close), due, thresholds,
                )
            )  # fmt: skip

    def resolve_predictions(self, bars: Sequence[Kline]) -> list[ScoredPrediction]:
        """Score every pending prediction whose bar is in ``bars`` (a gap drops it)."""
        if not self._predictions or not bars:
            return []
        by_open = {b.open_time_ms: b for b in bars}
        newest = bars[-1].open_time_ms
        out: list[ScoredPrediction] = []
        waiting: deque[_Prediction] = deque(maxlen=self._predictions.maxlen)
        for p in self._predictions:
            later = by_open.get(p.due_open_ms)
            if later is None and newest < p.due_open_ms:
                waiting.append(p)  # not yet closed
                continue
            self._predicted.discard((p.agent_id, p.bar_open_ms))
            if later is None:
                continue  # a gap in the bars: it cannot be scored
            ret = (float(later.close) / p.close - 1.0) * 1e4
            if not np.isfinite(ret):
                continue
            realized = int(classify_returns(np.array([ret]), p.thresholds_bps)[0])
            out.append(
                ScoredPrediction(p.cycle, p.agent_id, p.model_version, p.predicted, realized)
            )
        self._predictions = waiting
        return out

    def summary(self) -> dict[str, dict[str, float | int | None]]:
        return {a: t.as_dict() for a, t in sorted(self.agents.items())}

    def action_edges(self) -> dict[str, float | int]:
        """What each action would have earned on average over the scored cycles, in bps of the
        mid per cycle, net of fees (``cycles``: how many): the edge the votes are judged by."""
        if not self._edge_n:
            return {"cycles": 0}
        means = self._edge_sum / self._edge_n
        return {"cycles": self._edge_n} | {Action(i).label: float(m) for i, m in enumerate(means)}
