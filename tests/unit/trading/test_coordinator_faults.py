"""Venue faults in the coordinator's cycle (no Ray): a failed call never doubles the ladder and a
transient error degrades the cycle instead of stopping the symbol."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from envs.actions import Action
from swarm_ray.core.clock import SimulatedClock
from swarm_ray.core.domain import Opinion
from swarm_ray.core.errors import RateLimited, UnknownOutcome
from swarm_ray.core.roles import ROLES
from swarm_ray.exchanges import build_exchange
from swarm_ray.exchanges.config import ExchangeConfig, PaperConfig, PaperSymbolConfig
from swarm_ray.features.observation import ObservationSpec
from swarm_ray.journal import Journal
from swarm_ray.trading.config import TradingConfig
from swarm_ray.trading.coordinator import SymbolCoordinator
from swarm_ray.trading.quoting import QuotingParams
from tests.conftest import kline_day
from tests.fakes.flaky_exchange import FlakyExchange

START = int(datetime(2024, 8, 20, 6, tzinfo=UTC).timestamp() * 1e9)
MIN = 60_000_000_000


@pytest.fixture
def swarm():
    clock = SimulatedClock(START)
    paper = PaperConfig(
        symbols={"BTCUSDT": PaperSymbolConfig(klines=(kline_day("19"), kline_day("20")))}
    )
    venue = FlakyExchange(build_exchange(ExchangeConfig(kind="paper", paper=paper), clock=clock))
    journal = Journal(":memory:", run_id="faults", clock=clock)
    spec = ObservationSpec(1e-3, 50.0, None, 0.005, 0.05, 240)
    coord = SymbolCoordinator(
        "BTCUSDT", TradingConfig(), venue, journal, clock, spec, None, QuotingParams(levels=1)
    )
    coord.reconcile()
    state = {"k": 0}

    def cycle(action: Action = Action.QUOTE_TIGHT):
        clock.set(START + state["k"] * MIN)
        state["k"] += 1
        inp = coord.prepare()
        votes = [Opinion(r, action, 1.0, "script", "scripted vote") for r in ROLES]
        return coord.act(inp, votes)

    yield coord, venue, cycle
    journal.close()


def resting(venue) -> int:
    return len(venue._inner.open_orders("BTCUSDT"))


def test_a_failed_open_orders_call_places_nothing_on_top_of_the_resting_ladder(swarm) -> None:
    coord, venue, cycle = swarm
    s = cycle()
    assert s.action == "quote_tight" and resting(venue) == 2, s
    venue.fail("open_orders", UnknownOutcome("HTTP 503"))
    s = cycle()
    assert s.placed == 0 and resting(venue) <= 2
    assert any("unknown" in r for r in s.risk_reasons)
    for _ in range(3):  # reconciled next cycle; the ladder is managed again, never doubled
        s = cycle()
        assert resting(venue) <= 2
    assert resting(venue) == 2 and not coord.needs_reconcile


@pytest.mark.parametrize("method", ["fills_since", "get_order", "open_orders"])
def test_a_transient_venue_error_in_prepare_degrades_the_cycle_and_recovers(swarm, method) -> None:
    coord, venue, cycle = swarm
    cycle()
    coord.needs_reconcile = method != "fills_since"  # get_order/open_orders: the reconcile path
    venue.fail(method, RateLimited("HTTP 429", retry_after_s=1.0), times=2)
    s = cycle()  # no exception out of the cycle
    assert s.placed == 0 and any("venue unavailable" in p for p in s.data_problems), s
    for _ in range(3):
        s = cycle()
        assert resting(venue) <= 2
    assert not s.data_problems and resting(venue) == 2 and not coord.needs_reconcile


def test_a_venue_down_beyond_the_grace_period_cancels_everything_and_stops_the_symbol(
    swarm,
) -> None:
    coord, venue, cycle = swarm
    cycle()
    assert resting(venue) == 2
    grace = coord.cfg.cycle.venue_grace_s
    down = int(grace // 60) + 2
    venue.fail("fills_since", UnknownOutcome("HTTP 503"), times=down)
    for i in range(down):
        s = cycle()
        assert any("venue unavailable" in p for p in s.data_problems)
        if i < grace // 60:
            assert coord.journal.kill_switch("BTCUSDT") is None  # within the grace period
    ks = coord.journal.kill_switch("BTCUSDT")
    assert ks is not None and "venue unavailable" in ks.reason and "orders canceled" in ks.reason
    assert resting(venue) == 0
    s = cycle()  # the venue is back, but the symbol stays stopped until an operator clears it
    assert s.kill_switch and s.placed == 0 and resting(venue) == 0
