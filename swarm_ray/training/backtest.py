"""A small backtest of agents on the vectorised simulator, for model cards and tests.

The project's evaluation report lives in ``swarm_ray.evaluation.backtest``; this is the quick harness
the training pipeline uses to put numbers in a model card and to check that learning works.
Metrics are per episode (net of fees), averaged over episodes.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from envs.baselines import (
    AvellanedaStoikovAgent,
    ConstantActionAgent,
    FixedSpreadAgent,
    RandomAgent,
    fit_as_parameters,
)
from envs.config import make_config
from envs.vector import VectorMarketSim
from swarm_ray.evaluation.backtest import run_agent


def run_episodes(agent: Any, sim: VectorMarketSim, starts: np.ndarray | None = None) -> dict:
    """Run one batch of episodes; metrics of ``agent`` over the batch."""
    run = run_agent(sim, agent, starts)
    w = run.wealth  # (n_steps + 1, paths)
    step_pnl = np.diff(w, axis=0)
    pnl = w[-1]
    std = step_pnl.std(axis=0)
    down = np.sqrt(np.mean(np.minimum(step_pnl, 0.0) ** 2, axis=0))
    mean = step_pnl.mean(axis=0)
    drawdown = (np.maximum.accumulate(w, axis=0) - w).max(axis=0)
    n = step_pnl.shape[0]
    return {
        "pnl": float(pnl.mean()),
        "pnl_std": float(pnl.std()),
        # per-episode Sharpe/Sortino of step PnL, scaled to the episode length
        "sharpe": float(
            np.mean(np.where(std > 0, mean / np.where(std > 0, std, 1) * np.sqrt(n), 0))
        ),
        "sortino": float(
            np.mean(np.where(down > 0, mean / np.where(down > 0, down, 1) * np.sqrt(n), 0))
        ),
        "max_drawdown": float(drawdown.mean()),
        "map": float(np.mean(np.abs(run.inventory[1:]))),
        "fills": float(run.fills.mean()),
        # share of steps with at least one quote placed (market making, not standing aside)
        "quoting": float(np.mean(~(np.isnan(run.bid) & np.isnan(run.ask)))),
        "episodes": int(w.shape[1]),
    }


def replay_starts(env_config: dict[str, Any], episodes_per_day: int) -> np.ndarray:
    """Evenly spaced, non-overlapping episode starts over the replayed days."""
    cfg = make_config(env_config)
    n_days = max(1, len(cfg.midprice.files))
    sim = VectorMarketSim(cfg, n_paths=1, seed=0)
    lo, hi = sim.midprice.valid_starts(cfg.n_steps)
    count = episodes_per_day * n_days
    return np.linspace(lo, hi, count).astype(np.int64)


def baseline_agents(env_config: dict[str, Any], fit_files: list[str] | None = None) -> list:
    """Stand-aside, random, fixed spread and Avellaneda-Stoikov (fitted on ``fit_files``)."""
    cfg = make_config(env_config)
    a = cfg.actions
    agents: list[Any] = [ConstantActionAgent(0), RandomAgent(seed=0)]
    agents.append(FixedSpreadAgent(a.tight, unit=a.unit, name="fixed_spread"))
    if cfg.midprice.kind == "brownian":
        sigma, k, A = cfg.midprice.sigma, cfg.fills.k, cfg.fills.A
        agents.append(AvellanedaStoikovAgent(gamma=0.1, k=k, sigma=sigma, A=A, lot=a.order_size))
    elif fit_files:
        from envs.data.klines import load_klines

        df = load_klines(fit_files)
        fit = fit_as_parameters(df["close"], df["high"], df["low"], dt=cfg.dt)
        tau = cfg.n_steps * cfg.dt
        # gamma so that one lot at the full horizon shifts the reservation price by 1/k
        gamma = 1.0 / (fit.k * fit.sigma**2 * tau)
        agents.append(
            AvellanedaStoikovAgent(gamma=gamma, k=fit.k, sigma=fit.sigma, A=fit.A, lot=a.order_size)
        )
    return agents


def evaluate_agents(
    agents: list[Any],
    env_config: dict[str, Any],
    n_paths: int = 200,
    seed: int = 0,
    starts: np.ndarray | None = None,
) -> dict[str, dict]:
    """Metrics of every agent on the same episodes (same seed, same starts)."""
    cfg = make_config(env_config)
    if starts is not None:
        n_paths = len(starts)
    results = {}
    for agent in agents:
        sim = VectorMarketSim(cfg, n_paths=n_paths, seed=seed, with_obs=True)
        results[agent.name] = run_episodes(agent, sim, starts)
    return results
