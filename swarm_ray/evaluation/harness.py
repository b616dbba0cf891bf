"""``swarm-ray backtest``: every strategy on the same replayed days, fill model and fee tier.

Strategies:

- ``swarm``: the whole decision path of a coordinator (``swarm_backtest``), in this process;
- ``stand_aside``, ``fixed_spread``, ``avellaneda_stoikov`` (A, k and sigma fitted on days that
  are not evaluated) and each registry policy alone, stepped through the environment's
  vectorised simulator, whose fills are the paper exchange's (the same ``TradeThroughFill``).

A strategy-day is one job: it starts flat, trades the day's bars and is scored by
``evaluation.metrics``. Jobs run in this process, or as Ray tasks with ``parallel``.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from pydantic import ConfigDict

from envs.actions import Action
from envs.baselines import AvellanedaStoikovAgent, ConstantActionAgent, FixedSpreadAgent
from envs.config import make_config
from envs.data.klines import load_klines
from envs.vector import VectorMarketSim
from swarm_ray.agents.roles import AgentConfig
from swarm_ray.core.config import load_config, resolve_path
from swarm_ray.evaluation.backtest import fit_as, run_agent
from swarm_ray.evaluation.backtest_config import BacktestConfig, FeeTier, SymbolSizes
from swarm_ray.evaluation.days import Day
from swarm_ray.evaluation.records import DayRecord, FillTable
from swarm_ray.exchanges.config import ExchangeConfig, PaperConfig, PaperSymbolConfig
from swarm_ray.trading.config import TradingConfig

__all__ = ["BASELINES", "Job", "plan_jobs", "run_job"]

log = logging.getLogger(__name__)

BASELINES = ("stand_aside", "fixed_spread", "avellaneda_stoikov")
SWARM = "swarm"


@dataclass(frozen=True)
class Job:
    """One strategy on one day; everything needed to run it anywhere (picklable)."""

    strategy: str
    day: Day
    sizes: SymbolSizes
    tier: FeeTier
    cfg: BacktestConfig
    fit_files: tuple[str, ...]
    """Days A-S is fitted on for this day."""


def plan_jobs(
    cfg: BacktestConfig,
    days: Sequence[Day],
    strategies: Sequence[str],
    tier: FeeTier,
    sizes: dict[str, SymbolSizes],
    fit_files: Callable[[Day], tuple[str, ...]],
) -> list[Job]:
    return [
        Job(s, d, sizes[d.symbol], tier, cfg, fit_files(d) if s == "avellaneda_stoikov" else ())
        for d in days
        for s in strategies
    ]


def run_job(job: Job, cache: dict[str, Any] | None = None) -> DayRecord:
    """Run one strategy-day; ``cache`` keeps loaded models between jobs of one process."""
    cache = cache if cache is not None else {}
    if job.strategy == SWARM:
        return _run_swarm(job, cache)
    return _run_sim(job, cache)


# -- the environment's simulator: baselines and single policies ------------------------------


def env_config(job: Job) -> dict[str, Any]:
    """The replay env of one day: its files (warm-up first), fees and the symbol's sizes."""
    s, t = job.sizes, job.tier
    files = [f for f in (job.day.warmup_file, job.day.file) if f]
    return {
        "preset": "replay",
        "midprice": {"kind": "replay", "files": files, "random_start": False},
        "n_steps": job.day.n_bars,
        "max_inventory": s.max_position,
        "fees": {
            "maker_bps": t.maker_bps,
            "taker_bps": t.taker_bps,
            "market_half_spread": s.market_half_spread,
        },
        "actions": {"order_size": s.order_size, "reduce_size": s.reduce_size},
    }


