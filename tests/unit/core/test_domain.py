from __future__ import annotations

import math
from decimal import Decimal

import pytest

from envs.actions import ACTION_NAMES, ENV_ACTIONS, N_ENV_ACTIONS, Action
from swarm_ray.core.clock import LiveClock, SimulatedClock
from swarm_ray.core.domain import MarketSnapshot, Opinion, OrderIntent, OrderStatus, Side


def test_action_vocabulary_env_subset_excludes_emergency_stop() -> None:
    assert N_ENV_ACTIONS == 7 and len(ENV_ACTIONS) == 7
    assert Action.EMERGENCY_STOP not in ENV_ACTIONS
    assert ACTION_NAMES[Action.SKEW_BUY] == "skew_buy"
    assert len(set(ACTION_NAMES)) == len(Action)


def test_opinion_validates_confidence_and_coerces_action() -> None:
    op = Opinion("risk_manager", 2, 0.5)
    assert op.action is Action.QUOTE_WIDE
    for bad in (-0.1, 1.1, math.nan):
        with pytest.raises(ValueError, match="confidence"):
            Opinion("a", Action.STAND_ASIDE, bad)
    with pytest.raises(AttributeError):
        op.confidence = 0.9  # type: ignore[misc]


def test_order_intent_requires_decimal_and_valid_fields() -> None:
    ok = OrderIntent("BTCUSDT", Side.BUY, Decimal("60000.10"), Decimal("0.001"), "c1")
    assert ok.side.sign == 1 and ok.side.opposite is Side.SELL
    with pytest.raises(TypeError, match="Decimal"):
        OrderIntent("BTCUSDT", Side.BUY, 60000.1, Decimal("0.001"), "c1")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="quantity"):
        OrderIntent("BTCUSDT", Side.BUY, Decimal(1), Decimal(0), "c1")
    with pytest.raises(ValueError, match="client_order_id"):
        OrderIntent("BTCUSDT", Side.BUY, Decimal(1), Decimal(1), "x" * 37)


def test_order_status_open_and_final_partition() -> None:
    for s in OrderStatus:
        assert not (s.is_open and s.is_final)
    assert not OrderStatus.UNKNOWN.is_open and not OrderStatus.UNKNOWN.is_final


def test_snapshot_problems_detects_nan_crossed_and_stale() -> None:
    good = MarketSnapshot("BTCUSDT", 1_000, 100.0, 100.5)
    assert good.problems(now_ns=1_500, max_age_ns=1_000) == []
    assert good.mid == 100.25
    assert "non-finite" in MarketSnapshot("X", 0, math.nan, 1.0).problems()[0]
    assert "crossed" in MarketSnapshot("X", 0, 101.0, 100.0).problems()[0]
    assert "stale" in good.problems(now_ns=10_000, max_age_ns=1_000)[0]


def test_simulated_clock_moves_only_forward() -> None:
    clock = SimulatedClock(5_000_000)
    assert clock.now_ms() == 5
    clock.advance(2_000_000)
    assert clock.now_ns() == 7_000_000
    with pytest.raises(ValueError):
        clock.advance(-1)
    with pytest.raises(ValueError):
        clock.set(1)
    live = LiveClock()
    a = live.monotonic_ns()
    assert live.monotonic_ns() >= a and live.now_ms() > 1_600_000_000_000
