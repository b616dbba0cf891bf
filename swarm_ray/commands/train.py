"""``swarm-ray train``: the role policies (one Tune experiment on RLlib's DQN) and the
market-analysis network, exported to the model registry."""

from __future__ import annotations

import argparse
import os

from swarm_ray.training.config import load_train_config


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "train",
        help="train the DQN role policies (Ray Tune) and the market-analysis network",
        description="Train the DQN role policies as trials of one Ray Tune experiment and the "
        "market-analysis network; export both to the model registry.",
    )
    p.add_argument("--config", default="configs/train_dqn.yaml", help="training YAML")
    p.add_argument(
        "--smoke",
        action="store_true",
        help="tiny budget: checks the pipeline (exports to a scratch registry, never served)",
    )
    p.add_argument("--resume", action="store_true", help="resume the interrupted experiment")
    p.add_argument(
        "--what", choices=("all", "dqn", "analysis"), default="all", help="what to train"
    )
    p.add_argument("--role", action="append", help="train only this role (repeatable)")
    p.add_argument(
        "--storage-path",
        help="Tune results: folder or URI (default: the config's; relative: in the storage root)",
    )
    p.add_argument(
        "--models-dir",
        help="registry to export to (default: the config's; --smoke: the scratch registry "
        "runs/smoke/models in the storage root)",
    )
    p.add_argument("--version", help="registry version to write (default: next vN)")
    p.add_argument("--no-export", action="store_true", help="train only, export nothing")
    p.add_argument(
        "--address",
        default=os.environ.get("RAY_ADDRESS"),
        help="Ray cluster to attach to (default: $RAY_ADDRESS, else a local Ray)",
    )
    p.add_argument("--num-cpus", type=int, help="CPUs of a local Ray (default: all)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from rich.console import Console

    from swarm_ray.core.storage import storage_root
    from swarm_ray.training.experiment import (
        experiment_dir,
        export_registry,
        export_results,
        run_analysis,
        run_dqn_experiment,
        unfinished_trials,
    )

    console = Console(highlight=False)
    cfg = load_train_config(args.config)
    # every output located before any work: a refused path fails here, in one line
    root = storage_root(cfg.storage)
    models_dir = None if args.no_export else export_registry(cfg, args.smoke, args.models_dir)
    console.print(f"storage root: {root.describe()}")
    if args.what in ("all", "dqn"):
        storage, name = experiment_dir(cfg, args.smoke, args.storage_path)
        console.print(f"results: {storage.rstrip('/')}/{name}")
    if models_dir is not None:
        kind = "scratch registry (smoke: never served)" if args.smoke else "registry"
        console.print(f"{kind}: {models_dir}")
    status = 0
    if args.what in ("all", "dqn"):
        import ray

        started = False
        if not ray.is_initialized():
            from swarm_ray.runtime.connect import connect

            connect(args.address, num_cpus=args.num_cpus)
            started = True
        try:
            results = run_dqn_experiment(
                cfg, args.smoke, args.resume, args.storage_path, roles=args.role
            )
            left = unfinished_trials(results, cfg, args.smoke)
            if left:
                console.print(
                    f"[yellow]interrupted: {left} trial(s) unfinished; state saved in "
                    f"{results.experiment_path}. Continue with the same command plus --resume.[/]"
                )
                return 130
            if models_dir is None:
                console.print(f"experiment: {results.experiment_path}")
            else:
                out = export_results(cfg, results, models_dir, args.smoke, args.version)
                console.print(f"experiment: {out.experiment_path}")
                console.print(f"tensorboard --logdir {out.experiment_path}")
                for role, path in out.policies.items():
                    console.print(f"exported {role}: {path}")
                for role, err in out.errors.items():
                    console.print(f"[red]{role} failed:[/] {err}")
                    status = 1
        finally:
            if started:
                ray.shutdown()
    if args.what in ("all", "analysis") and models_dir is not None:
        dest = run_analysis(cfg, models_dir, args.smoke, args.version)
        console.print(f"exported market_analyst: {dest}")
    return status
