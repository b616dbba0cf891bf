"""Binance spot and USD-M futures: ``BinanceExchange``.

``constants`` is imported by the exchange configuration and errors; the adapter (and
python-binance's REST client with it) is imported only when ``BinanceExchange`` is first used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from swarm_ray.exchanges.binance.client import BinanceExchange

__all__ = ["BinanceExchange"]


def __getattr__(name: str) -> Any:
    if name == "BinanceExchange":
        from swarm_ray.exchanges.binance.client import BinanceExchange

        return BinanceExchange
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
