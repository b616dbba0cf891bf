"""Configuration models of the environment (plain pydantic; no Ray, no swarm_ray).

The env accepts either a ``MarketMakingConfig`` or a plain dict (as RLlib passes ``env_config``);
a dict may name a ``preset`` whose values the other keys override.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class StrictModel(BaseModel):
    """Frozen, rejects unknown keys: a typo in a config is an error, not a silent default."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)


class MidpriceConfig(StrictModel):
    """Where the midprice comes from: arithmetic Brownian motion or a replay of real klines."""

    kind: Literal["brownian", "replay", "tick"] = "brownian"
    s0: float = Field(100.0, gt=0, description="starting mid (brownian)")
    sigma: float = Field(2.0, ge=0, description="volatility, price units per sqrt(time unit)")
    drift: float = Field(0.0, description="drift, price units per time unit (brownian)")
    increments: Literal["gaussian", "binomial"] = Field(
        "gaussian", description="binomial: +/- sigma sqrt(dt) each step, as in the 2008 paper"
    )
    files: tuple[str, ...] = Field(
        (), description="kline CSV files (replay) or L2 stream files (tick), in time order"
    )
    trades: tuple[str, ...] = Field(
        (), description="tick: aggTrades CSVs, with book_ticker, instead of L2 files"
    )
    book_ticker: tuple[str, ...] = Field((), description="tick: bookTicker CSVs, with trades")
    interval_ms: int = Field(
        1000, ge=10, le=3_600_000, description="tick: one step's length, in milliseconds"
    )
    tick_size: float | None = Field(
        None, gt=0, description="tick: the symbol's price tick (quotes are rounded outward to it)"
    )
    lot_size: float = Field(0.001, gt=0, description="tick: the symbol's quantity step")
    random_start: bool = Field(
        True, description="replay: random episode start (else the first bar)"
    )
    ref_vol: float | None = Field(
        None,
        gt=0,
        description=(
            "replay: reference one-step volatility of simple returns that scales the features, "
            "the pnl unit and the reward's sigma; None: the replayed files' own. Pin it to the "
            "training days' value so a policy sees the same scale on any other day"
        ),
    )
    step_sigma: float | None = Field(
        None,
        gt=0,
        description=(
            "replay: one-bar std of price changes (price units) behind the pnl unit and the "
            "reward's sigma; None: the files' own, or ref_vol times their median when pinned"
        ),
    )
    mean_volume: float | None = Field(
        None, gt=0, description="replay: volume the volume feature is relative to; None: files'"
    )


class FillConfig(StrictModel):
    """When a resting quote fills."""

    kind: Literal["poisson", "trade_through", "queue"] = "poisson"
    A: float = Field(140.0, ge=0, description="poisson: arrival intensity at zero distance")
    k: float = Field(1.5, gt=0, description="poisson: decay of intensity with distance")
    probability: Literal["linear", "exponential"] = Field(
        "linear",
        description="per-step fill chance: A e^(-k d) dt (paper) or 1 - exp(-A e^(-k d) dt)",
    )
    touch_fill_prob: float = Field(
        1.0, ge=0, le=1, description="trade_through: chance a traded-through quote fills (queue)"
    )
    distance_from: Literal["quote_mid", "next_mid"] = Field(
        "quote_mid",
        description=(
            "poisson: a quote's distance, which sets its fill chance, is measured from the mid "
            "it was set at (quote_mid), or from the mid after the step's move (next_mid: the "
            "order of events that reproduces the 2008 paper's Table 1)"
        ),
    )
    queue_model: Literal["risk_averse", "power_prob", "log_prob"] = Field(
        "risk_averse", description="queue: how others' cancels move a quote up (envs.queue)"
    )
    queue_power: float = Field(2.0, gt=0, le=100, description="queue: power_prob's exponent")
    latency_ms: float = Field(
        10.0, ge=0, le=60_000, description="queue: a quote or cancel reaches the venue this late"
    )


class FeeConfig(StrictModel):
    """Exchange fees in basis points of notional; negative maker fees are rebates."""

    maker_bps: float = Field(0.0, ge=-10, le=100)
    taker_bps: float = Field(0.0, ge=0, le=100)
    market_half_spread: float = Field(
        0.0, ge=0, description="price distance from mid paid by a market order (plus taker fee)"
    )


class RewardConfig(StrictModel):
    """Reward: pnl, pnl with an inventory penalty, risk-averse (mean-variance), spread capture."""

    kind: Literal["pnl", "inventory_penalty", "risk_averse", "spread_capture"] = "pnl"
    inventory_penalty: float = Field(0.0, ge=0, description="phi in  -phi q^2 dt")
    gamma: float = Field(0.1, ge=0, description="risk aversion in -gamma/2 sigma^2 q^2 dt")
    holding_cost: float = Field(
        0.0, ge=0, description="spread_capture: cost per |q| sigma sqrt(dt)"
    )
    terminal_inventory_penalty: float = Field(0.0, ge=0, description="alpha in -alpha q_T^2")
    markout: bool = Field(
        False,
        description=(
            "the PnL term is the step's trades marked to the next mid, net of fees (spread "
            "captured after adverse selection) instead of the change in wealth: the mark of the "
            "inventory carried into the step is left out, its risk priced by the inventory term"
        ),
    )
    quote_bonus: float = Field(
        0.0,
        ge=0,
        description=(
            "paid per quote side placed per step: the shadow price of a market maker's quoting "
            "obligation (not PnL; backtests never pay it)"
        ),
    )
    idle_reduce_cost: float = Field(
        0.0,
        ge=0,
        description=(
            "charged when a reduce action has nothing to reduce (it then stands aside), so a "
            "policy that means to stand aside votes stand_aside"
        ),
    )
    scale: float = Field(1.0, gt=0, description="rewards are divided by this")


