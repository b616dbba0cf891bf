"""Challengers: every role's model retrained on the learning window, as the trials of one Ray
Tune experiment, each warm-started from its champion.

A trial writes its challenger to ``<step dir>/challengers/<role>/<step>/`` (a version folder in the
registry's format, never in the registry): only a promotion copies it there. A DQN trial runs
RLlib's DQN in its own process (``num_env_runners: 0``) with ``cpus_per_trial`` CPUs; the
analysis trial trains the market-analysis network. At most ``LearnConfig.cpus`` CPUs are busy,
so the live swarm's actors keep theirs.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from swarm_ray.learning.config import ANALYST, LearnConfig
from swarm_ray.registry.champions import serving_dir
from swarm_ray.registry.files import RegistryError, read_card, staged_version
from swarm_ray.training.config import TrainConfig

__all__ = ["Challenger", "challenger_train_config", "train_challengers"]

log = logging.getLogger(__name__)

CHALLENGERS = "challengers"


@dataclass
class Challenger:
    """One retrained model: its folder (``None`` if the trial failed) and what it started from."""

    role: str
    path: Path | None
    parent: str | None
    """The champion version it was warm-started from (``None``: trained from scratch)."""
    train_days: tuple[str, ...]
    error: str | None = None
    metrics: dict[str, Any] = field(default_factory=dict)


def challenger_train_config(
    base: TrainConfig, train_days: tuple[date, ...], lr: float | None, epsilon: Any
) -> TrainConfig:
    """``base`` with the learning window's days: it trains on all but the last training day,
    which the analysis network validates on (the evaluation days stay unseen by both)."""
    if len(train_days) < 2:
        raise ValueError("a challenger needs at least 2 training days")
    data = base.data.model_copy(
        update={
            "train_days": train_days[:-1],
            "validation_days": train_days[-1:],
            "evaluation_days": (),
        }
    )
    dqn = base.dqn.model_copy(update={"epsilon": tuple(tuple(p) for p in epsilon)})
    if lr is not None:
        dqn = dqn.model_copy(update={"lr": lr})
    return base.model_copy(update={"data": data, "dqn": dqn})


def _champion_dir(models_dir: str, role: str) -> Path | None:
    """The champion's folder to warm-start from; ``None`` (a cold start) if there is none or
    it cannot be used (a smoke model in a serving registry, a broken champions.json)."""
    try:
        return serving_dir(models_dir, role)
    except (FileNotFoundError, RegistryError) as exc:
        log.warning("%s: no champion to warm-start from (%s)", role, exc)
        return None


def _warm_tensors(champion: Path, arch: dict[str, Any]) -> dict[str, Any] | None:
    """The champion's Q-network tensors if its architecture is the challenger's."""
    from swarm_ray.registry.policies import load_policy

    policy = load_policy(champion)
    have = policy.card.get("architecture") or {}
    keys = ("observation_dim", "n_actions", "hiddens", "head_hiddens", "dueling", "activation")
    if any(have.get(k) != arch.get(k) for k in keys):
        return None
    return {k: v.detach().clone() for k, v in policy.network.state_dict().items()}


def _learner_module(algo: Any) -> Any:
    """The RLModule the (first) learner trains: the weights that are exported."""
    from ray.rllib.core import DEFAULT_MODULE_ID

    results = algo.learner_group.foreach_learner(lambda ln: ln.module[DEFAULT_MODULE_ID])
    return next(iter(results)).get()


def _dqn_trial(config: dict[str, Any]) -> None:
    """A Tune trial: one role's DQN challenger, warm-started, trained, exported."""
    from ray import tune
    from ray.rllib.core import DEFAULT_MODULE_ID

    from swarm_ray.registry.policies import POLICY_KIND, git_commit, write_policy_files
    from swarm_ray.training.dqn import build_dqn_config, register_training_env
    from swarm_ray.training.experiment import policy_card
    from swarm_ray.training.export import policy_from_rllib

    role = config["role"]
    cfg = TrainConfig.model_validate(config["train_config"])
    smoke = bool(config["smoke"])
    register_training_env()
    dqn = build_dqn_config(cfg, config["env_config"], smoke=smoke, seed=config["seed"])
    algo = dqn.build_algo()
    started = time.monotonic()
    parent = None
    try:
        arch, _ = policy_from_rllib(_learner_module(algo), f"{role} challenger")
        champion = config.get("champion")
        tensors = _warm_tensors(Path(champion), arch) if champion else None
        if tensors is not None:

            def load(learner: Any) -> list[str]:
                m = learner.module[DEFAULT_MODULE_ID]
                result = m.load_state_dict(tensors, strict=False)
                for main, target in m.get_target_network_pairs():
                    target.load_state_dict(main.state_dict())
                # only the target networks and constant buffers are not among the tensors
                missing = [
                    k
                    for k in result.missing_keys
                    if "target" not in k and k.endswith((".weight", ".bias"))
                ]
                return [*result.unexpected_keys, *missing]

            (wrong,) = [r.get() for r in algo.learner_group.foreach_learner(load)]
            if wrong:
                raise RuntimeError(f"the champion's weights do not fit the module: {wrong}")

            algo.env_runner_group.sync_weights(
                from_worker_or_learner_group=algo.learner_group, inference_only=True
            )
            parent = Path(champion).name
        steps, result = 0, {}
        while steps < config["env_steps"]:
            result = algo.train()
            er = result.get("env_runners", {})
            steps = int(er.get("num_env_steps_sampled_lifetime", 0))
            tune.report(
                {
                    "env_steps": steps,
                    "episode_return_mean": er.get("episode_return_mean"),
                    "role": role,
                }
            )
        arch, weights = policy_from_rllib(_learner_module(algo), f"{role} challenger")
        metrics = {**result, "time_total_s": time.monotonic() - started}
        card = policy_card(cfg, role, SimpleNamespace(metrics=metrics, path=config["out"]), smoke)
        card |= {"name": role, "kind": POLICY_KIND, "version": config["id"], "commit": git_commit()}
        card["lineage"] = {"parent": parent, "train_days": config["train_days"]}
        with staged_version(Path(config["out"]) / role / config["id"]) as stage:
            write_policy_files(stage, arch, weights, card)
    finally:
        algo.stop()


