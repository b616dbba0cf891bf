"""``swarm-ray tune-consensus``: Ray Tune over the consensus weights, threshold and split-vote
rule, each trial scored by the whole-swarm backtest on the given (validation) days; the winner
is written as a swarm config with its evidence beside it."""

from __future__ import annotations

import argparse
import json

from swarm_ray.core.config import ConfigError
from swarm_ray.core.storage import storage_root

DEFAULT_CONFIG = "configs/backtest.yaml"


def register(sub: argparse._SubParsersAction) -> None:
    from swarm_ray.training.consensus import OBJECTIVES

    p = sub.add_parser(
        "tune-consensus",
        help="tune the consensus on validation days with Ray Tune and the swarm backtest",
        description=(
            "Search the consensus weights, threshold and no_consensus rule with Ray Tune; each "
            "trial replays --data with the whole swarm of the backtest config's swarm_config "
            "at one fee tier. The base config's own consensus is the first trial. Writes the "
            "best as a swarm config (--out) and every trial to <out>.evidence.json. Give days "
            "the models did not train on, and judge the result on other days."
        ),
    )
    p.add_argument("--config", default=DEFAULT_CONFIG, help="backtest config (fees, sizes, ...)")
    p.add_argument("--data", nargs="+", required=True, metavar="FILE", help="days to tune on")
    p.add_argument("--fees", help="fee tier (default: the config's)")
    p.add_argument("--num-samples", type=int, default=24, help="trials, the base included")
    p.add_argument("--objective", choices=OBJECTIVES, default="sharpe", help="what is maximised")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--models", metavar="DIR", help="model registry (default: the config's)")
    p.add_argument("--out", default="runs/tune_consensus/paper_tuned.yaml",
                   help="the tuned swarm config (under the storage root)")  # fmt: skip
    p.add_argument("--address", help="Ray cluster (default: RAY_ADDRESS or a local one)")
    p.add_argument("--num-cpus", type=int, help="CPUs of a local cluster")
    p.add_argument("--json", action="store_true", help="print the evidence as one JSON object")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from swarm_ray.commands._swarm import init_ray
    from swarm_ray.commands.backtest import load_backtest_config
    from swarm_ray.training.consensus import check_inputs, tune_consensus, write_tuned_config

    cfg = load_backtest_config(args.config, args.models)
    out = storage_root().local_path(args.out, "--out")
    # bad input fails before Ray starts
    check_inputs(cfg, args.data, args.fees, args.objective, args.num_samples)
    init_ray(args.address, num_cpus=args.num_cpus)
    try:
        evidence = tune_consensus(
            cfg,
            args.data,
            fees=args.fees,
            num_samples=args.num_samples,
            objective=args.objective,
            seed=args.seed,
        )
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    path, proof = write_tuned_config(evidence, out)
    if args.json:
        print(json.dumps(evidence))
        return 0
    best, base = evidence["best"], evidence["base"]
    print(f"tuned on {', '.join(evidence['days'])} at {evidence['fees']}, "
          f"{len(evidence['trials'])} trials, objective {evidence['objective']}")  # fmt: skip
    for name, t in (("best", best), ("base", base)):
        if t:
            c = t["consensus"]
            w = " ".join(f"{r}={v:g}" for r, v in c["weights"].items())
            print(f"  {name}: PnL {t['pnl']:.2f} USDT, Sharpe {t['sharpe']:.2f}, "
                  f"{t['fills']} fills | {w} threshold={c['threshold']:g} "
                  f"no_consensus={c['no_consensus']}")  # fmt: skip
    print("  " + ("the tuned consensus beats the base" if evidence["beats_base"]
                  else "nothing beat the base consensus: it is kept"))  # fmt: skip
    print(f"written: {path}\nevidence: {proof}")
    return 0
