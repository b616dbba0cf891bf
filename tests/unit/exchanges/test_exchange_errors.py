"""Error classes through the real client: rejects, rate limits, clock skew."""

from __future__ import annotations

from decimal import Decimal

import pytest

from swarm_ray.core.domain import OrderIntent, OrderType, Side
from swarm_ray.exchanges.errors import (
    ClockSkew,
    DefiniteReject,
    OrderDropped,
    OrderNotFound,
    RateLimited,
)
from tests.fakes.binance_server import FakeBinance, Fault, exchange_on


@pytest.fixture
def fake():
    with FakeBinance() as f:
        yield f


def _intent(
    cid: str,
    price: str = "50000",
    qty: str = "0.001",
    side: Side = Side.BUY,
    order_type: OrderType = OrderType.LIMIT,
) -> OrderIntent:
    return OrderIntent("BTCUSDT", side, Decimal(price), Decimal(qty), cid, order_type)


def _posts(fake: FakeBinance) -> int:
    return sum(1 for m, e, _ in fake.requests if (m, e) == ("POST", "order"))


def test_post_only_order_that_would_take_is_definite_reject_sent_once(fake) -> None:
    ex = exchange_on(fake)
    with pytest.raises(DefiniteReject) as info:
        ex.place_order(_intent("pm1", price="60001", order_type=OrderType.LIMIT_MAKER))
    assert info.value.code == -2010
    assert _posts(fake) == 1 and fake.accepted == {}


def test_insufficient_balance_is_definite_reject(fake) -> None:
    ex = exchange_on(fake)
    with pytest.raises(DefiniteReject) as info:
        ex.place_order(_intent("big", price="50000", qty="5"))  # 250k USDT > 10k
    assert info.value.code == -2010 and _posts(fake) == 1


def test_order_breaking_min_notional_is_dropped_locally_and_never_sent(fake) -> None:
    ex = exchange_on(fake)
    with pytest.raises(OrderDropped, match="min notional"):
        ex.place_order(_intent("tiny", price="50000", qty="0.00001"))  # 0.5 USDT < 5
    assert _posts(fake) == 0


def test_rate_limit_429_raises_with_retry_after_and_pauses_order_traffic(fake) -> None:
    ex = exchange_on(fake)
    fake.inject(Fault("rate_limit", retry_after=30))
    with pytest.raises(RateLimited) as info:
        ex.place_order(_intent("rl1"))
    assert info.value.retry_after_s == 30 and info.value.status == 429
    with pytest.raises(RateLimited, match="back-off"):
        ex.place_order(_intent("rl2"))
    assert _posts(fake) == 1 and fake.accepted == {}
    assert ex.throttler.paused_for_s() > 25


def test_ban_418_pauses_all_traffic_including_reads(fake) -> None:
    ex = exchange_on(fake)
    fake.inject(Fault("ban", method="GET", endpoint="openOrders", retry_after=60))
    ex.sync_time()
    with pytest.raises(RateLimited) as info:
        ex.open_orders("BTCUSDT")
    assert info.value.banned
    n = len(fake.requests)
    with pytest.raises(RateLimited):
        ex.open_orders("BTCUSDT")
    assert len(fake.requests) == n  # nothing went out during the ban


def test_clock_skew_resyncs_and_retries_once_placing_exactly_one_order(fake) -> None:
    ex = exchange_on(fake)
    ex.sync_time()
    fake.inject(Fault("clock_skew"))
    order = ex.place_order(_intent("cs1"))
    assert order.client_order_id == "cs1" and fake.accepted["cs1"] == 1
    times = [e for m, e, _ in fake.requests if e == "time"]
    assert len(times) == 2  # initial sync + resync after -1021


def test_clock_skew_twice_raises_and_places_nothing(fake) -> None:
    ex = exchange_on(fake)
    fake.inject(Fault("clock_skew", times=2))
    with pytest.raises(ClockSkew):
        ex.place_order(_intent("cs2"))
    assert fake.accepted == {}


def test_venue_clock_ahead_is_absorbed_by_the_measured_offset() -> None:
    with FakeBinance(time_offset_ms=20_000) as fake:  # 20 s: far beyond recvWindow
        ex = exchange_on(fake)
        ex.place_order(_intent("ahead"))
        assert abs(ex.clock_offset_ms - 20_000) < 500
        assert fake.accepted["ahead"] == 1


def test_cancel_of_unknown_order_is_order_not_found(fake) -> None:
    ex = exchange_on(fake)
    with pytest.raises(OrderNotFound):
        ex.cancel_order("BTCUSDT", "never-sent")


def test_unknown_symbol_is_definite_reject_without_sending(fake) -> None:
    ex = exchange_on(fake)
    with pytest.raises(DefiniteReject, match="unknown symbol"):
        ex.place_order(OrderIntent("NOPEUSDT", Side.BUY, Decimal(1), Decimal(10), "u1"))
    assert _posts(fake) == 0
