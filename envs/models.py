"""The small, swappable models an episode is built from (midprice, fills, fees, rewards).

Each model works for one path (the gymnasium env) and for many paths at once (the vectorised
simulator): the env and the simulator call the same code, so they cannot drift apart.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from envs.config import (
    FeeConfig,
    FillConfig,
    MarketMakingConfig,
    MidpriceConfig,
    ObservationConfig,
    RewardConfig,
)
from envs.data.klines import load_klines
from envs.data.l2.tape import load_tape, load_tick_tape
from envs.features import market_features, market_features_v3


@dataclass(frozen=True)
class EpisodeData:
    """Prices of ``paths`` episodes, time-major: ``mid[t, p]`` is path p's mid at step t
    (``n_steps + 1`` rows), so one step reads one contiguous row.

    ``high``/``low`` at row t+1 are the extremes traded between step t and t+1 (replay only).
    ``features`` (n_steps + 1, paths, columns) holds the market columns of the observation.
    ``scale`` (n_steps + 1, paths): each step's own volatility scale (layout v3), else None.
    """

    mid: np.ndarray
    high: np.ndarray | None
    low: np.ndarray | None
    features: np.ndarray | None
    time_ms: np.ndarray | None
    ref_vol: float
    scale: np.ndarray | None = None


class MidpriceModel(Protocol):
    ref_vol: float  # reference one-step volatility of simple returns
    s_ref: float  # a typical price level (for scaling)
    step_sigma: float  # typical one-step price change (price units)

    def sample(
        self,
        rng: np.random.Generator,
        n_paths: int,
        n_steps: int,
        with_features: bool = True,
        starts: np.ndarray | None = None,
    ) -> EpisodeData: ...


class BrownianMidprice:
    """Arithmetic Brownian motion, dS = mu dt + sigma dW (Avellaneda & Stoikov 2008).

    With ``increments='binomial'`` each step moves the mid by exactly +/- sigma sqrt(dt), as in
    the paper's simulation.
    """

    def __init__(
        self, cfg: MidpriceConfig, dt: float, warmup: int, obs: ObservationConfig | None = None
    ) -> None:
        self.cfg = cfg
        self.dt = dt
        self.warmup = warmup
        self.obs = obs or ObservationConfig()
        self.step_sigma = cfg.sigma * math.sqrt(dt)
        self.s_ref = cfg.s0
        self.ref_vol = self.step_sigma / cfg.s0 if cfg.sigma > 0 else 1e-4

    def sample(
        self,
        rng: np.random.Generator,
        n_paths: int,
        n_steps: int,
        with_features: bool = True,
        starts: np.ndarray | None = None,
    ) -> EpisodeData:
        w = self.warmup
        m = w + n_steps
        step, drift = self.step_sigma, self.cfg.drift * self.dt
        if self.cfg.increments == "binomial":
            bits = np.frombuffer(rng.bytes((m * n_paths + 7) // 8), dtype=np.uint8)
            signs = np.unpackbits(bits)[: m * n_paths].reshape(m, n_paths)
            inc = signs * (2.0 * step) + (drift - step)
        else:
            inc = rng.standard_normal((m, n_paths)) * step
            if drift:
                inc += drift
        path = np.empty((m + 1, n_paths))
        path[0] = 0.0
        if n_paths <= 64:
            np.cumsum(inc, axis=0, out=path[1:])
        else:  # row by row: numpy's cumsum along axis 0 of a wide array is far slower
            for i in range(m):
                np.add(path[i], inc[i], out=path[i + 1])
        path += self.cfg.s0 - path[w]  # the episode starts exactly at s0
        feats = scale = None
        if with_features and self.obs.layout == "v3":
            rows, sc = market_features_v3(path.T, window=self.obs.scale_window)
            feats, scale = rows[:, w:].transpose(1, 0, 2), sc[:, w:].T
        elif with_features:
            feats = market_features(path.T, self.ref_vol)[:, w:].transpose(1, 0, 2)
        return EpisodeData(path[w:], None, None, feats, None, self.ref_vol, scale)


class ReplayMidprice:
    """Replay of real 1-minute klines: the mid at step t is bar t's close.

    The kline files are loaded and their features computed once; episodes are windows of the
    series starting at random bars (or the given ``starts``).
    """

    def __init__(
        self, cfg: MidpriceConfig, warmup: int, obs: ObservationConfig | None = None
    ) -> None:
        df = load_klines(list(cfg.files))
        self._setup(
            cfg,
            warmup,
            obs or ObservationConfig(),
            df["close"].to_numpy(np.float64),
            df["high"].to_numpy(np.float64),
            df["low"].to_numpy(np.float64),
            df["open_time_ms"].to_numpy(np.int64),
            df["volume"].to_numpy(np.float64),
            df["taker_buy_base_volume"].to_numpy(np.float64),
        )

    def _setup(
        self,
        cfg: MidpriceConfig,
        warmup: int,
        obs: ObservationConfig,
        close: np.ndarray,
        high: np.ndarray,
        low: np.ndarray,
        time_ms: np.ndarray,
        volume: np.ndarray,
        taker: np.ndarray,
    ) -> None:
        self.cfg = cfg
        self.warmup = warmup
        self.close, self.high, self.low, self.time_ms = close, high, low, time_ms
        r = np.diff(self.close) / self.close[:-1]
        self.ref_vol = float(np.std(r)) if len(r) > 1 and np.std(r) > 0 else 1e-4
        self.s_ref = float(np.median(self.close))
        self.step_sigma = float(np.std(np.diff(self.close))) if len(r) > 1 else 1.0
        if cfg.ref_vol is not None:  # a pinned scale: the same features on any day
            self.ref_vol = cfg.ref_vol
            self.step_sigma = cfg.ref_vol * self.s_ref
        if cfg.step_sigma is not None:
            self.step_sigma = cfg.step_sigma
        self.scale: np.ndarray | None = None
        if obs.layout == "v3":
            self.features, self.scale = market_features_v3(
                self.close, self.high, self.low, volume, taker, self.time_ms, obs.scale_window
            )
        else:
            self.features = market_features(
                self.close, self.ref_vol, self.high, self.low, volume, taker, cfg.mean_volume
            )

    def __len__(self) -> int:
        return len(self.close)

    def valid_starts(self, n_steps: int) -> tuple[int, int]:
        lo, hi = min(self.warmup, len(self) - 1), len(self) - n_steps - 1
        if hi < lo:
            if hi < 0:
                raise ValueError(
                    f"replay data has {len(self)} bars; an episode of {n_steps} steps needs "
                    f"at least {n_steps + 1}"
                )
            lo = 0
        return lo, hi

    def sample(
        self,
        rng: np.random.Generator,
        n_paths: int,
        n_steps: int,
        with_features: bool = True,
        starts: np.ndarray | None = None,
    ) -> EpisodeData:
        lo, hi = self.valid_starts(n_steps)
        if starts is None:
            if self.cfg.random_start:
                starts = rng.integers(lo, hi + 1, size=n_paths)
            else:
                starts = np.full(n_paths, lo)
        starts = np.asarray(starts, dtype=np.int64)
        if starts.min() < 0 or starts.max() > len(self) - n_steps - 1:
            raise ValueError(f"episode starts must lie in [0, {len(self) - n_steps - 1}]")
        idx = np.arange(n_steps + 1)[:, None] + starts[None, :]
        feats = self.features[idx] if with_features else None
        scale = self.scale[idx] if self.scale is not None else None
        return EpisodeData(
            self.close[idx],
            self.high[idx],
            self.low[idx],
            feats,
            self.time_ms[idx],
            self.ref_vol,
            scale,
        )


class TickMidprice(ReplayMidprice):
    """Replay of an L2 recording (or of trades and bookTicker) on a grid of ``interval_ms``
    steps: the mid at step t is the book's mid at the grid time ``time_ms[t]``; a step's bar
    (high, low, volume, taker-buy volume) is made of the trades since the previous grid time
    (no trade: the mid). The tape
    stays at hand (``tape``) for the queue fill model."""

    def __init__(
        self, cfg: MidpriceConfig, warmup: int, obs: ObservationConfig | None = None
    ) -> None:
        tape = load_tick_tape(cfg.trades, cfg.book_ticker) if cfg.trades else load_tape(cfg.files)
        self.tape = tape
        step = cfg.interval_ms
        book_ms = np.asarray(tape.book_ms, dtype=np.int64)
        first = (int(book_ms[0]) // step + 1) * step
        grid = np.arange(first, int(book_ms[-1]) + 1, step, dtype=np.int64)
        i = np.searchsorted(book_ms, grid, side="right") - 1
        mid = (np.asarray(tape.best_bid)[i] + np.asarray(tape.best_ask)[i]) / 2.0
        # the trades of each step (prev grid time, grid time]
        k = np.searchsorted(tape.trade_ms, grid, side="right")
        bounds = np.r_[np.searchsorted(tape.trade_ms, grid[0] - step, side="right"), k]
        n = len(grid)
        high, low = mid.copy(), mid.copy()
        volume, taker = np.zeros(n), np.zeros(n)
        price, qty = tape.trade_price, tape.trade_qty
        for t in range(n):
            a, b = bounds[t], bounds[t + 1]
            if b > a:
                high[t] = max(high[t], float(price[a:b].max()))
                low[t] = min(low[t], float(price[a:b].min()))
                volume[t] = float(qty[a:b].sum())
                taker[t] = float(tape.trade_taker_buy[a:b].sum())
        self._setup(cfg, warmup, obs or ObservationConfig(), mid, high, low, grid, volume, taker)


def make_midprice(cfg: MarketMakingConfig) -> BrownianMidprice | ReplayMidprice:
    if cfg.midprice.kind == "tick":
        return TickMidprice(cfg.midprice, cfg.warmup, cfg.observation)
    if cfg.midprice.kind == "replay":
        return ReplayMidprice(cfg.midprice, cfg.warmup, cfg.observation)
    return BrownianMidprice(cfg.midprice, cfg.dt, cfg.warmup, cfg.observation)


class PoissonFill:
    """A quote at distance d from the mid is hit with intensity A exp(-k d) (per time unit)."""

    needs_bars = False

    def __init__(self, cfg: FillConfig, dt: float) -> None:
        self.A, self.k, self.dt = cfg.A, cfg.k, dt
        self.linear = cfg.probability == "linear"
        self._adt = cfg.A * dt

    def probability(self, delta: float) -> float:
        """Chance that a quote at ``delta`` from the mid fills within one step."""
        lam_dt = self._adt * math.exp(-self.k * delta) if delta > -50.0 else math.inf
        return min(lam_dt, 1.0) if self.linear else 1.0 - math.exp(-lam_dt)

    # The two below run once per env step: u < min(p, 1) is u < p for u in [0, 1), and the
    # quote is inlined rather than calling probability() (a measurable share of a step).
    def fill_bid(self, bid: float, mid: float, low_next: float, u: float) -> bool:
        d = mid - bid
        if d < -50.0:
            return True
        lam_dt = self._adt * math.exp(-self.k * d)
        return u < (lam_dt if self.linear else 1.0 - math.exp(-lam_dt))

    def fill_ask(self, ask: float, mid: float, high_next: float, u: float) -> bool:
        d = ask - mid
        if d < -50.0:
            return True
        lam_dt = self._adt * math.exp(-self.k * d)
        return u < (lam_dt if self.linear else 1.0 - math.exp(-lam_dt))

    def probability_many(self, delta: np.ndarray) -> np.ndarray:
        # u < min(p, 1) is u < p for u in [0, 1): the linear form needs no clipping
        with np.errstate(over="ignore"):
            lam_dt = np.exp(-self.k * delta) * (self.A * self.dt)
        return lam_dt if self.linear else -np.expm1(-lam_dt)

    def fill_many(
        self,
        bid_d: np.ndarray,
        ask_d: np.ndarray,
        mid: np.ndarray,
        low_next,
        high_next,
        u_bid,
        u_ask,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Fills of many paths' quotes at distances ``bid_d``/``ask_d`` (nan: no quote)."""
        with np.errstate(invalid="ignore"):  # nan distances compare False: no fill
            return u_bid < self.probability_many(bid_d), u_ask < self.probability_many(ask_d)


