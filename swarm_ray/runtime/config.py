"""A swarm run's configuration (``configs/paper.yaml``), resolved once at start."""

from __future__ import annotations

from pydantic import Field

from swarm_ray.agents.roles import AgentConfig
from swarm_ray.exchanges.config import ExchangeConfig
from swarm_ray.trading.config import TradingConfig

__all__ = ["SwarmConfig"]


class SwarmConfig(TradingConfig):
    """A swarm run: symbols, venue, cycle, votes, limits, agents."""

    run_id: str = Field("paper", pattern=r"^[A-Za-z0-9_.-]{1,40}$")
    symbols: tuple[str, ...] = Field(("BTCUSDT",), min_length=1)
    journal_dir: str = "runs/paper/journal"
    models_dir: str = "models"
    exchange: ExchangeConfig = ExchangeConfig()
    agents: AgentConfig = AgentConfig()
    metrics: bool = True
