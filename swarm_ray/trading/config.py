"""The cycle's own configuration: cadence, votes and limits, without the run around it."""

from __future__ import annotations

from pydantic import Field

from swarm_ray.core.config import StrictModel
from swarm_ray.trading.consensus import ConsensusConfig
from swarm_ray.trading.risk import RiskLimits
from swarm_ray.trading.track import TrackConfig


class CycleConfig(StrictModel):
    """Cadence and timeouts of the cycle."""

    interval_s: float = Field(60.0, gt=0, description="time between cycles (simulated in paper)")
    replay_speed: float = Field(
        0.0, ge=0, description="paper: simulated seconds per wall second (0: as fast as it goes)"
    )
    start: str | None = Field(
        None, description="paper: first cycle time (ISO 8601, UTC); default: after warm-up"
    )
    max_data_age_s: float = Field(90.0, gt=0, description="an older snapshot is stale")
    venue_grace_s: float = Field(
        300.0,
        gt=0,
        description="venue errors for longer than this stop the symbol: cancel all, kill switch",
    )
    order_tolerance_ticks: int = Field(
        0, ge=0, description="keep a resting quote within this many ticks of the new one"
    )
    symbols_per_coordinator: int = Field(
        1, ge=1, description="symbols hosted by one coordinator actor (1: one actor per symbol)"
    )
    retune_every_cycles: int = Field(
        0, ge=0, description="the strategy optimizer re-tunes quoting this often (0: on demand)"
    )


class TradingConfig(StrictModel):
    """What one symbol's cycle needs: starting equity, cadence, consensus and risk limits."""

    capital: float = Field(10_000.0, gt=0, description="equity at the start (quote asset)")
    cycle: CycleConfig = CycleConfig()
    consensus: ConsensusConfig = ConsensusConfig()
    risk: RiskLimits = RiskLimits()
    track: TrackConfig = TrackConfig()
