"""Training pipeline on a real local Ray cluster: an interrupted smoke run of the Tune
experiment, resumed, exported to the registry, and loaded back for inference."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

ray = pytest.importorskip("ray")

from envs.features import OBS_COLUMNS  # noqa: E402
from envs.vector import VectorMarketSim  # noqa: E402
from swarm_ray.core.roles import POLICY_ROLES as ROLES  # noqa: E402
from swarm_ray.registry import (  # noqa: E402
    ANALYSIS_CLASSES,
    load_analysis_model,
    load_policies,
    load_policy_agents,
)
from swarm_ray.training import load_train_config  # noqa: E402
from swarm_ray.training.experiment import (  # noqa: E402
    export_results,
    run_analysis,
    run_dqn_experiment,
    unfinished_trials,
)
from swarm_ray.training.export import module_path_in_checkpoint  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "configs" / "train_dqn.yaml"


def _trial_dirs(storage: Path) -> list[Path]:
    return sorted(p for p in (storage / "swarm_ray_dqn_smoke").iterdir() if p.is_dir())


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("training")


@pytest.fixture(scope="module")
def interrupted(workdir: Path) -> subprocess.CompletedProcess:
    """`swarm-ray train --smoke` interrupted (SIGINT) once a first checkpoint exists."""
    storage, models = workdir / "results", workdir / "models"
    cmd = [sys.executable, "-m", "swarm_ray", "train", "--config", str(CONFIG), "--smoke",
           "--what", "dqn", "--num-cpus", "2", "--storage-path", str(storage),
           "--models-dir", str(models)]  # fmt: skip
    env = {**os.environ, "RAY_ADDRESS": ""}
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)  # fmt: skip
    deadline = time.monotonic() + 150
    while time.monotonic() < deadline and proc.poll() is None:
        if list(storage.glob("swarm_ray_dqn_smoke/*/checkpoint_000000")):
            break
        time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=120)
    return subprocess.CompletedProcess(cmd, proc.returncode, out)


@pytest.fixture(scope="module")
def ray_cluster(interrupted):
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def trained(workdir: Path, ray_cluster):
    """The interrupted experiment resumed to its end, exported, plus the analysis network."""
    cfg = load_train_config(CONFIG)
    results = run_dqn_experiment(
        cfg, smoke=True, resume=True, storage_path=str(workdir / "results")
    )
    assert unfinished_trials(results, cfg, smoke=True) == 0
    models = workdir / "models"
    outcome = export_results(cfg, results, models, smoke=True)
    outcome.analysis = run_analysis(cfg, models, smoke=True)
    return cfg, outcome, models


def test_interrupted_training_exits_130_and_exports_nothing(interrupted, workdir):
    assert interrupted.returncode == 130, interrupted.stdout[-3000:]
    assert "--resume" in interrupted.stdout
    assert not (workdir / "models").exists()


def test_resume_continues_each_checkpointed_trial_from_its_checkpoint(trained, workdir):
    restored_mid_run = 0
    for trial in _trial_dirs(workdir / "results"):
        rows = [json.loads(line) for line in (trial / "result.json").read_text().splitlines()]
        assert rows[-1]["env_runners"]["num_env_steps_sampled_lifetime"] >= 1500
        # a restored trial restarts its since-restore counter, not its training iteration
        restored_mid_run += any(
            r["iterations_since_restore"] == 1 and r["training_iteration"] > 1 for r in rows
        )
    assert restored_mid_run >= 1


def test_smoke_run_exports_every_role_with_card_and_tensorboard_logs(trained, workdir):
    cfg, outcome, models = trained
    assert set(outcome.policies) == set(ROLES) and not outcome.errors
    for role, path in outcome.policies.items():
        card = json.loads((path / "model_card.json").read_text())
        assert card["name"] == role and card["kind"] == "dqn_policy" and card["version"] == "v1"
        assert card["data"]["train_days"] == [str(d) for d in cfg.data.train_days]
        assert not set(card["data"]["train_days"]) & set(card["data"]["validation_days"])
        assert card["training"]["env_steps"] >= 1500
        assert (
            role in card["evaluation"]["metrics"] and "stand_aside" in card["evaluation"]["metrics"]
        )
        layout = json.loads((path / "observation_layout.json").read_text())
        assert layout["columns"] == list(OBS_COLUMNS)
        # the registry holds weights and JSON only; the RLlib checkpoint stays in the results
        assert sorted(f.name for f in path.iterdir()) == [
            "model_card.json",
            "observation_layout.json",
            "weights.safetensors",
        ]
        assert (path / "weights.safetensors").stat().st_size < 400_000
    kinds = {card["reward"]["kind"] for card in (p.card for p in load_policies(models))}
    assert kinds == {"risk_averse", "inventory_penalty", "spread_capture"}
    for trial in _trial_dirs(workdir / "results"):
        assert list(trial.glob("events.out.tfevents.*")), f"no TensorBoard log in {trial}"


def test_exported_module_matches_the_checkpoint_module_and_acts_on_paths(trained):
    from ray.rllib.core.rl_module.rl_module import RLModule

    _, _, models = trained
    agents = load_policy_agents(models)
    assert sorted(a.name for a in agents) == sorted(ROLES)
    obs = np.random.default_rng(0).uniform(-1, 1, (64, len(OBS_COLUMNS))).astype(np.float32)
    for policy in load_policies(models):
        ckpt = Path(policy.card["training"]["checkpoint"])
        original = RLModule.from_checkpoint(module_path_in_checkpoint(ckpt))
        import torch
        from ray.rllib.core.columns import Columns

        with torch.no_grad():
            expected = original.compute_q_values({Columns.OBS: torch.as_tensor(obs)})["qf_preds"]
        np.testing.assert_allclose(policy.q_values(obs), expected.numpy(), rtol=1e-5, atol=1e-6)
    sim = VectorMarketSim({"preset": "as2008"}, n_paths=16, seed=1, with_obs=True)
    state = sim.reset()
    for agent in agents:
        actions = agent.act(state)
        assert actions.shape == (16,) and actions.dtype == np.int64
        assert ((actions >= 0) & (actions < 7)).all()


def test_analysis_network_exports_and_predicts_class_probabilities(trained):
    from envs.data.klines import load_klines

    cfg, _, models = trained
    model = load_analysis_model(models)
    assert model.classes == ANALYSIS_CLASSES and len(model.feature_names) == 20
    day = cfg.data.files(cfg.data.evaluation_days[:1], root=Path(__file__).resolve().parents[2])
    feats = model.features(load_klines(day))
    probs = model.predict_proba(feats)
    assert probs.shape == (1440, 5)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    val = model.card["metrics"]["validation"]
    for key in ("model", "majority_class", "previous_direction"):
        assert 0.0 <= val[key]["accuracy"] <= 1.0 and 0.0 <= val[key]["macro_f1"] <= 1.0
    assert "evaluation" in model.card["metrics"]


def test_shipped_registry_loads_from_a_relative_models_dir(monkeypatch):
    monkeypatch.chdir(ROOT)
    agents = load_policy_agents("models")
    assert sorted(a.name for a in agents) == sorted(ROLES)
    day = "data/binance-spot-1m/BTCUSDT-1m-2024-08-17.csv"
    for agent in agents:  # each sees the observation layout it was trained on
        env = {"preset": "replay", "midprice": {"files": [day]}}
        env["observation"] = agent.env_overrides.get("observation", {})
        sim = VectorMarketSim(env, n_paths=4, seed=0, with_obs=True)
        assert agent.act(sim.reset()).shape == (4,)
    analyst = load_analysis_model("models")
    assert analyst.version == "v1" and not analyst.card["smoke"]
