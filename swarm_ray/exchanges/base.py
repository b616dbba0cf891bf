"""The one exchange interface that the coordinator trades through.

It is synchronous: the coordinator is a Ray actor that runs one cycle at a time, and every
call here is a short request whose answer the cycle needs before it can go on. A sync API is
also what a deterministic paper exchange wants. Streaming market data runs on the adapter's
own background thread and is read here through ``market_snapshot`` without blocking.

Implementations: ``BinanceExchange`` (spot and USD-M futures, via python-binance) and the paper
exchange. Both must pass ``tests/unit/exchanges/test_exchange_contract.py``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

from swarm_ray.core.domain import Fill, MarketSnapshot, Order, OrderIntent
from swarm_ray.core.instruments import Balance, Kline, Position, SymbolRules, decimal_str

__all__ = ["Balance", "Exchange", "Kline", "Position", "SymbolRules", "decimal_str"]


class Exchange(ABC):
    """A venue. All prices and quantities are ``Decimal``; every call is synchronous.

    Order-id contract: the caller's ``client_order_id`` is the order's identity at the venue.
    ``place_order`` sends an intent at most once; when the venue's answer is lost the
    implementation finds out by querying that id, and returns ``OrderStatus.UNKNOWN`` rather
    than resend if it still cannot tell.
    """

    name: str = "exchange"

    @abstractmethod
    def server_time_ms(self) -> int:
        """The venue's clock (the simulated clock for paper)."""

    @abstractmethod
    def symbol_rules(self, symbol: str) -> SymbolRules: ...

    @abstractmethod
    def market_snapshot(self, symbol: str, depth: int = 5) -> MarketSnapshot:
        """Best bid/ask and up to ``depth`` levels a side."""

    @abstractmethod
    def place_order(self, intent: OrderIntent) -> Order:
        """Quantise, check filters (``OrderDropped`` if broken, nothing sent), send once.

        Raises ``DefiniteReject``, ``RateLimited`` (nothing executed) or returns the order as
        the venue knows it; ``status=UNKNOWN`` when its fate could not be learnt yet.
        """

    @abstractmethod
    def cancel_order(self, symbol: str, client_order_id: str) -> Order:
        """Cancel; returns the final state. ``OrderNotFound`` if the venue never had it."""

    @abstractmethod
    def cancel_all(self, symbol: str) -> None:
        """Cancel every open order on ``symbol``; afterwards ``open_orders`` is empty."""

    @abstractmethod
    def open_orders(self, symbol: str) -> list[Order]: ...

    @abstractmethod
    def get_order(self, symbol: str, client_order_id: str) -> Order | None:
        """The order with this client id, or ``None`` if the venue does not know it."""

    @abstractmethod
    def fills_since(self, symbol: str, since_ms: int) -> list[Fill]:
        """Our trades on ``symbol`` at or after ``since_ms``, oldest first."""

    @abstractmethod
    def balances(self) -> dict[str, Balance]: ...

    @abstractmethod
    def position(self, symbol: str) -> Position: ...

    def recent_klines(self, symbol: str, interval: str = "5m", limit: int = 289) -> list[Kline]:
        """The last ``limit`` candles of ``interval`` (Binance names: 1m, 5m, 1h...), oldest
        first; the last one may still be open. Optional: ``NotImplementedError`` when the venue
        has no history (callers fall back to other data)."""
        raise NotImplementedError(f"{self.name} serves no klines")

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections and threads."""
