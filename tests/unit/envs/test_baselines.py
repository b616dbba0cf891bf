"""Baselines' closed forms, the 2008 paper's experiment, and the A, k, sigma fit."""

from __future__ import annotations

import math

import numpy as np
import pytest

from envs.baselines import (
    AvellanedaStoikovAgent,
    ConstantActionAgent,
    FixedSpreadAgent,
    RandomAgent,
    fit_as_parameters,
)
from envs.vector import QuoteState
from swarm_ray.evaluation.backtest import evaluate_as2008


def state(q: list[float], t: int = 0, n: int = 200, dt: float = 0.005, mid: float = 100.0):
    q_arr = np.array(q, dtype=float)
    return QuoteState(t, n, dt, np.full(len(q), mid), q_arr, None)


def test_as_reservation_price_and_spread_closed_form() -> None:
    agent = AvellanedaStoikovAgent(gamma=0.1, k=1.5, sigma=2.0)
    s = state([0.0, 3.0, -2.0], t=100)  # T - t = 0.5
    tau = 0.5
    spread = 0.1 * 4.0 * tau + (2 / 0.1) * math.log(1 + 0.1 / 1.5)
    bid, ask, _ = agent.act(s)
    np.testing.assert_allclose(bid + ask, spread)
    r = 100.0 - np.array([0.0, 3.0, -2.0]) * 0.1 * 4.0 * tau  # reservation price
    np.testing.assert_allclose(100.0 - bid, r - spread / 2)
    np.testing.assert_allclose(100.0 + ask, r + spread / 2)
    # long inventory: quotes shift down (sell more eagerly)
    assert ask[1] < ask[0] < ask[2] and bid[1] > bid[0] > bid[2]


def test_as_symmetric_is_centred_on_the_mid_with_the_same_spread() -> None:
    inv = AvellanedaStoikovAgent(0.1, 1.5, 2.0)
    sym = AvellanedaStoikovAgent(0.1, 1.5, 2.0, mode="symmetric")
    s = state([5.0, -5.0], t=40)
    b, a, _ = sym.act(s)
    np.testing.assert_allclose(b, a)
    bi, ai, _ = inv.act(s)
    np.testing.assert_allclose(b + a, bi + ai)
    assert sym.name == "as_symmetric" and inv.name == "avellaneda_stoikov"


def test_as_horizon_caps_time_to_go_and_lots_scale_inventory() -> None:
    agent = AvellanedaStoikovAgent(0.1, 1.5, 2.0, lot=0.5, horizon=0.1)
    far = agent.act(state([1.0], t=0))
    near = agent.act(state([1.0], t=180))  # T - t = 0.1: the cap no longer binds
    np.testing.assert_allclose(far.bid, near.bid)
    # 1.0 units at lot 0.5 is two lots
    plain = AvellanedaStoikovAgent(0.1, 1.5, 2.0, horizon=0.1)
    shift_lots = agent.reservation_offset(np.array([2.0]), 0.1)
    np.testing.assert_allclose(plain.reservation_offset(np.array([2.0]), 0.1), shift_lots)


def test_baselines_reject_bad_parameters() -> None:
    with pytest.raises(ValueError):
        AvellanedaStoikovAgent(0.0, 1.5, 2.0)
    with pytest.raises(ValueError):
        AvellanedaStoikovAgent(0.1, 1.5, 2.0, mode="greedy")
    with pytest.raises(ValueError):
        FixedSpreadAgent(-1.0)


def test_fixed_spread_in_bps_scales_with_the_mid() -> None:
    b, a, _ = FixedSpreadAgent(5.0, unit="bps").act(state([0.0, 0.0], mid=60000.0))
    np.testing.assert_allclose(b, 30.0)
    np.testing.assert_allclose(a, 30.0)


def test_discrete_baselines() -> None:
    s = state([0.0] * 1000)
    assert (ConstantActionAgent(0).act(s) == 0).all()
    acts = RandomAgent(seed=0).act(s)
    assert set(np.unique(acts)) == set(range(7))


def test_as2008_reproduces_the_paper_table() -> None:
    """Avellaneda & Stoikov (2008), gamma = 0.1, 1000 simulations: inventory strategy profit
    65.0 (std 6.6), final q 0.08 (std 2.8); symmetric 68.4 (std 12.7), q std 8.7."""
    res = evaluate_as2008(episodes=1000, seed=0)
    inv, sym = res["inventory"], res["symmetric"]
    assert inv["mean_pnl"] == pytest.approx(65.0, abs=2.0)
    assert inv["std_pnl"] == pytest.approx(6.6, abs=1.2)
    assert abs(inv["mean_q"]) < 0.4
    assert inv["std_q"] == pytest.approx(2.8, abs=0.5)
    assert sym["mean_pnl"] == pytest.approx(68.4, abs=2.5)
    assert sym["std_pnl"] == pytest.approx(13.0, abs=2.5)
    assert sym["std_q"] == pytest.approx(8.7, abs=1.2)
    # the point of the paper: inventory control halves the risk for a little profit
    assert inv["std_pnl"] < 0.6 * sym["std_pnl"] and inv["std_q"] < 0.5 * sym["std_q"]


def test_fit_recovers_known_parameters_from_synthetic_bars() -> None:
    """Bars whose reach beyond the previous close has survival 1 - exp(-A e^(-k d)) are
    what Poisson arrivals at intensity A e^(-k d) produce; the fit must find A and k."""
    rng = np.random.default_rng(0)
    A, k, sigma, n = 3.0, 0.8, 0.05, 40000

    def reach() -> np.ndarray:
        u = rng.random(n)
        lam = -np.log1p(-u)  # P(reach > d) = u  <=>  A e^(-k d) = -ln(1 - u)
        return np.maximum(np.log(A / lam) / k, 0.0)

    close = 1000.0 + np.cumsum(rng.normal(0, sigma, n))
    prev = np.concatenate([[close[0]], close[:-1]])
    high = np.maximum(prev + reach(), close)
    low = np.minimum(prev - reach(), close)
    fit = fit_as_parameters(close, high, low, dt=1.0)
    assert fit.A == pytest.approx(A, rel=0.1)
    assert fit.k == pytest.approx(k, rel=0.1)
    assert fit.sigma == pytest.approx(sigma, rel=0.05)
    with pytest.raises(ValueError, match="at least 10"):
        fit_as_parameters(close[:5], high[:5], low[:5])