def _agent(job: Job, env_cfg: Any, cache: dict[str, Any]) -> Any:
    name = job.strategy
    if name == "stand_aside":
        return ConstantActionAgent(Action.STAND_ASIDE, name="stand_aside")
    if name == "fixed_spread":
        return FixedSpreadAgent(job.cfg.fixed_spread.half_spread_bps, unit="bps")
    if name == "avellaneda_stoikov":
        if not job.fit_files:
            raise ValueError("avellaneda_stoikov: no days to fit A, k and sigma on")
        p = fit_as(job.fit_files, env_cfg.dt)
        a_s = job.cfg.avellaneda_stoikov
        gamma = a_s.gamma_per_bps / (job.sizes.reference_price * 1e-4)
        return AvellanedaStoikovAgent(
            gamma,
            p.k,
            p.sigma,
            p.A,
            mode="inventory",
            lot=job.sizes.order_size,
            horizon=a_s.horizon,
        )
    policies = cache.get("policies")
    if policies is None:
        from swarm_ray.registry import load_policy_agents

        policies = cache["policies"] = {
            a.name: a for a in load_policy_agents(resolve_path(job.cfg.models_dir))
        }
    if name not in policies:
        raise ValueError(f"unknown strategy {name!r}; registry policies: {sorted(policies)}")
    return policies[name]


def _rescaled(overrides: dict[str, Any], job: Job) -> dict[str, Any]:
    """A policy's pinned feature scale, for another symbol: its volatility scale (in returns)
    carries over; the price and volume scales are the replayed symbol's own."""
    mid = dict(overrides.get("midprice", {}))
    step_sigma, ref_vol = mid.get("step_sigma"), mid.get("ref_vol")
    if step_sigma and ref_vol:
        trained_price = step_sigma / ref_vol
        if abs(math.log(job.sizes.reference_price / trained_price)) > math.log(2):
            mid = {"ref_vol": ref_vol}
    return {**overrides, "midprice": mid} if mid else overrides


def _run_sim(job: Job, cache: dict[str, Any]) -> DayRecord:
    base = make_config(env_config(job))
    agent = _agent(job, base, cache)
    overrides = _rescaled(getattr(agent, "env_overrides", {}) or {}, job)
    if overrides:
        midprice = {**base.midprice.model_dump(), **overrides.get("midprice", {})}
        cfg = make_config(base, **{**overrides, "midprice": midprice})
    else:
        cfg = base
    sim = VectorMarketSim(
        cfg,
        n_paths=1,
        seed=job.cfg.seed,
        with_obs=bool(getattr(agent, "needs_obs", False)),
        session_steps=getattr(agent, "session_steps", None),
    )
    start = np.array([job.day.first_row], dtype=np.int64)
    run = run_agent(sim, agent, start)
    h = sim.history
    rows: list[tuple[int, int, float, float, float, bool]] = []
    size, fees = cfg.actions.order_size, sim.fees
    for t in range(job.day.n_bars):
        if h["bid_fill"][t][0]:
            px = float(h["bid"][t][0])
            rows.append((t, 1, px, size, px * size * fees.maker, True))
        if h["ask_fill"][t][0]:
            px = float(h["ask"][t][0])
            rows.append((t, -1, px, size, px * size * fees.maker, True))
        mq = float(h["market_qty"][t][0])
        if mq:
            px = float(h["market_px"][t][0])
            rows.append((t, 1 if mq > 0 else -1, px, abs(mq), abs(mq) * px * fees.taker, False))
    bid, ask = run.bid[:, 0], run.ask[:, 0]
    return DayRecord(
        strategy=job.strategy,
        symbol=job.day.symbol,
        date=job.day.date,
        mid=run.mid[:, 0],
        equity=run.wealth[:, 0] - run.wealth[0, 0],
        position=run.inventory[:, 0],
        quoting=~(np.isnan(bid) & np.isnan(ask)),
        fills=FillTable.from_rows(rows),
        bid=bid,
        ask=ask,
    )


# -- the whole swarm -------------------------------------------------------------------------


class SwarmSections(TradingConfig):
    """The parts of a swarm config (``configs/paper.yaml``) a backtest uses: the cycle, votes,
    limits and agents; its run, venue and journal settings are the backtest's own."""

    model_config = ConfigDict(extra="ignore")

    agents: AgentConfig = AgentConfig()