def _analysis_trial(config: dict[str, Any]) -> None:
    """A Tune trial: the market-analysis challenger, warm-started, trained, exported."""
    from ray import tune

    from swarm_ray.training.analysis import export_analysis, train_analysis
    from swarm_ray.training.dqn import PROJECT_ROOT

    cfg = TrainConfig.model_validate(config["train_config"])
    d = cfg.data
    init, scaling = None, None
    champion = config.get("champion")
    if champion:
        from swarm_ray.registry.analysis_model import load_analysis_model

        vdir = Path(champion)
        model = load_analysis_model(vdir.parent.parent, vdir.parent.name, vdir.name)
        if tuple(model.card["architecture"]["hidden"]) == tuple(cfg.analysis.hidden):
            init = {k: v.detach().clone() for k, v in model.network.state_dict().items()}
            scaling = model.scaling
    result = train_analysis(
        cfg.analysis,
        d.files(d.train_days, root=PROJECT_ROOT),
        d.files(d.validation_days, root=PROJECT_ROOT),
        epochs=config["epochs"],
        init_state=init,
        init_scaling=scaling,
    )
    tune.report({"macro_f1": result.metrics["validation"]["model"]["macro_f1"], "role": ANALYST})
    card = {
        "role": ANALYST,
        "smoke": bool(config["smoke"]),
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "data": {
            "train_days": [str(x) for x in d.train_days],
            "validation_days": [str(x) for x in d.validation_days],
            "evaluation_days": [],
        },
        "config": cfg.analysis.model_dump(mode="json"),
        "history": result.history,
        "lineage": {
            "parent": Path(champion).name if init is not None else None,
            "train_days": config["train_days"],
        },
    }
    export_analysis(result, Path(config["out"]), ANALYST, card, version=config["id"])


