"""`swarm-ray demo`, as `make demo` runs it: local Ray, Serve with the shipped models, the
swarm on the bundled day, then the report with its plots and the journal."""

from __future__ import annotations

import os
import re
import subprocess
import sys

from swarm_ray.journal import Journal


def test_demo_runs_the_swarm_and_writes_the_report(tmp_path) -> None:
    out = tmp_path / "demo"
    cmd = [sys.executable, "-m", "swarm_ray", "demo", "--cycles", "90", "--out", str(out),
           "--quiet"]  # fmt: skip
    env = {**os.environ, "RAY_ADDRESS": ""}
    env.pop("SWARM_RAY_PANEL_TOKEN", None)
    proc = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "report:" in proc.stdout
    # the control panel ran on Serve beside the swarm; its generated token went to a file in
    # --out that only its owner reads, never to the output
    assert "panel: http://127.0.0.1:" in proc.stdout
    token = (out / "panel_token").read_text().strip()
    assert len(token) >= 32 and token not in proc.stdout + proc.stderr
    assert (out / "panel_token").stat().st_mode & 0o077 == 0
    text = (out / "report.md").read_text()
    assert "| cycles | 90 |" in text and "consensus outcome" in text
    # why it quoted or stood aside: how often the vote carried, each action's edge in hindsight
    # against the fee, and each agent's hit rate against the confidence it stated
    assert re.search(r"The vote carried in \d+ of 90 cycles", text)
    assert "would have earned per cycle in hindsight (5 bars, maker 2 bps" in text
    assert re.search(r"\| quote_tight \| [+-]\d+\.\d{3} \|", text)
    assert re.search(r"\| risk_manager \| 90 \| .* \| \d+ \| 0\.\d{3} \| 0\.\d{3} \|", text)
    for png in ("pnl.png", "inventory.png", "quotes.png", "consensus.png"):
        assert (out / png).stat().st_size > 5_000, png
    journals = list((out / "journal").glob("*.sqlite"))
    assert len(journals) == 1
    with Journal(journals[0], read_only=True) as j:
        s = j.summary("BTCUSDT")
        assert len(j.cycles("BTCUSDT", limit=1000)) == 90
        votes = j.opinions(j.cycles("BTCUSDT", limit=1)[0]["id"])
    roles = {"market_analyst", "risk_manager", "strategy_optimizer", "execution_agent"}
    assert {v["agent_id"] for v in votes} == roles
    assert s["cycles"] == 90
    # run from another directory: config, data and models resolved from the project, and
    # nothing written outside --out
    assert not (tmp_path / "runs").exists()
