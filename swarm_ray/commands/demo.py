"""``swarm-ray demo``: the main job on the embedded default, no keys and no network.

Until the swarm runs, the demo backtests the baseline strategies and the shipped registry
policies on a bundled real day and writes the report.
"""

from __future__ import annotations

import argparse

from swarm_ray.config import load_config, resolve_path

DEMO_DAY = "data/binance-spot-1m/BTCUSDT-1m-2024-08-20.csv"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="run the demo on a bundled real day and write a report")
    p.add_argument("--out", default="runs/demo", help="output folder (default runs/demo)")
    p.add_argument("--config", default="configs/evaluate.yaml", help="backtest config")
    p.add_argument("--day", default=DEMO_DAY, help="kline CSV of the day to replay")
    p.add_argument("--models", default="models", help="model registry of the shipped policies")
    p.add_argument("--no-models", action="store_true", help="baselines only")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from swarm_ray.commands.evaluate import _evaluate_with_progress, _print_table, registry_agents
    from swarm_ray.evaluation import EvaluateConfig
    from swarm_ray.report import write_report

    cfg = load_config(resolve_path(args.config), EvaluateConfig)
    day = str(resolve_path(args.day))
    extra = [] if args.no_models else registry_agents(args.models)
    results, runs, fitted = _evaluate_with_progress([day], cfg, quiet=False, extra_agents=extra)
    _print_table(results, fitted)
    report = write_report(args.out, results, runs, [day], fitted)
    print(f"report: {report}")
    return 0
