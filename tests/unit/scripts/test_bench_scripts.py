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
