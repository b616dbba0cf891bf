"""Evaluation of agents: the Avellaneda-Stoikov experiment, backtests on real days, and the
per-episode figures that training writes into model cards.

Every agent is stepped through ``envs.vector.VectorMarketSim`` by the same call, with common
random numbers (one seed for all agents), so differences come from the agents alone.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from pydantic import Field

from envs.baselines import (
    Agent,
    AvellanedaStoikovAgent,
    ConstantActionAgent,
    FittedParameters,
    FixedSpreadAgent,
    RandomAgent,
    fit_as_parameters,
)
from envs.config import MarketMakingConfig, make_config
from envs.data.klines import load_klines
from envs.vector import VectorMarketSim
from swarm_ray.core.config import StrictModel, resolve_path

MINUTES_PER_YEAR = 365 * 24 * 60


class FixedSpreadParams(StrictModel):
    half_spread_bps: float = Field(5.0, gt=0)


class ASParams(StrictModel):
    gamma: float = Field(1e-4, gt=0, description="risk aversion, per quote-currency unit")
    horizon: float | None = Field(60.0, gt=0, description="cap on T - t, in bars")


class EvaluateConfig(StrictModel):
    """configs/evaluate.yaml: the backtest on real days."""

    env: dict[str, Any] = Field(default_factory=lambda: {"preset": "replay"})
    fit_files: tuple[str, ...] = Field(
        (), description="kline files A, k and sigma are fitted on (never the evaluated days)"
    )
    fixed_spread: FixedSpreadParams = FixedSpreadParams()
    avellaneda_stoikov: ASParams = ASParams()
    periods_per_year: float = Field(MINUTES_PER_YEAR, gt=0, description="bars per year")
    seed: int = 0


@dataclass
class Run:
    """What one agent did over the evaluated paths (time-major arrays, steps + 1 rows)."""

    name: str
    wealth: np.ndarray
    inventory: np.ndarray
    mid: np.ndarray
    bid: np.ndarray
    ask: np.ndarray
    fills: np.ndarray
    metrics: dict[str, float] = field(default_factory=dict)


def run_agent(sim: VectorMarketSim, agent: Agent, starts: np.ndarray | None = None) -> Run:
    """Run ``agent`` over one batch of episodes of ``sim``; the sim records everything."""
    sim.record = True
    state = sim.reset(starts)
    while not sim.done:
        action = agent.act(state)
        if agent.discrete:
            sim.step_actions(action)
        else:
            sim.step_quotes(*action)
        state = sim.state()
    h = sim.history
    return Run(
        agent.name,
        np.array(h["wealth"]),
        np.array(h["inventory"]),
        np.array(h["mid"]),
        np.array(h["bid"]),
        np.array(h["ask"]),
        sim.fills.copy(),
    )


# -- the 2008 paper's experiment ------------------------------------------------------------


def evaluate_as2008(
    episodes: int = 1000,
    seed: int = 0,
    gamma: float = 0.1,
    distance_from: str = "quote_mid",
    agents: Sequence[Any] = (),
    reduce_cost: float = 0.65,
) -> dict[str, dict]:
    """Avellaneda & Stoikov (2008) section 3: inventory vs symmetric strategy over
    ``episodes`` simulations; the paper's table columns for each. ``distance_from``:
    ``next_mid`` measures a quote's fill distance from the mid after the step's move (the
    order of events that reproduces the paper's table), ``quote_mid`` from the mid it was set
    at (the preset's default). ``agents``: registry policies (``RegistryPolicyAgent``) run on the
    same paths (same seed), each seeing observations of its own layout. The paper has no market
    orders; a policy's reduce action pays ``reduce_cost`` from the mid (0.65: what a tight quote
    earns), and ``market_orders`` counts them per run."""
    cfg = make_config({"preset": "as2008", "fills": {"distance_from": distance_from}})
    mp, fl = cfg.midprice, cfg.fills
    out: dict[str, dict] = {}
    runs: list[tuple[str, Any, MarketMakingConfig]] = [
        (mode, AvellanedaStoikovAgent(gamma, fl.k, mp.sigma, fl.A, mode=mode), cfg)
        for mode in ("inventory", "symmetric")
    ]
    for a in agents:
        layout = dict(getattr(a, "env_overrides", {}).get("observation") or {})
        fees = {"market_half_spread": reduce_cost}
        runs.append((a.name, a, make_config(cfg, observation=layout, fees=fees)))
    for mode, agent, run_cfg in runs:
        with_obs = bool(getattr(agent, "discrete", False))
        sim = VectorMarketSim(run_cfg, n_paths=episodes, seed=seed, with_obs=with_obs)
        run = run_agent(sim, agent)
        final_w, final_q = run.wealth[-1], run.inventory[-1]
        spread = np.nanmean((run.ask - run.bid)[:, :])
        out[mode] = {
            "mean_spread": float(spread),
            "mean_pnl": float(final_w.mean()),
            "std_pnl": float(final_w.std()),
            "mean_over_std": float(final_w.mean() / final_w.std()) if final_w.std() > 0 else 0.0,
            "mean_q": float(final_q.mean()),
            "std_q": float(final_q.std()),
            "market_orders": float(np.mean(np.count_nonzero(sim.history["market_qty"], axis=0))),
        }
    return out


# -- backtests on real days -----------------------------------------------------------------


def backtest_metrics(run: Run, periods_per_year: float) -> dict[str, float]:
    """pnl, sharpe, sortino (annualised from per-bar PnL), max_drawdown, map, fills, quoting."""
    dw = np.diff(run.wealth, axis=0).T.reshape(-1)  # path after path: days in order
    equity = np.concatenate([[0.0], np.cumsum(dw)])
    sd = float(np.std(dw))
    downside = float(np.sqrt(np.mean(np.minimum(dw, 0.0) ** 2)))
    ann = math.sqrt(periods_per_year)
    mean = float(np.mean(dw))
    return {
        "pnl": float(equity[-1]),
        "sharpe": mean / sd * ann if sd > 0 else 0.0,
        "sortino": mean / downside * ann if downside > 0 else 0.0,
        "max_drawdown": float(np.max(np.maximum.accumulate(equity) - equity)),
        "map": float(np.mean(np.abs(run.inventory))),
        "fills": int(run.fills.sum()),
        "final_inventory": float(run.inventory[-1].sum()),
        # share of bars with a quote on the book (market making, not standing aside)
        "quoting": float(np.mean(~(np.isnan(run.bid) & np.isnan(run.ask)))),
    }


def fit_as(files: Sequence[str], dt: float) -> FittedParameters:
    """Avellaneda-Stoikov's A, k and sigma fitted on the klines of ``files``."""
    df = load_klines(list(files))
    return fit_as_parameters(df["close"], df["high"], df["low"], dt=dt)


def day_starts(files: Sequence[str]) -> tuple[np.ndarray, int]:
    """Start bar of each file in the concatenated series and the common episode length."""
    lengths = [len(load_klines(f)) for f in files]
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
    return starts, min(lengths) - 1


def baseline_agents(cfg: EvaluateConfig, env_cfg: MarketMakingConfig) -> list[Agent]:
    """Fixed spread and Avellaneda-Stoikov with A, k and sigma fitted on ``fit_files``."""
    agents: list[Agent] = [FixedSpreadAgent(cfg.fixed_spread.half_spread_bps, unit="bps")]
    if not cfg.fit_files:
        raise ValueError("evaluate config: fit_files is empty; A-S needs days to fit on")
    p = fit_as([str(resolve_path(f)) for f in cfg.fit_files], env_cfg.dt)
    agents.append(
        AvellanedaStoikovAgent(
            cfg.avellaneda_stoikov.gamma,
            p.k,
            p.sigma,
            p.A,
            mode="inventory",
            lot=env_cfg.actions.order_size,
            horizon=cfg.avellaneda_stoikov.horizon,
        )
    )
    return agents


def evaluate_days(
    files: Sequence[str],
    cfg: EvaluateConfig,
    extra_agents: Sequence[Agent] = (),
    progress: Callable[[str], None] | None = None,
) -> tuple[dict[str, dict[str, float]], list[Run], dict[str, Any]]:
    """Backtest the baselines (and any extra agents) over each file as one episode.

    Returns the metrics per agent, the runs (for plots) and what was fitted.
    """
    files = [str(resolve_path(f)) for f in files]
    overlap = set(map(_resolved, files)) & set(map(_resolved, cfg.fit_files))
    if overlap:
        raise ValueError(f"evaluated days are also fit days: {sorted(overlap)}")
    starts, n_steps = day_starts(files)
    env_cfg = make_config(
        cfg.env, midprice={"kind": "replay", "files": tuple(files)}, n_steps=n_steps
    )
    agents = baseline_agents(cfg, env_cfg) + list(extra_agents)
    needs_obs = any(getattr(a, "needs_obs", False) for a in agents)
    results: dict[str, dict[str, float]] = {}
    runs: list[Run] = []
    for agent in agents:
        if progress:
            progress(agent.name)
        # a policy sees observations built as in its training: the features' pinned scale and,
        # over a whole day, sessions as long as its training episodes (its time_left's pace)
        overrides = getattr(agent, "env_overrides", None)
        agent_cfg = make_config(env_cfg, **overrides) if overrides else env_cfg
        sim = VectorMarketSim(
            agent_cfg,
            n_paths=len(files),
            seed=cfg.seed,
            with_obs=needs_obs,
            session_steps=getattr(agent, "session_steps", None),
        )
        run = run_agent(sim, agent, starts)
        run.metrics = backtest_metrics(run, cfg.periods_per_year)
        results[agent.name] = run.metrics
        runs.append(run)
    a_s = next(a for a in agents if isinstance(a, AvellanedaStoikovAgent))
    fitted = {"A": a_s.A, "k": a_s.k, "sigma": a_s.sigma, "gamma": a_s.gamma}
    return results, runs, fitted


def _resolved(path: str) -> str:
    return str(resolve_path(path).resolve())


# -- per-episode figures for model cards ------------------------------------------------------


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


def episode_baselines(env_config: dict[str, Any], fit_files: list[str] | None = None) -> list:
    """The model cards' baselines: stand-aside, random, the env's tight fixed spread and
    Avellaneda-Stoikov (the env's own parameters, or fitted on ``fit_files``)."""
    cfg = make_config(env_config)
    a = cfg.actions
    agents: list[Any] = [ConstantActionAgent(0), RandomAgent(seed=0)]
    agents.append(FixedSpreadAgent(a.tight, unit=a.unit, name="fixed_spread"))
    if cfg.midprice.kind == "brownian":
        sigma, k, A = cfg.midprice.sigma, cfg.fills.k, cfg.fills.A
        agents.append(AvellanedaStoikovAgent(gamma=0.1, k=k, sigma=sigma, A=A, lot=a.order_size))
    elif fit_files:
        fit = fit_as(fit_files, cfg.dt)
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
