"""``swarm-ray calibrate``: fit each model's calibrated confidence on validation days, check it
on held-out days, and write the map and its reliability into the model cards."""

from __future__ import annotations

import argparse
import json

from swarm_ray.core.config import ConfigError

DEFAULT_CONFIG = "configs/backtest.yaml"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "calibrate",
        help="fit the models' calibrated confidences on validation days",
        description=(
            "Replay --data with the whole swarm (models in this process), score every model "
            "vote by whether it beat its alternative (trade vs stand aside) over --horizon bars "
            "at the fee tier, fit one logistic map per model and side, and measure its "
            "reliability on --data and on the held-out --check days. Writes the map, the "
            "figures and reliability.png into each role's champion (else newest) version: Serve "
            "and the agents then answer with the calibrated probability."
        ),
    )
    p.add_argument("--config", default=DEFAULT_CONFIG, help="backtest config (fees, sizes, ...)")
    p.add_argument("--data", nargs="+", metavar="FILE",
                   help="days to fit on (validation days: not trained on)")  # fmt: skip
    p.add_argument("--llm-journal", metavar="DIR",
                   help="instead: fit the LLM's map (agents.llm.calibration) on the answers "
                        "recorded in a run's journals")  # fmt: skip
    p.add_argument("--check", nargs="*", default=[], metavar="FILE",
                   help="held-out days to measure the fitted map on")  # fmt: skip
    p.add_argument("--fees", help="fee tier the outcomes pay (default: the config's)")
    p.add_argument("--horizon", type=int, default=5, help="bars to the mid fills are marked to")
    p.add_argument("--models", metavar="DIR", help="model registry (default: the config's)")
    p.add_argument("--dry-run", action="store_true", help="print the figures, write nothing")
    p.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from swarm_ray.commands.backtest import load_backtest_config, progress_bar
    from swarm_ray.evaluation.days import DataError
    from swarm_ray.training.calibrate import calibrate_models, summary_line

    if args.horizon < 1:
        raise ConfigError(f"--horizon: {args.horizon} bars; give at least 1")
    if bool(args.data) == bool(args.llm_journal):
        raise ConfigError("give one of --data (the models' maps) and --llm-journal (the LLM's)")
    if args.llm_journal:
        return _llm(args)
    cfg = load_backtest_config(args.config, args.models)
    try:
        with progress_bar(quiet=args.json) as step:
            report = calibrate_models(
                cfg,
                args.data,
                args.check,
                fees=args.fees,
                horizon=args.horizon,
                write=not args.dry_run,
                progress=step,
            )
    except (DataError, ValueError) as exc:
        raise ConfigError(str(exc)) from None
    if args.json:
        print(json.dumps(report))
        return 0
    print(f"calibrated at {report['fees']}, {report['horizon_bars']} bars; "
          f"fit on {', '.join(report['fit_days'])}; "
          f"checked on {', '.join(report['check_days']) or 'nothing'}")  # fmt: skip
    for name, entry in report["models"].items():
        print("  " + summary_line(name, entry))
        if "plot" in entry:
            print(f"    {entry['plot']}")
    if args.dry_run:
        print("dry run: no model card written")
    return 0


def _llm(args: argparse.Namespace) -> int:
    from pathlib import Path

    from swarm_ray.core.storage import storage_root
    from swarm_ray.training.calibrate import calibrate_llm

    folder = Path(storage_root().local_path(args.llm_journal, "--llm-journal"))
    files = [folder] if folder.is_file() else sorted(folder.glob("*.sqlite"))
    if not files:
        raise ConfigError(f"--llm-journal: no journal under {folder}")
    from swarm_ray.journal import JournalError

    try:
        report = calibrate_llm(files, horizon=args.horizon)
    except (ValueError, JournalError) as exc:
        raise ConfigError(str(exc)) from None
    if args.json:
        print(json.dumps(report))
        return 0
    check = report["check"]
    a, b = report["calibration"]
    print(f"{report['answers']} recorded LLM answers with a view, right {report['right_share']:.1%}"
          f" of the time over {report['horizon_bars']} bars")  # fmt: skip
    print(
        f"ECE on the last third, fitted on the first {check['fitted_on_first']}: raw "
        f"{check['raw']['ece']:.3f} -> calibrated {check['calibrated']['ece']:.3f}"
    )
    print(f"put in the swarm config:\n  agents:\n    llm:\n      calibration: [{a:.4f}, {b:.4f}]")
    return 0
