"""The env benchmark script runs and prints its JSON keys (figures are not asserted)."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.conftest import ROOT


def test_bench_env_quick_prints_json() -> None:
    out = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "bench_env.py"), "--quick", "--json"],
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    res = json.loads(out.stdout)
    assert res["env_steps_per_s"] > 0 and res["vector_steps_per_s"] > 0


def test_edge_predictability_judges_each_action_on_days_it_never_fitted() -> None:
    out = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "edge_predictability.py"), "--json"],
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    res = json.loads(out.stdout)
    assert set(res["actions"]) == {"quote_tight", "quote_wide", "skew_buy", "skew_sell"}
    assert len(res["features"]) == 16
    for name, r in res["actions"].items():
        assert sum(d["bars"] for d in r["deciles"]) == r["mean_edge_before_fees"]["n"], name
        assert r["mean_edge_before_fees"]["n"] == 4 * 1440 - 4 * 5  # the evaluation days
        assert -1 <= r["corr_evaluation"] <= 1
        # at the regular tier each fill pays 2 bps: net of it, always quoting earns less
        rules = r["quote_when_predicted_positive"]
        assert rules["regular"]["always_quote"]["mean"] < rules["lp_rebate"]["always_quote"]["mean"]
