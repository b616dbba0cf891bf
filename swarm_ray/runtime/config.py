"""A swarm run's configuration (``configs/paper.yaml``), resolved once at start."""

from __future__ import annotations

from pydantic import Field, field_validator, model_validator

from swarm_ray.agents.roles import AgentConfig
from swarm_ray.core.config import StrictModel
from swarm_ray.core.storage import storage_root
from swarm_ray.exchanges.config import ExchangeConfig, PaperConfig
from swarm_ray.trading.config import TradingConfig

__all__ = ["LearningConfig", "PanelConfig", "SwarmConfig", "resolve_storage"]


class PanelConfig(StrictModel):
    """The control panel in the browser, on Serve's HTTP proxy at ``/panel/``."""

    enabled: bool = Field(True, description="start the panel with the swarm (run, demo)")
    public_read: bool = Field(
        False,
        description="let anyone who reaches the panel see it without the operator token"
        " (the controls always need it)",
    )
    refresh_s: float | None = Field(
        None, gt=0, le=300, description="page refresh period (none: the cycle's pace, 1-10 s)"
    )


class LearningConfig(StrictModel):
    """The learning loop inside the run: retrain, judge and promote on a schedule."""

    every: str | None = Field(
        None, description="a learning step every this long on the run's clock (24h); null: off"
    )
    config: str = Field("configs/learn.yaml", description="the learning config (swarm-ray learn)")

    @field_validator("every")
    @classmethod
    def _every(cls, v: str | None) -> str | None:
        if v is not None:
            from swarm_ray.learning.config import parse_duration

            parse_duration(v)
        return v


class SwarmConfig(TradingConfig):
    """A swarm run: symbols, venue, cycle, votes, limits, agents."""

    run_id: str = Field("paper", pattern=r"^[A-Za-z0-9_.-]{1,40}$")
    symbols: tuple[str, ...] = Field(("BTCUSDT",), min_length=1)
    storage: str | None = Field(
        None,
        description="root of relative output paths (SWARM_RAY_STORAGE wins; none: the working "
        "directory); see swarm_ray.core.storage",
    )
    journal_dir: str = "runs/paper/journal"
    models_dir: str = "models"
    exchange: ExchangeConfig = ExchangeConfig()
    agents: AgentConfig = AgentConfig()
    metrics: bool = True
    panel: PanelConfig = PanelConfig()
    learning: LearningConfig = LearningConfig()

    @property
    def panel_refresh_s(self) -> float:
        """How often the panel's page asks for news: the configured period, else one cycle of
        wall time (a replay's sped-up cycle included), kept within 1 to 10 s."""
        if self.panel.refresh_s is not None:
            return self.panel.refresh_s
        speed = self.cycle.replay_speed if self.exchange.kind == "paper" else 1.0
        wall = self.cycle.interval_s / speed if speed > 0 else 1.0
        return min(10.0, max(1.0, wall))

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


def resolve_storage(cfg: SwarmConfig) -> SwarmConfig:
    """``cfg`` with its output paths absolute under the storage root (``journal_dir``, the paper
    account's ``state_path``) and its registry located: what every actor gets. Done once on
    the driver; a path that is already absolute stays, so resolving twice changes nothing."""
    root = storage_root(cfg.storage)
    update: dict = {
        "journal_dir": root.local_path(cfg.journal_dir, "journal_dir"),
        "models_dir": str(root.registry(cfg.models_dir, "models_dir")),
    }
    if root.explicit:
        update["storage"] = root.location
    paper = cfg.exchange.paper
    if paper is not None and paper.state_path:
        state = root.local_path(paper.state_path, "exchange.paper.state_path")
        update["exchange"] = cfg.exchange.model_copy(
            update={"paper": paper.model_copy(update={"state_path": state})}
        )
    return cfg.model_copy(update=update)
