"""The risk gate: hard limits no vote passes (with properties)."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from envs.actions import Action
from swarm_ray.trading.consensus import Consensus
from swarm_ray.trading.risk import RiskLimits, RiskState, check

LIMITS = RiskLimits(max_position=0.05, max_notional=5000.0, daily_loss_limit=250.0)


def vote(action: Action, confidence: float = 0.9) -> Consensus:
    return Consensus(action, action, 1.0, confidence, 1.0, "consensus")


def state(**kw) -> RiskState:
    base = dict(position=0.0, mid=60_000.0, equity=10_000.0, peak_equity=10_000.0,
                day_start_equity=10_000.0)  # fmt: skip
    base.update(kw)
    return RiskState(**base)


def test_clean_state_passes_the_vote_with_full_capacity() -> None:
    v = check(vote(Action.QUOTE_TIGHT), state(), LIMITS)
    assert v.action is Action.QUOTE_TIGHT and v.reasons == () and not v.trip_kill_switch
    cap = min(0.05, 5000 / 60_000)
    assert v.max_buy == pytest.approx(cap) and v.max_sell == pytest.approx(cap)


def test_tripped_kill_switch_wins_over_everything() -> None:
    v = check(vote(Action.QUOTE_TIGHT), state(kill_switch=True), LIMITS)
    assert v.action is Action.EMERGENCY_STOP and v.cancel_all and not v.trip_kill_switch
    assert v.max_buy == v.max_sell == 0


def test_emergency_vote_trips_the_kill_switch() -> None:
    v = check(vote(Action.EMERGENCY_STOP), state(), LIMITS)
    assert v.action is Action.EMERGENCY_STOP and v.trip_kill_switch


def test_drawdown_at_15_percent_trips() -> None:
    # today's start equals today's equity, so only the drawdown limit can fire
    v = check(vote(Action.QUOTE_TIGHT), state(equity=8_500.0, day_start_equity=8_500.0), LIMITS)
    assert v.trip_kill_switch and "drawdown" in v.reasons[0]
    ok = check(vote(Action.QUOTE_TIGHT), state(equity=8_501.0, day_start_equity=8_501.0), LIMITS)
    assert not ok.trip_kill_switch and ok.action is Action.QUOTE_TIGHT


def test_daily_loss_limit_trips() -> None:
    v = check(vote(Action.QUOTE_TIGHT), state(equity=9_700.0, peak_equity=9_800.0), LIMITS)
    assert v.trip_kill_switch and "daily loss" in v.reasons[0]


def test_bad_data_stands_aside_without_tripping() -> None:
    v = check(vote(Action.QUOTE_TIGHT), state(data_problems=("crossed book",)), LIMITS)
    assert v.action is Action.STAND_ASIDE and not v.trip_kill_switch
    assert "crossed book" in v.reasons[0]
    v2 = check(vote(Action.QUOTE_TIGHT), state(mid=math.nan), LIMITS)
    assert v2.action is Action.STAND_ASIDE


def test_stop_loss_forces_a_reduction_toward_flat() -> None:
    long_ = check(vote(Action.SKEW_BUY), state(position=0.02, entry_price=62_000.0), LIMITS)
    assert long_.action is Action.REDUCE_SELL and long_.max_buy == 0
    assert long_.max_sell == pytest.approx(0.02)
    short = check(vote(Action.QUOTE_TIGHT), state(position=-0.02, entry_price=58_000.0), LIMITS)
    assert short.action is Action.REDUCE_BUY and short.max_buy == pytest.approx(0.02)


def test_volatility_and_confidence_cut_offs_stand_aside() -> None:
    hot = check(vote(Action.QUOTE_TIGHT), state(volatility_bps=100.0), LIMITS)
    assert hot.action is Action.STAND_ASIDE and "volatility" in hot.reasons[0]
    cautious = RiskLimits(min_confidence=0.5)
    low = check(vote(Action.QUOTE_TIGHT, confidence=0.3), state(), cautious)
    assert low.action is Action.STAND_ASIDE and "confidence" in low.reasons[0]


def test_position_at_cap_allows_only_reducing_side() -> None:
    v = check(vote(Action.QUOTE_TIGHT), state(position=0.05), LIMITS)
    assert v.action is Action.QUOTE_TIGHT and v.max_buy == 0 and v.max_sell > 0
    assert any("no more buying" in r for r in v.reasons)


def test_reduce_with_nothing_to_reduce_becomes_stand_aside() -> None:
    v = check(vote(Action.REDUCE_SELL), state(position=0.0), LIMITS)
    assert v.action is Action.STAND_ASIDE


actions = st.sampled_from(list(Action))
positions = st.floats(-0.2, 0.2, allow_nan=False)
mids = st.floats(1.0, 200_000.0)


@settings(max_examples=500, deadline=None)
@given(actions, positions, mids, st.floats(0, 20_000), st.floats(0, 20_000), st.booleans())
def test_property_no_verdict_lets_the_position_pass_its_caps(a, pos, mid, eq, peak, ks) -> None:
    v = check(vote(a), state(position=pos, mid=mid, equity=eq, peak_equity=max(eq, peak),
                             day_start_equity=eq, kill_switch=ks), LIMITS)  # fmt: skip
    cap = min(LIMITS.max_position, LIMITS.max_notional / mid)
    assert v.max_buy >= 0 and v.max_sell >= 0
    # whatever fills, the position ends within the cap, or at least no further out than it was
    assert pos + v.max_buy <= max(cap, pos) + 1e-12
    assert pos - v.max_sell >= min(-cap, pos) - 1e-12
    if ks:
        assert v.action is Action.EMERGENCY_STOP
    if v.action is Action.REDUCE_SELL:
        assert pos - v.max_sell >= -1e-12  # never flips short
    if v.action is Action.REDUCE_BUY:
        assert pos + v.max_buy <= 1e-12


@settings(max_examples=300, deadline=None)
@given(actions, st.floats(0.15, 1.0))
def test_property_drawdown_beyond_limit_always_trips_unless_already_tripped(a, dd) -> None:
    v = check(vote(a), state(equity=10_000 * (1 - dd)), LIMITS)
    assert v.action is Action.EMERGENCY_STOP and v.trip_kill_switch
