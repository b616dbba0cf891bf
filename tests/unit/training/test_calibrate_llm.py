"""The LLM's calibration map, fitted on the answers a run's journal recorded (no network: the
answers are the analyst's own rationales, written by its role logic)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from swarm_ray.agents.llm.sentiment import Sentiment
from swarm_ray.agents.roles import AgentConfig, make_logic, parse_llm_note
from swarm_ray.cli import main
from swarm_ray.core.domain import Opinion
from swarm_ray.journal import CycleRecord, Journal
from swarm_ray.trading.cycle import CycleInput

BAR = 60_000_000_000
ANSWER = {"probabilities": [0.1, 0.2, 0.4, 0.2, 0.1], "action": 2, "action_name": "hold",
          "confidence": 0.6, "calibrated": True, "model_version": "v1"}  # fmt: skip


def test_the_llm_map_is_fitted_on_its_recorded_answers_and_checked_out_of_sample(
    tmp_path, capsys
) -> None:
    """An LLM whose direction is right 80% of the time when it says 0.9 and 40% when it says
    0.3: the raw confidence overstates the second; the fitted map rises with the confidence."""
    rng = np.random.default_rng(0)
    analyst = make_logic("market_analyst", AgentConfig())
    path = tmp_path / "journal" / "coordinator_BTCUSDT.sqlite"
    path.parent.mkdir()
    journal = Journal(str(path), run_id="llm")
    mid, n = 60_000.0, 3000
    mids = []
    for _ in range(n):  # a 5-bar move is 5 steps of 5: never 0
        mids.append(mid)
        mid += rng.choice([-5.0, 5.0])
    for k in range(n):
        conf = 0.9 if k % 2 else 0.3
        later = mids[min(k + 5, n - 1)] - mids[k]
        right = rng.uniform() < (0.8 if k % 2 else 0.4)
        score = float(np.sign(later) or 1.0) * (0.5 if right else -0.5)
        inp = CycleInput(symbol="BTCUSDT", cycle=k, time_ns=k * BAR, mid=mids[k],
                         analysis=(0.0,) * 20, observation=(0.0,) * 15, inventory_share=0.0,
                         drawdown=0.0, volatility_bps=5.0)  # fmt: skip
        op = analyst.opinion(inp, ANSWER, sentiment=Sentiment("BTCUSDT", score, conf))
        assert parse_llm_note(op.rationale) == (score, conf)
        record = CycleRecord(symbol="BTCUSDT", cycle=k + 1, time_ns=k * BAR, mid=mids[k],
                             opinions=(op, Opinion("risk_manager", op.action, 0.5)))  # fmt: skip
        journal.record_cycle(record)
    journal.close()

    assert main(["calibrate", "--llm-journal", str(path.parent), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    # the last 5 cycles have no mid 5 bars later
    assert report["answers"] == n - 5 and report["horizon_bars"] == 5
    assert report["right_share"] == pytest.approx(0.6, abs=0.03)
    a, b = report["calibration"]
    p = lambda c: 1 / (1 + np.exp(-(a * c + b)))  # noqa: E731
    assert p(0.9) == pytest.approx(0.8, abs=0.05) and p(0.3) == pytest.approx(0.4, abs=0.05)
    check = report["check"]
    assert check["calibrated"]["ece"] < 0.05 < check["raw"]["ece"]
    # the human form prints the config to paste
    assert main(["calibrate", "--llm-journal", str(path.parent)]) == 0
    assert "calibration: [" in capsys.readouterr().out


def test_without_a_recorded_history_the_llm_cannot_be_calibrated(tmp_path, capsys) -> None:
    Journal(str(tmp_path / "coordinator_X.sqlite"), run_id="empty").close()
    assert main(["calibrate", "--llm-journal", str(tmp_path)]) != 0
    assert "0 recorded LLM answers" in capsys.readouterr().err
    assert main(["calibrate"]) != 0
    assert "give one of --data" in capsys.readouterr().err
