"""``swarm-ray learn``: retrain challengers, judge them against the champions on days neither
trained on, promote the ones that win (through Serve when it runs); or ``--walk-forward``: the
same, day by day over the data, against the champions left alone."""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from datetime import UTC, date, datetime
from pathlib import Path

from swarm_ray.core.config import ConfigError

DEFAULT_CONFIG = "configs/learn.yaml"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "learn",
        help="retrain the models and promote those that beat their champions",
        description=(
            "One learning step: retrain a challenger per role (one Ray Tune experiment, "
            "warm-started from the champions) on the window's training days, run the whole "
            "swarm on the most recent days neither model trained on with the champion and with "
            "the challenger, and promote a challenger only when it makes more by the margin "
            "with a bootstrap interval that excludes zero. Promotion writes a registry version "
            "with its lineage and rolls it out on Serve when the model app runs. "
            "--walk-forward: a step every day of the data on a simulated clock, each day "
            "traded by the champions as they were that morning and by the starting champions."
        ),
    )
    p.add_argument("--config", default=DEFAULT_CONFIG, help="learning config")
    p.add_argument("--walk-forward", action="store_true", help="replay the steps day by day")
    p.add_argument("--data", nargs="+", metavar="FILE", help="kline files or folders")
    p.add_argument("--models", metavar="DIR", help="model registry (default: the config's)")
    p.add_argument("--today", help="the step's day, YYYY-MM-DD (default: today, UTC)")
    p.add_argument(
        "--smoke",
        action="store_true",
        help="tiny budgets and windows, in a copy of the registry (checks the pipeline)",
    )
    p.add_argument("--max-steps", type=int, help="walk-forward: stop after this many days")
    p.add_argument("--cpus", type=float, help="CPUs the retraining takes (default: the config's)")
    p.add_argument("--address", help="Ray cluster (default: RAY_ADDRESS, else a local one)")
    p.add_argument("--num-cpus", type=int, help="CPUs of a local cluster")
    p.add_argument("--json", action="store_true", help="print one JSON object last")
    p.set_defaults(func=run)


def _today(text: str | None) -> date:
    if text is None:
        return datetime.now(UTC).date()
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ConfigError(f"--today: {text!r} is not a date like 2024-08-17") from None


def run(args: argparse.Namespace) -> int:
    from swarm_ray.core.config import resolve_path
    from swarm_ray.core.storage import storage_root
    from swarm_ray.learning.config import load_learn_config
    from swarm_ray.runtime.connect import connect

    cfg = load_learn_config(resolve_path(args.config))
    if args.data:
        cfg = cfg.model_copy(update={"data": tuple(args.data)})
    if args.cpus is not None:
        if args.cpus <= 0:
            raise ConfigError("--cpus: give a positive number")
        cfg = cfg.model_copy(update={"cpus": args.cpus})
    if args.max_steps is not None and args.max_steps < 1:
        raise ConfigError("--max-steps: give at least 1")
    root = storage_root(cfg.storage)
    field = "--models" if args.models else "models_dir"
    models = Path(root.local_path(args.models or cfg.models_dir, field))
    if not models.is_dir():
        raise ConfigError(f"{field}: no registry at {models}")
    work = Path(root.local_path(cfg.work_dir, "work_dir"))
    quiet = args.json

    def say(line: str) -> None:
        print(line, file=sys.stderr if quiet else sys.stdout, flush=True)

    connect(args.address, num_cpus=args.num_cpus)
    # with --json, stdout holds the JSON object alone: what Tune prints goes to stderr
    stdout = sys.stdout
    with contextlib.redirect_stdout(sys.stderr) if quiet else contextlib.nullcontext():
        return _run(args, cfg, models, work, say, stdout)


def _run(args: argparse.Namespace, cfg, models: Path, work: Path, say, stdout) -> int:
    from swarm_ray.journal import Journal
    from swarm_ray.learning.loop import learn_step, walk_forward

    if args.walk_forward:
        out = walk_forward(
            cfg,
            models,
            work / ("walk_forward_smoke" if args.smoke else "walk_forward"),
            smoke=args.smoke,
            max_steps=args.max_steps or (2 if args.smoke else None),
            say=say,
        )
        if args.json:
            print(json.dumps(out), file=stdout, flush=True)
            return 0
        say(walk_table(out))
        return 0
    today = _today(args.today)
    target, serve_app = models, "auto"
    if args.smoke:  # never in the registry given: a scratch copy of its champions
        from swarm_ray.learning.judge import view_registry
        from swarm_ray.learning.loop import ALL_MODELS

        target = view_registry(models, work / "smoke_registry", ALL_MODELS, scratch=True)
        serve_app = False
        say(f"smoke: working in a copy of the registry, {target}")
    with Journal(str(work / "journal.sqlite"), run_id="learn") as journal:
        step = learn_step(
            cfg, today, target, work / "steps", smoke=args.smoke, serve_app=serve_app,
            journal=journal, say=say,
        )  # fmt: skip
    decisions = [d.to_json() for d in step.decisions]
    if args.json:
        print(json.dumps({"decisions": decisions, "registry": str(target)}), file=stdout)
        return 0
    for d in decisions:
        version = d["challenger"].get("version")
        say(f"{d['role']}: {d['decision']}{f' as {version}' if version else ''}: {d['reason']}")
    return 0


def walk_table(out: dict) -> str:
    lines = [
        f"walk-forward at the {out['fees']} tier (PnL in USDT, each day after that morning's step)",
        f"{'day':<12}{'champion only':>15}{'learning':>12}{'cum. champion':>15}"
        f"{'cum. learning':>15}  promoted",
    ]
    for r in out["days"]:
        lines.append(
            f"{r['day']:<12}{r['champion_only']:>15.2f}{r['learning']:>12.2f}"
            f"{r['cumulative_champion_only']:>15.2f}{r['cumulative_learning']:>15.2f}  "
            f"{', '.join(r['promoted']) or '-'}"
        )
    lines.append("decisions:")
    for d in out["decisions"]:
        lines.append(f"  {d['time'][:10]} {d['role']}: {d['decision']}: {d['reason']}")
    return "\n".join(lines)
