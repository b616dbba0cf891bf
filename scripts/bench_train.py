"""Training speed and sample efficiency: the project's RLlib DQN (configs/train_dqn.yaml)
against RLlib's default DQNConfig (env steps per second) and against Stable-Baselines3's DQN
(time and env steps to a target evaluation return, final return at equal env steps), same
machine, same run.

    python scripts/bench_train.py [--json] [--seconds 30] [--set dqn.train_batch_size=512]
                                  [--seeds 3] [--race-steps 100000] [--envs as2008,replay]
                                  [--skip-throughput] [--skip-race]

Throughput: each configuration trains in this process (local env runner and learner, as in one
Tune trial) until learning has started, then is timed over at least ``--seconds`` of training
iterations. The race (``scripts/learning_race.py``): each learner and seed trains in its own
process, interleaved, with its greedy policy evaluated every 10,000 env steps on the same
simulated paths; on the replay env the evaluation replays the validation days. Targets: the
A-S preset's best single action (``quote_tight``, a return of 48.8 on the evaluation paths)
less 0.8, i.e. 48.0; on replay, standing aside (0.0).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml


@dataclass
class Args:
    config: str = "configs/train_dqn.yaml"  # training config whose tuned settings are measured
    role: str = "risk_manager"  # whose env (reward) to train on
    seconds: float = 30.0  # timed training per configuration, after learning starts
    json: bool = False  # print one JSON object instead of text
    sets: tuple[str, ...] = ()  # dotted overrides of the config, key=value (YAML values)
    seeds: int = 3  # race: seeds per learner
    race_steps: int = 100_000  # race: env steps per learner and seed
    envs: tuple[str, ...] = ("as2008", "replay")  # race: envs
    skip_throughput: bool = False
    skip_race: bool = False


TARGETS = {"as2008": 48.0, "replay": 0.0}


def parse_args() -> Args:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", default=Args.config)
    p.add_argument("--role", default=Args.role)
    p.add_argument("--seconds", type=float, default=Args.seconds)
    p.add_argument("--json", action="store_true")
    p.add_argument("--set", dest="sets", action="append", default=[])
    p.add_argument("--seeds", type=int, default=Args.seeds)
    p.add_argument("--race-steps", type=int, default=Args.race_steps)
    p.add_argument("--envs", default=",".join(Args.envs))
    p.add_argument("--skip-throughput", action="store_true")
    p.add_argument("--skip-race", action="store_true")
    a = p.parse_args()
    envs = tuple(e for e in a.envs.split(",") if e)
    unknown = [e for e in envs if e not in TARGETS]
    if unknown:
        p.error(f"--envs: unknown {unknown}; known: {sorted(TARGETS)}")
    return Args(a.config, a.role, a.seconds, a.json, tuple(a.sets), a.seeds, a.race_steps,
                envs, a.skip_throughput, a.skip_race)  # fmt: skip


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


def throughput(args: Args) -> dict:
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
    return {
        "tuned_env_steps_per_s": round(tuned["env_steps_per_s"], 1),
        "default_env_steps_per_s": round(default["env_steps_per_s"], 1),
        "speedup": round(tuned["env_steps_per_s"] / max(default["env_steps_per_s"], 1e-9), 1),
        "tuned_trained_steps_per_s": round(tuned["trained_steps_per_s"], 1),
        "default_trained_steps_per_s": round(default["trained_steps_per_s"], 1),
        "seconds_each": round(args.seconds, 1),
        "role": args.role,
    }


def t_interval(values: list[float]) -> list[float]:
    """95% t-interval of the mean of ``values`` (one value per seed)."""
    from scipy import stats

    v = np.asarray(values, dtype=float)
    if len(v) < 2:
        return [float(v.mean())] * 2
    half = stats.t.ppf(0.975, len(v) - 1) * v.std(ddof=1) / np.sqrt(len(v))
    return [round(float(v.mean() - half), 2), round(float(v.mean() + half), 2)]


def race(args: Args) -> dict:
    """Every learner and seed on every env, each in its own process, interleaved."""
    from rich.console import Console
    from rich.progress import track

    script = Path(__file__).with_name("learning_race.py")
    dqn_sets = [s for s in args.sets if s.startswith("dqn.")]
    runs = [(env, seed, learner) for env in args.envs for seed in range(args.seeds)
            for learner in ("rllib", "sb3")]  # fmt: skip
    curves: dict[str, dict[str, list[dict]]] = {}
    progress = track(runs, description="learning race", console=Console(stderr=True))
    for env, seed, learner in progress:
        cmd = [
            sys.executable,
            str(script),
            "--learner",
            learner,
            "--seed",
            str(seed),
            "--steps",
            str(args.race_steps),
            "--env",
            env,
            "--target",
            str(TARGETS[env]),
        ]
        cmd += [a for s in dqn_sets for a in ("--set", s)]  # fmt: skip
        out = subprocess.run(cmd, capture_output=True, text=True, check=True)
        curve = json.loads(out.stdout.strip().splitlines()[-1])
        curves.setdefault(env, {}).setdefault(learner, []).append(curve)
    result: dict = {}
    for env, by_learner in curves.items():
        block: dict = {"target_return": TARGETS[env], "seeds": list(range(args.seeds)),
                       "env_steps": args.race_steps}  # fmt: skip
        for learner, cs in by_learner.items():
            reached = [c["time_to_target_s"] for c in cs if c["time_to_target_s"] is not None]
            block[learner] = {
                "time_to_target_s": [c["time_to_target_s"] for c in cs],
                "steps_to_target": [c["steps_to_target"] for c in cs],
                "median_time_to_target_s": float(np.median(reached))
                if len(reached) == len(cs)
                else None,
                "final_return": round(float(np.mean([c["final_return"] for c in cs])), 2),
                "final_return_ci95": t_interval([c["final_return"] for c in cs]),
                "best_return": round(float(np.mean([max(c["ret"]) for c in cs])), 2),
                "final_pnl": round(float(np.mean([c["final_pnl"] for c in cs])), 2),
                "train_s": round(float(np.mean([c["train_s"][-1] for c in cs])), 1),
                "replayed_samples_per_env_step": round(
                    float(np.mean([c["trained_samples"] / c["steps"][-1] for c in cs])), 1
                ),
                "curves": [
                    {k: c[k] for k in ("seed", "steps", "train_s", "ret", "pnl")} for c in cs
                ],
            }
        result[env] = block
    return result


def main() -> None:
    args = parse_args()
    os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    out: dict = {"overrides": list(args.sets), "cpus": os.cpu_count()}
    if not args.skip_throughput:
        out.update(throughput(args))
    if not args.skip_race:
        learning = race(args)
        out["learning"] = learning
        # the headline per learner: the median time and steps to target over the seeds on
        # the first env (None: some seed never reached it)
        first = learning[args.envs[0]]
        for key in ("time_to_target_s", "steps_to_target"):
            out[key] = {}
            for learner in ("rllib", "sb3"):
                values = first[learner][key]
                out[key][learner] = (
                    float(np.median(values)) if all(v is not None for v in values) else None
                )
    if args.json:
        print(json.dumps(out))
        return
    if "tuned_env_steps_per_s" in out:
        print(
            f"tuned   {out['tuned_env_steps_per_s']:>8.1f} env steps/s "
            f"({out['tuned_trained_steps_per_s']:.0f} replayed steps/s trained)"
        )
        print(
            f"default {out['default_env_steps_per_s']:>8.1f} env steps/s "
            f"({out['default_trained_steps_per_s']:.0f} replayed steps/s trained)"
        )
        print(f"speedup {out['speedup']:.1f}x")  # fmt: skip
    for env, block in out.get("learning", {}).items():
        print(
            f"\n{env}: target return {block['target_return']}, seeds {block['seeds']}, "
            f"{block['env_steps']} env steps each"
        )
        print(
            f"{'learner':8s} {'time to target s (per seed)':32s} {'steps to target':26s} "
            f"{'final return [95% CI]':26s} {'best':>7s} {'PnL':>7s} {'train s':>8s} "
            f"{'replayed/step':>13s}"
        )
        for learner in ("rllib", "sb3"):
            b = block[learner]
            ci = b["final_return_ci95"]
            print(f"{learner:8s} {b['time_to_target_s']!s:32s} {b['steps_to_target']!s:26s} "
                  f"{b['final_return']:7.2f} [{ci[0]:.2f}, {ci[1]:.2f}]{'':7s} "
                  f"{b['best_return']:7.2f} {b['final_pnl']:7.2f} {b['train_s']:8.1f} "
                  f"{b['replayed_samples_per_env_step']:13.1f}")  # fmt: skip


if __name__ == "__main__":
    main()
