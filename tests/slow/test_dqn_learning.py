"""Learning test: a short Tune/RLlib DQN run on the Avellaneda-Stoikov (2008) preset must beat
standing aside and a random policy in evaluation (mean PnL over 1,000 simulated paths), and its
untrained first checkpoint must not: a run whose learner does nothing fails here."""

from __future__ import annotations

from pathlib import Path

import pytest

ray = pytest.importorskip("ray")

from swarm_ray.core.config import parse_config  # noqa: E402
from swarm_ray.evaluation.backtest import evaluate_agents  # noqa: E402
from swarm_ray.registry.policies import load_policy_agents  # noqa: E402
from swarm_ray.training.config import TrainConfig  # noqa: E402
from swarm_ray.training.experiment import export_results, run_dqn_experiment  # noqa: E402
from swarm_ray.training.export import export_policy  # noqa: E402

pytestmark = pytest.mark.slow

AS2008 = {"preset": "as2008"}
STEPS = 150_000


def learning_config(storage: Path) -> TrainConfig:
    return parse_config(
        TrainConfig,
        {
            "experiment": {
                "name": "as2008_learning",
                "storage_path": str(storage),
                "stop_env_steps": STEPS,
                "checkpoint_every": 1,
                "keep_checkpoints": 1000,
            },
            "mode": "simulation",
            "data": {"train_days": ["2024-08-01"], "validation_days": ["2024-08-13"]},
            "env": AS2008,
            # PnL with an inventory penalty: quoting tight and flat beats directional skews
            "roles": {
                "strategy_optimizer": {
                    "env": {"reward": {"kind": "inventory_penalty", "inventory_penalty": 0.5}}
                }
            },
            "dqn": {
                "num_steps_sampled_before_learning_starts": 3000,
                "epsilon": [[0, 1.0], [20000, 0.02]],
                "n_step": 3,
            },
            "resources": {"min_sample_timesteps_per_iteration": 2000},
        },
    )


@pytest.fixture(scope="module")
def ray_cluster():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def test_short_dqn_training_on_as2008_beats_stand_aside_and_random(ray_cluster, tmp_path):
    cfg = learning_config(tmp_path / "results")
    results = run_dqn_experiment(cfg)
    models = tmp_path / "models"
    outcome = export_results(cfg, results, models, evaluate=False)
    assert not outcome.errors
    # the first checkpoint (2000 steps, before learning starts) is the untrained control
    trial = Path(results[0].path)
    first = sorted(trial.glob("checkpoint_*"))[0]
    control = tmp_path / "control"
    export_policy(first, control, "untrained", {"role": "control"})

    from envs.baselines import ConstantActionAgent, RandomAgent

    learned = load_policy_agents(models)[0]
    untrained = load_policy_agents(control)[0]
    agents = [learned, untrained, ConstantActionAgent(0), RandomAgent(seed=3)]
    m = evaluate_agents(agents, AS2008, n_paths=1000, seed=2024)
    summary = {k: (round(v["pnl"], 1), round(v["sharpe"], 2)) for k, v in m.items()}
    pnl = {k: v["pnl"] for k, v in m.items()}
    # the learned policy earns clearly more than both baselines (the standard error of a mean
    # over 1,000 paths is about 0.2 here, so a margin of 5 is far outside noise) ...
    print("learning summary (pnl, sharpe):", summary)
    assert pnl[learned.name] > pnl["random"] + 5.0, summary
    assert pnl[learned.name] > pnl["stand_aside"] + 30.0, summary
    # ... and the same network before learning does not
    assert pnl["untrained"] < pnl[learned.name] - 10.0, summary
