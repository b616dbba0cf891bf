"""``swarm-ray evaluate``: the Avellaneda-Stoikov experiment, or a backtest on real days."""

from __future__ import annotations

import argparse
import json
import sys

from swarm_ray.core.config import ConfigError, load_config, resolve_path
from swarm_ray.core.storage import storage_root

DEFAULT_CONFIG = "configs/evaluate.yaml"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "evaluate",
        help="evaluate baselines (and policies) in simulation or on real days",
        description=(
            "With --preset as2008: the simulation of Avellaneda & Stoikov (2008), inventory vs "
            "symmetric strategy. With --data: a backtest of every strategy on real kline days."
        ),
    )
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--preset", choices=["as2008"], help="simulation experiment")
    src.add_argument("--data", nargs="+", metavar="FILE", help="kline CSV days to backtest on")
    p.add_argument("--episodes", type=int, default=1000, help="simulations (--preset)")
    p.add_argument("--gamma", type=float, default=0.1, help="risk aversion (--preset)")
    p.add_argument(
        "--distance-from", choices=("quote_mid", "next_mid"), default="quote_mid",
        help="--preset: measure a quote's fill distance from the mid it was set at, or from "
        "the mid after the step's move (the order that reproduces the paper's table)",
    )  # fmt: skip
    p.add_argument("--seed", type=int, default=None, help="random seed")
    p.add_argument("--config", default=DEFAULT_CONFIG, help="backtest config (--data)")
    p.add_argument("--fit-data", nargs="+", metavar="FILE", help="days to fit A, k, sigma on")
    p.add_argument(
        "--models",
        metavar="DIR",
        help="also evaluate every policy of this model registry (e.g. models)",
    )
    p.add_argument("--out", metavar="DIR", help="write report.md and PNG plots here (--data)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.preset:
        return _run_preset(args)
    return _run_data(args)


def _run_preset(args: argparse.Namespace) -> int:
    from swarm_ray.evaluation.backtest import evaluate_as2008

    if args.episodes < 1:
        raise ConfigError("--episodes must be at least 1")
    seed = 0 if args.seed is None else args.seed
    extra = registry_agents(args.models) if args.models else []
    res = evaluate_as2008(args.episodes, seed, args.gamma, args.distance_from, extra)
    if args.json:
        print(json.dumps(res))
        return 0
    from rich.console import Console
    from rich.table import Table

    table = Table(
        title=f"Avellaneda-Stoikov (2008), gamma={args.gamma}, {args.episodes} runs, "
        f"fill distance from the {args.distance_from.replace('_', ' ')}"
    )
    cols = ("mean_spread", "mean_pnl", "std_pnl", "mean_over_std", "mean_q", "std_q")
    heads = ("strategy", "mean spread", "mean pnl", "std pnl", "mean/std", "mean q", "std q")
    if extra:
        cols += ("market_orders",)
        heads += ("market orders",)
    for col in heads:
        table.add_column(col, justify="right")
    labels = {a.name: f"{a.name} {a.policy.version}" for a in extra}
    for name, m in res.items():
        table.add_row(labels.get(name, name), *(f"{m[k]:.3f}" for k in cols))
    Console().print(table)
    return 0


def _run_data(args: argparse.Namespace) -> int:
    from swarm_ray.evaluation.backtest import EvaluateConfig

    cfg = load_config(resolve_path(args.config), EvaluateConfig)
    update: dict = {"fit_files": tuple(args.fit_data or cfg.fit_files)}
    if args.seed is not None:
        update["seed"] = args.seed
    cfg = cfg.model_copy(update=update)
    files = [str(resolve_path(f)) for f in args.data]
    for f in files:
        if not resolve_path(f).is_file():
            print(f"error: data file not found: {f}", file=sys.stderr)
            return 2
    extra = registry_agents(args.models) if args.models else []
    # policies by name and registry version, as the model cards name them
    labels = {a.name: f"{a.name} {a.policy.version}" for a in extra if a.policy.version}
    results, runs, fitted = _evaluate_with_progress(files, cfg, quiet=args.json, extra_agents=extra)
    report = None
    if args.out:
        from swarm_ray.evaluation.report_backtest import write_report

        out = storage_root().local_path(args.out, "--out")
        report = write_report(out, results, runs, files, fitted, labels)
    if args.json:
        print(json.dumps(results))
        return 0
    _print_table(results, fitted, labels)
    if report:
        print(f"report: {report}")
    return 0


def registry_agents(models: str) -> list:
    """One agent per policy of the registry at ``models`` (newest version of each)."""
    from swarm_ray.registry import load_policy_agents

    path = storage_root().registry(models, "--models")
    if not path.is_dir():
        raise ConfigError(f"--models: no model registry at {models}")
    agents = load_policy_agents(path)
    if not agents:
        raise ConfigError(f"--models: {models} holds no policy")
    return agents


def _evaluate_with_progress(files, cfg, quiet: bool, extra_agents=()):
    from rich.progress import Progress

    from swarm_ray.evaluation.backtest import evaluate_days

    if quiet:
        return evaluate_days(files, cfg, extra_agents)
    with Progress(transient=True) as progress:
        task = progress.add_task("backtesting", total=None)
        return evaluate_days(
            files,
            cfg,
            extra_agents,
            lambda name: progress.update(task, description=f"backtesting {name}"),
        )


def _print_table(
    results: dict[str, dict[str, float]], fitted: dict, labels: dict[str, str]
) -> None:
    from rich.console import Console
    from rich.table import Table

    from swarm_ray.evaluation.report_backtest import METRIC_COLUMNS, metric_cell

    table = Table(title="Backtest on real days (net of fees)")
    table.add_column("strategy", no_wrap=True)
    for col in METRIC_COLUMNS:
        table.add_column(col, justify="right")
    for name, m in results.items():
        table.add_row(labels.get(name, name), *(metric_cell(c, m) for c in METRIC_COLUMNS))
    console = Console()
    console.width = max(console.width, 110)  # keep strategy names whole in pipes and CI logs
    console.print(table)
    console.print("A-S fitted: " + ", ".join(f"{k}={v:.4g}" for k, v in fitted.items()))
