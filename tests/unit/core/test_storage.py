"""The storage root: where every relative output path goes, and which paths are refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from swarm_ray.core.config import PROJECT_ROOT, ConfigError
from swarm_ray.core.storage import (
    ENV_VAR,
    StorageError,
    in_ray_job_package,
    storage_root,
)
from tests.conftest import ROOT

JOB_DIR = "/tmp/ray/session_2026/runtime_resources/working_dir_files/_ray_pkg_0123abcd"


def test_root_defaults_to_the_working_directory_and_resolves_relative_outputs_there(tmp_path):
    root = storage_root(None, environ={}, cwd=tmp_path)
    assert not root.explicit and not root.job_package
    assert root.local_path("runs/paper/journal", "journal_dir") == str(
        tmp_path / "runs/paper/journal"
    )


def test_env_var_wins_over_the_config_and_the_config_over_the_working_directory(tmp_path):
    env = {ENV_VAR: str(tmp_path / "env")}
    assert storage_root(str(tmp_path / "cfg"), environ=env, cwd="/").location == env[ENV_VAR]
    assert storage_root(str(tmp_path / "cfg"), environ=env).source == ENV_VAR
    configured = storage_root(str(tmp_path / "cfg"), environ={ENV_VAR: "  "}, cwd="/")
    assert (configured.location, configured.source) == (str(tmp_path / "cfg"), "storage")


def test_a_relative_or_home_root_is_made_absolute(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    assert storage_root("~/swarm", environ={}).location == str(tmp_path / "swarm")
    assert storage_root("out", environ={}, cwd=tmp_path).location == str(tmp_path / "out")


def test_absolute_paths_stay_as_they_are_under_any_root(tmp_path):
    for root in (
        storage_root(str(tmp_path), environ={}),
        storage_root("s3://bucket/swarm", environ={}),
        storage_root(None, environ={}, cwd=JOB_DIR),
    ):
        assert root.local_path("/srv/journal", "journal_dir") == "/srv/journal"
        assert root.results("/srv/results", "experiment.storage_path") == "/srv/results"


def test_file_uris_are_local_paths():
    root = storage_root("file:///srv/swarm", environ={})
    assert not root.is_uri and root.location == "/srv/swarm"
    assert root.local_path("file:///data/j", "journal_dir") == "/data/j"
    with pytest.raises(StorageError, match="not a host"):
        storage_root("file://otherhost/srv", environ={})


def test_an_object_store_root_takes_results_but_refuses_sqlite_outputs_naming_the_field():
    root = storage_root(None, environ={ENV_VAR: "s3://bucket/swarm/"})
    assert root.is_uri and root.explicit
    assert root.results("runs/ray_results", "experiment.storage_path") == (
        "s3://bucket/swarm/runs/ray_results"
    )
    with pytest.raises(StorageError) as err:
        root.local_path("runs/paper/journal", "journal_dir")
    msg = str(err.value)
    assert msg.startswith("journal_dir: ") and "s3://bucket/swarm/" in msg and ENV_VAR in msg
    assert "\n" not in msg
    with pytest.raises(StorageError, match=r"^registry.models_dir: gs://b/m is an object store"):
        root.local_path("gs://b/m", "registry.models_dir")
    with pytest.raises(StorageError, match=r"^models_dir: "):
        root.registry("models")


def test_an_unknown_uri_scheme_is_refused_at_once():
    with pytest.raises(StorageError, match=f"^{ENV_VAR}: http://x/y is not a storage URI"):
        storage_root(None, environ={ENV_VAR: "http://x/y"})
    with pytest.raises(StorageError, match=r"^--storage-path: ftp://h/r is not a storage URI"):
        storage_root(None, environ={}).results("ftp://h/r", "--storage-path")


@pytest.mark.parametrize(
    ("path", "inside"),
    [
        (JOB_DIR, True),
        (JOB_DIR + "/configs", True),
        ("/tmp/ray/session_1/runtime_resources/working_dir_files/s3_bucket_pkg", True),
        ("/home/me/swarm-ray", False),
        ("/home/me/runtime_resources", False),
    ],
)
def test_a_ray_job_working_dir_package_is_recognised(path, inside):
    assert in_ray_job_package(path) is inside


def test_in_a_ray_job_package_relative_outputs_are_refused_in_one_line(tmp_path):
    job_dir = tmp_path / "runtime_resources/working_dir_files/_ray_pkg_0123abcd"
    (job_dir / "models").mkdir(parents=True)
    root = storage_root(None, environ={}, cwd=job_dir)
    assert root.job_package
    for call in (root.local_path, root.results):
        with pytest.raises(StorageError) as err:
            call("runs/paper/journal", "journal_dir")
        msg = str(err.value)
        assert "\n" not in msg and msg.startswith("journal_dir: 'runs/paper/journal'")
        assert ENV_VAR in msg and "storage:" in msg
    # the package's own files are inputs: the shipped registry is read from it
    assert root.registry("models") == job_dir / "models"


def test_setting_the_root_in_a_ray_job_package_lifts_the_refusal(tmp_path):
    root = storage_root(None, environ={ENV_VAR: str(tmp_path)}, cwd=JOB_DIR)
    assert root.local_path("runs/j", "journal_dir") == str(tmp_path / "runs/j")
    with pytest.raises(StorageError, match=f"^{ENV_VAR}: 'out' is relative"):
        storage_root(None, environ={ENV_VAR: "out"}, cwd=JOB_DIR)


def test_the_registry_is_read_under_an_explicit_root_else_found_as_before(tmp_path):
    explicit = storage_root(str(tmp_path), environ={})
    assert explicit.registry("models") == tmp_path / "models"  # no fallback to the shipped one
    default = storage_root(None, environ={}, cwd=tmp_path)
    assert default.registry("models") == PROJECT_ROOT / "models"  # not here: the shipped one
    (tmp_path / "models").mkdir()
    assert default.registry("models") == tmp_path / "models"


def _swarm_config(tmp_path: Path, **fields) -> Path:
    data = yaml.safe_load((ROOT / "configs" / "paper.yaml").read_text())
    data.update(fields)
    path = tmp_path / "swarm.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_swarm_config_outputs_resolve_once_under_the_root(tmp_path, monkeypatch):
    from swarm_ray.commands._swarm import load_swarm_config
    from swarm_ray.runtime.config import resolve_storage

    monkeypatch.setenv(ENV_VAR, str(tmp_path / "root"))
    monkeypatch.chdir(tmp_path)
    cfg = load_swarm_config(str(_swarm_config(tmp_path, models_dir=str(ROOT / "models"))))
    assert cfg.storage == str(tmp_path / "root")
    assert cfg.journal_dir == str(tmp_path / "root/runs/paper/journal")
    assert cfg.exchange.paper.state_path == str(tmp_path / "root/runs/paper/paper_account.sqlite")
    assert cfg.models_dir == str(ROOT / "models")
    assert resolve_storage(cfg) == cfg  # once is enough: resolving again changes nothing


def test_swarm_config_storage_key_is_the_root_when_the_env_var_is_unset(tmp_path, monkeypatch):
    from swarm_ray.commands._swarm import load_swarm_config

    monkeypatch.delenv(ENV_VAR, raising=False)
    cfg = load_swarm_config(str(_swarm_config(tmp_path, storage=str(tmp_path / "s"))))
    assert cfg.journal_dir == str(tmp_path / "s/runs/paper/journal")
    assert cfg.models_dir == str(tmp_path / "s/models")


def test_swarm_config_with_an_object_store_root_fails_at_load_naming_the_field(
    tmp_path, monkeypatch
):
    from swarm_ray.commands._swarm import load_swarm_config

    monkeypatch.setenv(ENV_VAR, "s3://bucket/swarm")
    with pytest.raises(ConfigError, match=r"^journal_dir: "):
        load_swarm_config(str(_swarm_config(tmp_path)))
    path = _swarm_config(tmp_path, journal_dir="/shared/j", models_dir="/shared/m")
    with pytest.raises(ConfigError, match=r"^exchange.paper.state_path: "):
        load_swarm_config(str(path))


def test_kill_switch_and_explain_find_the_journal_through_the_config_and_root(
    tmp_path, monkeypatch, capsys
):
    from swarm_ray.cli import main
    from swarm_ray.journal import Journal

    root, elsewhere = tmp_path / "root", tmp_path / "elsewhere"
    elsewhere.mkdir()
    config = _swarm_config(tmp_path, journal_dir="runs/r1/journal", models_dir=str(ROOT / "models"))
    (root / "runs/r1/journal").mkdir(parents=True)
    with Journal(root / "runs/r1/journal/coordinator_BTCUSDT.sqlite", run_id="r1") as j:
        j.trip_kill_switch("BTCUSDT", "drawdown 16%")
    monkeypatch.setenv(ENV_VAR, str(root))
    monkeypatch.chdir(elsewhere)
    assert main(["kill-switch", "--config", str(config), "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"BTCUSDT": "tripped: drawdown 16%"}
    assert main(["kill-switch", "--journal-dir", "runs/r1/journal"]) == 0  # under the root
    assert "drawdown 16%" in capsys.readouterr().out
    assert main(["explain", "no-such-order", "--config", str(config)]) == 1
    assert str(root / "runs/r1/journal") in capsys.readouterr().out
    monkeypatch.delenv(ENV_VAR)
    assert main(["kill-switch", "--config", str(config)]) == 1  # cwd: no journal there
    err = capsys.readouterr().err
    assert err.startswith(f"error: no journal under {elsewhere}") and ENV_VAR in err


def test_a_storage_uri_carrying_credentials_is_refused_without_echoing_them() -> None:
    from swarm_ray.core.storage import StorageError, check_uri

    with pytest.raises(StorageError, match="must not carry credentials") as err:
        check_uri("s3://AKIAEXAMPLE:s3cr3t@bucket/swarm", "storage")
    assert "s3cr3t" not in str(err.value)
