"""``configs/backtest.yaml``: fee tiers, symbol filters and sizes in quote-currency notional.

Sizes are given in the quote currency (USDT) so the same file backtests any symbol; they become
base-asset quantities per symbol at one reference price, quantised to the symbol's step size.
The reference price is known before the evaluated days: the mean close of the days A-S is fitted
on, or (without them) the first open of the first evaluated day.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal

from pydantic import Field, model_validator

from swarm_ray.core.config import StrictModel

__all__ = [
    "DEFAULT_FEE_TIERS",
    "BacktestConfig",
    "FeeTier",
    "Sizing",
    "SymbolFilters",
    "SymbolSizes",
    "symbol_sizes",
]


class FeeTier(StrictModel):
    """A venue fee schedule, in basis points of notional (negative maker fee: a rebate)."""

    maker_bps: float = Field(ge=-10, le=100)
    taker_bps: float = Field(ge=0, le=100)
    source: str = Field(description="where the numbers come from")


DEFAULT_FEE_TIERS: dict[str, FeeTier] = {
    "regular": FeeTier(
        maker_bps=2.0, taker_bps=5.0, source="Binance USD-M futures, regular user (VIP 0)"
    ),
    "vip9": FeeTier(maker_bps=0.0, taker_bps=1.7, source="Binance USD-M futures, VIP 9"),
    "lp_rebate": FeeTier(
        maker_bps=-0.5,
        taker_bps=5.0,
        source=(
            "Binance USD-M futures liquidity provider programme, entry tier maker rebate; "
            "taker as the regular tier"
        ),
    ),
    "spot_regular": FeeTier(maker_bps=10.0, taker_bps=10.0, source="Binance spot, regular user"),
}


class SymbolFilters(StrictModel):
    """A symbol's trading filters (Binance exchange info: PRICE_FILTER, LOT_SIZE, NOTIONAL)."""

    tick_size: Decimal = Field(gt=0)
    step_size: Decimal = Field(gt=0)
    min_notional: Decimal = Field(Decimal(5), ge=0)


class Sizing(StrictModel):
    """Order sizes and limits in the quote currency, the same for every symbol."""

    order_notional: float = Field(300.0, gt=0, description="each quote, quote currency")
    reduce_notional: float = Field(300.0, gt=0, description="largest reduce (market) order")
    max_position_notional: float = Field(3000.0, gt=0, description="position limit")
    market_half_spread_bps: float = Field(
        0.0, ge=0, description="market-order cost beyond the mid, bps; at least half a tick"
    )


class ASConfig(StrictModel):
    gamma_per_bps: float = Field(
        6e-4, gt=0, description="risk aversion per basis point of the price (scale-free)"
    )
    horizon: float | None = Field(60.0, gt=0, description="cap on T - t, in bars")


class FixedSpreadConfig(StrictModel):
    half_spread_bps: float = Field(8.0, gt=0)


class BacktestConfig(StrictModel):
    """What ``swarm-ray backtest`` runs and how it scores."""

    fees: str = "regular"
    """The fee tier in force (a key of ``fee_tiers``)."""
    fee_tiers: dict[str, FeeTier] = Field(default_factory=lambda: dict(DEFAULT_FEE_TIERS))
    symbols: dict[str, SymbolFilters] = Field(default_factory=dict)
    """Filters per symbol; a symbol missing here cannot be backtested (clear error)."""
    sizing: Sizing = Sizing()
    fit_files: tuple[str, ...] = ()
    """Days A, k and sigma of Avellaneda-Stoikov are fitted on (never evaluated days)."""
    fit_window_days: int = Field(6, ge=1, description="walk-forward: A-S fitted on this many")
    fixed_spread: FixedSpreadConfig = FixedSpreadConfig()
    avellaneda_stoikov: ASConfig = ASConfig()
    swarm_config: str = "configs/paper.yaml"
    """The swarm's consensus, risk limits, agents and quoting (sizes replaced by ``sizing``)."""
    models_dir: str = "models"
    periods_per_year: float = Field(525_600.0, gt=0, description="bars per year (minutes)")
    bootstrap_samples: int = Field(2000, ge=100, le=100_000)
    seed: int = 0

    @model_validator(mode="after")
    def _tier_known(self) -> BacktestConfig:
        if self.fees not in self.fee_tiers:
            raise ValueError(f"fees: {self.fees!r} is not a fee tier ({sorted(self.fee_tiers)})")
        return self

    def tier(self, name: str | None = None) -> FeeTier:
        name = name or self.fees
        if name not in self.fee_tiers:
            raise ValueError(f"--fees: {name!r} is not a fee tier ({sorted(self.fee_tiers)})")
        return self.fee_tiers[name]


@dataclass(frozen=True)
class SymbolSizes:
    """A symbol's sizes in base units at its reference price."""

    symbol: str
    reference_price: float
    order_size: float
    reduce_size: float
    max_position: float
    market_half_spread: float
    """Price units."""
    filters: SymbolFilters


def _quantity(notional: float, price: float, step: Decimal, what: str, symbol: str) -> float:
    qty = (Decimal(repr(notional)) / Decimal(repr(price)) / step).quantize(
        Decimal(1), rounding=ROUND_HALF_EVEN
    ) * step
    if qty <= 0:
        raise ValueError(
            f"sizing.{what}: {notional} is below one step ({step}) of {symbol} at {price:g}"
        )
    return float(qty)


def symbol_sizes(cfg: BacktestConfig, symbol: str, reference_price: float) -> SymbolSizes:
    """The config's notional sizes as quantities of ``symbol`` (errors name the field)."""
    if symbol not in cfg.symbols:
        raise ValueError(
            f"symbols: no filters for {symbol!r} (known: {sorted(cfg.symbols)}); add its "
            "tick_size, step_size and min_notional from the exchange info"
        )
    f = cfg.symbols[symbol]
    s = cfg.sizing
    order = _quantity(s.order_notional, reference_price, f.step_size, "order_notional", symbol)
    if Decimal(repr(order * reference_price)) < f.min_notional:
        raise ValueError(
            f"sizing.order_notional: {s.order_notional} is below {symbol}'s min_notional "
            f"{f.min_notional}"
        )
    half = max(float(f.tick_size) / 2, s.market_half_spread_bps * 1e-4 * reference_price)
    return SymbolSizes(
        symbol=symbol,
        reference_price=reference_price,
        order_size=order,
        reduce_size=_quantity(
            s.reduce_notional, reference_price, f.step_size, "reduce_notional", symbol
        ),
        max_position=_quantity(
            s.max_position_notional, reference_price, f.step_size, "max_position_notional", symbol
        ),
        market_half_spread=half,
        filters=f,
    )