def swarm_setup(
    cfg: BacktestConfig, s: SymbolSizes, cache: dict[str, Any]
) -> tuple[TradingConfig, AgentConfig, Any, dict[str, Any]]:
    """The swarm of ``cfg.swarm_config`` sized for one symbol: (trading config, agents with
    local inference and no LLM, observation spec, model clients). ``cache`` keeps the config,
    the spec and the loaded models between jobs of one process."""
    from swarm_ray.registry.observation import observation_spec

    swarm = cache.get("swarm_config")
    if swarm is None:
        swarm = cache["swarm_config"] = load_config(resolve_path(cfg.swarm_config), SwarmSections)
    models = str(resolve_path(cfg.models_dir))
    quoting = swarm.agents.quoting.model_copy(
        update={"size": s.order_size, "reduce_size": s.reduce_size}
    )
    agents = swarm.agents.model_copy(
        update={"inference": "local", "models_dir": models, "quoting": quoting}
    )
    agents = agents.model_copy(update={"llm": agents.llm.model_copy(update={"enabled": False})})
    risk = swarm.risk.model_copy(update={"max_position": s.max_position})
    trading = swarm.model_copy(update={"risk": risk, "agents": agents})
    spec = cache.get(("spec", s.symbol))
    if spec is None:
        spec = observation_spec(models)
        trained_price = spec.step_sigma / spec.ref_vol if spec.ref_vol else s.reference_price
        scale: dict[str, Any] = {"order_size": s.order_size, "max_inventory": s.max_position}
        if abs(math.log(s.reference_price / trained_price)) > math.log(2):
            scale |= {"step_sigma": spec.ref_vol * s.reference_price, "mean_volume": None}
        spec = cache[("spec", s.symbol)] = replace(spec, **scale)
    clients = cache.get("clients")
    if clients is None:
        from swarm_ray.evaluation.swarm_backtest import model_clients

        clients = cache["clients"] = model_clients(models)
    return trading, agents, spec, clients


def paper_venue(
    s: SymbolSizes, tier: FeeTier, capital: float, data: dict[str, Any], **venue: Any
) -> ExchangeConfig:
    """A paper exchange for one symbol with its filters and the fee tier. ``data``: the
    symbol's ``PaperSymbolConfig`` data keys (``klines``, or ``l2`` / ``trades`` +
    ``book_ticker`` and ``history_klines``); ``venue``: more ``PaperConfig`` keys (the tick
    replay's ``fill_model``, ``queue_model``, ``latency_ms``, ...)."""
    f = s.filters
    paper = PaperConfig(
        symbols={
            s.symbol: PaperSymbolConfig(
                tick_size=f.tick_size,
                step_size=f.step_size,
                min_qty=f.step_size,
                min_notional=f.min_notional,
                **data,
            )
        },
        market="futures",
        maker_fee_bps=tier.maker_bps,
        taker_fee_bps=tier.taker_bps,
        initial_balances={"USDT": capital},
        touch_fill_prob=1.0,
        state_path=None,
        **venue,
    )
    return ExchangeConfig(kind="paper", paper=paper)


def _run_swarm(job: Job, cache: dict[str, Any]) -> DayRecord:
    """The whole swarm on the job's day; ``cache["keep_opinions"]`` keeps every cycle's
    opinions in the record."""
    from swarm_ray.evaluation.swarm_backtest import SwarmDay, run_swarm_day

    day = job.day
    trading, agents, spec, clients = swarm_setup(job.cfg, job.sizes, cache)
    files = tuple(x for x in (day.warmup_file, day.file) if x)
    exchange = paper_venue(job.sizes, job.tier, trading.capital, {"klines": files})
    start_ns = (day.first_open_ms + 60_000) * 1_000_000
    return run_swarm_day(
        SwarmDay(day.symbol, exchange, start_ns, day.n_bars),
        trading,
        agents,
        spec,
        clients,
        keep_opinions=bool(cache.get("keep_opinions")),
    )


def mean_close(files: Sequence[str]) -> float:
    return float(load_klines(list(files))["close"].mean())
