"""A swarm run's configuration (``configs/paper.yaml``), resolved once at start."""

from __future__ import annotations

from pydantic import Field, model_validator

from swarm_ray.agents.roles import AgentConfig
from swarm_ray.exchanges.config import ExchangeConfig, PaperConfig
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

    @model_validator(mode="after")
    def _symbols_known(self) -> SwarmConfig:
        """Every traded symbol is one the venue can trade: for the paper exchange, one it has
        data for (``exchange.paper.symbols``). On Binance, a symbol the venue does not list stops
        its coordinator at start-up with the venue's answer."""
        import re

        for i, s in enumerate(self.symbols):
            if not re.fullmatch(r"[A-Z0-9]{2,30}", s):
                raise ValueError(f"symbols[{i}]: {s!r} is not an exchange symbol like BTCUSDT")
        if len(set(self.symbols)) != len(self.symbols):
            raise ValueError(f"symbols: listed twice: {sorted(self.symbols)}")
        if self.exchange.kind == "paper":
            known = (self.exchange.paper or PaperConfig()).symbols
            missing = [s for s in self.symbols if s not in known]
            if missing:
                raise ValueError(
                    f"symbols: the paper exchange has no data for {missing}; it replays "
                    f"{sorted(known)} (add each under exchange.paper.symbols)"
                )
        return self
