"""Where training writes (no Ray): results and registry under the storage root, and a smoke run
that exports to a scratch registry, never the serving one."""

from __future__ import annotations

import tempfile

import pytest

from swarm_ray.core.config import ConfigError
from swarm_ray.core.storage import ENV_VAR
from swarm_ray.training.config import load_train_config
from swarm_ray.training.experiment import experiment_dir, export_registry
from tests.conftest import ROOT

CONFIG = ROOT / "configs" / "train_dqn.yaml"


@pytest.fixture
def cfg():
    return load_train_config(CONFIG)


def test_results_and_registry_go_under_the_root(cfg, tmp_path, monkeypatch):
    monkeypatch.setenv(ENV_VAR, str(tmp_path))
    assert experiment_dir(cfg, False, None) == (
        str(tmp_path / "runs/ray_results"),
        cfg.experiment.name,
    )
    assert experiment_dir(cfg, True, "res")[0] == str(tmp_path / "res")
    assert experiment_dir(cfg, True, None)[1] == cfg.experiment.name + "_smoke"
    assert export_registry(cfg, smoke=False) == str(tmp_path / "models")
    assert export_registry(cfg, smoke=False, models_dir="/srv/models") == "/srv/models"


def test_a_smoke_run_exports_to_the_scratch_registry_never_the_serving_one(
    cfg, tmp_path, monkeypatch
):
    monkeypatch.setenv(ENV_VAR, str(tmp_path))
    assert export_registry(cfg, smoke=True) == str(tmp_path / "runs/smoke/models")
    assert export_registry(cfg, smoke=True, models_dir="/tmp/x") == "/tmp/x"
    for serving in ("models", str(tmp_path / "models")):
        with pytest.raises(ConfigError, match="is the serving registry") as err:
            export_registry(cfg, smoke=True, models_dir=serving)
        assert "\n" not in str(err.value)


def test_an_object_store_root_takes_results_and_smoke_models_to_a_temp_dir(
    cfg, tmp_path, monkeypatch
):
    monkeypatch.setenv(ENV_VAR, "s3://bucket/swarm")
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    storage, _ = experiment_dir(cfg, False, None)
    assert storage == "s3://bucket/swarm/runs/ray_results"
    assert export_registry(cfg, smoke=True).startswith(str(tmp_path))
    with pytest.raises(ConfigError, match=r"^registry\.models_dir: "):
        export_registry(cfg, smoke=False)


def test_in_a_ray_job_package_training_refuses_before_any_work(tmp_path, monkeypatch, capsys):
    from swarm_ray.cli import main

    job = tmp_path / "runtime_resources" / "working_dir_files" / "_ray_pkg_ab12"
    job.mkdir(parents=True)
    monkeypatch.delenv(ENV_VAR, raising=False)
    monkeypatch.chdir(job)
    assert main(["train", "--config", str(CONFIG), "--smoke"]) == 2
    err = capsys.readouterr().err
    assert ENV_VAR in err and "runs/smoke/models" in err and "Traceback" not in err


def test_train_smoke_into_the_serving_registry_is_refused_before_any_work(
    tmp_path, monkeypatch, capsys
):
    from swarm_ray.cli import main

    monkeypatch.setenv(ENV_VAR, str(tmp_path))
    argv = ["train", "--config", str(CONFIG), "--smoke", "--models-dir", "models"]
    assert main(argv) == 2
    assert "a smoke run never exports there" in capsys.readouterr().err
    assert not (tmp_path / "models").exists()
