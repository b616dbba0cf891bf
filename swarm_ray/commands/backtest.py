"""``swarm-ray backtest``: the whole swarm beside the baselines and each policy, on the same
replayed days, fill model and fee tier, with markouts, break-even fees and intervals."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from swarm_ray.core.config import ConfigError, load_config, resolve_path
from swarm_ray.core.storage import storage_root

DEFAULT_CONFIG = "configs/backtest.yaml"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "backtest",
        help="backtest the swarm, the baselines and each policy on real days",
        description=(
            "Every strategy on the same replayed days (Binance kline CSV, freqtrade feather or "
            "JSON), the paper exchange's fill model and one fee tier. Prints a table (or JSON); "
            "--out writes a report with plots. With --l2 instead of --data: the tick replay, "
            "an L2 recording filled by the queue model, a cycle every --interval-ms."
        ),
    )
    p.add_argument("--config", default=DEFAULT_CONFIG, help="backtest config (fees, sizes, ...)")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--data", nargs="+", metavar="FILE", help="OHLCV files to replay")
    src.add_argument("--l2", nargs="+", metavar="FILE", help="L2 stream files: the tick replay")
    src.add_argument(
        "--trades",
        nargs="+",
        metavar="FILE",
        help="aggTrades CSVs (with --book-ticker): the tick replay on the touch",
    )
    tick = p.add_argument_group("tick replay (--l2, or --trades with --book-ticker)")
    tick.add_argument(
        "--book-ticker",
        nargs="+",
        default=(),
        metavar="FILE",
        help="bookTicker CSVs (USD-M) beside --trades",
    )
    tick.add_argument(
        "--history",
        nargs="+",
        default=(),
        metavar="FILE",
        help="1-minute kline CSVs before the recording (the swarm's features)",
    )
    tick.add_argument("--interval-ms", type=int, default=1000, help="time between cycles")
    tick.add_argument(
        "--queue-model", default="risk_averse", choices=("risk_averse", "power_prob", "log_prob")
    )
    tick.add_argument("--queue-power", type=float, default=2.0, help="power_prob's exponent")
    tick.add_argument("--latency-ms", type=float, default=10.0, help="order and cancel latency")
    p.add_argument("--symbol", help="symbol of the data (default: from the file names)")
    p.add_argument("--fees", help="fee tier (regular, vip9, lp_rebate, spot_regular, ...)")
    p.add_argument("--models", metavar="DIR", help="model registry (default: the config's)")
    p.add_argument(
        "--strategies",
        nargs="+",
        metavar="NAME",
        help="a subset: swarm, stand_aside, fixed_spread, avellaneda_stoikov, or a policy role",
    )
    p.add_argument("--walk-forward", action="store_true", help="score each day only with what "
                   "was known before it (A-S refitted on the days before; models only after "
                   "their training days)")  # fmt: skip
    p.add_argument("--parallel", action="store_true", help="run strategy-days as Ray tasks")
    p.add_argument("--address", help="Ray cluster for --parallel (default: RAY_ADDRESS or local)")
    p.add_argument("--out", metavar="DIR", help="write report.md, days.csv and PNG plots here")
    p.add_argument("--json", action="store_true", help="print one JSON object last")
    p.set_defaults(func=run)


def load_backtest_config(path: str, models_arg: str | None) -> Any:
    """The backtest config at ``path`` with its model registry (``--models`` if given) made
    absolute, so Ray tasks and Tune trials find it; a missing registry is an error naming it."""
    from swarm_ray.evaluation.backtest_config import BacktestConfig

    cfg = load_config(resolve_path(path), BacktestConfig)
    field = "--models" if models_arg else "models_dir"
    models = storage_root().registry(models_arg or cfg.models_dir, field)
    if models_arg and not models.is_dir():
        raise ConfigError(f"--models: no model registry at {models}")
    return cfg.model_copy(update={"models_dir": str(models)})


def run(args: argparse.Namespace) -> int:
    from swarm_ray.evaluation.days import DataError
    from swarm_ray.evaluation.runner import run_backtest, run_in_process

    cfg = load_backtest_config(args.config, args.models)
    root = storage_root()
    out = root.local_path(args.out, "--out") if args.out else None
    executor = run_in_process
    if args.parallel:
        from swarm_ray.commands._swarm import init_ray
        from swarm_ray.runtime.backtest import run_on_ray

        init_ray(args.address)
        executor = run_on_ray
    if args.l2 or args.trades:
        result = _tick(cfg, args)
        return _finish(result, cfg, args, out)
    try:
        with progress_bar(quiet=args.json) as step:
            result = run_backtest(
                cfg,
                args.data,
                strategies=args.strategies,
                symbol=args.symbol,
                fees=args.fees,
                walk_forward=args.walk_forward,
                executor=executor,
                progress=step,
            )
    except (DataError, ValueError) as exc:
        raise ConfigError(str(exc)) from None
    return _finish(result, cfg, args, out)


def _tick(cfg: Any, args: argparse.Namespace) -> Any:
    from swarm_ray.evaluation.tick import TickRun, run_tick_backtest, symbol_of_l2

    first = (args.l2 or args.trades)[0]
    symbol = args.symbol or symbol_of_l2(first)
    if symbol is None:
        raise ConfigError(f"--symbol: cannot tell the symbol from {first}; give --symbol")
    if args.trades and not args.book_ticker:
        raise ConfigError("--book-ticker: --trades needs the bookTicker files of its days")
    run = TickRun(
        symbol=symbol,
        l2=tuple(args.l2 or ()),
        trades=tuple(args.trades or ()),
        book_ticker=tuple(args.book_ticker),
        history_klines=tuple(args.history),
        interval_ms=args.interval_ms,
        queue_model=args.queue_model,
        queue_power=args.queue_power,
        latency_ms=args.latency_ms,
    )
    try:
        return run_tick_backtest(cfg, run, strategies=args.strategies, fees=args.fees)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


def _finish(result: Any, cfg: Any, args: argparse.Namespace, out: Any) -> int:
    for w in result.warnings:
        print(w, file=sys.stderr)
    report = None
    if out:
        from swarm_ray.evaluation.report_backtest import write_backtest_report

        report = write_backtest_report(out, result, cfg)
    if args.json:
        print(json.dumps(result.to_json(), allow_nan=False))
        return 0
    _print(result, cfg)
    if report:
        print(f"report: {report}")
    return 0


class progress_bar:
    """A progress bar over strategy-days (nothing with --json)."""

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet
        self._progress: Any = None

    def __enter__(self):
        if self.quiet:
            return lambda job: None
        from rich.progress import Progress

        self._progress = Progress(transient=True)
        self._progress.start()
        task = self._progress.add_task("backtesting", total=None)

        def step(job: Any) -> None:
            self._progress.update(
                task, advance=1, description=f"{job.strategy} {job.day.date} done"
            )

        return step

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.stop()


def _print(result: Any, cfg: Any) -> None:
    from rich.console import Console

    from swarm_ray.evaluation.report_backtest import summary_markdown, summary_tables

    console = Console()
    tier = cfg.tier(result.fees)
    fm = result.fill_model
    fills = f"fills: {fm['kind']}" + (f" ({fm['queue_model']})" if fm["kind"] == "queue" else "")
    print(
        f"fees: {result.fees} (maker {tier.maker_bps:g} bps, taker {tier.taker_bps:g} bps; "
        f"{tier.source}); {fills}; days: {len(result.days)}"
    )
    if console.is_terminal:
        for table in summary_tables(result):
            console.print(table)
    else:  # a pipe or a log: one plain table, nothing cut
        print(summary_markdown(result))
    for note in result.notes:
        print(f"note: {note}")
