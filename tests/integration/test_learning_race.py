"""``scripts/bench_train.py``'s learning race, shrunk: both learners (RLlib through the
project's config, Stable-Baselines3) train, are evaluated on the same paths and reported with
the keys the benchmark promises (figures are not asserted)."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import pytest

from tests.conftest import ROOT

pytest.importorskip("stable_baselines3")


def test_a_short_race_reports_both_learners_with_their_curves() -> None:
    cmd = [sys.executable, str(ROOT / "scripts" / "bench_train.py"), "--skip-throughput",
           "--seeds", "1", "--race-steps", "4000", "--envs", "as2008", "--json"]  # fmt: skip
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert out.returncode == 0, out.stderr[-3000:]
    res = json.loads(out.stdout.strip().splitlines()[-1])
    assert set(res["time_to_target_s"]) == set(res["steps_to_target"]) == {"rllib", "sb3"}
    race = res["learning"]["as2008"]
    assert race["target_return"] == 48.0 and race["seeds"] == [0]
    for learner in ("rllib", "sb3"):
        b = race[learner]
        (curve,) = b["curves"]
        assert curve["steps"][-1] >= 4000 and len(curve["ret"]) == len(curve["steps"])
        assert math.isfinite(b["final_return"]) and b["train_s"] > 0
        if b["time_to_target_s"][0] is not None:  # reached: then by the curve's own numbers
            i = curve["steps"].index(b["steps_to_target"][0])
            assert curve["ret"][i] >= 48.0 and all(r < 48.0 for r in curve["ret"][:i])
    # SB3 replays 64 samples every 4 env steps once learning starts
    assert race["sb3"]["replayed_samples_per_env_step"] > 1
