"""Exchanges: one interface (``Exchange``), Binance spot/futures, and (elsewhere) paper."""

from __future__ import annotations

from swarm_ray.core.errors import OrderDropped
from swarm_ray.core.instruments import Balance, Kline, Position, SymbolRules
from swarm_ray.exchanges.base import Exchange
from swarm_ray.exchanges.config import BinanceCredentials, ExchangeConfig
from swarm_ray.exchanges.errors import (
    ClockSkew,
    DefiniteReject,
    ExchangeError,
    OrderNotFound,
    RateLimited,
    UnknownOutcome,
)

__all__ = [
    "Balance",
    "BinanceCredentials",
    "ClockSkew",
    "DefiniteReject",
    "Exchange",
    "ExchangeConfig",
    "ExchangeError",
    "Kline",
    "OrderDropped",
    "OrderNotFound",
    "Position",
    "RateLimited",
    "SymbolRules",
    "UnknownOutcome",
    "build_exchange",
]


def build_exchange(config: ExchangeConfig, clock: object | None = None) -> Exchange:
    """The configured venue; Binance keys are read from the environment here, in process."""
    if config.kind == "paper":
        from swarm_ray.exchanges.paper import PaperExchange

        return PaperExchange(config, clock=clock)  # type: ignore[call-arg, abstract]
    from swarm_ray.exchanges.binance import BinanceExchange

    return BinanceExchange(config, BinanceCredentials.from_env(), clock=clock)  # type: ignore[arg-type]