class TradeThroughFill:
    """Replay: a resting quote fills when the next bar trades strictly through its price,
    then with probability ``touch_fill_prob`` (a stand-in for queue position)."""

    needs_bars = True

    def __init__(self, cfg: FillConfig) -> None:
        self.p = cfg.touch_fill_prob

    def fill_bid(self, bid: float, mid: float, low_next: float, u: float) -> bool:
        return low_next < bid and u < self.p

    def fill_ask(self, ask: float, mid: float, high_next: float, u: float) -> bool:
        return high_next > ask and u < self.p

    def fill_many(
        self,
        bid_d: np.ndarray,
        ask_d: np.ndarray,
        mid: np.ndarray,
        low_next,
        high_next,
        u_bid,
        u_ask,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Fills of many paths' quotes at distances ``bid_d``/``ask_d`` (nan: no quote)."""
        with np.errstate(invalid="ignore"):  # nan distances compare False: no fill
            bid_fill = low_next < mid - bid_d
            ask_fill = high_next > mid + ask_d
        if self.p < 1.0:
            bid_fill &= u_bid < self.p
            ask_fill &= u_ask < self.p
        return bid_fill, ask_fill


def make_fill_model(cfg: MarketMakingConfig) -> PoissonFill | TradeThroughFill | None:
    """The env's per-step fill model; None for ``queue``, which the env runs on the tape
    itself (``envs.tick.TickFills``)."""
    if cfg.fills.kind == "queue":
        return None
    if cfg.fills.kind == "trade_through":
        return TradeThroughFill(cfg.fills)
    return PoissonFill(cfg.fills, cfg.dt)


class FeeModel:
    """Maker fees on resting quotes, taker fees plus half the market spread on market orders."""

    def __init__(self, cfg: FeeConfig) -> None:
        self.maker = cfg.maker_bps * 1e-4
        self.taker = cfg.taker_bps * 1e-4
        self.market_half_spread = cfg.market_half_spread


class RewardModel:
    """Per-step reward from the change in marked-to-mid wealth and what the step did.

    - pnl: dW
    - inventory_penalty: dW - phi q^2 dt
    - risk_averse: dW - gamma/2 sigma^2 q^2 dt (the mean-variance form of CARA utility)
    - spread_capture: edge captured against the mid minus fees, minus a holding cost
      c |q| sigma sqrt(dt): rewards fills at good prices, not directional luck
    With ``markout`` the PnL term of every kind (dW, or edge minus fees) is the step's trades
    marked to the next mid net of fees, dW - q_prev dS: the fills' adverse selection counts,
    the mark of the inventory carried into the step (noise of zero mean) does not.
    ``quote_bonus`` is added per quote side placed, ``idle_reduce_cost`` subtracted for a reduce
    action with nothing to reduce. Rewards are divided by ``scale``; the last step also
    subtracts alpha q_T^2.
    """

    def __init__(self, cfg: RewardConfig, sigma: float, dt: float) -> None:
        self.kind = cfg.kind
        self.inv_coef = cfg.inventory_penalty * dt
        self.risk_coef = 0.5 * cfg.gamma * sigma * sigma * dt
        self.hold_coef = cfg.holding_cost * sigma * math.sqrt(dt)
        self.terminal_coef = cfg.terminal_inventory_penalty
        self.inv_scale = 1.0 / cfg.scale
        self.markout = cfg.markout
        self.quote_bonus = cfg.quote_bonus
        self.idle_reduce_cost = cfg.idle_reduce_cost

    def step(
        self,
        d_wealth: float | np.ndarray,
        q: float | np.ndarray,
        edge: float | np.ndarray,
        fees: float | np.ndarray,
        carry: float | np.ndarray = 0.0,
        sides: int | np.ndarray = 0,
        idle_reduce: bool | np.ndarray | None = False,
    ) -> float | np.ndarray:
        """The step's reward, of one path (floats) or of many (arrays, elementwise).

        ``carry``: q_prev dS, the mark of the inventory held into the step (markout only);
        ``sides``: quote sides placed; ``idle_reduce``: a reduce action had nothing to do."""
        kind = self.kind
        pnl = d_wealth - carry if self.markout else d_wealth
        if kind == "pnl":
            r = pnl
        elif kind == "inventory_penalty":
            r = pnl - self.inv_coef * q * q
        elif kind == "risk_averse":
            r = pnl - self.risk_coef * q * q
        else:
            r = (pnl if self.markout else edge - fees) - self.hold_coef * abs(q)
        if self.quote_bonus:
            r = r + self.quote_bonus * sides
        if self.idle_reduce_cost and idle_reduce is not None:
            r = r - self.idle_reduce_cost * idle_reduce
        return r * self.inv_scale

    step_many = step  # the same code steps many paths at once

    def terminal(self, q: float | np.ndarray) -> float | np.ndarray:
        return -self.terminal_coef * q * q * self.inv_scale
