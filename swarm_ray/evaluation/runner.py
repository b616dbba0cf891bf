"""A whole backtest: the days, the jobs, who runs them, the figures and the honesty checks."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from swarm_ray.core.config import resolve_path
from swarm_ray.core.roles import POLICY_ROLES
from swarm_ray.evaluation.backtest_config import BacktestConfig, symbol_sizes
from swarm_ray.evaluation.days import Day, resolve_days
from swarm_ray.evaluation.harness import BASELINES, SWARM, Job, mean_close, plan_jobs, run_job
from swarm_ray.evaluation.metrics import day_rows, strategy_metrics
from swarm_ray.evaluation.records import DayRecord

__all__ = ["BacktestResult", "Executor", "all_strategies", "run_backtest", "run_in_process"]

log = logging.getLogger(__name__)

KLINE_FILLS: dict[str, Any] = {"kind": "trade_through", "data": "1-minute klines"}

Executor = Callable[[Sequence[Job], Callable[[Job], None]], list[DayRecord]]
"""Runs jobs (calling the second argument as each finishes) and returns records in job order."""


@dataclass
class BacktestResult:
    strategies: dict[str, dict[str, Any]]
    days: list[dict[str, Any]]
    fees: str
    data: list[str]
    records: dict[str, list[DayRecord]] = field(repr=False, default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    sizes: dict[str, dict[str, float]] = field(default_factory=dict)
    fill_model: dict[str, Any] = field(default_factory=lambda: dict(KLINE_FILLS))
    """How orders filled: the kline trade-through model, or the tick replay's queue model."""

    def to_json(self) -> dict[str, Any]:
        """The JSON object ``--json`` prints."""
        return {
            "strategies": self.strategies,
            "days": self.days,
            "fees": self.fees,
            "fill_model": self.fill_model,
            "data": self.data,
            "sizes": self.sizes,
            "warnings": self.warnings,
            "notes": self.notes,
        }


def all_strategies() -> tuple[str, ...]:
    return (SWARM, *BASELINES, *POLICY_ROLES)


def run_in_process(
    jobs: Sequence[Job], done: Callable[[Job], None], cache: dict[str, Any] | None = None
) -> list[DayRecord]:
    """Run ``jobs`` here, one after another; ``cache`` (see ``run_job``) may be seeded, e.g.
    with another swarm config under ``"swarm_config"``."""
    cache = {} if cache is None else cache
    out = []
    for job in jobs:
        out.append(run_job(job, cache))
        done(job)
    return out


def _model_days(models_dir: Path) -> dict[str, set[str]]:
    """Days each registry model was trained, fitted or validated on (from its model card)."""
    from swarm_ray.registry import list_models
    from swarm_ray.registry.policies import seen_days

    return {str(card.get("name")): seen_days(card) for card in list_models(models_dir)}


def _sibling_files(day: Day, n: int) -> tuple[str, ...]:
    """The ``n`` days before ``day`` (Binance files beside it), oldest first."""
    d0 = pd.Timestamp(day.date)
    out = []
    for k in range(n, 0, -1):
        date = (d0 - pd.Timedelta(days=k)).strftime("%Y-%m-%d")
        cand = Path(day.file).with_name(f"{day.symbol}-1m-{date}.csv")
        if cand.is_file():
            out.append(str(cand))
    return tuple(out)


def run_backtest(
    cfg: BacktestConfig,
    files: Iterable[str],
    strategies: Sequence[str] | None = None,
    symbol: str | None = None,
    fees: str | None = None,
    walk_forward: bool = False,
    executor: Executor = run_in_process,
    work_dir: str = "runs/backtest/data",
    progress: Callable[[Job], None] | None = None,
) -> BacktestResult:
    """Every strategy on every day of ``files``; the figures of ``evaluation.metrics``."""
    files = [str(resolve_path(f)) for f in files]
    strategies = list(strategies or all_strategies())
    unknown = [s for s in strategies if s not in all_strategies()]
    if unknown:
        raise ValueError(f"--strategies: unknown {unknown}; known: {list(all_strategies())}")
    tier_name = fees or cfg.fees
    tier = cfg.tier(tier_name)
    days, notes = resolve_days(files, symbol, work_dir)
    warnings: list[str] = []
    fit = tuple(str(resolve_path(f)) for f in cfg.fit_files)
    evaluated = {str(Path(d.file).resolve()) for d in days}
    overlap = sorted(evaluated & {str(Path(f).resolve()) for f in fit})
    if overlap and not walk_forward:
        raise ValueError(f"fit_files: evaluated days are also A-S fit days: {overlap}")
    sizes = {}
    for sym in sorted({d.symbol for d in days}):
        first = next(d for d in days if d.symbol == sym)
        sym_fit = [f for f in fit if Path(f).name.startswith(f"{sym}-")]
        ref = mean_close(sym_fit) if sym_fit else _first_open(first)
        sizes[sym] = symbol_sizes(cfg, sym, ref)
    models = resolve_path(cfg.models_dir)
    model_strategies = [s for s in strategies if s == SWARM or s in POLICY_ROLES]
    used = _model_days(models) if model_strategies else {}
    skip: set[tuple[str, str]] = set()
    for d in days:
        for s in model_strategies:
            names = [s] if s != SWARM else list(used)
            seen = sorted({n for n in names if d.date in used.get(n, set())})
            if not seen:
                continue
            if walk_forward:
                skip.add((s, d.date))
                notes.append(f"{s} {d.date}: not scored (its models trained or validated on it)")
            else:
                warnings.append(
                    f"WARNING: {s} is scored on {d.date}, a day {', '.join(seen)} trained or "
                    "validated on: its figures there are in-sample"
                )

    def fit_for(day: Day) -> tuple[str, ...]:
        if walk_forward:
            return _sibling_files(day, cfg.fit_window_days)
        return tuple(f for f in fit if Path(f).name.startswith(f"{day.symbol}-"))

    jobs = [
        j
        for j in plan_jobs(cfg, days, strategies, tier, sizes, fit_for)
        if (j.strategy, j.day.date) not in skip
    ]
    for j in jobs:
        if j.strategy == "avellaneda_stoikov" and not j.fit_files:
            raise ValueError(
                f"avellaneda_stoikov: no days to fit A, k and sigma on before {j.day.date} "
                "(set fit_files, or use --walk-forward with earlier days beside the data)"
            )
    records = executor(jobs, progress or (lambda job: None))
    by_strategy: dict[str, list[DayRecord]] = {s: [] for s in strategies}
    for rec in records:
        by_strategy[rec.strategy].append(rec)
    by_strategy = {s: r for s, r in by_strategy.items() if r}
    metrics = {
        s: strategy_metrics(
            r,
            periods_per_year=cfg.periods_per_year,
            rng_seed=cfg.seed,
            n_boot=cfg.bootstrap_samples,
        )
        for s, r in by_strategy.items()
    }
    return BacktestResult(
        strategies=metrics,
        days=day_rows(by_strategy),
        fees=tier_name,
        data=files,
        records=by_strategy,
        warnings=warnings,
        notes=notes,
        sizes={
            s: {
                "reference_price": z.reference_price,
                "order_size": z.order_size,
                "max_position": z.max_position,
            }
            for s, z in sizes.items()
        },
    )


def _first_open(day: Day) -> float:
    from envs.data.klines import load_klines

    return float(load_klines(day.file)["open"].iloc[0])
