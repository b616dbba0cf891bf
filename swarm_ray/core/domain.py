"""Domain types shared by the agents, the coordinator and the exchanges.

All are immutable. Prices and quantities of orders and fills are ``Decimal`` (they cross the
exchange boundary); market snapshots carry floats because they feed models and features.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum

from envs.actions import ACTION_NAMES, ENV_ACTIONS, N_ENV_ACTIONS, Action

__all__ = [
    "ACTION_NAMES",
    "ENV_ACTIONS",
    "N_ENV_ACTIONS",
    "Action",
    "BookLevel",
    "Fill",
    "MarketSnapshot",
    "Opinion",
    "Order",
    "OrderIntent",
    "OrderStatus",
    "OrderType",
    "Side",
]


class Side(StrEnum):
    BUY = "BUY"
    SELL = "SELL"

    @property
    def sign(self) -> int:
        return 1 if self is Side.BUY else -1

    @property
    def opposite(self) -> Side:
        return Side.SELL if self is Side.BUY else Side.BUY


class OrderType(StrEnum):
    LIMIT = "LIMIT"
    LIMIT_MAKER = "LIMIT_MAKER"
    MARKET = "MARKET"


class OrderStatus(StrEnum):
    """Order states; ``UNKNOWN`` means we could not learn the venue's answer yet."""

    PENDING = "PENDING"  # written to the journal, not yet acknowledged
    NEW = "NEW"
    PARTIALLY_FILLED = "PARTIALLY_FILLED"
    FILLED = "FILLED"
    CANCELED = "CANCELED"
    REJECTED = "REJECTED"
    EXPIRED = "EXPIRED"
    UNKNOWN = "UNKNOWN"

    @property
    def is_open(self) -> bool:
        return self in (OrderStatus.PENDING, OrderStatus.NEW, OrderStatus.PARTIALLY_FILLED)

    @property
    def is_final(self) -> bool:
        return self in (
            OrderStatus.FILLED,
            OrderStatus.CANCELED,
            OrderStatus.REJECTED,
            OrderStatus.EXPIRED,
        )


@dataclass(frozen=True, slots=True)
class BookLevel:
    price: float
    qty: float


@dataclass(frozen=True, slots=True)
class MarketSnapshot:
    """What the market looked like at one instant, as the coordinator sees it."""

    symbol: str
    time_ns: int
    best_bid: float
    best_ask: float
    bids: tuple[BookLevel, ...] = ()
    asks: tuple[BookLevel, ...] = ()
    last_price: float | None = None
    volume: float = 0.0

    @property
    def mid(self) -> float:
        return 0.5 * (self.best_bid + self.best_ask)

    @property
    def spread(self) -> float:
        return self.best_ask - self.best_bid

    def problems(self, now_ns: int | None = None, max_age_ns: int | None = None) -> list[str]:
        """Reasons this snapshot must not be quoted on (empty when it is sane)."""
        out: list[str] = []
        if not (math.isfinite(self.best_bid) and math.isfinite(self.best_ask)):
            out.append("non-finite best bid/ask")
        elif self.best_bid <= 0 or self.best_ask <= 0:
            out.append("non-positive best bid/ask")
        elif self.best_bid >= self.best_ask:
            out.append(f"crossed or locked book (bid {self.best_bid} >= ask {self.best_ask})")
        if now_ns is not None and max_age_ns is not None and now_ns - self.time_ns > max_age_ns:
            out.append(f"stale snapshot ({(now_ns - self.time_ns) / 1e9:.3f}s old)")
        return out


@dataclass(frozen=True, slots=True)
class Opinion:
    """One agent's vote for a cycle."""

    agent_id: str
    action: Action
    confidence: float
    model_version: str = "rules"
    rationale: str = ""
    features: tuple[float, ...] = field(default=(), repr=False)
    alternative: Action | None = None
    """What the vote is judged against (a calibrated model's vote): standing aside for a
    trade, the model's best trade for standing aside, the model's own choice for a vote cast
    for its alternative. ``None``: the default alternative."""
    prediction: int | None = None
    """A classifier's own answer behind the vote: the market analyst network's direction class
    (0 strong sell .. 4 strong buy), scored against the class that followed."""

    def __post_init__(self) -> None:
        if not isinstance(self.action, Action):
            object.__setattr__(self, "action", Action(self.action))
        if not (0.0 <= self.confidence <= 1.0) or math.isnan(self.confidence):
            raise ValueError(f"confidence must be in [0, 1], got {self.confidence}")


@dataclass(frozen=True, slots=True)
class OrderIntent:
    """An order we mean to place; the client order id is derived deterministically upstream."""

    symbol: str
    side: Side
    price: Decimal
    quantity: Decimal
    client_order_id: str
    order_type: OrderType = OrderType.LIMIT
    time_in_force: str = "GTC"

    def __post_init__(self) -> None:
        if not isinstance(self.price, Decimal) or not isinstance(self.quantity, Decimal):
            raise TypeError("OrderIntent price and quantity must be Decimal")
        if self.quantity <= 0:
            raise ValueError(f"quantity must be positive, got {self.quantity}")
        if self.order_type is not OrderType.MARKET and self.price <= 0:
            raise ValueError(f"limit price must be positive, got {self.price}")
        if not self.client_order_id or len(self.client_order_id) > 36:
            raise ValueError("client_order_id must be 1..36 characters")


@dataclass(frozen=True, slots=True)
class Order:
    """An order as the venue reports it."""

    symbol: str
    side: Side
    price: Decimal
    quantity: Decimal
    client_order_id: str
    status: OrderStatus
    filled_quantity: Decimal = Decimal(0)
    exchange_order_id: str | None = None
    order_type: OrderType = OrderType.LIMIT
    update_time_ms: int = 0

    @property
    def remaining(self) -> Decimal:
        return self.quantity - self.filled_quantity


@dataclass(frozen=True, slots=True)
class Fill:
    """One trade against one of our orders; ``trade_id`` is unique per venue and symbol."""

    symbol: str
    trade_id: str
    client_order_id: str
    side: Side
    price: Decimal
    quantity: Decimal
    fee: Decimal
    fee_asset: str
    time_ms: int
    is_maker: bool = True