class ActionConfig(StrictModel):
    """How each discrete action maps to quotes (distances from the mid)."""

    unit: Literal["price", "bps"] = Field("price", description="unit of the distances below")
    tight: float = Field(0.65, gt=0, description="half-spread of quote_tight")
    wide: float = Field(1.5, gt=0, description="half-spread of quote_wide")
    skew: float = Field(0.5, ge=0, le=1, description="skews move each side by this fraction")
    order_size: float = Field(1.0, gt=0, description="quantity of each quote")
    reduce_size: float = Field(1.0, gt=0, description="largest market order of reduce_*")

    @model_validator(mode="after")
    def _tight_inside_wide(self) -> ActionConfig:
        if self.tight > self.wide:
            raise ValueError(f"tight ({self.tight}) must not exceed wide ({self.wide})")
        return self


class ObservationConfig(StrictModel):
    """What the agent observes (``envs.features``)."""

    layout: Literal["v2", "v3"] = Field(
        "v2",
        description=(
            "v2: 15 columns scaled by a reference pinned at training (midprice.ref_vol); v3: the "
            "same 15 scaled by each series' own trailing scale_window bars, plus 7 columns "
            "(order-flow imbalance, volatility level and regime, time of day, recent quote "
            "markouts)"
        ),
    )
    scale_window: int = Field(
        240, ge=20, le=240, description="v3: bars behind the rolling scale (live windows hold 256)"
    )


class MarketMakingConfig(StrictModel):
    """Everything that defines one market-making episode."""

    dt: float = Field(0.005, gt=0, description="time step, in the time unit of sigma and A")
    n_steps: int = Field(200, ge=1, le=1_000_000, description="steps per episode")
    max_inventory: float = Field(
        50.0, gt=0, description="quotes that would pass this are not placed"
    )
    warmup: int = Field(30, ge=1, description="bars of history before the episode (features)")
    midprice: MidpriceConfig = MidpriceConfig()
    fills: FillConfig = FillConfig()
    fees: FeeConfig = FeeConfig()
    reward: RewardConfig = RewardConfig()
    actions: ActionConfig = ActionConfig()
    observation: ObservationConfig = ObservationConfig()

    @model_validator(mode="after")
    def _replay_is_consistent(self) -> MarketMakingConfig:
        if self.midprice.kind == "replay" and not self.midprice.files:
            raise ValueError("midprice.files: replay needs at least one kline file")
        if self.fills.kind == "trade_through" and self.midprice.kind != "replay":
            raise ValueError("fills.kind: trade_through needs midprice.kind = replay")
        if (self.fills.kind == "queue") != (self.midprice.kind == "tick"):
            raise ValueError(
                "fills.kind: queue (the tick replay) and midprice.kind: tick go together: the "
                "queue model needs L2 data, and L2 data is replayed with it"
            )
        if self.midprice.kind == "tick":
            m = self.midprice
            if bool(m.trades) != bool(m.book_ticker):
                raise ValueError("midprice.trades and midprice.book_ticker go together")
            if bool(m.files) == bool(m.trades):
                raise ValueError(
                    "midprice: tick needs L2 files (files) or trades + book_ticker, not both"
                )
            if self.midprice.tick_size is None:
                raise ValueError("midprice.tick_size: tick needs the symbol's price tick")
        return self


def _deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = value
    return out


PRESETS: dict[str, dict[str, Any]] = {
    # Avellaneda & Stoikov (2008), section 3: s=100, T=1, sigma=2, dt=0.005, A=140, k=1.5,
    # gamma=0.1, q0=0; the mid moves +/- sigma sqrt(dt) each step and a quote at distance d
    # fills with probability A exp(-k d) dt.
    "as2008": {
        "dt": 0.005,
        "n_steps": 200,
        "max_inventory": 1000.0,
        "midprice": {"kind": "brownian", "s0": 100.0, "sigma": 2.0, "increments": "binomial"},
        "fills": {"kind": "poisson", "A": 140.0, "k": 1.5, "probability": "linear"},
        "reward": {"kind": "pnl"},
        "actions": {"unit": "price", "tight": 0.65, "wide": 1.5, "order_size": 1.0},
    },
    # Replay of real 1-minute klines: one step is one minute; distances in basis points.
    "replay": {
        "dt": 1.0,
        "n_steps": 240,
        "max_inventory": 0.05,
        "midprice": {"kind": "replay"},
        "fills": {"kind": "trade_through", "touch_fill_prob": 1.0},
        "fees": {"maker_bps": 2.0, "taker_bps": 5.0, "market_half_spread": 0.005},
        "reward": {"kind": "pnl"},
        "actions": {
            "unit": "bps",
            "tight": 3.0,
            "wide": 8.0,
            "skew": 0.5,
            "order_size": 0.005,
            "reduce_size": 0.005,
        },
    },
}


def make_config(
    config: MarketMakingConfig | dict[str, Any] | None = None, **overrides: Any
) -> MarketMakingConfig:
    """A validated config from a config, or a plain dict that may name a ``preset``."""
    if isinstance(config, MarketMakingConfig) and not overrides:
        return config
    if isinstance(config, MarketMakingConfig):
        data: dict[str, Any] = config.model_dump()
    else:
        data = dict(config or {})
    data = _deep_merge(data, overrides)
    preset = data.pop("preset", None)
    if preset is not None:
        if preset not in PRESETS:
            raise ValueError(f"unknown preset {preset!r}; known: {sorted(PRESETS)}")
        data = _deep_merge(PRESETS[preset], data)
    return MarketMakingConfig.model_validate(data)
