"""Time and env steps to a target evaluation return: the project's RLlib DQN against
Stable-Baselines3's DQN, same env, same network, same exploration schedule, same machine.

Imported by ``scripts/bench_train.py`` (its learning part); runnable alone for one learner:

    python scripts/learning_race.py --learner rllib --seed 0 --steps 100000

Each learner trains in this process, in chunks of ``--eval-every`` env steps; after each chunk
its greedy policy is evaluated (not timed) on the same simulated paths for every learner and
seed: the mean episode return (the reward both learners maximise) and the mean PnL over
``--eval-paths`` episodes of the vectorised simulator. ``time_to_target_s`` is the training wall
time until that return first reaches the target; ``steps_to_target`` the env steps by then.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

# The A-S 2008 preset with the learning test's reward (tests/slow/test_dqn_learning.py)
AS2008_ENV: dict[str, Any] = {
    "preset": "as2008",
    "reward": {"kind": "inventory_penalty", "inventory_penalty": 0.5},
}
EVAL_SEED = 2024


@dataclass
class Race:
    learner: str  # rllib | sb3
    seed: int = 0
    steps: int = 100_000
    eval_every: int = 10_000
    eval_paths: int = 500
    target: float = 48.0
    env_name: str = "as2008"  # as2008 | replay (the risk manager's env of train_dqn.yaml)
    dqn: dict[str, Any] = field(default_factory=dict)  # overrides of the TrainConfig's dqn

    @property
    def role(self) -> str:
        return "strategy_optimizer" if self.env_name == "as2008" else "risk_manager"


@dataclass
class Curve:
    learner: str
    seed: int
    steps: list[int] = field(default_factory=list)
    train_s: list[float] = field(default_factory=list)
    ret: list[float] = field(default_factory=list)
    pnl: list[float] = field(default_factory=list)
    time_to_target_s: float | None = None
    steps_to_target: int | None = None
    final_return: float = float("nan")
    final_pnl: float = float("nan")
    trained_samples: int = 0


def evaluate(
    policy: Callable[[np.ndarray], np.ndarray], env: dict[str, Any], paths: int
) -> tuple[float, float]:
    """(mean episode return, mean episode PnL) of the greedy ``policy`` over ``paths`` episodes
    of the vectorised simulator (the env's own reward and fill models), the same paths for
    every learner and seed."""
    from envs.config import make_config
    from envs.vector import VectorMarketSim

    sim = VectorMarketSim(make_config(env), n_paths=paths, seed=EVAL_SEED, with_obs=True)
    state = sim.reset()
    total = np.zeros(paths)
    while not sim.done:
        total += sim.step_actions(np.asarray(policy(state.obs), dtype=np.int64))
        state = sim.state()
    return float(total.mean()), float(sim.wealth.mean())


def train_config(race: Race):
    """The project's TrainConfig for the race: configs/train_dqn.yaml's DQN settings (with the
    race's overrides); on the A-S preset its env in simulation mode, on replay the file's own
    env and days."""
    from pathlib import Path

    import yaml

    from swarm_ray.core.config import PROJECT_ROOT, parse_config
    from swarm_ray.training.config import TrainConfig

    data = yaml.safe_load(Path(PROJECT_ROOT / "configs" / "train_dqn.yaml").read_text())
    if race.env_name == "as2008":
        data["mode"] = "simulation"
        data["env"] = dict(AS2008_ENV)
        data["roles"] = {race.role: {"env": {}}}
    data["dqn"] = {**data["dqn"], **race.dqn}
    data["experiment"]["seed"] = race.seed
    return parse_config(TrainConfig, data, "learning race")


def envs_of(race: Race) -> tuple[dict[str, Any], dict[str, Any]]:
    """(training env, evaluation env) as plain env configs: on replay, the evaluation env
    replays the validation days, which training never sees."""
    from swarm_ray.training.dqn import BOOKKEEPING_KEYS, resolve_files, role_env_config

    cfg = train_config(race)
    train = role_env_config(cfg, race.role)
    days = cfg.data.validation_days if race.env_name == "replay" else None
    evaluation = role_env_config(cfg, race.role, days=days)

    def plain(env: dict[str, Any]) -> dict[str, Any]:
        return resolve_files({k: v for k, v in env.items() if k not in BOOKKEEPING_KEYS})

    return plain(train), plain(evaluation)


def run_rllib(race: Race) -> Curve:
    import ray
    import torch

    from swarm_ray.training.dqn import build_dqn_config, register_training_env, role_env_config

    torch.set_num_threads(1)
    cfg = train_config(race)
    if not ray.is_initialized():
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    register_training_env()
    _, eval_env = envs_of(race)
    algo = build_dqn_config(cfg, role_env_config(cfg, race.role)).build_algo()
    curve = Curve("rllib", race.seed)
    module = algo.get_module()

    def policy(obs: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            out = module.forward_inference({"obs": torch.as_tensor(obs, dtype=torch.float32)})
        return out["actions"].numpy()

    try:
        spent, steps, trained, next_eval = 0.0, 0, 0, race.eval_every
        while steps < race.steps:
            t0 = time.perf_counter()
            result = algo.train()
            spent += time.perf_counter() - t0
            steps = int(result["env_runners"]["num_env_steps_sampled_lifetime"])
            learners = result.get("learners", {}).get("__all_modules__", {})
            trained = int(learners.get("num_env_steps_trained_lifetime", trained))
            if steps >= next_eval or steps >= race.steps:
                module = algo.get_module()
                record(curve, race, steps, spent, evaluate(policy, eval_env, race.eval_paths))
                next_eval = (steps // race.eval_every + 1) * race.eval_every
        curve.trained_samples = trained
    finally:
        algo.stop()
    return curve


def run_sb3(race: Race) -> Curve:
    import torch
    from stable_baselines3 import DQN

    import envs

    torch.set_num_threads(1)
    cfg = train_config(race)
    d = cfg.dqn
    train_env, eval_env = envs_of(race)
    env = envs.make_env(train_env)
    (e0_step, e0), (e1_step, e1) = d.epsilon[0], d.epsilon[-1]
    model = DQN(
        "MlpPolicy",
        env,
        learning_rate=d.lr,
        buffer_size=d.replay_capacity,
        learning_starts=d.num_steps_sampled_before_learning_starts,
        batch_size=64,
        gamma=d.gamma,
        train_freq=4,
        gradient_steps=1,
        target_update_interval=d.target_network_update_freq,
        exploration_initial_eps=e0,
        exploration_final_eps=e1,
        exploration_fraction=(e1_step - e0_step) / race.steps,
        max_grad_norm=d.grad_clip,
        policy_kwargs={"net_arch": list(d.fcnet_hiddens)},
        seed=race.seed,
        device="cpu",
        verbose=0,
    )

    def policy(obs: np.ndarray) -> np.ndarray:
        actions, _ = model.predict(obs, deterministic=True)
        return np.asarray(actions)

    curve = Curve("sb3", race.seed)
    spent, steps = 0.0, 0
    while steps < race.steps:
        chunk = min(race.eval_every, race.steps - steps)
        t0 = time.perf_counter()
        model.learn(total_timesteps=chunk, reset_num_timesteps=False)
        spent += time.perf_counter() - t0
        steps = int(model.num_timesteps)
        record(curve, race, steps, spent, evaluate(policy, eval_env, race.eval_paths))
    # one gradient step of batch_size samples every train_freq env steps
    curve.trained_samples = max(0, steps - model.learning_starts) // 4 * 64
    return curve


def record(curve: Curve, race: Race, steps: int, spent: float, scores: tuple[float, float]) -> None:
    ret, pnl = scores
    curve.steps.append(steps)
    curve.train_s.append(round(spent, 2))
    curve.ret.append(round(ret, 2))
    curve.pnl.append(round(pnl, 2))
    curve.final_return, curve.final_pnl = ret, pnl
    if curve.time_to_target_s is None and ret >= race.target:
        curve.time_to_target_s, curve.steps_to_target = round(spent, 2), steps


def run(race: Race) -> Curve:
    return {"rllib": run_rllib, "sb3": run_sb3}[race.learner](race)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--learner", choices=("rllib", "sb3"), required=True)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--steps", type=int, default=Race.steps)
    p.add_argument("--eval-every", type=int, default=Race.eval_every)
    p.add_argument("--target", type=float, default=Race.target)
    p.add_argument("--env", choices=("as2008", "replay"), default=Race.env_name)
    p.add_argument("--set", dest="sets", action="append", default=[], help="dqn.KEY=VALUE")
    a = p.parse_args()
    import yaml

    dqn = {}
    for item in a.sets:
        key, value = item.split("=", 1)
        dqn[key.removeprefix("dqn.")] = yaml.safe_load(value)
    os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    race = Race(a.learner, a.seed, a.steps, a.eval_every, target=a.target, env_name=a.env, dqn=dqn)
    curve = run(race)
    print(json.dumps(asdict(curve)))


if __name__ == "__main__":
    main()
