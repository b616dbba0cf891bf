"""Baseline market makers, behind the interface every agent shares.

An agent's ``act(state)`` takes a ``QuoteState`` (many paths at once) and returns either
``Quotes`` (distances from the mid in price units; nan for no quote) when ``discrete`` is
False, or one action per path of the shared vocabulary when ``discrete`` is True. The
evaluation harness steps the vectorised simulator with whatever the agent returns, so a
baseline and a learned policy are compared by the same call.
"""

from __future__ import annotations

import math
from typing import NamedTuple, Protocol, runtime_checkable

import numpy as np

from envs.actions import N_ENV_ACTIONS, Action
from envs.vector import QuoteState


class Quotes(NamedTuple):
    bid: np.ndarray
    ask: np.ndarray
    market_qty: np.ndarray | None = None


@runtime_checkable
class Agent(Protocol):
    name: str
    discrete: bool

    def act(self, state: QuoteState) -> Quotes | np.ndarray: ...


class FixedSpreadAgent:
    """Quotes both sides at a constant distance from the mid, in price units or bps."""

    discrete = False

    def __init__(self, half_spread: float, unit: str = "price", name: str = "fixed_spread"):
        if half_spread <= 0:
            raise ValueError(f"half_spread must be positive, got {half_spread}")
        if unit not in ("price", "bps"):
            raise ValueError(f"unit must be 'price' or 'bps', got {unit!r}")
        self.half_spread, self.unit, self.name = half_spread, unit, name

    def act(self, state: QuoteState) -> Quotes:
        d = self.half_spread * (state.mid * 1e-4 if self.unit == "bps" else np.ones_like(state.mid))
        return Quotes(d, d.copy())


class AvellanedaStoikovAgent:
    """Avellaneda & Stoikov (2008), closed form.

    Reservation price r = s - q gamma sigma^2 (T - t); total spread
    gamma sigma^2 (T - t) + (2 / gamma) ln(1 + gamma / k). ``mode='inventory'`` quotes
    r +/- spread/2; ``mode='symmetric'`` quotes the same spread centred on the mid (the paper's
    benchmark). q counts lots of ``lot`` units. ``horizon`` caps T - t (useful when an episode
    is a whole day). A is kept for reference: it sets how often quotes fill, not where they go.
    """

    discrete = False

    def __init__(
        self,
        gamma: float,
        k: float,
        sigma: float,
        A: float | None = None,
        mode: str = "inventory",
        lot: float = 1.0,
        horizon: float | None = None,
        name: str | None = None,
    ) -> None:
        if gamma <= 0 or k <= 0 or sigma < 0 or lot <= 0:
            raise ValueError("gamma, k and lot must be positive and sigma non-negative")
        if mode not in ("inventory", "symmetric"):
            raise ValueError(f"mode must be 'inventory' or 'symmetric', got {mode!r}")
        self.gamma, self.k, self.sigma, self.A = gamma, k, sigma, A
        self.mode, self.lot, self.horizon = mode, lot, horizon
        self.name = name or ("avellaneda_stoikov" if mode == "inventory" else "as_symmetric")

    def tau(self, state: QuoteState) -> float:
        tau = state.time_left
        return min(tau, self.horizon) if self.horizon is not None else tau

    def spread(self, tau: float) -> float:
        g = self.gamma
        return g * self.sigma**2 * tau + (2.0 / g) * math.log1p(g / self.k)

    def reservation_offset(self, q_lots: np.ndarray, tau: float) -> np.ndarray:
        """r - s."""
        return -q_lots * self.gamma * self.sigma**2 * tau

    def act(self, state: QuoteState) -> Quotes:
        tau = self.tau(state)
        half = 0.5 * self.spread(tau)
        if self.mode == "symmetric":
            d = np.full_like(state.mid, half)
            return Quotes(d, d.copy())
        shift = self.reservation_offset(np.asarray(state.inventory) / self.lot, tau)
        return Quotes(half - shift, half + shift)


class ConstantActionAgent:
    """Always the same discrete action (e.g. stand aside)."""

    discrete = True

    def __init__(self, action: Action | int, name: str | None = None) -> None:
        self.action = Action(action)
        self.name = name or self.action.label

    def act(self, state: QuoteState) -> np.ndarray:
        return np.full(state.mid.shape, int(self.action), dtype=np.int64)


class RandomAgent:
    """A uniformly random valid action per path and step."""

    discrete = True

    def __init__(self, seed: int | None = None, name: str = "random") -> None:
        self.rng = np.random.default_rng(seed)
        self.name = name

    def act(self, state: QuoteState) -> np.ndarray:
        return self.rng.integers(0, N_ENV_ACTIONS, size=state.mid.shape)


class PolicyAgent:
    """A learned policy: ``policy(obs[n, N_OBS]) -> actions[n]`` wrapped as an agent."""

    discrete = True
    needs_obs = True

    def __init__(self, policy, name: str) -> None:
        self.policy, self.name = policy, name

    def act(self, state: QuoteState) -> np.ndarray:
        if state.obs is None:
            raise ValueError(f"{self.name} needs observations: build the simulator with_obs=True")
        return np.asarray(self.policy(state.obs), dtype=np.int64)


class FittedParameters(NamedTuple):
    A: float  # fills per time unit at zero distance
    k: float  # per price unit
    sigma: float  # price units per sqrt(time unit)
    n_points: int  # distances used in the fit


def fit_as_parameters(
    close: np.ndarray, high: np.ndarray, low: np.ndarray, dt: float = 1.0, n_grid: int = 40
) -> FittedParameters:
    """Fit A, k and sigma of the Avellaneda-Stoikov model to bars.

    sigma is the standard deviation of close-to-close changes per sqrt(time unit). For a grid of
    distances d, the share of bars in which the next bar traded through ``close - d`` (bids) or
    ``close + d`` (asks) estimates the chance that a quote at d is hit within one bar; with
    Poisson arrivals that chance is 1 - exp(-A exp(-k d) dt), so ln(-ln(1 - P) / dt) is linear
    in d with intercept ln A and slope -k.
    """
    close, high, low = (np.asarray(x, dtype=np.float64) for x in (close, high, low))
    if len(close) < 10:
        raise ValueError("need at least 10 bars to fit")
    sigma = float(np.std(np.diff(close)) / math.sqrt(dt))
    reach_dn = close[:-1] - low[1:]  # how far below the previous close the next bar traded
    reach_up = high[1:] - close[:-1]
    top = float(np.quantile(np.concatenate([reach_dn, reach_up]), 0.98))
    grid = np.linspace(0.0, max(top, 1e-12), n_grid)
    p = 0.5 * (
        (reach_dn[None, :] > grid[:, None]).mean(1) + (reach_up[None, :] > grid[:, None]).mean(1)
    )
    ok = (p > 0.02) & (p < 0.98)
    if ok.sum() < 3:
        raise ValueError("too few usable distances to fit A and k (is the data flat?)")
    lam = -np.log1p(-p[ok]) / dt
    slope, intercept = np.polyfit(grid[ok], np.log(lam), 1)
    k = float(-slope)
    if k <= 0:
        raise ValueError(f"fitted k is not positive ({k}); fills do not decay with distance")
    return FittedParameters(float(math.exp(intercept)), k, sigma, int(ok.sum()))
