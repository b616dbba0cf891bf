"""The cluster page of the docs, walked through on a real token-auth head node.

A ``ray start --head`` in its own session, home folder and temp dir, with Ray 2.60's token
authentication on (a token in that home's ``~/.ray/auth_token``, as any earlier local Ray run
leaves one), is driven only through the commands the docs give: ``scripts/submit_swarm.sh``,
``swarm-ray status/stop --address``, ``explain`` and ``kill-switch``. No test here imports Ray
into the pytest process, so the head is the only cluster.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.slow

BIN = Path(sys.executable).parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Head:
    gcs: str
    dashboard: str
    home: Path
    token: str

    def env(self, home: Path | None = None, **extra: str) -> dict[str, str]:
        """A user's shell on the head node: the project's Python first on PATH, no Ray
        variables of the test run."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
        env.update(HOME=str(home or self.home), PATH=f"{BIN}:{env.get('PATH', '')}")
        env.update(extra)
        return env


def _dashboard_up(url: str, token: str) -> bool:
    req = urllib.request.Request(f"{url}/api/version", headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(req, timeout=2):
            return True
    except OSError:
        return False


@pytest.fixture(scope="module")
def head(tmp_path_factory):
    home = tmp_path_factory.mktemp("home")
    token = secrets.token_hex(16)
    (home / ".ray").mkdir()
    (home / ".ray" / "auth_token").write_text(token)
    temp_dir = tempfile.mkdtemp(prefix="srh", dir="/tmp")  # short: Ray's socket paths
    gcs_port, dash_port = _free_port(), _free_port()
    h = Head(f"127.0.0.1:{gcs_port}", f"http://127.0.0.1:{dash_port}", home, token)
    log = open(home / "head.log", "w")  # noqa: SIM115 - closed at teardown
    proc = subprocess.Popen(
        [str(BIN / "ray"), "start", "--head", "--block", f"--port={gcs_port}",
         f"--dashboard-port={dash_port}", "--dashboard-host=127.0.0.1", "--num-cpus=2",
         f"--temp-dir={temp_dir}", "--disable-usage-stats"],
        env=h.env(), stdout=log, stderr=subprocess.STDOUT, start_new_session=True, cwd=home,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 90
        while not _dashboard_up(h.dashboard, token):
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"the head node did not start:\n{(home / 'head.log').read_text()}")
            time.sleep(1)
        _wait_for_job_agent(h)
        yield h
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
        log.close()
        shutil.rmtree(temp_dir, ignore_errors=True)


def _wait_for_job_agent(h: Head, timeout_s: float = 90) -> None:
    """The dashboard answers before the head's job agent has registered; until it has, a
    submission fails with "No available agent" (Ray's own advice: try again later). A loaded
    machine can take tens of seconds: wait with a no-op job, so the tests time the product."""
    deadline = time.monotonic() + timeout_s
    while True:
        p = subprocess.run(
            [str(BIN / "ray"), "job", "submit", "--address", h.dashboard, "--no-wait", "--",
             "true"],
            env=h.env(RAY_AUTH_MODE="token"), cwd=h.home, capture_output=True, text=True,
            timeout=60,
        )  # fmt: skip
        if p.returncode == 0:
            return
        if "No available agent" not in p.stdout + p.stderr or time.monotonic() > deadline:
            pytest.fail(f"the head node accepts no job:\n{p.stdout[-2000:]}{p.stderr[-2000:]}")
        time.sleep(2)


def _run(args: list[str], env: dict[str, str], timeout: float = 120, cwd: Path = ROOT):
    t0 = time.monotonic()
    p = subprocess.run(args, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    return p, time.monotonic() - t0


def _swarm_ray(*args: str) -> list[str]:
    return [str(BIN / "swarm-ray"), *args]


def test_head_node_has_token_auth_on(head):
    req = urllib.request.Request(f"{head.dashboard}/api/version")
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(req, timeout=5)
    assert err.value.code == 401


def test_status_attaches_with_the_token_ray_left_in_home(head):
    p, took = _run(_swarm_ray("status", "--address", head.gcs), head.env())
    assert p.returncode == 1, p.stderr
    assert p.stdout.strip() == "no swarm is running on this cluster"
    assert "Traceback" not in p.stderr and "AuthenticationError" not in p.stderr
    assert took < 30


def test_without_the_token_status_fails_in_one_line_within_seconds(head, tmp_path):
    p, took = _run(_swarm_ray("status", "--address", head.gcs), head.env(home=tmp_path))
    assert p.returncode == 1
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), p.stderr
    assert "authentication token" in lines[0] and "auth_token" in lines[0]
    assert head.token not in p.stderr + p.stdout
    assert took < 15


def test_a_wrong_token_is_named_as_refused(head, tmp_path):
    env = head.env(home=tmp_path, RAY_AUTH_TOKEN=secrets.token_hex(16))
    p, _ = _run(_swarm_ray("status", "--address", head.gcs), env)
    assert p.returncode == 1
    assert "refused this machine's authentication token" in p.stderr
    assert env["RAY_AUTH_TOKEN"] not in p.stderr + p.stdout


def test_an_unreachable_cluster_is_one_line_within_seconds(head):
    for command in (["status"], ["stop"], ["run", "--cycles", "1"]):
        p, took = _run(_swarm_ray(*command, "--address", f"127.0.0.1:{_free_port()}"), head.env())
        assert p.returncode == 1, (command, p.stdout, p.stderr)
        lines = p.stderr.strip().splitlines()
        assert len(lines) == 1 and "cannot reach the Ray cluster" in lines[0], (command, lines)
        assert took < 15, (command, took)


def test_run_checks_the_config_before_connecting(head, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("symbols: [ETHUSDT]\n")
    p, took = _run(_swarm_ray("run", "--config", str(bad), "--address", head.gcs), head.env())
    assert p.returncode == 2
    assert "symbols: the paper exchange has no data for ['ETHUSDT']" in p.stderr
    assert "Connecting" not in p.stderr and took < 15


def test_submit_script_refuses_an_unreachable_dashboard_in_one_line(head):
    env = head.env(RAY_ADDRESS=f"http://127.0.0.1:{_free_port()}")
    p, took = _run(["bash", "scripts/submit_swarm.sh", "--cycles", "1"], env)
    assert p.returncode == 1
    assert p.stderr.strip().splitlines() == [
        line for line in p.stderr.strip().splitlines() if line.startswith("error: cannot reach")
    ]
    assert took < 30


def test_submitted_swarm_runs_and_status_stays_out_of_the_jobs_list(head):
    storage = head.home / "storage"  # the docs' storage root, with the shipped registry copied in
    shutil.copytree(ROOT / "models", storage / "models")
    env = head.env(RAY_ADDRESS=head.dashboard, SWARM_RAY_STORAGE=str(storage))
    p, _ = _run(["bash", "scripts/submit_swarm.sh", "--cycles", "4"], env, timeout=300)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    assert "coordinator:BTCUSDT: finished after 4 cycles" in p.stdout
    (journal,) = (storage / "runs" / "paper" / "journal").glob("*.sqlite")
    assert "succeeded" in p.stdout + p.stderr
    # the operator's commands find the job's journal through the same storage root
    local = head.env(SWARM_RAY_STORAGE=str(storage))
    p, _ = _run(_swarm_ray("kill-switch", "--json"), local)
    assert p.returncode == 0 and json.loads(p.stdout) == {"BTCUSDT": "clear"}, p.stderr
    with sqlite3.connect(f"file:{journal}?mode=ro", uri=True) as db:
        order_id = db.execute("SELECT client_order_id FROM orders LIMIT 1").fetchone()
    if order_id is not None:  # four cycles may place no order
        p, _ = _run(_swarm_ray("explain", order_id[0]), local)
        assert p.returncode == 0 and f"order {order_id[0]}" in p.stdout, p.stderr
    for _ in range(2):
        _run(_swarm_ray("status", "--address", head.gcs), head.env())
    req = urllib.request.Request(
        f"{head.dashboard}/api/jobs/", headers={"Authorization": f"Bearer {head.token}"}
    )
    with urllib.request.urlopen(req, timeout=10) as r:
        jobs = json.loads(r.read())
    entrypoints = [j.get("entrypoint") or "" for j in jobs]
    assert sum("swarm_ray run" in e for e in entrypoints) == 1, entrypoints
    assert not any("status" in e for e in entrypoints), entrypoints
    # the run handed the model app's CPUs back when it ended
    script = (
        "import time, ray\n"
        "from swarm_ray.runtime.connect import connect\n"
        f"connect({head.gcs!r}, namespace='_ray_internal_test')\n"
        "for _ in range(30):\n"
        "    cpu = ray.available_resources().get('CPU', 0)\n"
        "    if cpu >= 1.9: break\n"
        "    time.sleep(1)\n"
        "print(cpu)"
    )
    p, _ = _run([str(BIN / "python"), "-c", script], head.env())
    assert p.returncode == 0, p.stderr
    assert float(p.stdout.strip().splitlines()[-1]) >= 1.9


def test_a_coordinator_failing_at_start_is_one_line_naming_the_cause(head):
    """Attached to a cluster, keys are the nodes' business; here the head has none."""
    env = {k: v for k, v in head.env().items() if not k.startswith("BINANCE_")}
    args = (
        "run",
        "--config",
        "configs/binance_testnet.yaml",
        "--address",
        head.gcs,
        "--cycles",
        "1",
    )
    p, _ = _run(_swarm_ray(*args), env, timeout=240)
    assert p.returncode == 1, p.stdout + p.stderr
    assert "coordinator:BTCUSDT: stopped on Binance needs BINANCE_API_KEY" in p.stdout
    assert "Traceback" not in p.stdout + p.stderr and "RayTaskError" not in p.stdout


def test_stop_matches_whole_symbols_and_records_who_and_why(head, tmp_path):
    storage = tmp_path / "storage"
    shutil.copytree(ROOT / "models", storage / "models")
    env = head.env(SWARM_RAY_STORAGE=str(storage))
    run = subprocess.Popen(
        _swarm_ray("run", "--address", head.gcs, "--status-every", "3600"),
        env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:  # until its coordinator answers
            p, _ = _run(_swarm_ray("status", "--address", head.gcs, "--json"), head.env())
            if p.returncode == 0 and "BTCUSDT" in p.stdout:
                break
            assert run.poll() is None, run.stdout.read() if run.stdout else ""
            time.sleep(2)
        p, _ = _run(_swarm_ray("stop", "--address", head.gcs, "--symbol", "BTC"), head.env())
        assert p.returncode == 1
        assert p.stdout.strip() == "no running coordinator trades BTC; trading now: BTCUSDT"
        assert run.poll() is None  # a partial symbol stops nothing
        args = ("stop", "--address", head.gcs, "--symbol", "btcusdt", "--operator", "alice",
                "--reason", "end of test")  # fmt: skip
        p, _ = _run(_swarm_ray(*args), head.env())
        assert p.returncode == 0 and "by alice: end of test" in p.stdout, p.stdout + p.stderr
        out, _ = run.communicate(timeout=120)
        assert run.returncode == 0, out
        assert "coordinator:BTCUSDT: finished after" in out
    finally:
        if run.poll() is None:
            run.kill()
    (journal,) = (storage / "runs" / "paper" / "journal").glob("*.sqlite")
    with sqlite3.connect(f"file:{journal}?mode=ro", uri=True) as db:
        rows = db.execute("SELECT emergency, reason, requested_by, requested_ns FROM stop_requests")
        (emergency, reason, who, when_ns), *_ = rows.fetchall()
    assert (emergency, reason, who) == (0, "end of test", "alice")
    assert abs(when_ns / 1e9 - time.time()) < 600  # wall time, not the replayed day's


def test_smoke_training_submitted_to_the_cluster_does_not_publish(head, tmp_path):
    storage = tmp_path / "storage"
    shutil.copytree(ROOT / "models", storage / "models")
    before = sorted(p.relative_to(storage) for p in (storage / "models").rglob("model_card.json"))
    env = head.env(RAY_ADDRESS=head.dashboard, SWARM_RAY_STORAGE=str(storage))
    args = ["bash", "scripts/submit_train.sh", "--smoke", "--what", "dqn", "--role", "risk_manager"]
    p, _ = _run(args, env, timeout=600)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    after = sorted(p.relative_to(storage) for p in (storage / "models").rglob("model_card.json"))
    assert after == before  # the serving registry is untouched
    scratch = list((storage / "runs" / "smoke" / "models").rglob("model_card.json"))
    assert scratch and all(json.loads(c.read_text())["smoke"] is True for c in scratch)
