"""Lost answers: query by client order id first; never a second order for one intent."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from swarm_ray.core.domain import OrderIntent, OrderStatus, Side
from swarm_ray.exchanges.binance.client import OrderNotPlaced
from swarm_ray.exchanges.errors import ClockSkew, DefiniteReject, RateLimited
from tests.fakes.binance_server import FakeBinance, Fault, exchange_on


@pytest.fixture(scope="module", params=["binance-spot", "binance-futures"])
def venue(request):
    with FakeBinance() as fake:
        yield fake, exchange_on(fake, request.param)


_n = iter(range(10**9))


def _intent() -> OrderIntent:
    # inside the fake's percent-price bands (futures: mark +-5%)
    return OrderIntent("BTCUSDT", Side.BUY, Decimal("58000"), Decimal("0.001"), f"uo{next(_n)}")


def test_answer_lost_after_accept_returns_the_venue_order_without_resending(venue) -> None:
    fake, ex = venue
    intent = _intent()
    fake.inject(Fault("lost"))
    order = ex.place_order(intent)
    assert order.status is OrderStatus.NEW and order.exchange_order_id is not None
    assert fake.accepted[intent.client_order_id] == 1
    assert ex.unresolved() == []


@pytest.mark.parametrize(
    "fault",
    [Fault("http500", execute=True), Fault("1007", execute=True), Fault("garbage")],
    ids=["5xx-executed", "1007-executed", "garbage-body"],
)
def test_executed_but_unreadable_answer_resolves_to_the_one_order(venue, fault) -> None:
    fake, ex = venue
    intent = _intent()
    fake.inject(fault)
    order = ex.place_order(intent)
    assert order.status is OrderStatus.NEW
    assert fake.accepted[intent.client_order_id] == 1


def test_slow_answer_past_the_client_timeout_resolves_by_query(venue) -> None:
    fake, ex = venue
    intent = _intent()
    fake.inject(Fault("slow", delay_s=1.3))  # client timeout is 1 s
    order = ex.place_order(intent)
    assert order.status is OrderStatus.NEW
    assert fake.accepted[intent.client_order_id] == 1


@pytest.mark.parametrize(
    "fault", [Fault("lost_before"), Fault("http500", execute=False)], ids=["lost", "5xx"]
)
def test_lost_request_is_declared_not_placed_only_after_its_recv_window(venue, fault) -> None:
    fake, ex = venue
    intent = _intent()
    fake.inject(fault)
    with pytest.raises(OrderNotPlaced):
        ex.place_order(intent)
    assert fake.accepted[intent.client_order_id] == 0
    # declared only once the venue clock passed timestamp + recvWindow: at least two queries
    queries = [
        p
        for m, e, p in fake.requests
        if (m, e) == ("GET", "order") and p.get("origClientOrderId") == intent.client_order_id
    ]
    assert len(queries) >= 2
    order = ex.place_order(intent)  # now provably safe to send again
    assert order.status is OrderStatus.NEW and fake.accepted[intent.client_order_id] == 1


def test_unresolvable_outcome_returns_unknown_and_later_resolves_without_resending(venue) -> None:
    fake, ex = venue
    intent = _intent()
    # the order is executed but its answer is lost, and every status query fails for a while
    fake.inject(
        Fault("lost"), Fault("http500", method="GET", endpoint="order", times=10**6, execute=False)
    )
    order = ex.place_order(intent)
    assert order.status is OrderStatus.UNKNOWN
    assert ex.unresolved() == [intent.client_order_id]
    fake.faults.clear()
    again = ex.place_order(intent)  # the same intent: resolved by query, not resent
    assert again.status is OrderStatus.NEW
    assert fake.accepted[intent.client_order_id] == 1 and ex.unresolved() == []


FAULTS = st.sampled_from(
    [
        None,
        Fault("lost"),
        Fault("lost_before"),
        Fault("http500", execute=True),
        Fault("http500", execute=False),
        Fault("1007", execute=True),
        Fault("garbage"),
        Fault("rate_limit", retry_after=0),
        Fault("clock_skew"),
        Fault("lost", method="GET", endpoint="order"),
        Fault("http500", method="GET", endpoint="order", execute=False),
    ]
)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(faults=st.lists(FAULTS, max_size=4))
def test_random_fault_sequences_never_yield_two_orders_for_one_intent(venue, faults) -> None:
    fake, ex = venue
    intent = _intent()
    fake.faults.clear()
    fake.inject(*[Fault(**vars(f)) for f in faults if f is not None])
    final = None
    for _ in range(6):  # a caller that keeps trying the same intent
        try:
            final = ex.place_order(intent)
        except (OrderNotPlaced, RateLimited, ClockSkew, DefiniteReject):
            continue
        if final.status is not OrderStatus.UNKNOWN:
            break
    fake.faults.clear()
    assert fake.accepted[intent.client_order_id] <= 1
    if final is not None and final.status is not OrderStatus.UNKNOWN:
        assert fake.accepted[intent.client_order_id] == 1
    ex.cancel_all("BTCUSDT")
