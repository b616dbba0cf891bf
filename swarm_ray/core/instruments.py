"""Instruments and account values: a symbol's trading filters, klines, balances and positions.

Prices and quantities at the exchange boundary are ``Decimal``, quantised to the symbol's filters.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

from swarm_ray.core.domain import OrderIntent, OrderType, Side
from swarm_ray.core.errors import OrderDropped

__all__ = ["Balance", "Kline", "Position", "SymbolRules", "decimal_str"]


def decimal_str(value: Decimal) -> str:
    """Plain notation without exponent or trailing zeros (what the venue expects)."""
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text or "0"


def _snap(value: Decimal, base: Decimal, step: Decimal, rounding: str) -> Decimal:
    """The grid point base + n*step nearest to ``value`` in the direction ``rounding``."""
    n = ((value - base) / step).to_integral_value(rounding=rounding)
    return base + n * step


# (multiplierDown, multiplierUp): the allowed price range is reference * down .. reference * up
Multipliers = tuple[Decimal, Decimal]


@dataclass(frozen=True, slots=True)
class SymbolRules:
    """A symbol's trading filters (PRICE_FILTER, LOT_SIZE, MIN_NOTIONAL/NOTIONAL, PERCENT_PRICE,
    PERCENT_PRICE_BY_SIDE).

    The percent-price filters bound a limit price around a reference price that only the venue
    knows exactly (spot: the average price over ``avgPriceMins``; futures: the mark price). They
    are checked against the reference the caller passes (the adapter passes the last known mid);
    without a reference they are not checked.
    """

    symbol: str
    base_asset: str
    quote_asset: str
    tick_size: Decimal
    step_size: Decimal
    min_qty: Decimal
    max_qty: Decimal
    min_notional: Decimal
    min_price: Decimal = Decimal(0)
    max_price: Decimal = Decimal(0)  # 0 means no upper bound, as in Binance's PRICE_FILTER
    max_notional: Decimal | None = None
    trading: bool = True
    percent_price: Multipliers | None = None
    """PERCENT_PRICE, both sides (futures: enforced two-sided, as the venue does in practice)."""
    percent_price_bid: Multipliers | None = None
    """PERCENT_PRICE_BY_SIDE for buy orders (bidMultiplierDown, bidMultiplierUp)."""
    percent_price_ask: Multipliers | None = None
    """PERCENT_PRICE_BY_SIDE for sell orders (askMultiplierDown, askMultiplierUp)."""

    def __post_init__(self) -> None:
        if self.tick_size <= 0 or self.step_size <= 0:
            raise ValueError(f"{self.symbol}: tick and step sizes must be positive")
        for name in ("percent_price", "percent_price_bid", "percent_price_ask"):
            m = getattr(self, name)
            if m is not None and not (0 <= m[0] <= m[1]):
                raise ValueError(f"{self.symbol}: {name} needs 0 <= down <= up, got {m}")

    @property
    def has_price_band(self) -> bool:
        """Whether any percent-price filter applies (a reference price is then needed)."""
        return any(
            m is not None
            for m in (self.percent_price, self.percent_price_bid, self.percent_price_ask)
        )

    def _multipliers(self, side: Side | None) -> list[tuple[str, Multipliers]]:
        out = []
        if self.percent_price is not None:
            out.append(("PERCENT_PRICE", self.percent_price))
        if side in (Side.BUY, None) and self.percent_price_bid is not None:
            out.append(("PERCENT_PRICE_BY_SIDE bid", self.percent_price_bid))
        if side in (Side.SELL, None) and self.percent_price_ask is not None:
            out.append(("PERCENT_PRICE_BY_SIDE ask", self.percent_price_ask))
        return out

    def price_band(
        self, side: Side | None, reference_price: Decimal | None
    ) -> tuple[Decimal, Decimal | None]:
        """The (low, high) limit prices every price filter allows; ``high`` None = unbounded.

        Combines PRICE_FILTER's min/max with the percent-price filters around
        ``reference_price`` (ignored when None). ``side`` None means valid for either side.
        """
        lo = max(self.min_price, Decimal(0))
        hi = self.max_price if self.max_price > 0 else None
        if reference_price is not None and reference_price > 0:
            for _, (down, up) in self._multipliers(side):
                lo = max(lo, reference_price * down)
                hi = reference_price * up if hi is None else min(hi, reference_price * up)
        return lo, hi

    def quantize_price(self, price: Decimal, side: Side) -> Decimal:
        """Snap to the tick grid toward the passive side: buys down, sells up."""
        rounding = ROUND_FLOOR if side is Side.BUY else ROUND_CEILING
        return _snap(price, self.min_price, self.tick_size, rounding)

    def quantize_quantity(self, quantity: Decimal) -> Decimal:
        """Snap down to the step grid (never trade more than asked)."""
        return _snap(quantity, self.min_qty, self.step_size, ROUND_FLOOR)

    def violations(
        self,
        price: Decimal,
        quantity: Decimal,
        check_price: bool = True,
        side: Side | None = None,
        reference_price: Decimal | None = None,
    ) -> list[str]:
        """Every filter that (price, quantity) breaks; empty means the venue will accept it.

        The percent-price filters are checked when ``reference_price`` is given, for ``side``
        (None: the price must suit both sides).
        """
        out: list[str] = []
        if not self.trading:
            out.append(f"{self.symbol} is not trading")
        if check_price:
            if price < self.min_price or price <= 0:
                out.append(f"price {price} below min price {self.min_price}")
            if self.max_price > 0 and price > self.max_price:
                out.append(f"price {price} above max price {self.max_price}")
            if (price - self.min_price) % self.tick_size != 0:
                out.append(f"price {price} not a multiple of tick {self.tick_size}")
            if reference_price is not None and reference_price > 0:
                for name, (down, up) in self._multipliers(side):
                    lo, hi = reference_price * down, reference_price * up
                    if price < lo:
                        out.append(
                            f"price {price} below {name} limit {lo.normalize():f} "
                            f"({down} x reference {reference_price})"
                        )
                    if price > hi:
                        out.append(
                            f"price {price} above {name} limit {hi.normalize():f} "
                            f"({up} x reference {reference_price})"
                        )
        if quantity < self.min_qty or quantity <= 0:
            out.append(f"quantity {quantity} below min qty {self.min_qty}")
        if self.max_qty > 0 and quantity > self.max_qty:
            out.append(f"quantity {quantity} above max qty {self.max_qty}")
        if (quantity - self.min_qty) % self.step_size != 0:
            out.append(f"quantity {quantity} not a multiple of step {self.step_size}")
        notional = price * quantity
        if notional < self.min_notional:
            out.append(f"notional {notional} below min notional {self.min_notional}")
        if self.max_notional is not None and notional > self.max_notional:
            out.append(f"notional {notional} above max notional {self.max_notional}")
        return out

    def prepare(self, intent: OrderIntent, reference_price: Decimal | None = None) -> OrderIntent:
        """The intent quantised to the filters, or ``OrderDropped`` naming every broken filter.

        For a market order ``price`` is only the reference price for the notional check.
        ``reference_price`` (e.g. the last mid) is what the percent-price filters are checked
        against; they are not checked without it.
        """
        if intent.symbol != self.symbol:
            raise OrderDropped(f"intent for {intent.symbol} checked against {self.symbol} rules")
        is_market = intent.order_type is OrderType.MARKET
        if is_market and intent.price <= 0:
            raise OrderDropped(
                f"{intent.client_order_id}: market order needs a reference price for the "
                "min-notional check"
            )
        price = intent.price if is_market else self.quantize_price(intent.price, intent.side)
        qty = self.quantize_quantity(intent.quantity)
        problems = self.violations(
            price, qty, check_price=not is_market, side=intent.side, reference_price=reference_price
        )
        if problems:
            raise OrderDropped(
                f"{intent.client_order_id} {intent.side} {intent.quantity}@{intent.price} "
                f"dropped, not sent: " + "; ".join(problems)
            )
        return replace(intent, price=price, quantity=qty)


@dataclass(frozen=True, slots=True)
class Balance:
    asset: str
    free: Decimal
    locked: Decimal

    @property
    def total(self) -> Decimal:
        return self.free + self.locked


@dataclass(frozen=True, slots=True)
class Position:
    """Signed base-asset exposure: for spot the base balance, for futures the net position."""

    symbol: str
    quantity: Decimal
    entry_price: Decimal | None = None
    unrealized_pnl: Decimal = Decimal(0)


@dataclass(frozen=True, slots=True)
class Kline:
    """One candle. Market data, so floats (like ``MarketSnapshot``), not Decimals."""

    open_time_ms: int
    open: float
    high: float
    low: float
    close: float
    volume: float  # base asset
    close_time_ms: int
    trades: int = 0
    taker_buy_volume: float | None = None  # base asset bought by takers; None when unknown
