"""The paper exchange: Binance-like spot or futures over a replay of real market data."""

from swarm_ray.exchanges.paper.exchange import PaperExchange
from swarm_ray.exchanges.paper.faults import FAULT_KINDS
from swarm_ray.exchanges.paper.replay import KLINE_INTERVALS_MS, ReplayFinished, ReplayNotStarted

__all__ = [
    "FAULT_KINDS",
    "KLINE_INTERVALS_MS",
    "PaperExchange",
    "ReplayFinished",
    "ReplayNotStarted",
]
