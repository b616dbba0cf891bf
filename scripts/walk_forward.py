"""The learning loop's walk-forward run over the bundled days, from two starting points.

``--start shipped``: the registry as it ships (the v3 policies, which stand aside on this fill
model) with ``configs/learn.yaml``: the same as ``swarm-ray learn --walk-forward``.

``--start v2``: a swarm that quotes, so that learning has something to change: the v2 policies
(trained with a bonus for quoting) and market_analyst v1, voting with
``agents.unlikely_vote: keep`` (the setting in which v2 quotes), retrained with
``configs/train_dqn.yaml`` (their observation layout). Everything else is ``configs/learn.yaml``.

Each day after the first whose evaluation window the starting champions have not seen: a
learning step in the morning, then the day traded by the starting champions and by that
morning's. Prints the daily table and the decisions (``--json``: one object). Run::

    .venv/bin/python scripts/walk_forward.py --start v2 [--cpus 2] [--smoke] [--json]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shutil
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from swarm_ray.commands.learn import walk_table  # noqa: E402
from swarm_ray.learning.config import load_learn_config  # noqa: E402
from swarm_ray.learning.loop import walk_forward  # noqa: E402
from swarm_ray.runtime.connect import connect  # noqa: E402

MODELS = ("risk_manager", "strategy_optimizer", "execution_agent", "market_analyst")


def v2_setup(work: Path) -> tuple[Path, dict]:
    """A registry of the v2 policies and market_analyst v1, and the learning config changes."""
    registry = work / "v2_registry"
    if registry.exists():
        shutil.rmtree(registry)
    for name in MODELS:
        version = "v1" if name == "market_analyst" else "v2"
        shutil.copytree(ROOT / "models" / name / version, registry / name / version)
    swarm = yaml.safe_load((ROOT / "configs" / "paper.yaml").read_text())
    swarm["agents"]["unlikely_vote"] = "keep"
    (work / "swarm_v2.yaml").write_text(yaml.safe_dump(swarm))
    backtest = yaml.safe_load((ROOT / "configs" / "backtest.yaml").read_text())
    backtest["swarm_config"] = str(work / "swarm_v2.yaml")
    (work / "backtest_v2.yaml").write_text(yaml.safe_dump(backtest))
    update = {
        "train_config": str(ROOT / "configs" / "train_dqn.yaml"),
        "backtest_config": str(work / "backtest_v2.yaml"),
    }
    return registry, update


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--start", choices=("shipped", "v2"), default="shipped")
    ap.add_argument("--cpus", type=float, default=None, help="CPUs the retraining takes")
    ap.add_argument("--smoke", action="store_true", help="tiny budgets (checks the pipeline)")
    ap.add_argument("--max-steps", type=int, default=None, help="stop after this many days")
    ap.add_argument("--work", default=str(ROOT / "runs" / "walk_forward"), help="work folder")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    cfg = load_learn_config(ROOT / "configs" / "learn.yaml")
    cfg = cfg.model_copy(update={"data": (str(ROOT / "data" / "binance-spot-1m"),)})
    if args.cpus is not None:
        cfg = cfg.model_copy(update={"cpus": args.cpus})
    work = Path(args.work) / args.start
    work.mkdir(parents=True, exist_ok=True)
    models = ROOT / "models"
    if args.start == "v2":
        models, update = v2_setup(work)
        cfg = cfg.model_copy(update=update)
    connect(None, num_cpus=2)

    def say(line: str) -> None:
        print(line, file=sys.stderr if args.json else sys.stdout, flush=True)

    stdout = sys.stdout
    with contextlib.redirect_stdout(sys.stderr):  # what Tune prints: stdout is the table/JSON
        out = walk_forward(
            cfg, models, work / "run", smoke=args.smoke, max_steps=args.max_steps, say=say
        )
    out["start"] = args.start
    print(json.dumps(out) if args.json else walk_table(out), file=stdout)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
