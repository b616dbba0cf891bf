"""The market-making environment."""

from __future__ import annotations

import math
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from envs.actions import N_ENV_ACTIONS, Action
from envs.config import MarketMakingConfig, make_config
from envs.features import (
    DRAWDOWN,
    FILL_MEMORY_STEPS,
    INVENTORY,
    TIME_LEFT,
    TIME_SINCE_FILL,
    UNREALIZED_PNL,
    layout_bounds,
    pnl_unit,
)
from envs.models import FeeModel, RewardModel, TickMidprice, make_fill_model, make_midprice
from envs.tick import TickFills

_NAN = float("nan")


def action_table(cfg: MarketMakingConfig) -> list[tuple[float, float, int]]:
    """(bid distance, ask distance, market-order direction) of each env action, in the config's
    unit; a nan distance means no quote on that side; direction +1 buys, -1 sells, 0 none."""
    a = cfg.actions
    lo, hi = a.tight * (1.0 - a.skew), a.tight * (1.0 + a.skew)
    table = {
        Action.STAND_ASIDE: (_NAN, _NAN, 0),
        Action.QUOTE_TIGHT: (a.tight, a.tight, 0),
        Action.QUOTE_WIDE: (a.wide, a.wide, 0),
        Action.SKEW_BUY: (lo, hi, 0),
        Action.SKEW_SELL: (hi, lo, 0),
        Action.REDUCE_BUY: (_NAN, _NAN, 1),
        Action.REDUCE_SELL: (_NAN, _NAN, -1),
    }
    return [table[Action(i)] for i in range(N_ENV_ACTIONS)]


# The average-cost rule, in two forms: one path (plain floats, what ``MarketMakingEnv`` calls
# every fill) and many paths (arrays, what ``VectorMarketSim`` calls). Calling the array form
# with one-element arrays from the env would cost it about half its steps per second.


def apply_fill(q: float, avg: float, qty: float, price: float) -> tuple[float, float]:
    """New (inventory, average cost) after trading signed ``qty`` (not 0) at ``price``:
    adding to a position averages the price in, reducing keeps the cost, trading through
    flat opens the remainder at ``price``, and a flat position costs 0."""
    new_q = q + qty
    if q == 0.0 or (q > 0.0) == (qty > 0.0):
        avg = (avg * abs(q) + price * abs(qty)) / abs(new_q)
    elif abs(qty) > abs(q):  # crossed through flat: the remainder opens at this price
        avg = price
    elif new_q == 0.0:
        avg = 0.0
    return new_q, avg


def apply_fill_many(
    q: np.ndarray, avg: np.ndarray, qty: np.ndarray, price: np.ndarray
) -> np.ndarray:
    """``apply_fill``'s average cost, elementwise over paths (a ``qty`` of 0 keeps ``avg``)."""
    new_q = q + qty
    same = (q == 0.0) | ((q > 0.0) == (qty > 0.0))
    with np.errstate(invalid="ignore", divide="ignore"):
        grown = (avg * np.abs(q) + price * np.abs(qty)) / np.abs(new_q)
    out = np.where(same, grown, np.where(np.abs(qty) > np.abs(q), price, avg))
    out = np.where(new_q == 0.0, 0.0, out)
    return np.where(qty == 0.0, avg, out)


