"""A vectorised simulator: many independent episodes stepped at once with numpy.

It builds its episodes from the same midprice, fill, fee and reward models as
``MarketMakingEnv`` and follows the same step semantics (market order, then quotes checked
against the inventory limit, fills, then the mid moves), so a baseline or policy evaluated
here meets the market the env trains on. Use it for fast evaluation over thousands of paths.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from envs.actions import N_ENV_ACTIONS
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
from envs.market_making import action_table, apply_fill_many
from envs.models import EpisodeData, FeeModel, RewardModel, make_fill_model, make_midprice


@dataclass(frozen=True)
class QuoteState:
    """What an agent sees when it quotes, for ``n`` paths at once."""

    t: int
    n_steps: int
    dt: float
    mid: np.ndarray  # (n,)
    inventory: np.ndarray  # (n,)
    obs: np.ndarray | None  # (n, columns) float32, when the simulator builds observations

    @property
    def time_left(self) -> float:
        """Time to the horizon, in the time unit of sigma and A."""
        return (self.n_steps - self.t) * self.dt


class VectorMarketSim:
    """``n_paths`` market-making episodes in lock step.

    ``reset()`` samples the episodes; ``step_quotes(bid_d, ask_d, market_qty)`` takes arrays of
    distances from the mid in price units (nan: no quote) and returns the step's rewards;
    ``step_actions(actions)`` does the same for discrete actions of the shared vocabulary.
    """

    def __init__(
        self,
        config: MarketMakingConfig | dict[str, Any] | None = None,
        n_paths: int = 1000,
        seed: int | None = None,
        with_obs: bool = False,
        record: bool = False,
        session_steps: int | None = None,
        **overrides: Any,
    ) -> None:
        """``session_steps``: build observations as in sessions of this many steps, the way a
        policy trained on episodes that long runs over a longer backtest (or live): its
        ``time_left`` restarts every session and the drawdown reference resets at each session
        start; inventory, cash and fills carry over. None: the whole run is one session."""
        if n_paths < 1:
            raise ValueError(f"n_paths must be >= 1, got {n_paths}")
        if session_steps is not None and session_steps < 1:
            raise ValueError(f"session_steps must be >= 1, got {session_steps}")
        self.session_steps = session_steps
        self.cfg = cfg = make_config(config, **overrides)
        if cfg.fills.kind == "queue":
            raise ValueError(
                "fills.kind: queue (the tick replay) steps one path at a time: use "
                "MarketMakingEnv, or the paper exchange's fill_model: queue"
            )
        self.n_paths = n_paths
        self.with_obs = with_obs
        self.record = record
        self.rng = np.random.default_rng(seed)
        self.midprice = make_midprice(cfg)
        fill_model = make_fill_model(cfg)
        assert fill_model is not None
        self.fill_model = fill_model
        self._next_mid = cfg.fills.kind == "poisson" and cfg.fills.distance_from == "next_mid"
        self.fees = FeeModel(cfg.fees)
        self.reward_model = RewardModel(
            cfg.reward, self.midprice.step_sigma / math.sqrt(cfg.dt), cfg.dt
        )
        table = np.array(action_table(cfg), dtype=np.float64)
        self._bid_table, self._ask_table, self._dir_table = table[:, 0], table[:, 1], table[:, 2]
        self._pnl_unit = 10.0 * cfg.actions.order_size * self.midprice.step_sigma or 1.0
        self.data: EpisodeData | None = None
        self.t = cfg.n_steps

    def reset(self, starts: np.ndarray | None = None) -> QuoteState:
        """Sample new episodes (replay: optionally at the given start bars)."""
        n = self.n_paths
        self.data = self.midprice.sample(self.rng, n, self.cfg.n_steps, self.with_obs, starts)
        self._mid, self._low, self._high = self.data.mid, self.data.low, self.data.high
        # layout v3: the pnl unit of each step's own scale, else the fixed one
        self._units = (
            None
            if self.data.scale is None
            else pnl_unit(self.cfg.actions.order_size, self.data.mid, self.data.scale)
        )
        self.t = 0
        self.q = np.zeros(n)
        self.cash = np.zeros(n)
        self.wealth = np.zeros(n)
        self.avg = np.zeros(n)
        self.peak = np.zeros(n)
        self.last_fill = np.full(n, -(10**9), dtype=np.int64)
        self.fills = np.zeros(n, dtype=np.int64)
        self.history: dict[str, list[np.ndarray]] = {
            "wealth": [self.wealth.copy()],
            "inventory": [self.q.copy()],
            "mid": [self.data.mid[0].copy()],
            "bid": [],
            "ask": [],
            "bid_fill": [],
            "ask_fill": [],
            "market_qty": [],
            "market_px": [],
        }
        return self.state()

    def state(self) -> QuoteState:
        assert self.data is not None, "call reset() first"
        return QuoteState(
            self.t, self.cfg.n_steps, self.cfg.dt, self._mid[self.t], self.q, self._obs()
        )

    def _obs(self) -> np.ndarray | None:
        if not self.with_obs or self.data is None or self.data.features is None:
            return None
        t = self.t
        obs = self.data.features[t].astype(np.float32)
        session = self.session_steps
        obs[:, TIME_LEFT] = 1.0 - (t % session) / session if session else 1.0 - t / self.cfg.n_steps
        obs[:, INVENTORY] = self.q / self.cfg.max_inventory
        unit = self._pnl_unit if self._units is None else self._units[t]
        obs[:, UNREALIZED_PNL] = self.q * (self._mid[t] - self.avg) / unit
        obs[:, DRAWDOWN] = (self.peak - self.wealth) / unit
        obs[:, TIME_SINCE_FILL] = np.minimum((t - self.last_fill) / FILL_MEMORY_STEPS, 1.0)
        np.clip(obs, *layout_bounds(self.cfg.observation.layout), out=obs)
        return obs

    def step_actions(self, actions: np.ndarray) -> np.ndarray:
        """Step with one discrete action per path; returns the rewards."""
        if self.data is None or self.done:
            raise RuntimeError("step on a finished simulation; call reset() first")
        a = np.asarray(actions, dtype=np.int64)
        if a.shape != (self.n_paths,) or a.min() < 0 or a.max() >= N_ENV_ACTIONS:
            raise ValueError(f"actions must be {self.n_paths} integers in [0, {N_ENV_ACTIONS})")
        bid_d, ask_d = self._bid_table[a], self._ask_table[a]
        if self.cfg.actions.unit == "bps":
            scale = self._mid[self.t] * 1e-4
            bid_d, ask_d = bid_d * scale, ask_d * scale
        direction = self._dir_table[a]
        reduce = np.minimum(self.cfg.actions.reduce_size, np.abs(self.q))
        market_qty = np.where(direction * self.q < 0.0, direction * reduce, 0.0)
        idle_reduce = (direction != 0.0) & (market_qty == 0.0)
        return self.step_quotes(bid_d, ask_d, market_qty, idle_reduce)

    def step_quotes(
        self,
        bid_d: np.ndarray,
        ask_d: np.ndarray,
        market_qty: np.ndarray | None = None,
        idle_reduce: np.ndarray | None = None,
    ) -> np.ndarray:
        """Step every path with these quote distances (price units, nan: none); rewards.

        ``idle_reduce`` marks paths whose reduce action had nothing to reduce (for the reward).
        """
        if self.data is None or self.t >= self.cfg.n_steps:
            raise RuntimeError("step on a finished simulation; call reset() first")
        t, n = self.t, self.n_paths
        fees, size, max_inv = self.fees, self.cfg.actions.order_size, self.cfg.max_inventory
        mid = self._mid[t]
        q, cash = self.q, self.cash
        q_prev = q
        fee_paid = np.zeros(n)
        edge = np.zeros(n)
        track_avg = self.with_obs
        mq = px = None
        if market_qty is not None and np.any(market_qty):
            mq = np.asarray(market_qty, dtype=np.float64)
            px = mid + np.sign(mq) * fees.market_half_spread
            cash = cash - mq * px
            fee_paid += np.abs(mq) * px * fees.taker
            edge -= np.abs(mq) * fees.market_half_spread
            if track_avg:
                self.avg = apply_fill_many(q, self.avg, mq, px)
            q = q + mq
        # distances, nan where there is no quote or the inventory limit forbids one
        bid_d = np.array(np.broadcast_to(bid_d, (n,)), dtype=np.float64)
        ask_d = np.array(np.broadcast_to(ask_d, (n,)), dtype=np.float64)
        bid_d[q + size > max_inv + 1e-12] = np.nan
        ask_d[q - size < -max_inv - 1e-12] = np.nan
        u = self.rng.random((2, n))
        low_next = self._low[t + 1] if self._low is not None else None
        high_next = self._high[t + 1] if self._high is not None else None
        fb_d, fa_d = bid_d, ask_d
        if self._next_mid:  # distances from the mid after the step's move
            move = self._mid[t + 1] - mid
            fb_d, fa_d = bid_d + move, ask_d - move
        bid_fill, ask_fill = self.fill_model.fill_many(
            fb_d, fa_d, mid, low_next, high_next, u[0], u[1]
        )
        bid_got = np.where(bid_fill, bid_d, 0.0)  # captured distance on each filled side
        ask_got = np.where(ask_fill, ask_d, 0.0)
        bf = bid_fill.view(np.int8)
        af = ask_fill.view(np.int8)
        dq = size * (bf - af)
        bid_px = (mid - bid_got) * bf
        ask_px = (mid + ask_got) * af
        # cash: sells minus buys; maker fees on both notionals
        fee_paid += (bid_px + ask_px) * (size * fees.maker)
        cash = cash + size * (ask_px - bid_px) - fee_paid
        edge += size * (bid_got + ask_got)
        if track_avg:
            self.avg = apply_fill_many(q, self.avg, size * bf, bid_px)
            self.avg = apply_fill_many(q + size * bf, self.avg, -size * af, ask_px)
        q = q + dq
        self.t = t = t + 1
        wealth = cash + q * self._mid[t]
        rm = self.reward_model
        carry = q_prev * (self._mid[t] - mid) if rm.markout else 0.0
        sides = (
            (bid_d == bid_d).view(np.int8) + (ask_d == ask_d).view(np.int8) if rm.quote_bonus else 0
        )
        reward = rm.step_many(wealth - self.wealth, q, edge, fee_paid, carry, sides, idle_reduce)
        if t >= self.cfg.n_steps:
            reward = reward + self.reward_model.terminal(q)
        n_filled = bf + af
        self.last_fill[n_filled > 0] = t
        self.fills += n_filled
        if self.session_steps and t % self.session_steps == 0:
            self.peak = wealth.copy()  # a new session: drawdown from here
        else:
            np.maximum(self.peak, wealth, out=self.peak)
        self.q, self.cash, self.wealth = q, cash, wealth
        if self.record:
            h = self.history
            h["wealth"].append(wealth.copy())
            h["inventory"].append(q.copy())
            h["mid"].append(self._mid[t].copy())
            h["bid"].append(mid - bid_d)
            h["ask"].append(mid + ask_d)
            h["bid_fill"].append(bid_fill.copy())
            h["ask_fill"].append(ask_fill.copy())
            h["market_qty"].append(np.zeros(n) if mq is None else mq)
            h["market_px"].append(np.zeros(n) if px is None else px)
        return reward

    @property
    def done(self) -> bool:
        return self.t >= self.cfg.n_steps
