"""The training experiment: the role policies as trials of one Ray Tune experiment on RLlib's
DQN, exported to the model registry with a model card, then the market-analysis network."""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from swarm_ray.core.config import ConfigError
from swarm_ray.core.storage import StorageError, storage_root
from swarm_ray.training.config import TrainConfig
from swarm_ray.training.dqn import (
    build_dqn_config,
    register_training_env,
    role_env_config,
    with_mixture,
)

STOP_METRIC = "env_runners/num_env_steps_sampled_lifetime"
RESULTS_DIR = "runs/ray_results"  # Tune results, in the storage root unless configured
SMOKE_REGISTRY = "runs/smoke/models"  # where --smoke exports, in the storage root


@dataclass
class TrainingOutcome:
    """What a training run produced: the experiment folder and the exported model folders."""

    experiment_path: str | None = None
    policies: dict[str, Path] = field(default_factory=dict)
    analysis: Path | None = None
    errors: dict[str, str] = field(default_factory=dict)


def _trial_role(trial: Any) -> str:
    return str(trial.config.get("env_config", {}).get("role", "trial"))


def _trial_dirname(trial: Any) -> str:
    return f"{_trial_role(trial)}_{trial.trial_id}"


def make_progress_callback():
    """A Tune callback that prints one line per result: role, iteration, steps, return."""
    from ray import tune
    from rich.console import Console

    class TrainingProgress(tune.Callback):
        def __init__(self) -> None:
            self.start = time.monotonic()
            self.console = Console(highlight=False)

        def __getstate__(self) -> dict:  # Tune pickles its callbacks; a Console holds a lock
            return {"start": self.start}

        def __setstate__(self, state: dict) -> None:
            self.start = state["start"]
            self.console = Console(highlight=False)

        def on_trial_result(self, iteration, trials, trial, result, **info) -> None:
            er = result.get("env_runners", {})
            steps = er.get("num_env_steps_sampled_lifetime", 0)
            ret = er.get("episode_return_mean", float("nan"))
            rate = steps / max(result.get("time_total_s", 0.0), 1e-9)
            done = sum(t.status == "TERMINATED" for t in trials)
            self.console.print(
                f"[bold]{_trial_role(trial):<18}[/] it {result.get('training_iteration', 0):>3}"
                f" steps {int(steps):>7} return {ret:>8.3f} {rate:>5.0f}/s"
                f" [{done}/{len(trials)} done {time.monotonic() - self.start:.0f}s]",
                soft_wrap=True,
            )

        def on_trial_error(self, iteration, trials, trial, **info) -> None:
            self.console.print(f"[red]{_trial_role(trial)}: trial failed[/]")

    return TrainingProgress()


def experiment_dir(cfg: TrainConfig, smoke: bool, storage_path: str | None) -> tuple[str, str]:
    """(storage path, experiment name) of this run: ``storage_path`` (``--storage-path``), else
    ``experiment.storage_path``, else ``runs/ray_results``; relative under the storage root.
    A URI (``s3://...``) goes to Tune as it is."""
    field = "--storage-path" if storage_path else "experiment.storage_path"
    given = storage_path or cfg.experiment.storage_path or RESULTS_DIR
    storage = storage_root(cfg.storage).results(given, field)
    name = cfg.experiment.name + ("_smoke" if smoke else "")
    return storage, name


def export_registry(cfg: TrainConfig, smoke: bool, models_dir: str | None = None) -> str:
    """The registry this run exports to. A full run: ``models_dir`` (``--models-dir``), else
    ``registry.models_dir``, the serving registry. A smoke run never exports there: to
    ``models_dir`` if given (another folder), else the scratch registry ``runs/smoke/models``
    in the storage root (a temporary folder when the root is an object store)."""
    root = storage_root(cfg.storage)
    field = "--models-dir" if models_dir else "registry.models_dir"
    if not smoke:
        return root.local_path(models_dir or cfg.registry.models_dir, field)
    if models_dir:
        dest = root.local_path(models_dir, field)
    elif root.is_uri:
        dest = tempfile.mkdtemp(prefix="swarm_ray_smoke_models_")
    else:
        dest = root.local_path(SMOKE_REGISTRY, "the smoke registry")
    try:
        serving = root.local_path(cfg.registry.models_dir, "registry.models_dir")
    except StorageError:  # not a local folder, so not this one
        serving = None
    if serving is not None and Path(dest).resolve() == Path(serving).resolve():
        raise ConfigError(
            f"--models-dir: {dest} is the serving registry (registry.models_dir), and a smoke "
            f"run never exports there; leave --models-dir out (the scratch registry is "
            f"{SMOKE_REGISTRY} in the storage root) or name another folder"
        )
    return dest


