"""Mute (or down-weight) an agent whose model's votes have stopped earning (``consensus.mute``).

Each agent's model is held to a floor read from its model card (``VoteFloor``, built by the
registry and handed in with the observation spec): a policy's rolling hit rate (its last
``window`` scored votes, each 1 when it beat its alternative, 0 when it lost, 0.5 a tie)
against the beat rate its card measured on its validation days; the market analyst's rolling
accuracy (its last ``window`` scored direction classes) against the majority-class baseline.
A model version without a floor is held to 0.5, a coin flip against its alternative.

Once it has ``min_votes`` scored in the window, an agent whose rolling rate falls below its
floor less ``margin`` is muted: its weight is multiplied by ``factor`` in the consensus. Its
votes are still scored while muted; it is un-muted when its rolling rate is back at its floor,
or when its model version changes (a retrained model), which starts its record afresh.
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from swarm_ray.core.domain import Opinion
from swarm_ray.features.outcomes import COIN_FLIP, VoteFloor, is_model_vote
from swarm_ray.trading.consensus import MuteConfig
from swarm_ray.trading.track import ScoredPrediction, ScoredVote

__all__ = ["MuteEvent", "MuteGuard"]


@dataclass(frozen=True)
class MuteEvent:
    """An agent muted or un-muted, and why."""

    cycle: int
    time_ns: int
    agent_id: str
    muted: bool
    """True: muted now; False: un-muted now."""
    model_version: str
    measure: str
    """``hit_rate`` or ``accuracy``."""
    rate: float | None
    """Its rolling rate when it changed (``None``: its record was reset)."""
    votes: int
    """Scored votes (or predictions) behind the rate."""
    floor: float | None
    """Its floor then (``None``: to be measured on its window)."""
    source: str
    """Where the floor comes from."""
    reason: str
    """One line for the log and the report."""


@dataclass
class _Record:
    version: str
    floor: VoteFloor
    outcomes: deque[float]
    classes: deque[int]
    """Accuracy: the realised classes of the window, for a floor measured live."""
    muted: MuteEvent | None = None


@dataclass
class MuteGuard:
    """Each agent's rolling record against its floor, and which agents are muted."""

    cfg: MuteConfig
    floors: Mapping[tuple[str, str], VoteFloor] = field(default_factory=dict)
    records: dict[str, _Record] = field(default_factory=dict)
    events: list[MuteEvent] = field(default_factory=list)
    """Every mute and un-mute so far, oldest first."""

    @classmethod
    def of(cls, cfg: MuteConfig, floors: Iterable[VoteFloor]) -> MuteGuard:
        return cls(cfg, {(f.model, f.version): f for f in floors})

    def floor_of(self, agent: str, version: str) -> VoteFloor:
        got = self.floors.get((agent, version))
        if got is not None:
            return got
        return VoteFloor(
            agent, version, "hit_rate", COIN_FLIP, f"a coin flip: no card of {version}"
        )

    def prediction_horizons(self) -> dict[tuple[str, str], tuple[int, tuple[float, float]]]:
        """(horizon, class thresholds) of each (agent, version) judged on its accuracy."""
        return {
            k: (f.horizon_bars, f.thresholds_bps)
            for k, f in self.floors.items()
            if f.measure == "accuracy" and f.horizon_bars and f.thresholds_bps
        }

    # ------------------------------------------------------------------ record
    def observe(self, opinions: Iterable[Opinion], cycle: int, time_ns: int) -> list[MuteEvent]:
        """The model versions voting now: a changed version (a retrained model) starts its
        agent's record afresh, and un-mutes it."""
        out = []
        for o in opinions:
            if not is_model_vote(o.model_version):
                continue
            rec = self.records.get(o.agent_id)
            if rec is not None and rec.version == o.model_version:
                continue
            floor = self.floor_of(o.agent_id, o.model_version)
            size = self.cfg.window
            new = _Record(o.model_version, floor, deque(maxlen=size), deque(maxlen=size))
            self.records[o.agent_id] = new
            if rec is not None and rec.muted is not None:
                why = (
                    f"{o.agent_id} un-muted: its model changed from {rec.version} to "
                    f"{o.model_version}; its record starts afresh"
                )
                out.append(self._event(cycle, time_ns, o.agent_id, new, None, 0, False, why))
        return out

    def score(
        self, votes: Iterable[ScoredVote], predictions: Iterable[ScoredPrediction] = ()
    ) -> None:
        """Scored votes (policies) and predictions (classifiers) of the agents' current
        versions into their windows; an older version's, still pending at the change, are
        left out."""
        for v in votes:
            rec = self.records.get(v.agent_id)
            if rec and rec.floor.measure == "hit_rate" and v.model_version == rec.version:
                rec.outcomes.append(v.label)
        for p in predictions:
            rec = self.records.get(p.agent_id)
            if rec and rec.floor.measure == "accuracy" and p.model_version == rec.version:
                rec.outcomes.append(p.hit)
                rec.classes.append(p.realized)

    # ------------------------------------------------------------------ judge
    def judge(self, cycle: int, time_ns: int) -> list[MuteEvent]:
        """Mute an agent whose rolling rate fell below its floor less the margin, un-mute one
        back at its floor; the changes."""
        out = []
        for agent, rec in self.records.items():
            n = len(rec.outcomes)
            floor = self._floor_value(rec)
            if n == 0 or floor is None:
                continue
            rate = sum(rec.outcomes) / n
            accuracy = rec.floor.measure == "accuracy"
            what = "rolling accuracy" if accuracy else "rolling hit rate"
            unit = "predictions" if accuracy else "votes"
            if rec.muted is None and n >= self.cfg.min_votes and rate < floor - self.cfg.margin:
                why = (
                    f"{agent} muted: {what} {rate:.3f} over its last {n} scored {unit} is below "
                    f"its floor {floor:.3f} - {self.cfg.margin:g} ({rec.floor.source}); its "
                    f"weight x{self.cfg.factor:g}"
                )
                out.append(self._event(cycle, time_ns, agent, rec, rate, n, True, why))
            elif rec.muted is not None and rate >= floor:
                why = (
                    f"{agent} un-muted: {what} {rate:.3f} over its last {n} scored {unit} is "
                    f"back at its floor {floor:.3f}"
                )
                out.append(self._event(cycle, time_ns, agent, rec, rate, n, False, why))
        return out

    def _floor_value(self, rec: _Record) -> float | None:
        if rec.floor.value is not None:
            return rec.floor.value
        if not rec.classes:  # the majority-class baseline of its own window
            return None
        return Counter(rec.classes).most_common(1)[0][1] / len(rec.classes)

    def _event(
        self,
        cycle: int,
        time_ns: int,
        agent: str,
        rec: _Record,
        rate: float | None,
        n: int,
        muted: bool,
        why: str,
    ) -> MuteEvent:
        ev = MuteEvent(
            cycle, time_ns, agent, muted, rec.version, rec.floor.measure, rate, n,
            self._floor_value(rec), rec.floor.source, why,
        )  # fmt: skip
        rec.muted = ev if muted else None
        self.events.append(ev)
        return ev

    # ------------------------------------------------------------------ apply
    @property
    def muted(self) -> tuple[str, ...]:
        return tuple(sorted(a for a, r in self.records.items() if r.muted is not None))

    def apply(
        self, weights: Mapping[str, float], opinions: Iterable[Opinion] = ()
    ) -> dict[str, float]:
        """``weights`` with each muted agent's multiplied by ``factor``; not an agent's whose
        vote in ``opinions`` is not its model's (the risk manager's hard rules, a safe vote
        without its model): only the model is muted."""
        rules = {o.agent_id for o in opinions if not is_model_vote(o.model_version)}
        muted = set(self.muted) - rules
        return {a: w * self.cfg.factor if a in muted else w for a, w in weights.items()}

    def summary(self) -> dict[str, dict[str, object]]:
        """Each judged agent's rolling rate, floor and state (status, metrics, report)."""
        out: dict[str, dict[str, object]] = {}
        for agent, rec in sorted(self.records.items()):
            n = len(rec.outcomes)
            out[agent] = {
                "muted": rec.muted is not None,
                "model_version": rec.version,
                "measure": rec.floor.measure,
                "rolling_rate": sum(rec.outcomes) / n if n else None,
                "rolling_votes": n,
                "floor": self._floor_value(rec),
                "floor_source": rec.floor.source,
            }
        return out
