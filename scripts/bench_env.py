"""Benchmark: steps per second of the market-making env and of the vectorised simulator.

    python scripts/bench_env.py [--json]

Both use the Avellaneda-Stoikov preset (as2008) and uniformly random valid actions, drawn
before the clock starts so the figure is the simulator's own cost. Resets are included.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass

import numpy as np

import envs
from envs.vector import VectorMarketSim


@dataclass
class Config:
    env_steps: int = 300_000  # env steps timed (one process, unwrapped env)
    vector_paths: int = 16_384  # paths stepped together by the vectorised simulator
    vector_episodes: int = 6  # episodes of 200 steps each
    repeats: int = 3  # best of this many timings
    seed: int = 0


def bench_env(cfg: Config) -> float:
    env = envs.make_env({"preset": "as2008"}).unwrapped
    actions = (
        np.random.default_rng(cfg.seed).integers(0, envs.N_ENV_ACTIONS, cfg.env_steps).tolist()
    )
    best = 0.0
    for _ in range(cfg.repeats):
        env.reset(seed=cfg.seed)
        step = env.step
        t0 = time.perf_counter()
        for a in actions:
            if step(a)[2]:
                env.reset()
        best = max(best, cfg.env_steps / (time.perf_counter() - t0))
    return best


def bench_vector(cfg: Config) -> float:
    sim = VectorMarketSim({"preset": "as2008"}, n_paths=cfg.vector_paths, seed=cfg.seed)
    n_steps = sim.cfg.n_steps
    actions = np.random.default_rng(cfg.seed).integers(
        0, envs.N_ENV_ACTIONS, (n_steps, cfg.vector_paths)
    )
    best = 0.0
    for _ in range(cfg.repeats):
        t0 = time.perf_counter()
        for _ in range(cfg.vector_episodes):
            sim.reset()
            for t in range(n_steps):
                sim.step_actions(actions[t])
        elapsed = time.perf_counter() - t0
        best = max(best, cfg.vector_episodes * n_steps * cfg.vector_paths / elapsed)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--quick", action="store_true", help="a smaller run (smoke test)")
    args = parser.parse_args()
    cfg = (
        Config(env_steps=20_000, vector_paths=2048, vector_episodes=1, repeats=1)
        if args.quick
        else Config()
    )
    result = {
        "env_steps_per_s": round(bench_env(cfg)),
        "vector_steps_per_s": round(bench_vector(cfg)),
        "vector_paths": cfg.vector_paths,
    }
    if args.json:
        print(json.dumps(result))
    else:
        print(f"env (unwrapped, as2008, random actions): {result['env_steps_per_s']:>14,} steps/s")
        print(
            f"vectorised simulator ({cfg.vector_paths} paths):  "
            f"{result['vector_steps_per_s']:>14,} path-steps/s"
        )


if __name__ == "__main__":
    main()
