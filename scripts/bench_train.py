"""Env steps sampled per second during RLlib DQN training: the project's tuned configuration
(configs/train_dqn.yaml) against RLlib's default DQNConfig, same env, same run.

    python scripts/bench_train.py [--json] [--seconds 30] [--set dqn.train_batch_size=512]

Each configuration trains in this process (local env runner and learner, as in one Tune trial)
until learning has started, then is timed over at least ``--seconds`` of training iterations.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

import yaml


@dataclass
class Args:
    config: str = "configs/train_dqn.yaml"  # training config whose tuned settings are measured
    role: str = "risk_manager"  # whose env (reward) to train on
    seconds: float = 30.0  # timed training per configuration, after learning starts
    json: bool = False  # print one JSON object instead of text
    sets: tuple[str, ...] = ()  # dotted overrides of the config, key=value (YAML values)


def parse_args() -> Args:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", default=Args.config)
    p.add_argument("--role", default=Args.role)
    p.add_argument("--seconds", type=float, default=Args.seconds)
    p.add_argument("--json", action="store_true")
    p.add_argument("--set", dest="sets", action="append", default=[])
    a = p.parse_args()
    return Args(a.config, a.role, a.seconds, a.json, tuple(a.sets))


def load(args: Args):
    from swarm_ray.core.config import parse_config
    from swarm_ray.training.config import TrainConfig

    data = yaml.safe_load(Path(args.config).read_text())
    for item in args.sets:
        key, value = item.split("=", 1)
        node = data
        *parents, leaf = key.split(".")
        for k in parents:
            node = node.setdefault(k, {})
        node[leaf] = yaml.safe_load(value)
    return parse_config(TrainConfig, data, args.config)


def measure(algo_config, seconds: float, learning_starts: int) -> dict:
    """Train until learning has started, then time at least ``seconds`` of iterations."""
    algo = algo_config.build_algo()
    try:

        def steps(result: dict) -> float:
            return float(result["env_runners"]["num_env_steps_sampled_lifetime"])

        result = algo.train()
        while steps(result) < learning_starts:
            result = algo.train()
        result = algo.train()  # the first iteration with learning includes warm-up costs
        s0, t0 = steps(result), time.perf_counter()
        trained0 = result["learners"]["__all_modules__"].get("num_env_steps_trained_lifetime", 0)
        while time.perf_counter() - t0 < seconds:
            result = algo.train()
        dt = time.perf_counter() - t0
        trained = result["learners"]["__all_modules__"].get("num_env_steps_trained_lifetime", 0)
        return {
            "env_steps_per_s": (steps(result) - s0) / dt,
            "trained_steps_per_s": (trained - trained0) / dt,
            "seconds": dt,
        }
    finally:
        algo.stop()


def main() -> None:
    args = parse_args()
    os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    import ray
    from ray.rllib.algorithms.dqn import DQNConfig

    from swarm_ray.training.dqn import (
        ENV_NAME,
        build_dqn_config,
        register_training_env,
        role_env_config,
    )

    cfg = load(args)
    env_config = role_env_config(cfg, args.role)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    register_training_env()
    try:
        tuned = measure(
            build_dqn_config(cfg, env_config),
            args.seconds,
            cfg.dqn.num_steps_sampled_before_learning_starts,
        )
        default_cfg = DQNConfig().environment(ENV_NAME, env_config=env_config)
        default = measure(
            default_cfg, args.seconds, default_cfg.num_steps_sampled_before_learning_starts
        )
    finally:
        ray.shutdown()
    out = {
        "tuned_env_steps_per_s": round(tuned["env_steps_per_s"], 1),
        "default_env_steps_per_s": round(default["env_steps_per_s"], 1),
        "speedup": round(tuned["env_steps_per_s"] / max(default["env_steps_per_s"], 1e-9), 1),
        "tuned_trained_steps_per_s": round(tuned["trained_steps_per_s"], 1),
        "default_trained_steps_per_s": round(default["trained_steps_per_s"], 1),
        "seconds_each": round(args.seconds, 1),
        "role": args.role,
        "overrides": list(args.sets),
        "cpus": os.cpu_count(),
    }
    if args.json:
        print(json.dumps(out))
    else:
        print(
            f"tuned   {out['tuned_env_steps_per_s']:>8.1f} env steps/s "
            f"({out['tuned_trained_steps_per_s']:.0f} replayed steps/s trained)"
        )
        print(
            f"default {out['default_env_steps_per_s']:>8.1f} env steps/s "
            f"({out['default_trained_steps_per_s']:.0f} replayed steps/s trained)"
        )
        print(f"speedup {out['speedup']:.1f}x")


if __name__ == "__main__":
    main()
