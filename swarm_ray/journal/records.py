"""What the journal stores and the errors it raises.

A :class:`CycleRecord` (with its :class:`DecisionRecord`) is everything kept about one
coordinator cycle; :class:`KillSwitch` and :class:`StopRequest` are the operator's controls as
read back from the journal.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from swarm_ray.core.domain import Action, Opinion

__all__ = [
    "CycleRecord",
    "DecisionRecord",
    "DuplicateIntent",
    "JournalError",
    "JournalSchemaError",
    "KillSwitch",
    "StopRequest",
]


class JournalError(RuntimeError):
    """A journal operation that cannot be carried out as asked."""


class JournalSchemaError(JournalError):
    """The file is not a journal this code can read (newer, older or foreign schema)."""


class DuplicateIntent(JournalError):
    """An intent with this client order id is already journaled: it must not be sent again."""

    def __init__(self, client_order_id: str) -> None:
        super().__init__(
            f"order intent {client_order_id!r} is already in the journal; it was (or may have "
            "been) sent before and must be reconciled, never sent again"
        )
        self.client_order_id = client_order_id


@dataclass(frozen=True, slots=True)
class DecisionRecord:
    """What consensus and the risk gate made of one cycle's votes."""

    action: Action
    """The action carried out (after the risk gate)."""
    voted_action: Action | None = None
    """The consensus winner before the risk gate; ``None`` when no action won (safe default)."""
    consensus_share: float = 0.0
    winning_score: float = 0.0
    responding_weight: float = 0.0
    reason: str = ""
    """Why consensus decided what it did (threshold, quorum, override)."""
    risk_allowed: bool = True
    risk_reasons: tuple[str, ...] = ()
    """The risk gate's reasons for changing or blocking the voted action."""
    scores: Mapping[Action | str, float] = field(default_factory=dict)
    """Weighted score per action (``Action`` or its label)."""
    ladder: tuple[float, float] | None = None
    """A ladder vote's (bid, ask) distances from the mid in bps (``vote_on: ladder``)."""


@dataclass(frozen=True, slots=True)
class CycleRecord:
    """Everything the journal keeps about one coordinator cycle."""

    symbol: str
    cycle: int
    time_ns: int
    mid: float | None = None
    best_bid: float | None = None
    best_ask: float | None = None
    data_problems: tuple[str, ...] = ()
    opinions: tuple[Opinion, ...] = ()
    timed_out: tuple[str, ...] = ()
    """Agents that did not answer within the cycle's timeout."""
    failed: tuple[str, ...] = ()
    """Agents whose call raised (dead actor, model error)."""
    weights: Mapping[str, float] = field(default_factory=dict)
    """Configured consensus weight per agent id (kept with each vote)."""
    decision: DecisionRecord | None = None
    latency_ms: float | None = None
    inventory: float | None = None
    pnl: float | None = None
    hindsight: tuple[tuple[int, str, float, float], ...] = ()
    """Earlier votes of this run and symbol scored in hindsight, written with this cycle:
    ``(cycle, agent_id, label, edge_bps)`` (``trading.track``)."""

    def __post_init__(self) -> None:
        if self.cycle < 0:
            raise ValueError(f"cycle must be >= 0, got {self.cycle}")
        agents = [o.agent_id for o in self.opinions] + [*self.timed_out, *self.failed]
        if len(agents) != len(set(agents)):
            raise ValueError(f"an agent appears more than once in cycle {self.cycle}: {agents}")


@dataclass(frozen=True, slots=True)
class KillSwitch:
    """A tripped kill switch; ``symbol`` is ``None`` when it stops every symbol."""

    symbol: str | None
    reason: str
    tripped_by: str
    tripped_ns: int


@dataclass(frozen=True, slots=True)
class StopRequest:
    """An operator's request that a running swarm stop (``symbol`` ``None``: every symbol)."""

    id: int
    symbol: str | None
    emergency: bool
    reason: str
    requested_by: str
    requested_ns: int