class MarketMakingEnv(gym.Env):
    """A single-asset market maker quoting around the mid, one step at a time.

    ## Description
    Each step the agent chooses how to quote: a bid and an ask at distances from the mid, or
    no quotes, or a market order that reduces inventory. Resting quotes may fill during the
    step; the mid then moves. The midprice is arithmetic Brownian motion (Avellaneda & Stoikov
    2008) or a replay of real Binance 1-minute klines; fills follow Poisson arrivals with
    intensity ``A exp(-k d)`` at distance ``d`` (simulation) or the real bars trading through
    the quote (replay). Models are chosen in ``MarketMakingConfig`` (see ``envs.config``).

    ## Action space
    ``Discrete(7)``, the shared vocabulary ``envs.actions.Action`` without ``emergency_stop``:

    | # | action        | bid distance        | ask distance        |
    |---|---------------|---------------------|---------------------|
    | 0 | stand_aside   | none                | none                |
    | 1 | quote_tight   | tight               | tight               |
    | 2 | quote_wide    | wide                | wide                |
    | 3 | skew_buy      | tight (1 - skew)    | tight (1 + skew)    |
    | 4 | skew_sell     | tight (1 + skew)    | tight (1 - skew)    |
    | 5 | reduce_buy    | market buy of up to reduce_size, only while short          |
    | 6 | reduce_sell   | market sell of up to reduce_size, only while long          |

    Distances are in price units or basis points of the mid (``actions.unit``). A quote that
    would take inventory past ``max_inventory`` is not placed. ``step_quotes`` is the
    continuous interface underneath (any bid/ask distance), used by the baselines.

    ## Observation space
    ``Box(15,)`` float32 (layout v2, the default) or ``Box(22,)`` (v3); column indices are
    constants in ``envs.features``:

    | # | name            | meaning                                              | range     |
    |---|-----------------|------------------------------------------------------|-----------|
    | 0 | inventory       | inventory / max_inventory                            | [-1, 1]   |
    | 1 | time_left       | fraction of the episode left                         | [0, 1]    |
    | 2 | ret_1           | 1-step return / reference one-step vol               | [-10, 10] |
    | 3 | ret_5           | 5-step return, same scale / sqrt 5                   | [-10, 10] |
    | 4 | ret_20          | 20-step return, same scale / sqrt 20                 | [-10, 10] |
    | 5 | volatility      | rolling 20-step vol / reference vol                  | [0, 10]   |
    | 6 | range           | bar range / mid / reference vol                      | [0, 20]   |
    | 7 | imbalance       | taker-buy share of volume * 2 - 1                    | [-1, 1]   |
    | 8 | volume          | log(volume / mean volume)                            | [-5, 5]   |
    | 9 | rsi             | (RSI14 - 50) / 50                                    | [-1, 1]   |
    | 10| macd            | (EMA12 - EMA26) / mid / reference vol                | [-20, 20] |
    | 11| bollinger       | (mid - SMA20) / (2 std20)                            | [-3, 3]   |
    | 12| unrealized_pnl  | inventory * (mid - average cost) / pnl unit          | [-10, 10] |
    | 13| drawdown        | (peak wealth - wealth) / pnl unit                    | [0, 10]   |
    | 14| time_since_fill | steps since our last fill / 50                       | [0, 1]    |

    The pnl unit is ten one-step standard deviations of one order's value.

    Layout v3 (``observation.layout``) takes the reference volatility, the mean volume and the
    pnl unit from each series' own trailing ``observation.scale_window`` bars instead of a
    scale pinned at training, and appends: imbalance_5, imbalance_20 (taker-buy share of the
    last 5 / 20 bars' volume * 2 - 1), vol_level (log rolling one-bar vol in bps), volume_regime
    (log 20-bar mean volume / window mean), tod_sin, tod_cos (time of day of the bar) and
    quote_markout (EMA of what quotes one 20-bar sigma away earned, marked at the bar's close).

    ## Rewards
    The change in wealth (cash + inventory marked to the mid, net of fees) with an optional
    inventory penalty, risk-averse (mean-variance) term or spread-capture form
    (``reward.kind``); see ``envs.models.RewardModel``.

    ## Starting state
    Flat inventory and zero cash; the mid at ``midprice.s0`` (simulation) or at a random bar
    of the replayed days, with ``warmup`` bars of history behind it for the features.

    ## Episode end
    Terminated after ``n_steps`` steps (time is part of the state: the horizon T is real).
    The registered id also carries a ``TimeLimit`` of 200 steps, the default ``n_steps``;
    ``envs.make_env`` sets it from the config.

    ## Arguments
    ``MarketMakingEnv(config=None, **overrides)``: a ``MarketMakingConfig``, or a plain dict
    (optionally with ``preset``: ``as2008`` or ``replay``), plus keyword overrides.
    ``reset(options={"start": i})`` starts a replay episode at bar ``i``.

    ## Version history
    - v0: first release; observation layout v3 added beside v2 (v2 stays the default).
    """

    metadata: dict[str, Any] = {"render_modes": []}  # noqa: RUF012

    def __init__(
        self,
        config: MarketMakingConfig | dict[str, Any] | None = None,
        render_mode: str | None = None,
        **overrides: Any,
    ) -> None:
        self.cfg = make_config(config, **overrides)
        self.render_mode = render_mode
        cfg = self.cfg
        self.midprice = make_midprice(cfg)
        self.fill_model = make_fill_model(cfg)
        self._next_mid = cfg.fills.kind == "poisson" and cfg.fills.distance_from == "next_mid"
        self.tick: TickFills | None = None
        if isinstance(self.midprice, TickMidprice):
            m, f = cfg.midprice, cfg.fills
            assert m.tick_size is not None  # the config requires it for tick
            self.tick = TickFills(
                self.midprice.tape, m.tick_size, m.lot_size, f.queue_model, f.queue_power,
                f.latency_ms,
            )  # fmt: skip
        self.fees = FeeModel(cfg.fees)
        sigma = self.midprice.step_sigma / math.sqrt(cfg.dt)
        self.reward_model = RewardModel(cfg.reward, sigma, cfg.dt)
        self.action_space = spaces.Discrete(N_ENV_ACTIONS)
        low, high = layout_bounds(cfg.observation.layout)
        self.observation_space = spaces.Box(low, high, shape=low.shape, dtype=np.float32)
        self._table = action_table(cfg)
        self._bps = cfg.actions.unit == "bps"
        self._size = cfg.actions.order_size
        self._max_inv = cfg.max_inventory
        self._pnl_unit = 10.0 * cfg.actions.order_size * self.midprice.step_sigma or 1.0
        self._n = cfg.n_steps
        self._t = self._n  # not started until reset()

    # -- state, for the baselines and the evaluation --------------------------------------
    @property
    def t(self) -> int:
        return self._t

    @property
    def mid(self) -> float:
        return self._mids[self._t]

    @property
    def inventory(self) -> float:
        return self._q

    @property
    def cash(self) -> float:
        return self._cash

    @property
    def wealth(self) -> float:
        return self._wealth

    @property
    def time_left(self) -> float:
        """Time to the horizon, in the time unit of sigma and A."""
        return (self._n - self._t) * self.cfg.dt

    # -- gymnasium API ------------------------------------------------------------------
    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        starts = None
        if options and "start" in options:
            starts = np.array([int(options["start"])])
        data = self.midprice.sample(self.np_random, 1, self._n, True, starts)
        self._data = data
        self._mids: list[float] = data.mid[:, 0].tolist()
        self._highs = data.high[:, 0].tolist() if data.high is not None else None
        self._lows = data.low[:, 0].tolist() if data.low is not None else None
        rows = data.features[:, 0].astype(np.float32)
        rows[:, TIME_LEFT] = np.linspace(1.0, 0.0, self._n + 1, dtype=np.float32)
        rows[:, TIME_SINCE_FILL] = 1.0
        self._rows = rows
        # the pnl unit of the agent columns: fixed (v2), or each step's own (v3: ten one-step
        # standard deviations of one order's value at that step's scale)
        self._units: list[float] | None = None
        if data.scale is not None:
            self._units = pnl_unit(self._size, data.mid[:, 0], data.scale[:, 0]).tolist()
        if self.tick is not None:
            assert data.time_ms is not None
            self._times: list[int] = data.time_ms[:, 0].tolist()
            self.tick.reset()
        self._u: list[list[float]] = self.np_random.random((self._n, 2)).tolist()
        self._t = 0
        self._q = 0.0
        self._cash = 0.0
        self._avg = 0.0
        self._wealth = 0.0
        self._peak = 0.0
        self._last_fill = -(10**9)
        self._fills = 0
        return rows[0].copy(), {"mid": self._mids[0], "inventory": 0.0, "wealth": 0.0}

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        a = int(action)
        if not 0 <= a < N_ENV_ACTIONS:
            raise ValueError(f"action {action!r} is outside Discrete({N_ENV_ACTIONS})")
        bid_d, ask_d, direction = self._table[a]
        if self._bps:
            scale = self._mids[self._t] * 1e-4
            bid_d *= scale
            ask_d *= scale
        market_qty = 0.0
        if direction:
            q = self._q
            if direction * q < 0.0:  # reduce only: buy while short, sell while long
                market_qty = direction * min(self.cfg.actions.reduce_size, abs(q))
        return self._advance(bid_d, ask_d, market_qty, bool(direction) and not market_qty)

    def step_quotes(
        self, bid_distance: float | None, ask_distance: float | None, market_qty: float = 0.0
    ) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        """The continuous interface: quote at these price distances from the mid (``None`` or
        nan for no quote on a side), after an optional signed market order."""
        bid_d = _NAN if bid_distance is None else float(bid_distance)
        ask_d = _NAN if ask_distance is None else float(ask_distance)
        return self._advance(bid_d, ask_d, float(market_qty))

    def _advance(
        self, bid_d: float, ask_d: float, market_qty: float, idle_reduce: bool = False
    ) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        t = self._t
        if t >= self._n:
            raise RuntimeError("step() called on a finished episode; call reset() first")
        mid = self._mids[t]
        q, cash, avg = self._q, self._cash, self._avg
        fees = self.fees
        edge = 0.0
        fee_paid = 0.0
        filled = False
        if market_qty:
            px = mid + fees.market_half_spread if market_qty > 0 else mid - fees.market_half_spread
            notional = abs(market_qty) * px
            cash -= market_qty * px
            fee_paid += notional * fees.taker
            edge -= abs(market_qty) * fees.market_half_spread
            q, avg = apply_fill(q, avg, market_qty, px)
        size = self._size
        u = self._u[t]
        bid_on = bid_d == bid_d and q + size <= self._max_inv + 1e-12
        ask_on = ask_d == ask_d and q - size >= -self._max_inv - 1e-12
        if self.tick is not None:  # the tick replay: the quotes rest in the recorded queue
            tf = self.tick
            fills = tf.step(
                self._times[t],
                self._times[t + 1],
                tf.bid_price(mid - bid_d) if bid_on else None,
                tf.ask_price(mid + ask_d) if ask_on else None,
                size,
            )
            filled_qty = {1: 0.0, -1: 0.0}
            for side, qty, px in fills:
                cash -= side * qty * px
                fee_paid += qty * px * fees.maker
                edge += side * qty * (mid - px)
                q, avg = apply_fill(q, avg, side * qty, px)
                filled_qty[side] += qty
            bid_fill, ask_fill = filled_qty[1] > 0.0, filled_qty[-1] > 0.0
            filled = bid_fill or ask_fill
        else:
            low_next = self._lows[t + 1] if self._lows is not None else 0.0
            high_next = self._highs[t + 1] if self._highs is not None else 0.0
            assert self.fill_model is not None
            ref = self._mids[t + 1] if self._next_mid else mid  # where the distance is taken
            bid_fill = bid_on and self.fill_model.fill_bid(mid - bid_d, ref, low_next, u[0])
            ask_fill = ask_on and self.fill_model.fill_ask(mid + ask_d, ref, high_next, u[1])
        if bid_fill and self.tick is None:
            px = mid - bid_d
            cash -= size * px
            fee_paid += size * px * fees.maker
            edge += size * bid_d
            q, avg = apply_fill(q, avg, size, px)
            filled = True
        if ask_fill and self.tick is None:
            px = mid + ask_d
            cash += size * px
            fee_paid += size * px * fees.maker
            edge += size * ask_d
            q, avg = apply_fill(q, avg, -size, px)
            filled = True
        cash -= fee_paid
        t += 1
        mid_next = self._mids[t]
        wealth = cash + q * mid_next
        reward = self.reward_model.step(
            wealth - self._wealth,
            q,
            edge,
            fee_paid,
            self._q * (mid_next - mid),
            int(bid_on) + int(ask_on),
            idle_reduce,
        )
        terminated = t >= self._n
        if terminated:
            reward += self.reward_model.terminal(q)
        if wealth > self._peak:
            self._peak = wealth
        if filled:
            self._last_fill = t
            self._fills += int(bid_fill) + int(ask_fill)
        self._t, self._q, self._cash, self._avg, self._wealth = t, q, cash, avg, wealth

        obs = self._rows[t].copy()
        inv = q / self._max_inv
        obs[INVENTORY] = 1.0 if inv > 1.0 else (-1.0 if inv < -1.0 else inv)
        unit = self._pnl_unit if self._units is None else self._units[t]
        upnl = q * (mid_next - avg) / unit
        obs[UNREALIZED_PNL] = 10.0 if upnl > 10.0 else (-10.0 if upnl < -10.0 else upnl)
        dd = (self._peak - wealth) / unit
        obs[DRAWDOWN] = 10.0 if dd > 10.0 else dd
        since = (t - self._last_fill) / FILL_MEMORY_STEPS
        obs[TIME_SINCE_FILL] = 1.0 if since > 1.0 else since
        info = {
            "mid": mid_next,
            "inventory": q,
            "wealth": wealth,
            "bid_filled": bid_fill,
            "ask_filled": ask_fill,
        }
        if self.tick is not None:
            info["fills"] = fills  # (side, quantity, price): partial fills happen here
        return obs, reward, terminated, False, info
