"""``swarm-ray panel``: the panel over a finished run's journal folder, without Ray."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from swarm_ray.commands._swarm import free_port
from tests.conftest import ROOT
from tests.unit.panel.conftest import write_symbol


def get(url: str, token: str | None = None) -> tuple[int, dict]:
    req = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, {}


def test_panel_serves_a_finished_runs_journals_with_a_token_kept_in_a_private_file(tmp_path):
    folder = tmp_path / "run" / "journal"
    folder.mkdir(parents=True)
    write_symbol(folder / "coordinator_BTCUSDT.sqlite", "BTCUSDT", 6)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "SWARM_RAY_PANEL_TOKEN"}
    env["SWARM_RAY_STORAGE"] = str(tmp_path)
    cmd = [sys.executable, "-m", "swarm_ray", "panel", "--journal-dir", str(folder),
           "--port", str(port)]  # fmt: skip
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)
    try:
        lines = [proc.stdout.readline().strip(), proc.stdout.readline().strip()]
        assert lines[0] == f"panel: http://127.0.0.1:{port}/ over {folder}"
        token_file = tmp_path / "panel_token"
        assert lines[1] == f"panel operator token: in {token_file} (readable by its owner only)"
        token = token_file.read_text().strip()
        base = f"http://127.0.0.1:{port}/"
        for _ in range(100):  # uvicorn starts listening just after the lines
            try:
                status, info = get(base + "api/info")
                break
            except OSError:
                time.sleep(0.1)
        assert status == 200 and info["mode"] == "journal" and info["title"] == "swarm-ray run"
        assert get(base + "api/overview")[0] == 401
        status, overview = get(base + "api/overview", token)
        assert status == 200 and overview["symbols"][0]["cycle"] == 5
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_panel_names_a_missing_journal_folder(tmp_path):
    missing = tmp_path / "nowhere"
    out = subprocess.run(
        [sys.executable, "-m", "swarm_ray", "panel", "--journal-dir", str(missing)],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert out.returncode != 0
    assert f"--journal-dir: no journal folder at {missing}" in out.stderr + out.stdout


def test_a_short_panel_token_stops_the_command_naming_the_variable(tmp_path):
    folder = tmp_path / "journal"
    folder.mkdir()
    env = {**os.environ, "SWARM_RAY_PANEL_TOKEN": "abc"}
    out = subprocess.run(
        [sys.executable, "-m", "swarm_ray", "panel", "--journal-dir", str(folder)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert out.returncode != 0
    assert "SWARM_RAY_PANEL_TOKEN is too short" in out.stderr + out.stdout
    assert Path(folder).exists()
