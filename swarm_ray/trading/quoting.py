"""From a decided action to orders: the quote ladder and the diff against open orders.

The ladder's first level uses exactly the distances the policies were trained with (the env's
``action_table`` in basis points), so an action means the same quotes in training, backtests
and trading. Further levels step out by ``level_step_bps``. Prices are quantised to the
symbol's tick toward the passive side and never cross the touch; sizes to its step.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from types import SimpleNamespace

from pydantic import Field

from envs.actions import Action
from envs.config import ActionConfig
from envs.market_making import action_table
from swarm_ray.core.config import StrictModel
from swarm_ray.core.domain import Order, OrderType, Side
from swarm_ray.core.instruments import SymbolRules

_BPS = Decimal(10_000)

__all__ = ["DesiredOrder", "OrderDiff", "QuoteLadder", "QuotingParams", "diff_orders", "ladder"]


class QuotingParams(StrictModel):
    """The quoting parameters the strategy optimizer owns (and may re-tune)."""

    tight_bps: float = Field(3.0, gt=0, description="half-spread of quote_tight, bps of mid")
    wide_bps: float = Field(8.0, gt=0, description="half-spread of quote_wide, bps of mid")
    skew: float = Field(0.5, ge=0, le=1, description="skews move each side by this fraction")
    levels: int = Field(1, ge=1, le=10, description="quotes per side")
    level_step_bps: float = Field(2.0, gt=0, description="distance between ladder levels")
    size: float = Field(0.005, gt=0, description="base quantity per quote")
    reduce_size: float = Field(0.005, gt=0, description="largest market order of reduce_*")

    def action_config(self) -> ActionConfig:
        return ActionConfig(
            unit="bps",
            tight=self.tight_bps,
            wide=self.wide_bps,
            skew=self.skew,
            order_size=self.size,
            reduce_size=self.reduce_size,
        )

    def table(self) -> list[tuple[float, float, int]]:
        """(bid distance, ask distance, market direction) of each env action, in bps."""
        return action_table(SimpleNamespace(actions=self.action_config()))


@dataclass(frozen=True, slots=True)
class DesiredOrder:
    side: Side
    price: Decimal
    quantity: Decimal
    level: int
    order_type: OrderType = OrderType.LIMIT


@dataclass(frozen=True, slots=True)
class QuoteLadder:
    """The orders an action asks for: passive levels per side, or one market order."""

    action: Action
    bids: tuple[DesiredOrder, ...] = ()
    asks: tuple[DesiredOrder, ...] = ()
    market: DesiredOrder | None = None

    @property
    def orders(self) -> tuple[DesiredOrder, ...]:
        return self.bids + self.asks + ((self.market,) if self.market else ())


def _capped(sizes: list[Decimal], cap: Decimal, rules: SymbolRules) -> list[Decimal]:
    """Sizes level by level until the cumulative cap; a remainder below min qty is dropped."""
    out: list[Decimal] = []
    left = cap
    for s in sizes:
        q = rules.quantize_quantity(min(s, left)) if left > 0 else Decimal(0)
        if q < rules.min_qty or q <= 0:
            break
        out.append(q)
        left -= q
    return out


def ladder(
    action: Action,
    mid: float,
    best_bid: float,
    best_ask: float,
    params: QuotingParams,
    rules: SymbolRules,
    max_buy: float,
    max_sell: float,
    distances: tuple[float, float] | None = None,
) -> QuoteLadder:
    """The quotes of ``action`` around ``mid``, within the risk gate's per-side capacity;
    ``distances`` (bid, ask in bps) replace a quoting action's own (a ladder vote's blend)."""
    if action in (Action.STAND_ASIDE, Action.EMERGENCY_STOP) or not (
        math.isfinite(mid) and mid > 0
    ):
        return QuoteLadder(action)
    bid_d, ask_d, direction = params.table()[int(action)]
    if distances is not None and direction == 0 and bid_d == bid_d and ask_d == ask_d:
        bid_d, ask_d = distances
    dmid = Decimal(repr(mid))
    if direction != 0:
        side = Side.BUY if direction > 0 else Side.SELL
        cap = max_buy if direction > 0 else max_sell
        qty = rules.quantize_quantity(Decimal(repr(min(params.reduce_size, cap))))
        if qty < rules.min_qty or qty <= 0:
            return QuoteLadder(action)
        ref = Decimal(repr(best_ask if direction > 0 else best_bid))
        return QuoteLadder(action, market=DesiredOrder(side, ref, qty, 0, OrderType.MARKET))

    tick = rules.tick_size
    size = Decimal(repr(params.size))
    step = params.level_step_bps
    bids: list[DesiredOrder] = []
    asks: list[DesiredOrder] = []
    if bid_d == bid_d:
        sizes = _capped([size] * params.levels, Decimal(repr(max_buy)), rules)
        top = rules.quantize_price(Decimal(repr(best_ask)) - tick, Side.BUY)
        for i, q in enumerate(sizes):
            p = dmid * (1 - Decimal(repr(bid_d + i * step)) / _BPS)
            p = min(rules.quantize_price(p, Side.BUY), top - i * tick)
            if p > 0:
                bids.append(DesiredOrder(Side.BUY, p, q, i))
    if ask_d == ask_d:
        sizes = _capped([size] * params.levels, Decimal(repr(max_sell)), rules)
        bottom = rules.quantize_price(Decimal(repr(best_bid)) + tick, Side.SELL)
        for i, q in enumerate(sizes):
            p = dmid * (1 + Decimal(repr(ask_d + i * step)) / _BPS)
            p = max(rules.quantize_price(p, Side.SELL), bottom + i * tick)
            asks.append(DesiredOrder(Side.SELL, p, q, i))
    return QuoteLadder(action, tuple(bids), tuple(asks))


@dataclass(frozen=True, slots=True)
class OrderDiff:
    cancels: tuple[Order, ...]
    places: tuple[DesiredOrder, ...]
    keeps: tuple[Order, ...]


def diff_orders(
    want: QuoteLadder, open_orders: Sequence[Order], tolerance_ticks: int, rules: SymbolRules
) -> OrderDiff:
    """Which open orders to cancel and which desired orders to place.

    An open order is kept when a desired order on its side has the same remaining quantity and
    a price within ``tolerance_ticks``; each open order satisfies at most one desired order.
    Market orders are always placed (there is nothing resting to match them).
    """
    tol = rules.tick_size * tolerance_ticks
    unmatched = list(want.bids + want.asks)
    keeps: list[Order] = []
    cancels: list[Order] = []
    for o in open_orders:
        match = next(
            (
                d
                for d in unmatched
                if d.side is o.side and d.quantity == o.remaining and abs(d.price - o.price) <= tol
            ),
            None,
        )
        if match is None:
            cancels.append(o)
        else:
            unmatched.remove(match)
            keeps.append(o)
    places = tuple(unmatched) + ((want.market,) if want.market else ())
    return OrderDiff(tuple(cancels), places, tuple(keeps))
