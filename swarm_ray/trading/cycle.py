"""What a cycle hands to the agents (``CycleInput``) and what it reports (``CycleSummary``)."""

from __future__ import annotations

from dataclasses import dataclass, field

from swarm_ray.core.domain import MarketSnapshot
from swarm_ray.trading.mute import MuteEvent


@dataclass(frozen=True, slots=True)
class CycleInput:
    """What every agent sees in one cycle of one symbol."""

    symbol: str
    cycle: int
    time_ns: int
    mid: float
    analysis: tuple[float, ...]
    """The 20 market-analysis features."""
    observation: tuple[float, ...]
    """The 15-column agent observation of layout v2."""
    inventory_share: float
    """Position over the maximum position, in [-1, 1]."""
    drawdown: float
    """Drawdown from peak equity, as a fraction."""
    volatility_bps: float
    data_problems: tuple[str, ...] = ()
    snapshot: MarketSnapshot | None = field(default=None, repr=False)
    observations: dict[str, tuple[float, ...]] = field(default_factory=dict, repr=False)
    """The observation of each policy trained on another layout than v2, by model name."""

    def observation_for(self, model: str) -> tuple[float, ...]:
        """The observation in the layout ``model`` was trained on."""
        return self.observations.get(model, self.observation)


@dataclass(frozen=True)
class CycleSummary:
    """What one cycle did, for the status view, the report and the benchmark."""

    symbol: str
    cycle: int
    time_ns: int
    mid: float
    best_bid: float
    best_ask: float
    action: str
    voted: str | None
    share: float
    reason: str
    risk_reasons: tuple[str, ...]
    position: float
    pnl: float
    bids: tuple[float, ...]
    asks: tuple[float, ...]
    placed: int
    canceled: int
    new_fills: int
    timed_out: tuple[str, ...]
    """The agents whose model did not answer in time (or failed): they voted without it."""
    data_problems: tuple[str, ...]
    latency_ms: float
    kill_switch: bool
    votes: dict[str, str] = field(default_factory=dict)
    votes_ms: float = 0.0
    """Of ``latency_ms``, the time spent waiting for the agents' votes."""
    carried: bool = False
    """The vote carried: the winner reached the threshold with a quorum (or an emergency stop)."""
    muted: tuple[str, ...] = ()
    """The agents muted in this cycle's vote (``consensus.mute``)."""
    mute_events: tuple[MuteEvent, ...] = ()
    """The agents muted or un-muted at this cycle, and why."""
