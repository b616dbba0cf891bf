"""Position and average-cost accounting in ``Decimal``: what a trade does to a position.

A position is a signed base-asset quantity (long > 0, short < 0) and the average price it was
entered at. A trade that opens or adds to it moves the entry to the size-weighted mean; one that
reduces it realises ``closed quantity x (price - entry)`` (the opposite sign for a short) and
keeps the entry; one that goes through flat realises the whole position and opens the rest at
its own price. Flat means no entry price.

``CostBasis`` is that rule as a value; ``PositionLedger`` applies whole fills (cash, fees,
realised PnL) and values the position at a mark price.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from swarm_ray.core.domain import Fill, Side

__all__ = ["ZERO", "CostBasis", "PositionLedger", "fee_in_quote", "to_decimal"]

ZERO = Decimal(0)


def to_decimal(value: Decimal | float | int | str) -> Decimal:
    """``value`` as a ``Decimal``; a float by its shortest repr (0.1 -> Decimal('0.1'))."""
    if isinstance(value, Decimal):
        return value
    if isinstance(value, float):
        return Decimal(repr(value))
    return Decimal(value)


@dataclass(frozen=True, slots=True)
class CostBasis:
    """A signed position and its average entry price (``None`` exactly when flat)."""

    quantity: Decimal = ZERO
    entry_price: Decimal | None = None

    def trade(self, signed_quantity: Decimal, price: Decimal) -> tuple[CostBasis, Decimal]:
        """The position after trading ``signed_quantity`` (buy > 0, sell < 0) at ``price``,
        and the PnL this trade realised (quote asset)."""
        q, entry = self.quantity, self.entry_price
        if signed_quantity == 0:
            return self, ZERO
        realised = ZERO
        new_q = q + signed_quantity
        if q == 0 or (q > 0) == (signed_quantity > 0):
            entry = (abs(q) * (entry or ZERO) + abs(signed_quantity) * price) / abs(new_q)
        else:
            assert entry is not None
            closed = min(abs(q), abs(signed_quantity))
            realised = closed * (price - entry) * (1 if q > 0 else -1)
            if new_q == 0:
                entry = None
            elif abs(signed_quantity) > abs(q):  # through flat: the rest opens at this price
                entry = price
        return CostBasis(new_q, entry), realised

    def unrealized(self, mark: Decimal | float) -> Decimal:
        """``quantity x (mark - entry)``; 0 when flat."""
        if self.entry_price is None:
            return ZERO
        return self.quantity * (to_decimal(mark) - self.entry_price)


def fee_in_quote(fill: Fill, base_asset: str, quote_asset: str) -> Decimal:
    """The fill's fee in the quote asset: as charged in quote, at the fill's price in base; a
    fee in any other asset (a discount token) is not valued here and counts 0."""
    if fill.fee_asset == quote_asset:
        return fill.fee
    if fill.fee_asset == base_asset:
        return fill.fee * fill.price
    return ZERO


@dataclass(slots=True)
class PositionLedger:
    """One symbol's position, cash, realised PnL and fees, built up fill by fill."""

    basis: CostBasis = field(default_factory=CostBasis)
    cash: Decimal = ZERO
    """Quote received for sells less quote paid for buys (fees apart)."""
    realized_pnl: Decimal = ZERO
    fees: Decimal = ZERO
    """Fees paid, in the quote asset (see ``fee_in_quote``)."""
    fills: int = 0
    """How many fills were applied."""
    last_fill_ms: int = 0

    @property
    def quantity(self) -> Decimal:
        return self.basis.quantity

    @property
    def entry_price(self) -> Decimal | None:
        return self.basis.entry_price

    def apply(self, fill: Fill, base_asset: str, quote_asset: str) -> Decimal:
        """Book one fill of this symbol; returns the PnL it realised (before fees)."""
        signed = fill.quantity if fill.side is Side.BUY else -fill.quantity
        self.basis, realised = self.basis.trade(signed, fill.price)
        self.cash -= signed * fill.price
        self.realized_pnl += realised
        self.fees += fee_in_quote(fill, base_asset, quote_asset)
        self.fills += 1
        self.last_fill_ms = max(self.last_fill_ms, fill.time_ms)
        return realised

    def unrealized(self, mark: Decimal | float) -> Decimal:
        """The open position's PnL at ``mark``; 0 when flat."""
        return self.basis.unrealized(mark)

    def pnl(self, mark: Decimal | float) -> Decimal:
        """Everything since the first fill, after fees, the position valued at ``mark``:
        cash + quantity x mark - fees (= realised + unrealised - fees)."""
        return self.cash + self.quantity * to_decimal(mark) - self.fees