def run_dqn_experiment(
    cfg: TrainConfig,
    smoke: bool = False,
    resume: bool = False,
    storage_path: str | None = None,
    roles: list[str] | None = None,
):
    """Run (or resume) the Tune experiment; returns Tune's ``ResultGrid``."""
    from ray import tune

    register_training_env()
    roles = roles or list(cfg.roles)
    env_configs = [with_mixture(cfg, role_env_config(cfg, r, smoke=smoke)) for r in roles]
    param_space = build_dqn_config(cfg, tune.grid_search(env_configs), smoke=smoke)
    storage, name = experiment_dir(cfg, smoke, storage_path)
    path = f"{storage.rstrip('/')}/{name}"  # a path or a URI
    stop_steps = cfg.smoke.stop_env_steps if smoke else cfg.experiment.stop_env_steps
    every = cfg.smoke.checkpoint_every if smoke else cfg.experiment.checkpoint_every
    if resume:
        if not tune.Tuner.can_restore(path):
            raise ConfigError(f"--resume: no experiment to resume at {path}")
        tuner = tune.Tuner.restore(
            path,
            trainable="DQN",
            resume_unfinished=True,
            resume_errored=True,
            param_space=param_space,
        )
    else:
        tuner = tune.Tuner(
            "DQN",
            param_space=param_space,
            tune_config=tune.TuneConfig(
                trial_name_creator=_trial_dirname, trial_dirname_creator=_trial_dirname
            ),
            run_config=tune.RunConfig(
                name=name,
                storage_path=storage,
                stop={STOP_METRIC: stop_steps},
                checkpoint_config=tune.CheckpointConfig(
                    checkpoint_frequency=every,
                    checkpoint_at_end=True,
                    num_to_keep=cfg.experiment.keep_checkpoints,
                ),
                callbacks=[make_progress_callback()],
                verbose=0,
            ),
        )
    return tuner.fit()


def unfinished_trials(results: Any, cfg: TrainConfig, smoke: bool) -> int:
    """How many trials stopped before their env-step budget without an error (interrupted)."""
    stop = cfg.smoke.stop_env_steps if smoke else cfg.experiment.stop_env_steps
    count = 0
    for result in results:
        if result.error is not None:
            continue
        steps = (result.metrics or {}).get("env_runners", {}).get("num_env_steps_sampled_lifetime")
        if steps is None or steps < stop:
            count += 1
    return count


def policy_card(cfg: TrainConfig, role: str, result: Any, smoke: bool) -> dict[str, Any]:
    import ray
    import torch

    from envs.config import make_config

    er = result.metrics.get("env_runners", {}) if result.metrics else {}
    env = role_env_config(cfg, role, smoke=smoke)
    return {
        "role": role,
        "reward": env.get("reward", {}),
        "smoke": smoke,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "ray": ray.__version__,
        "torch": torch.__version__.split("+")[0],
        "data": {
            "mode": cfg.mode,
            "train_days": [str(d) for d in cfg.data.train_days],
            "validation_days": [str(d) for d in cfg.data.validation_days],
            "evaluation_days": [str(d) for d in cfg.data.evaluation_days],
            "mixture": None if cfg.mixture is None else with_mixture(cfg, env).get("mixture"),
        },
        "env_config": {k: v for k, v in env.items() if k != "role"},
        # how its training env filled quotes: poisson (simulated), trade_through (1-minute
        # bars) or queue (the tick replay)
        "fill_model": make_config({k: v for k, v in env.items() if k != "role"}).fills.kind,
        # what a user of the policy must reproduce to build its observation
        "inference": {
            "observation_layout": make_config(
                {k: v for k, v in env.items() if k != "role"}
            ).observation.layout,
            "session_steps": env.get("n_steps"),
            "time_left": "1 - (minutes since the session start mod session_steps) / session_steps",
            "feature_scale": {
                k: env.get("midprice", {}).get(k) for k in ("ref_vol", "step_sigma", "mean_volume")
            },
            "actions": "envs.market_making.action_table of env_config (bps of the mid)",
        },
        "dqn": cfg.dqn.model_dump(mode="json"),
        "training": {
            "env_steps": er.get("num_env_steps_sampled_lifetime"),
            "iterations": result.metrics.get("training_iteration") if result.metrics else None,
            "episode_return_mean": er.get("episode_return_mean"),
            "time_s": result.metrics.get("time_total_s") if result.metrics else None,
            "experiment_path": str(Path(result.path).parent),
        },
    }


def evaluation_for_card(cfg: TrainConfig, role: str, policy: Any) -> dict[str, Any]:
    """The policy and the baselines on the validation days (or simulated paths)."""
    from envs.baselines import PolicyAgent
    from swarm_ray.evaluation.backtest import episode_baselines, evaluate_agents, replay_starts
    from swarm_ray.training.dqn import resolve_files

    env = resolve_files(
        {
            k: v
            for k, v in role_env_config(cfg, role, cfg.data.validation_days).items()
            if k != "role"
        }
    )
    agents = [PolicyAgent(policy, role)]
    if cfg.mode == "replay":
        starts = replay_starts(env, cfg.registry.eval_episodes_per_day)
        fit = resolve_files({"midprice": {"files": cfg.data.files(cfg.data.train_days, root="")}})
        agents += episode_baselines(env, fit["midprice"]["files"])
        metrics = evaluate_agents(agents, env, starts=starts)
        where = {"days": [str(d) for d in cfg.data.validation_days], "episodes": len(starts)}
    else:
        agents += episode_baselines(env)
        metrics = evaluate_agents(agents, env, n_paths=500, seed=12345)
        where = {"simulated_paths": 500}
    return {**where, "n_steps": env.get("n_steps"), "metrics": metrics}


