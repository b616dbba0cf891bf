"""Benchmark: full swarm cycles (the agents in the coordinator, their models on Ray Serve,
consensus, risk gate, journal, paper orders) on this machine.

From one run on a new local Ray cluster:

- `cycle_p50_ms`, `cycle_p99_ms`: one symbol's cycles, each measured inside the coordinator
  from snapshot to the last order call; `votes_p50_ms` of it is the models' request;
- `actor_call_p50_ms`: a bare Ray actor method round trip from an async actor, the yardstick;
  targets: `cycle_p50_ms` <= 4x it, `cycle_p99_ms` <= 12x it;
- `decisions_per_s`: N symbol swarms at once (cycles of all symbols over wall time), and
  `local_decisions_per_s`: the same with the models loaded in each coordinator (target:
  `decisions_per_s` >= it);
- `rss_mb`: resident memory summed over the cluster's processes with 1, 10 and N symbols.

    python scripts/bench_swarm.py [--symbols 100] [--per-coordinator 25] [--inference local]
                                   [--json]
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

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
    """serve: the models answer on Ray Serve; local: each coordinator loads them itself"""


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


def cluster_rss_mb() -> float:
    """Resident memory summed over this driver's descendants: the local Ray cluster (GCS,
    raylet, workers: coordinators, Serve's controller, proxy and replicas)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:  # the process has gone
            continue
        pid, ppid = int(text.split(" ", 1)[0]), int(text.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(pid)
    total_kb, todo = 0, list(children.get(os.getpid(), []))
    while todo:
        pid = todo.pop()
        todo += children.get(pid, [])
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total_kb += int(line.split()[1])
        except OSError:
            pass
    return total_kb / 1024


def actor_call_p50_ms(n: int = 300, warmup: int = 30) -> float:
    """A bare Ray actor method round trip, timed from inside an async actor (as a coordinator
    calls), the yardstick of the latency targets."""
    import ray

    @ray.remote(num_cpus=0)
    class Echo:
        async def echo(self, x: int) -> int:
            return x

    @ray.remote(num_cpus=0)
    class Caller:
        async def time_calls(self, target: Any, n: int, warmup: int) -> list[float]:
            out = []
            for i in range(n + warmup):
                t0 = time.perf_counter()
                await target.echo.remote(i)
                if i >= warmup:
                    out.append((time.perf_counter() - t0) * 1e3)
            return out

    echo, caller = Echo.remote(), Caller.remote()
    lat = ray.get(caller.time_calls.remote(echo, n, warmup))
    ray.kill(echo)
    ray.kill(caller)
    return float(np.percentile(lat, 50))


def single_symbol(tmp: Path, cfg: Config, inference: str) -> dict[str, float]:
    """Cycle latency of one symbol's swarm, and the cluster's resident memory meanwhile."""
    import ray

    from swarm_ray.runtime import swarm as runtime

    one = swarm_config(tmp, ["BTCUSDT"], 1, f"bench1{inference}", inference)
    coord = runtime.start_swarm(one)["coordinator:BTCUSDT"]
    ray.get(coord.run.remote(cfg.warmup, keep_history=True))
    ray.get(coord.run.remote(cfg.cycles, keep_history=True))
    hist = ray.get(coord.history_since.remote(cfg.warmup))
    rss = cluster_rss_mb()
    ray.kill(coord)
    lat = np.array([h["latency_ms"] for h in hist])
    return {
        "cycle_p50_ms": float(np.percentile(lat, 50)),
        "cycle_p99_ms": float(np.percentile(lat, 99)),
        "votes_p50_ms": float(np.percentile([h["votes_ms"] for h in hist], 50)),
        "rss_mb": rss,
    }


def many_symbols(tmp: Path, cfg: Config, n: int, inference: str) -> dict[str, float]:
    """Decisions per second of ``n`` symbol swarms at once, and the cluster's resident memory."""
    import ray

    from swarm_ray.runtime import swarm as runtime

    names = [f"S{i:03d}USDT" for i in range(n)]
    many = swarm_config(tmp, names, cfg.per_coordinator, f"bench{n}{inference}", inference)
    coords = list(runtime.start_swarm(many).values())
    ray.get([h.run.remote(cfg.warmup) for h in coords])
    t0 = time.perf_counter()
    ray.get([h.run.remote(cfg.multi_cycles) for h in coords])
    wall = time.perf_counter() - t0
    rss = cluster_rss_mb()
    for h in coords:
        ray.kill(h)
    time.sleep(1.0)  # let the killed workers exit before the next size is measured
    return {"decisions_per_s": n * cfg.multi_cycles / wall, "coordinators": len(coords),
            "rss_mb": rss}  # fmt: skip


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
    out: dict[str, Any] = {"inference": cfg.inference, "symbols": cfg.symbols}
    try:
        runtime.ensure_models_served(swarm_config(tmp, ["BTCUSDT"], 1, "serve", "serve"))
        out["actor_call_p50_ms"] = actor_call_p50_ms()
        one = single_symbol(tmp, cfg, cfg.inference)
        out |= {k: one[k] for k in ("cycle_p50_ms", "cycle_p99_ms", "votes_p50_ms")}
        out["single_symbol_cycles_per_s"] = 1e3 / one["cycle_p50_ms"]
        rss = {1: one["rss_mb"]}
        for n in sorted({10, cfg.symbols}):
            res = many_symbols(tmp, cfg, n, cfg.inference)
            rss[n] = res["rss_mb"]
            if n == cfg.symbols:
                out["decisions_per_s"] = res["decisions_per_s"]
                out["coordinators"] = res["coordinators"]
        out["rss_mb"] = {str(k): round(v, 1) for k, v in rss.items()}
        other = "local" if cfg.inference == "serve" else "serve"
        out[f"{other}_decisions_per_s"] = many_symbols(tmp, cfg, cfg.symbols, other)[
            "decisions_per_s"
        ]
        a = out["actor_call_p50_ms"]
        out["cycle_p50_over_actor_call"] = out["cycle_p50_ms"] / a
        out["cycle_p99_over_actor_call"] = out["cycle_p99_ms"] / a
    finally:
        serve.shutdown()
        ray.shutdown()

    if args.json:
        print(json.dumps(out))
    else:
        for k, v in out.items():
            if isinstance(v, float):
                print(f"{k:30s} {v:12.2f}")
            else:
                print(f"{k:30s} {v!s:>12}")


if __name__ == "__main__":
    main()
