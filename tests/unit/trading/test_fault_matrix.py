"""The fault matrix: the coordinator's whole cycle through the real python-binance client against a
signing, fault-injecting fake venue on loopback. For every venue call the cycle makes and every
fault a venue really produces: one cycle under the fault and two after, with the invariants
checked after every cycle."""

from __future__ import annotations

import time
from collections import Counter

import pytest

from envs.actions import Action
from swarm_ray.core.clock import LiveClock
from swarm_ray.core.domain import Opinion, OrderStatus
from swarm_ray.core.roles import ROLES
from swarm_ray.features.observation import ObservationSpec
from swarm_ray.journal import Journal
from swarm_ray.trading.config import TradingConfig
from swarm_ray.trading.coordinator import SymbolCoordinator
from swarm_ray.trading.quoting import QuotingParams
from tests.fakes.binance_server import FakeBinance, Fault, exchange_on

SYMBOL = "BTCUSDT"
LADDER = 2  # one level a side

CALLS = [
    ("GET", "depth"),  # the book
    ("GET", "klines"),  # the bars
    ("GET", "openOrders"),
    ("POST", "order"),  # place
    ("DELETE", "order"),  # cancel
    ("GET", "order"),  # order query
    ("GET", "myTrades"),  # fills
]
FAULTS = [
    ("timeout", {"kind": "slow", "delay_s": 1.3}),  # the client gives up after 1 s
    ("connection_reset", {"kind": "lost_before"}),
    ("lost_after_execute", {"kind": "lost"}),
    ("http_5xx", {"kind": "http500", "execute": False}),
    ("http_5xx_after_execute", {"kind": "http500", "execute": True}),
    ("rate_limit_429", {"kind": "rate_limit", "retry_after": 1}),
    ("ban_418", {"kind": "ban", "retry_after": 1}),
    ("clock_skew_1021", {"kind": "clock_skew"}),
    ("garbage_json", {"kind": "garbage"}),
]


def scripted(action: Action) -> list[Opinion]:
    """Every role votes ``action`` with full confidence (a scripted swarm)."""
    return [Opinion(r, action, 1.0, "script", "scripted vote") for r in ROLES]


def check_invariants(fake: FakeBinance, journal: Journal) -> None:
    ours = [o for o in fake.orders.values() if o.symbol == SYMBOL]
    per_cid = Counter(o.cid for o in ours)
    assert max(per_cid.values(), default=0) <= 1, "an intent reached the venue twice"
    resting = [o for o in ours if o.status in ("NEW", "PARTIALLY_FILLED")]
    assert len(resting) <= LADDER, f"{len(resting)} orders rest, the ladder is {LADDER}"
    fills = journal.fills(SYMBOL)
    assert len({f.trade_id for f in fills}) == len(fills), "a fill counted twice"


def coordinator_on(fake: FakeBinance) -> tuple[SymbolCoordinator, Journal]:
    """A reconciled coordinator trading BTCUSDT through python-binance on ``fake``."""
    venue = exchange_on(fake, "binance-spot")
    journal = Journal(":memory:", run_id="matrix", clock=LiveClock())
    spec = ObservationSpec(1e-3, 50.0, None, 0.001, 0.01, 240)
    cfg = TradingConfig(risk={"max_position": 0.01, "max_notional": 5000})
    quoting = QuotingParams(levels=1, size=0.001, reduce_size=0.001)
    coord = SymbolCoordinator(SYMBOL, cfg, venue, journal, LiveClock(), spec, None, quoting)
    coord.reconcile()
    return coord, journal


def wait_out_back_off(fault: dict) -> None:
    """Live cycles are a minute apart: let a 429/418's Retry-After pass before the next."""
    if fault["kind"] in ("rate_limit", "ban"):
        time.sleep(fault["retry_after"] + 0.1)


@pytest.mark.parametrize("fault_name,fault", FAULTS, ids=[f[0] for f in FAULTS])
@pytest.mark.parametrize("call", CALLS, ids=[f"{m} {e}" for m, e in CALLS])
def test_one_cycle_under_a_venue_fault_and_two_after_keep_the_invariants(
    call, fault_name, fault
) -> None:
    method, endpoint = call
    with FakeBinance() as fake:
        coord, journal = coordinator_on(fake)

        def cycle():
            inp = coord.prepare()
            return coord.act(inp, scripted(Action.QUOTE_TIGHT))

        first = cycle()
        assert first.placed == LADDER, first
        check_invariants(fake, journal)
        fake.set_book(SYMBOL, "60000.50", "60000.51")  # the ladder must move: cancels and places
        fake.inject(Fault(method=method, endpoint=endpoint, **fault))
        for i in range(3):  # the faulty cycle, then two to recover
            cycle()  # never raises
            check_invariants(fake, journal)
            if i == 0:
                wait_out_back_off(fault)
        unknown = [o for o in journal.orders(symbol=SYMBOL) if o.status is OrderStatus.UNKNOWN]
        assert not unknown, f"orders left in an unknown state: {unknown}"
        assert not coord.needs_reconcile
        journal.close()


@pytest.mark.parametrize("fault_name,fault", FAULTS, ids=[f[0] for f in FAULTS])
def test_cancel_all_under_a_venue_fault_still_ends_with_nothing_resting(fault_name, fault) -> None:
    """An emergency stop's cancel-all hits the fault; the kill switch holds and the next cycles
    cancel what rests, order by order."""
    with FakeBinance() as fake:
        coord, journal = coordinator_on(fake)
        first = coord.act(coord.prepare(), scripted(Action.QUOTE_TIGHT))
        assert first.placed == LADDER
        fake.inject(Fault(method="DELETE", endpoint="openOrders", **fault))
        for i in range(3):
            s = coord.act(coord.prepare(), scripted(Action.EMERGENCY_STOP))
            check_invariants(fake, journal)
            if i == 0:
                wait_out_back_off(fault)
        assert s.kill_switch and journal.kill_switch(SYMBOL) is not None
        assert fake.open_order_count(SYMBOL) == 0
        assert not [o for o in journal.orders(symbol=SYMBOL) if o.status is OrderStatus.UNKNOWN]
        journal.close()
