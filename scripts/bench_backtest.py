"""Benchmark: how fast `swarm-ray backtest` runs the whole swarm and the baselines.

This script times:
- the whole swarm (four agents with in-process models, coordinator, paper exchange, journal)
  over one replayed day in this process, after the models are loaded: `swarm_cycles_per_s`
  and `swarm_day_s` (target: a 1,440-bar day in at most 2 s on one core);
- a baseline (fixed spread) strategy-day in this process: `baseline_day_s`;
- every strategy on several days as Ray tasks on a local cluster: `parallel_days_per_min`
  (strategy-days per minute of wall time, model loading in each worker included) and the
  same in one process, `serial_days_per_min`.

How to run this script:
    python scripts/bench_backtest.py [--days 4] [--num-cpus 2] [--json]

Results to expect on a 2-core machine: see the benchmarks page of the docs.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Config:
    days: int = 4
    """evaluated days (from 2024-08-17 on) of the serial and parallel runs"""
    swarm_repeats: int = 3
    """timed swarm days (best of)"""
    num_cpus: int = 2
    """CPUs of the local Ray cluster of the parallel run"""
    skip_parallel: bool = False


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for name, value in asdict(Config()).items():
        kind = (
            (lambda s: s.lower() in ("1", "true", "yes"))
            if isinstance(value, bool)
            else type(value)
        )
        parser.add_argument(f"--{name.replace('_', '-')}", type=kind, default=value)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    cfg = Config(**{k: getattr(args, k) for k in asdict(Config())})
    os.chdir(ROOT)
    import torch

    torch.set_num_threads(1)

    from swarm_ray.core.config import load_config
    from swarm_ray.evaluation.backtest_config import BacktestConfig, symbol_sizes
    from swarm_ray.evaluation.days import resolve_days
    from swarm_ray.evaluation.harness import mean_close, plan_jobs, run_job
    from swarm_ray.evaluation.runner import all_strategies, run_backtest

    bt = load_config(Path("configs/backtest.yaml"), BacktestConfig)
    files = [f"data/binance-spot-1m/BTCUSDT-1m-2024-08-{17 + i}.csv" for i in range(cfg.days)]
    days, _ = resolve_days(files, None, "runs/backtest/data")
    sizes = {"BTCUSDT": symbol_sizes(bt, "BTCUSDT", mean_close(bt.fit_files))}
    swarm_job, fixed_job = plan_jobs(
        bt, days[:1], ["swarm", "fixed_spread"], bt.tier(), sizes, lambda d: bt.fit_files
    )
    cache: dict = {}
    run_job(swarm_job, cache)  # loads the models
    best = min(_timed(lambda: run_job(swarm_job, cache)) for _ in range(cfg.swarm_repeats))
    bars = swarm_job.day.n_bars + 1
    baseline = min(_timed(lambda: run_job(fixed_job, cache)) for _ in range(3))
    out = {
        "swarm_day_s": round(best, 3),
        "swarm_cycles_per_s": round(bars / best, 1),
        "baseline_day_s": round(baseline, 4),
    }
    n_jobs = len(all_strategies()) * len(days)
    t = _timed(lambda: run_backtest(bt, files))
    out["serial_days_per_min"] = round(n_jobs / t * 60, 1)
    if not cfg.skip_parallel:
        import ray

        from swarm_ray.runtime.backtest import run_on_ray

        ray.init(num_cpus=cfg.num_cpus, include_dashboard=False, log_to_driver=False)
        run_on_ray(
            plan_jobs(bt, days[:1], ["swarm"], bt.tier(), sizes, lambda d: ()), lambda j: None
        )
        t = _timed(lambda: run_backtest(bt, files, executor=run_on_ray))
        out["parallel_days_per_min"] = round(n_jobs / t * 60, 1)
        ray.shutdown()
    out.update(strategy_days=n_jobs, config=asdict(cfg))
    if args.json:
        print(json.dumps(out))
        return
    for k, v in out.items():
        print(f"{k:>24}: {v}")


def _flag(text: str) -> bool:
    return text.lower() in ("1", "true", "yes")


def _timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


if __name__ == "__main__":
    main()
