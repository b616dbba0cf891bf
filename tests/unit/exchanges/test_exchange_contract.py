"""The contract every ``Exchange`` must honour. Add the paper exchange as another ``venue`` param:
a factory returning (exchange, trade_through) where ``trade_through(symbol, price)`` makes the
market trade at ``price`` (fills resting orders it crosses)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from decimal import Decimal

import pytest

from swarm_ray.core.clock import SimulatedClock
from swarm_ray.core.domain import OrderIntent, OrderStatus, Side
from swarm_ray.exchanges.base import Exchange
from swarm_ray.exchanges.config import PaperConfig
from swarm_ray.exchanges.errors import OrderDropped, OrderNotFound
from swarm_ray.exchanges.paper import PaperExchange
from tests.fakes.binance_server import FakeBinance, exchange_on

SYMBOL = "BTCUSDT"
Venue = tuple[Exchange, Callable[[str, str], object]]


def _binance(kind: str) -> Callable[[], Iterator[Venue]]:
    def factory() -> Iterator[Venue]:
        with FakeBinance() as fake:
            ex = exchange_on(fake, kind)
            yield ex, fake.trade_through
            ex.close()

    return factory


def _paper(market: str) -> Callable[[], Iterator[Venue]]:
    def factory() -> Iterator[Venue]:
        clock = SimulatedClock()
        ex = PaperExchange(PaperConfig(market=market), clock)  # BTCUSDT on a bundled kline day
        clock.set(ex.replay_start_ns(SYMBOL) + 30 * 60_000_000_000)
        yield ex, ex.inject_trade
        ex.close()

    return factory


FACTORIES = {
    "binance-spot-fake": _binance("binance-spot"),
    "binance-futures-fake": _binance("binance-futures"),
    "paper-spot": _paper("spot"),
    "paper-futures": _paper("futures"),
}


@pytest.fixture(params=list(FACTORIES))
def venue(request) -> Iterator[Venue]:
    yield from FACTORIES[request.param]()


def _below_market(ex: Exchange, cid: str, frac: str = "0.98", qty: str = "0.001") -> OrderIntent:
    bid = Decimal(str(ex.market_snapshot(SYMBOL).best_bid))
    return OrderIntent(SYMBOL, Side.BUY, bid * Decimal(frac), Decimal(qty), cid)


def test_rules_and_snapshot_are_sane(venue) -> None:
    ex, _ = venue
    rules = ex.symbol_rules(SYMBOL)
    assert rules.tick_size > 0 and rules.step_size > 0 and rules.min_notional >= 0
    snap = ex.market_snapshot(SYMBOL, depth=3)
    assert snap.problems() == [] and len(snap.bids) == 3 and len(snap.asks) == 3


def test_placed_order_is_quantised_open_and_queryable(venue) -> None:
    ex, _ = venue
    order = ex.place_order(_below_market(ex, "k1", qty="0.0012345"))
    rules = ex.symbol_rules(SYMBOL)
    assert order.status is OrderStatus.NEW and order.client_order_id == "k1"
    assert rules.violations(order.price, order.quantity) == []
    assert order.quantity <= Decimal("0.0012345")
    assert [o.client_order_id for o in ex.open_orders(SYMBOL)] == ["k1"]
    assert ex.get_order(SYMBOL, "k1").status is OrderStatus.NEW


def test_cancel_makes_order_final_and_unknown_ids_are_not_found(venue) -> None:
    ex, _ = venue
    ex.place_order(_below_market(ex, "k2"))
    assert ex.cancel_order(SYMBOL, "k2").status is OrderStatus.CANCELED
    assert ex.open_orders(SYMBOL) == []
    assert ex.get_order(SYMBOL, "nope") is None
    with pytest.raises(OrderNotFound):
        ex.cancel_order(SYMBOL, "nope")


def test_cancel_all_leaves_no_open_orders_and_is_idempotent(venue) -> None:
    ex, _ = venue
    for i in range(3):
        ex.place_order(
            _below_market(ex, f"ca{i}", frac=str(Decimal("0.98") - i * Decimal("0.005")))
        )
    ex.cancel_all(SYMBOL)
    assert ex.open_orders(SYMBOL) == []
    ex.cancel_all(SYMBOL)


def test_filter_breaking_order_is_dropped(venue) -> None:
    ex, _ = venue
    with pytest.raises(OrderDropped):
        ex.place_order(_below_market(ex, "k3", qty="0.00001"))
    assert ex.get_order(SYMBOL, "k3") is None


def test_fill_is_reported_with_client_id_and_moves_position(venue) -> None:
    ex, trade_through = venue
    t0 = ex.server_time_ms()
    before = ex.position(SYMBOL).quantity
    order = ex.place_order(_below_market(ex, "k4", qty="0.002"))
    trade_through(SYMBOL, str(order.price))
    fills = ex.fills_since(SYMBOL, t0)
    assert [(f.client_order_id, f.side, f.quantity) for f in fills] == [
        ("k4", Side.BUY, order.quantity)
    ]
    assert fills[0].price == order.price
    assert ex.get_order(SYMBOL, "k4").status is OrderStatus.FILLED
    assert ex.position(SYMBOL).quantity - before == order.quantity
    assert ex.fills_since(SYMBOL, fills[0].time_ms + 1) == []


def test_balances_are_decimal(venue) -> None:
    ex, _ = venue
    bals = ex.balances()
    assert "USDT" in bals and isinstance(bals["USDT"].free, Decimal) and bals["USDT"].total > 0