def _trial(config: dict[str, Any]) -> None:
    trial = config["trial"]
    if trial["role"] == ANALYST:
        _analysis_trial(trial)
    else:
        _dqn_trial(trial)


def train_challengers(
    cfg: LearnConfig,
    base: TrainConfig,
    models_dir: str,
    step_dir: Path,
    train_days: tuple[date, ...],
    step_id: str,
    smoke: bool = False,
) -> dict[str, Challenger]:
    """One Tune experiment: a challenger per role of ``cfg.roles``, written under
    ``step_dir/challengers``. A failed trial is a ``Challenger`` with its ``error``."""
    from ray import tune

    from swarm_ray.training.dqn import role_env_config, with_mixture

    budget = cfg.budget
    env_steps = cfg.smoke.env_steps if smoke else budget.env_steps
    epsilon = budget.epsilon
    if smoke:
        epsilon = tuple((min(s, env_steps), e) for s, e in epsilon)
    train_cfg = challenger_train_config(base, train_days, budget.lr, epsilon)
    # a challenger that starts from scratch explores as the training config says
    cold_cfg = challenger_train_config(base, train_days, budget.lr, base.dqn.epsilon)
    if smoke:
        small = train_cfg.smoke.model_copy(update={"episode_steps": cfg.smoke.episode_steps})
        train_cfg = train_cfg.model_copy(update={"smoke": small})
        cold_cfg = cold_cfg.model_copy(update={"smoke": small})
    out = step_dir / CHALLENGERS
    out.mkdir(parents=True, exist_ok=True)
    days = [str(d) for d in train_days]
    trials = []
    for role in cfg.roles:
        champion = _champion_dir(models_dir, role) if budget.warm_start else None
        trial: dict[str, Any] = {
            "role": role,
            "train_config": (train_cfg if champion else cold_cfg).model_dump(mode="json"),
            "smoke": smoke,
            "seed": cfg.promotion.seed,
            "champion": str(champion) if champion else None,
            "out": str(out),
            "id": step_id,
            "train_days": days,
        }
        if role == ANALYST:
            trial["epochs"] = cfg.smoke.analysis_epochs if smoke else budget.analysis_epochs
        else:
            if role not in train_cfg.roles:
                raise RegistryError(f"{cfg.train_config}: no role {role!r} to train")
            trial["env_config"] = with_mixture(
                train_cfg, role_env_config(train_cfg, role, smoke=smoke)
            )
            trial["env_steps"] = env_steps
        trials.append(trial)
    per_trial = min(1.0, cfg.cpus)
    tuner = tune.Tuner(
        tune.with_resources(_trial, {"cpu": per_trial}),
        param_space={"trial": tune.grid_search(trials)},
        tune_config=tune.TuneConfig(
            max_concurrent_trials=max(1, int(cfg.cpus // per_trial)),
            trial_name_creator=lambda t: f"{t.config['trial']['role']}_{t.trial_id}",
            trial_dirname_creator=lambda t: f"{t.config['trial']['role']}_{t.trial_id}",
        ),
        run_config=tune.RunConfig(
            name=f"learn_{step_id}", storage_path=str(step_dir / "ray_results"), verbose=0
        ),
    )
    results = tuner.fit()
    found: dict[str, Challenger] = {}
    for result in results:
        role = result.config["trial"]["role"]
        path = out / role / step_id
        error = None if result.error is None else str(result.error).strip().splitlines()[-1]
        if error is None and not path.is_dir():
            error = "the trial wrote no challenger"
        parent = None
        if error is None:
            try:
                parent = (read_card(path).get("lineage") or {}).get("parent")
            except RegistryError as exc:
                error = str(exc)
        found[role] = Challenger(
            role,
            path if error is None else None,
            parent,
            tuple(days),
            error,
            {k: v for k, v in (result.metrics or {}).items() if k in ("env_steps", "macro_f1")},
        )
    return found
