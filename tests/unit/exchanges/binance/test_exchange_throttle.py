"""The client-side throttler, on a simulated clock and end to end against the fake's limits."""

from __future__ import annotations

from decimal import Decimal

import pytest

from swarm_ray.core.clock import SimulatedClock
from swarm_ray.core.domain import OrderIntent, Side
from swarm_ray.exchanges.binance.throttle import WeightThrottler
from swarm_ray.exchanges.errors import RateLimited
from tests.fakes.binance_server import FakeBinance, exchange_on


def _throttler(limit: int, max_wait_s: float = 5.0):
    clock = SimulatedClock(10**18)
    slept: list[float] = []

    def sleep(s: float) -> None:
        slept.append(s)
        clock.advance(int(s * 1e9) + 1)

    rl = [{"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 1, "limit": limit}]
    return WeightThrottler(clock, sleep, rl, max_wait_s=max_wait_s, headroom=1.0), clock, slept


def test_throttler_waits_when_the_window_is_full_and_never_exceeds_it() -> None:
    t, clock, slept = _throttler(limit=3)
    stamps = []
    for _ in range(7):
        t.acquire(weight=1, orders=1)
        stamps.append(clock.monotonic_ns())
    assert len(slept) >= 2
    for i in range(len(stamps) - 3):
        assert stamps[i + 3] - stamps[i] >= 1_000_000_000  # never 4 orders within one second


def test_throttler_refuses_rather_than_wait_too_long() -> None:
    t, _, _ = _throttler(limit=1, max_wait_s=0.1)
    t.acquire(1, 1)
    with pytest.raises(RateLimited, match="local throttle"):
        t.acquire(1, 1)


def test_pause_blocks_orders_but_not_reads_unless_all_traffic() -> None:
    t, clock, _ = _throttler(limit=100)
    t.pause(5, all_traffic=False)
    t.acquire(weight=1, orders=0)
    with pytest.raises(RateLimited):
        t.acquire(weight=1, orders=1)
    clock.advance(5 * 10**9)
    t.acquire(weight=1, orders=1)


def test_adapter_stays_under_the_venues_announced_order_limit() -> None:
    limits = [
        {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": 6000},
        {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 1, "limit": 5},
    ]
    with FakeBinance(rate_limits=limits) as fake:
        ex = exchange_on(fake)
        for i in range(9):
            ex.place_order(
                OrderIntent("BTCUSDT", Side.BUY, Decimal("50000"), Decimal("0.001"), f"t{i}")
            )
        assert fake.rate_limit_violations == 0
        assert sum(fake.accepted.values()) == 9
