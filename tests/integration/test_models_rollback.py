"""Champion switches on a real local Ray cluster (2 CPUs) with the Serve app deployed from
configs/serve.yaml on a copy of the registry: a promotion then ``swarm-ray models rollback``,
a crash between the rollout and the record, an unhealthy version refused, a failed rollout
rolled back, and ``swarm-ray models --json`` marking the version Serve answers with."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

ray = pytest.importorskip("ray")


from serve.client import model_handle  # noqa: E402
from serve.deploy import deployed_config  # noqa: E402
from serve.models import load_served_model  # noqa: E402
from swarm_ray.learning.serving import (  # noqa: E402
    RolloutFailed,
    UnhealthyVersion,
    switch_champion,
)
from swarm_ray.registry.champions import (  # noqa: E402
    CHAMPIONS_FILE,
    champion,
    champion_history,
    record_champion,
)
from swarm_ray.registry.files import WEIGHTS_FILE  # noqa: E402
from tests.conftest import ROOT, model_app  # noqa: E402

RM = "risk_manager"


@pytest.fixture(scope="module")
def registry(tmp_path_factory) -> Path:
    """risk_manager v1 as the recorded champion, then v2 and v3 (15 and 22 features) written
    after that decision: neither is named by one."""
    root = tmp_path_factory.mktemp("champions") / "models"
    shutil.copytree(ROOT / "models" / RM / "v1", root / RM / "v1")
    record_champion(root, RM, "v1", "initial")
    for v in ("v2", "v3"):
        shutil.copytree(ROOT / "models" / RM / v, root / RM / v)
    return root


@pytest.fixture(scope="module")
def app(registry: Path):
    """configs/serve.yaml on a local 2-CPU cluster, every model at ``version: null`` (the
    champion)."""
    with model_app(registry):
        yield SimpleNamespace(registry=registry, address=ray.get_runtime_context().gcs_address)


def served_version() -> str:
    return model_handle(RM, by_value=False).metadata().result(timeout_s=30)["version"]


def assert_serves_as(registry: Path, version: str) -> None:
    """Serve answers a fixed observation exactly as ``version`` loaded here does."""
    local = load_served_model(registry, RM, version)
    x = np.random.default_rng(0).normal(size=(4, local.observation_dim)).astype(np.float32)
    served = model_handle(RM, by_value=False).predict_many(x).result(timeout_s=30)
    expected = local.answer(x)
    assert [a["model_version"] for a in served] == [version] * 4
    assert [a["action"] for a in served] == [a["action"] for a in expected]
    np.testing.assert_allclose(
        [a["q_values"] for a in served], [a["q_values"] for a in expected], rtol=1e-5, atol=1e-6
    )


def back_to_v1(registry: Path) -> None:
    """Champion and Serve on v1, whatever an earlier test left."""
    if champion(registry, RM) != "v1" or served_version() != "v1":
        switch_champion(registry, RM, "v1", "rollback", serve_app=True)
    assert served_version() == "v1" and champion(registry, RM) == "v1"


def test_serve_starts_on_the_champion_not_the_newest(app) -> None:
    assert served_version() == "v1"
    assert_serves_as(app.registry, "v1")


def test_promote_then_models_rollback_serves_the_previous_champion_again(app) -> None:
    from swarm_ray.cli import main

    back_to_v1(app.registry)
    done = switch_champion(app.registry, RM, "v2", "promoted", details={"parent": "v1"})
    assert done == {
        "role": RM,
        "version": "v2",
        "previous": "v1",
        "event": "promoted",
        "served_by": "serve",
    }
    assert champion(app.registry, RM) == "v2"
    assert_serves_as(app.registry, "v2")
    # in this process Ray is up: the command uses it and leaves it running
    assert main(["models", "rollback", RM, "--yes", "--models", str(app.registry)]) == 0
    assert champion(app.registry, RM) == "v1"
    assert champion_history(app.registry, RM)[-1]["event"] == "rollback"
    assert_serves_as(app.registry, "v1")
    assert ray.is_initialized()


def test_a_crash_between_rollout_and_record_leaves_both_versions_servable(app) -> None:
    back_to_v1(app.registry)

    def crash() -> None:
        raise RuntimeError("simulated crash before the record")

    with pytest.raises(RuntimeError, match="simulated crash"):
        switch_champion(app.registry, RM, "v3", "promoted", before_record=crash)
    # Serve answers with the new version; champions.json still names the old one
    assert_serves_as(app.registry, "v3")
    assert champion(app.registry, RM) == "v1"
    assert all((app.registry / RM / v).is_dir() for v in ("v1", "v3"))
    for v in ("v1", "v3"):
        assert load_served_model(app.registry, RM, v).version == v
    # a fresh in-process client follows the recorded champion
    assert load_served_model(app.registry, RM).version == "v1"


def test_an_unloadable_version_is_refused_and_serve_keeps_the_old_one(app) -> None:
    back_to_v1(app.registry)
    bad = app.registry / RM / "v4"
    shutil.copytree(app.registry / RM / "v1", bad)
    weights = bytearray((bad / WEIGHTS_FILE).read_bytes())
    weights[-10] ^= 0xFF
    (bad / WEIGHTS_FILE).write_bytes(bytes(weights))
    before = (app.registry / CHAMPIONS_FILE).read_bytes()
    config_before = deployed_config().model_dump(exclude_unset=True)
    try:
        with pytest.raises(UnhealthyVersion, match="risk_manager v4 failed its health check"):
            switch_champion(app.registry, RM, "v4", "promoted")
        assert (app.registry / CHAMPIONS_FILE).read_bytes() == before
        assert (
            deployed_config().model_dump(exclude_unset=True) == config_before
        )  # Serve was not touched
        assert_serves_as(app.registry, "v1")
    finally:
        shutil.rmtree(bad)


def test_a_failed_rollout_is_rolled_back_and_nothing_is_recorded(app) -> None:
    back_to_v1(app.registry)
    before = (app.registry / CHAMPIONS_FILE).read_bytes()
    # a rollout that cannot finish in time: Serve goes back to v1
    with pytest.raises(RolloutFailed, match="Serve was rolled back to v1") as err:
        switch_champion(app.registry, RM, "v2", "promoted", timeout_s=0.001)
    assert "the champion was not changed" in str(err.value)
    assert (app.registry / CHAMPIONS_FILE).read_bytes() == before
    assert_serves_as(app.registry, "v1")


def test_cli_lists_statuses_and_marks_the_served_version(app) -> None:
    back_to_v1(app.registry)
    switch_champion(app.registry, RM, "v2", "promoted")
    switch_champion(app.registry, RM, "v1", "rollback")

    def crash() -> None:
        raise RuntimeError("crash")

    with pytest.raises(RuntimeError):
        switch_champion(app.registry, RM, "v3", "promoted", before_record=crash)
    cmd = [sys.executable, "-m", "swarm_ray", "models", "--json",
           "--models", str(app.registry), "--address", app.address]  # fmt: skip
    env = {**os.environ, "RAY_ADDRESS": ""}
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    report = json.loads(out.stdout)
    assert report["served"] == {RM: "v3"}
    rows = {r["version"]: r for r in report["models"][RM]}
    assert {v: (r["status"], r["serving"]) for v, r in rows.items()} == {
        "v1": ("champion", False),
        "v2": ("retired", False),
        "v3": ("unpromoted", True),  # the crash: served, never recorded
    }
    assert {e["event"] for e in rows["v2"]["events"]} == {"promoted"}
    assert ray.is_initialized() and served_version() == "v3"  # the command left Serve as it was
