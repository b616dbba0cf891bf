"""``swarm-ray calibrate`` on real days: the whole swarm replays a validation day, every model's
map is fitted and checked on a held-out day, and the served answers become calibrated."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from swarm_ray.cli import main
from tests.conftest import ROOT, kline_day


@pytest.fixture(scope="module")
def calibrated(tmp_path_factory):
    registry = tmp_path_factory.mktemp("cal") / "models"
    shutil.copytree(ROOT / "models", registry)
    return registry


def test_calibrate_writes_maps_that_the_served_models_answer_with(calibrated, capsys) -> None:
    from serve.models import load_served_model

    # the shipped cards carry a map fitted at the regular tier; this one replaces it
    code = main(["calibrate", "--models", str(calibrated), "--data", kline_day("13"),
                 "--check", kline_day("17"), "--fees", "lp_rebate", "--json"])  # fmt: skip
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    assert report["fit_days"] == ["2024-08-13"] and report["check_days"] == ["2024-08-17"]
    assert report["fees"] == "lp_rebate" and report["horizon_bars"] == 5
    for name, entry in report["models"].items():
        fit = entry["fit"]
        assert fit["votes"]["active"] + fit["votes"]["passive"] > 1000, name
        # in sample the map is calibrated; the raw confidences were not
        assert fit["calibrated"]["ece"] < 0.05 < fit["raw"]["ece"], name
        assert entry["check"]["calibrated"]["n"] > 1000
        vdir = calibrated / name / entry["version"]
        assert (vdir / "reliability.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        cal = json.loads((vdir / "model_card.json").read_text())["calibration"]
        assert cal["fitted_on"] == ["2024-08-13"] and cal["checked_on"] == ["2024-08-17"]
        assert cal["fees"]["tier"] == "lp_rebate" and "lp_rebate fee tier" in cal["meaning"]
    # the served answer is the map applied to the model's own output
    model = load_served_model(calibrated, "strategy_optimizer")
    rows = np.random.default_rng(0).normal(0, 0.3, (64, model.observation_dim)).astype(np.float32)
    answers = model.answer(rows)
    assert all(a["calibrated"] for a in answers)
    q = np.array([a["q_values"] for a in answers])
    expect = model.calibration.confidence(q, np.array([a["action"] for a in answers]))
    assert [a["confidence"] for a in answers] == pytest.approx(expect.tolist())
    assert any(abs(a["confidence"] - a["raw_confidence"]) > 0.05 for a in answers)


def test_calibrate_refuses_a_day_the_models_trained_on(calibrated, capsys) -> None:
    code = main(["calibrate", "--models", str(calibrated), "--data", kline_day("05"),
                 "--dry-run"])  # fmt: skip
    assert code != 0
    err = capsys.readouterr().err
    assert "--data" in err and "2024-08-05" in err and "trained on" in err
