"""The calibration map's fit and its reliability figures."""

from __future__ import annotations

import math

import numpy as np
import pytest

from swarm_ray.registry.calibration import MIN_VOTES, fit_platt, policy_scores, reliability


def test_platt_recovers_a_known_logistic_map_from_soft_labels() -> None:
    rng = np.random.default_rng(0)
    s = rng.uniform(0, 4, 40_000)
    p = 1 / (1 + np.exp(-(1.5 * s - 2.0)))
    y = (rng.uniform(size=s.size) < p).astype(float)
    a, b = fit_platt(s, y)
    assert (a, b) == pytest.approx((1.5, -2.0), rel=0.05)
    y[::4] = 0.5  # ties count half: they flatten the map toward 0.5, the slope keeps its sign
    a_tied, _ = fit_platt(s, y)
    assert 0 < a_tied < a


def test_too_few_votes_or_a_constant_score_give_the_base_rate() -> None:
    a, b = fit_platt(np.arange(MIN_VOTES - 1.0), [1.0] * 10 + [0.0] * (MIN_VOTES - 11))
    assert a == 0.0 and 1 / (1 + math.exp(-b)) == pytest.approx(10 / (MIN_VOTES - 1))
    a, b = fit_platt(np.ones(500), np.r_[np.ones(100), np.zeros(400)])
    assert a == 0.0 and 1 / (1 + math.exp(-b)) == pytest.approx(0.2)
    with pytest.raises(ValueError, match="shape"):
        fit_platt([1.0, 2.0], [1.0])


def test_reliability_measures_the_gap_between_stated_and_seen() -> None:
    rng = np.random.default_rng(1)
    p = rng.uniform(size=50_000)
    y = (rng.uniform(size=p.size) < p).astype(float)
    honest = reliability(p, y)
    assert honest["ece"] < 0.02 and honest["n"] == 50_000 and len(honest["bins"]) == 10
    overconfident = reliability(np.full(1000, 0.9), np.r_[np.ones(500), np.zeros(500)])
    assert overconfident["ece"] == pytest.approx(0.4)
    (b,) = overconfident["bins"]
    assert (b["lo"], b["hi"], b["n"], b["y"]) == (0.9, 1.0, 1000, 0.5)
    assert b["p"] == pytest.approx(0.9)
    assert reliability([], [])["ece"] is None


def test_policy_scores_are_the_greedy_margin_over_the_alternative() -> None:
    q = np.array([[0.0, 2.0, 1.0, 0, 0, 0, 0], [3.0, 0.5, 1.0, 0, 0, 0, 0]])
    actions, margin = policy_scores(q)
    assert actions.tolist() == [1, 0]
    assert margin.tolist() == [2.0, 2.0]  # over standing aside; over quote_wide (1.0)


def test_the_shipped_models_are_calibrated_on_their_validation_days() -> None:
    """Each role's newest model card carries its map, fitted on the days its card names as
    validation days and checked on its held-out evaluation days, where it beats the raw
    confidence; Serve and the agents answer with it."""
    from serve.models import load_served_model
    from swarm_ray.core.roles import ROLES
    from swarm_ray.registry.policies import latest_dir, read_card
    from tests.conftest import ROOT

    for role in ROLES:
        vdir = latest_dir(ROOT / "models", role)
        card = read_card(vdir)
        cal = card["calibration"]
        assert cal["fitted_on"] == card["data"]["validation_days"], role
        assert cal["checked_on"] == card["data"]["evaluation_days"], role
        check = cal["reliability"]["check"]
        assert check["calibrated"]["ece"] < check["raw"]["ece"], role
        assert (vdir / cal["plot"]).is_file()
        assert load_served_model(ROOT / "models", role).calibration is not None
