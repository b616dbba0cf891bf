"""Benchmark: full swarm cycles (4 agent actors, Serve-hosted models, consensus, risk gate,
journal, paper orders) on this machine.

Prints `cycle_p50_ms` and `cycle_p99_ms` of one symbol's cycles (each measured inside the
coordinator from snapshot to the last order call), and `decisions_per_s` with N symbol swarms
running at once (cycles of all symbols over wall time). Targets on 2 cores: p50 <= 5 ms,
p99 <= 15 ms, >= 1,000 decisions/s with 100 symbols.

    python scripts/bench_swarm.py [--symbols 100] [--per-coordinator 25] [--inference local]
                                   [--json]
"""

from __future__ import annotations

import argparse
import copy
import json
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Config:
    symbols: int = 100
    """concurrent symbol swarms for decisions_per_s"""
    per_coordinator: int = 25
    """symbols hosted by one coordinator actor in the multi-symbol run"""
    cycles: int = 300
    """measured cycles of the single symbol"""
    multi_cycles: int = 60
    """measured rounds of the multi-symbol run"""
    warmup: int = 20
    num_cpus: int = 2
    inference: str = "serve"
    """serve: agents query the Serve deployments; local: each agent runs its model itself"""


def swarm_config(tmp: Path, symbols: list[str], per: int, run_id: str, inference: str):
    from swarm_ray.core.config import parse_config
    from swarm_ray.runtime.config import SwarmConfig

    data = yaml.safe_load((ROOT / "configs" / "paper.yaml").read_text())
    days = [str(ROOT / f"data/binance-spot-1m/BTCUSDT-1m-2024-08-{d}.csv") for d in ("19", "20")]
    data.update(run_id=run_id, symbols=symbols, journal_dir=str(tmp / run_id), metrics=True)
    paper = data["exchange"]["paper"]
    paper["state_path"] = None
    paper["symbols"] = {symbols[0]: {"klines": days}} | {
        s: {"source_symbol": symbols[0]} for s in symbols[1:]
    }
    data["cycle"]["symbols_per_coordinator"] = per
    data["agents"]["inference"] = inference
    # the analyst alone carries the vote, so every cycle exercises the order path
    data["consensus"]["weights"] = {"market_analyst": 1.0, "risk_manager": 0.0,
                                    "strategy_optimizer": 0.0, "execution_agent": 0.0}  # fmt: skip
    return parse_config(SwarmConfig, copy.deepcopy(data))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    for name, value in asdict(Config()).items():
        parser.add_argument(f"--{name.replace('_', '-')}", type=type(value), default=value)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    cfg = Config(**{k: getattr(args, k) for k in asdict(Config())})

    import ray
    from ray import serve

    from swarm_ray.runtime import swarm as runtime
    from swarm_ray.runtime.actors import NAMESPACE

    tmp = Path(tempfile.mkdtemp(prefix="bench_swarm_"))
    ray.init(num_cpus=cfg.num_cpus, include_dashboard=False, namespace=NAMESPACE,
             log_to_driver=False)  # fmt: skip
    out: dict[str, float | str] = {"inference": cfg.inference}
    try:
        one = swarm_config(tmp, ["BTCUSDT"], 1, "bench1", cfg.inference)
        runtime.ensure_models_served(one)  # no-op for local inference
        handles = runtime.start_swarm(one)
        coord = handles["coordinator:BTCUSDT"]
        ray.get(coord.run.remote(cfg.warmup, keep_history=True))
        ray.get(coord.run.remote(cfg.cycles, keep_history=True))
        hist = ray.get(coord.history_since.remote(cfg.warmup))
        lat = np.array([h["latency_ms"] for h in hist])
        out["cycle_p50_ms"] = float(np.percentile(lat, 50))
        out["cycle_p99_ms"] = float(np.percentile(lat, 99))
        out["votes_p50_ms"] = float(np.percentile([h["votes_ms"] for h in hist], 50))
        out["single_symbol_cycles_per_s"] = len(hist) / sum(lat) * 1e3
        ray.kill(coord)

        names = [f"S{i:03d}USDT" for i in range(cfg.symbols)]
        many = swarm_config(tmp, names, cfg.per_coordinator, "benchN", cfg.inference)
        coords = {n: h for n, h in runtime.start_swarm(many).items() if n.startswith("coord")}
        ray.get([h.run.remote(cfg.warmup) for h in coords.values()])
        t0 = time.perf_counter()
        ray.get([h.run.remote(cfg.multi_cycles) for h in coords.values()])
        wall = time.perf_counter() - t0
        out["symbols"] = cfg.symbols
        out["coordinators"] = len(coords)
        out["decisions_per_s"] = cfg.symbols * cfg.multi_cycles / wall
    finally:
        serve.shutdown()
        ray.shutdown()

    if args.json:
        print(json.dumps(out))
    else:
        for k, v in out.items():
            print(f"{k:28s} {v:12.2f}" if isinstance(v, float) else f"{k:28s} {v:>12}")


if __name__ == "__main__":
    main()
