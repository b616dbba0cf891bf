"""The walk-forward run end to end in a subprocess (its own local Ray cluster), from a swarm
that quotes: real RLlib and analysis challengers (smoke budgets), the real whole-swarm
judgement, and the day traded by both sets of champions."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT

pytest.importorskip("ray")


def test_a_smoke_walk_forward_from_the_v2_swarm_prints_its_decisions_and_both_pnls(tmp_path):
    env = {**os.environ, "RAY_ADDRESS": ""}
    cmd = [sys.executable, str(ROOT / "scripts" / "walk_forward.py"), "--start", "v2",
           "--smoke", "--max-steps", "1", "--work", str(tmp_path), "--json"]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["start"] == "v2" and out["smoke"] is True and out["fees"] == "regular"
    (day,) = out["days"]
    # the v2 champions were validated on 08-13..16: the first day judged on an unseen day
    assert day["day"] == "2024-08-18"
    roles = {d["role"] for d in out["decisions"]}
    assert roles == {"risk_manager", "strategy_optimizer", "execution_agent", "market_analyst"}
    for d in out["decisions"]:
        assert d["decision"] in ("promoted", "rejected") and d["reason"]
        assert d["champion"]["days"] == ["2024-08-17"]
        if d["decision"] == "promoted":
            assert d["interval"][0] > 0 and d["challenger"]["pnl"] > d["champion"]["pnl"]
    # the champions as they started trade the day the same way in both columns unless promoted
    promoted = [d for d in out["decisions"] if d["decision"] == "promoted"]
    assert day["promoted"] == [d["role"] for d in promoted]
    if not promoted:
        assert day["learning"] == day["champion_only"]
    assert out["pnl"] == {"champion_only": day["champion_only"], "learning": day["learning"]}
    # the shipped registry was not touched
    assert not (ROOT / "models" / "champions.json").exists()
