"""The tick replay against hftbacktest itself (``make peer`` builds its environment): strategy B,
a quote left resting at the touch so that its place in the queue decides its fills."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import ROOT

PEER = ROOT / ".venv-peer" / "bin" / "python"


@pytest.mark.slow
@pytest.mark.skipif(not PEER.exists(), reason="no hftbacktest environment: run `make peer`")
def test_queue_fills_agree_with_hftbacktest_on_resting_quotes() -> None:
    out = subprocess.run(
        [
            sys.executable,
            str(ROOT / "scripts" / "validate_fills.py"),
            "--symbols",
            "ETHUSDT",
            "--strategies",
            "B",
            "--half-ticks",
            "0.5",
            "--queue-models",
            "risk_averse",
            "power_prob",
            "--json",
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=600,
    )
    rows = json.loads(out.stdout.splitlines()[-1])["comparisons"]
    assert {r["queue_model"] for r in rows} == {"risk_averse", "power_prob"}
    for r in rows:
        assert r["fills_peer"] >= 100, r  # enough fills to mean something
        assert r["agreement"] >= 0.9, r
        assert abs(r["pnl_gap"]) <= 0.10, r
    # the models differ, and each side sees the difference the same way
    ra, pp = sorted(rows, key=lambda r: r["queue_model"] != "risk_averse")
    assert pp["fills_ours"] > ra["fills_ours"] and pp["fills_peer"] > ra["fills_peer"]