def backtest_for_card(cfg: TrainConfig, policy: Any) -> dict[str, Any] | None:
    """``swarm-ray evaluate`` of the policy next to the baselines on the validation days (whole
    days, ``registry.evaluate_config``): the numbers the README's table shows."""
    if cfg.mode != "replay" or not cfg.registry.evaluate_config:
        return None
    from swarm_ray.core.config import load_config, resolve_path
    from swarm_ray.evaluation.backtest import EvaluateConfig, evaluate_days
    from swarm_ray.registry.policies import RegistryPolicyAgent
    from swarm_ray.training.dqn import PROJECT_ROOT

    ecfg = load_config(resolve_path(cfg.registry.evaluate_config), EvaluateConfig)
    files = cfg.data.files(cfg.data.validation_days, root=PROJECT_ROOT)
    agent = RegistryPolicyAgent.from_policy(policy)
    results, runs, fitted = evaluate_days(files, ecfg, [agent])
    for run in runs:
        results[run.name]["quoting"] = float(np.mean(~(np.isnan(run.bid) & np.isnan(run.ask))))
    return {
        "config": cfg.registry.evaluate_config,
        "days": [str(d) for d in cfg.data.validation_days],
        "episode": "each day one episode; the policy's time_left runs its session clock",
        "metrics": results,
        "as_fitted": fitted,
    }


def export_results(
    cfg: TrainConfig,
    results: Any,
    models_dir: str | Path,
    smoke: bool = False,
    version: str | None = None,
    evaluate: bool = True,
) -> TrainingOutcome:
    """Export every finished trial's last checkpoint to the registry, with its model card."""
    from swarm_ray.registry.policies import load_policy, write_card
    from swarm_ray.training.export import export_policy

    outcome = TrainingOutcome()
    for result in results:
        role = str((result.config or {}).get("env_config", {}).get("role"))
        outcome.experiment_path = str(Path(result.path).parent)
        if result.error is not None or result.checkpoint is None:
            outcome.errors[role] = str(result.error or "no checkpoint")
            continue
        card = policy_card(cfg, role, result, smoke)
        with result.checkpoint.as_directory() as ckpt:
            card["training"]["checkpoint"] = result.checkpoint.path
            dest = export_policy(ckpt, models_dir, role, card, version=version)
        if evaluate:
            policy = load_policy(dest)
            card = policy.card
            card["evaluation"] = evaluation_for_card(cfg, role, policy)
            if not smoke:
                card["validation_backtest"] = backtest_for_card(cfg, policy)
            write_card(dest, card)
        outcome.policies[role] = dest
    return outcome


def run_analysis(
    cfg: TrainConfig, models_dir: str | Path, smoke: bool = False, version: str | None = None
) -> Path:
    """Train the market-analysis network on the training days and export it."""
    from swarm_ray.training.analysis import export_analysis, train_analysis
    from swarm_ray.training.dqn import PROJECT_ROOT

    d = cfg.data
    train_files = d.files(d.train_days, root=PROJECT_ROOT)
    val_files = d.files(d.validation_days, root=PROJECT_ROOT)
    epochs = cfg.smoke.analysis_epochs if smoke else None
    result = train_analysis(cfg.analysis, train_files, val_files, epochs=epochs)
    card = {
        "role": "market_analyst",
        "smoke": smoke,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "data": {
            "train_days": [str(x) for x in d.train_days],
            "validation_days": [str(x) for x in d.validation_days],
            "evaluation_days": [str(x) for x in d.evaluation_days],
        },
        "config": cfg.analysis.model_dump(mode="json"),
        "history": result.history,
    }
    dest = export_analysis(result, models_dir, cfg.registry.analysis_name, card, version=version)
    if d.evaluation_days:
        from swarm_ray.registry.analysis_model import load_analysis_model
        from swarm_ray.registry.policies import read_card, write_card
        from swarm_ray.training.analysis import evaluate_analysis

        model = load_analysis_model(models_dir, cfg.registry.analysis_name, dest.name)
        full = read_card(dest)
        full["metrics"]["evaluation"] = evaluate_analysis(
            model,
            d.files(d.evaluation_days, root=PROJECT_ROOT),
            cfg.analysis.horizon,
            tuple(cfg.analysis.thresholds_bps),
        )
        write_card(dest, full)
    return dest
