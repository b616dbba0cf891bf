"""SymbolRules: quantisation and filters (property-tested), parsing recorded exchangeInfo."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from swarm_ray.core.domain import OrderIntent, Side
from swarm_ray.core.instruments import SymbolRules, decimal_str
from swarm_ray.exchanges.binance.parsing import parse_order, parse_symbol_rules
from swarm_ray.exchanges.errors import OrderDropped

# exchangeInfo symbol entry as Binance's spot API returns it (trimmed to the filters we use)
SPOT_BTCUSDT = {
    "symbol": "BTCUSDT",
    "status": "TRADING",
    "baseAsset": "BTC",
    "quoteAsset": "USDT",
    "filters": [
        {
            "filterType": "PRICE_FILTER",
            "minPrice": "0.01000000",
            "maxPrice": "1000000.00000000",
            "tickSize": "0.01000000",
        },
        {
            "filterType": "LOT_SIZE",
            "minQty": "0.00001000",
            "maxQty": "9000.00000000",
            "stepSize": "0.00001000",
        },
        {"filterType": "ICEBERG_PARTS", "limit": 10},
        {
            "filterType": "NOTIONAL",
            "minNotional": "5.00000000",
            "applyMinToMarket": True,
            "maxNotional": "9000000.00000000",
            "applyMaxToMarket": False,
            "avgPriceMins": 5,
        },
    ],
}
FUTURES_BTCUSDT = {
    "symbol": "BTCUSDT",
    "contractStatus": "TRADING",
    "baseAsset": "BTC",
    "quoteAsset": "USDT",
    "filters": [
        {
            "filterType": "PRICE_FILTER",
            "minPrice": "556.80",
            "maxPrice": "4529764",
            "tickSize": "0.10",
        },
        {"filterType": "LOT_SIZE", "minQty": "0.001", "maxQty": "1000", "stepSize": "0.001"},
        {"filterType": "MIN_NOTIONAL", "notional": "100"},
    ],
}


def test_parse_recorded_spot_and_futures_filters() -> None:
    spot = parse_symbol_rules(SPOT_BTCUSDT)
    assert (spot.tick_size, spot.step_size, spot.min_notional) == (
        Decimal("0.01"),
        Decimal("0.00001"),
        Decimal("5"),
    )
    fut = parse_symbol_rules(FUTURES_BTCUSDT)
    assert (fut.tick_size, fut.min_price, fut.min_notional) == (
        Decimal("0.10"),
        Decimal("556.80"),
        Decimal("100"),
    )


def test_parse_spot_cancel_answer_uses_original_client_id() -> None:
    order = parse_order(
        {
            "symbol": "BTCUSDT",
            "origClientOrderId": "mine",
            "clientOrderId": "cxl",
            "orderId": 7,
            "price": "1.00",
            "origQty": "2",
            "executedQty": "0",
            "status": "CANCELED",
            "type": "LIMIT",
            "side": "SELL",
        }
    )
    assert order.client_order_id == "mine" and order.exchange_order_id == "7"


def test_quantise_rounds_buys_down_sells_up_and_quantity_down() -> None:
    r = parse_symbol_rules(FUTURES_BTCUSDT)
    assert r.quantize_price(Decimal("60000.17"), Side.BUY) == Decimal("60000.1")
    assert r.quantize_price(Decimal("60000.11"), Side.SELL) == Decimal("60000.2")
    assert r.quantize_quantity(Decimal("0.0029")) == Decimal("0.002")
    assert decimal_str(Decimal("60000.100")) == "60000.1"


def test_prepare_names_every_broken_filter() -> None:
    r = parse_symbol_rules(FUTURES_BTCUSDT)
    with pytest.raises(OrderDropped, match="min notional") as info:
        r.prepare(OrderIntent("BTCUSDT", Side.BUY, Decimal("100"), Decimal("0.0005"), "x"))
    assert "below min price" in str(info.value) and "below min qty" in str(info.value)


ticks = st.sampled_from(["0.01", "0.1", "0.5", "0.25", "1", "0.00001", "5"]).map(Decimal)
steps = st.sampled_from(["0.001", "0.00001", "0.1", "1", "0.5", "10"]).map(Decimal)


@st.composite
def rules(draw) -> SymbolRules:
    tick, step = draw(ticks), draw(steps)
    min_price = tick * draw(st.integers(1, 100))
    min_qty = step * draw(st.integers(1, 10))
    return SymbolRules(
        symbol="XYZ",
        base_asset="X",
        quote_asset="Y",
        tick_size=tick,
        step_size=step,
        min_qty=min_qty,
        max_qty=min_qty * 10**6,
        min_notional=Decimal(draw(st.integers(0, 200))),
        min_price=min_price,
        max_price=min_price * 10**6,
    )


prices = st.decimals(
    min_value=Decimal("0.000001"),
    max_value=Decimal("1e7"),
    places=6,
    allow_nan=False,
    allow_infinity=False,
)


@settings(max_examples=300, deadline=None)
@given(r=rules(), price=prices, qty=prices, side=st.sampled_from(list(Side)))
def test_prepared_orders_always_satisfy_every_filter(r, price, qty, side) -> None:
    intent = OrderIntent("XYZ", side, price, qty, "p")
    try:
        out = r.prepare(intent)
    except OrderDropped as exc:
        assert "dropped, not sent" in str(exc)
        return
    assert r.violations(out.price, out.quantity) == []
    assert out.quantity <= qty  # never more than asked
    assert (
        (out.price <= price) if side is Side.BUY else (out.price >= price)
    )  # never more aggressive
    assert abs(out.price - price) < r.tick_size
