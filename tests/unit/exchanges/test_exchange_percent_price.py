"""PERCENT_PRICE / PERCENT_PRICE_BY_SIDE: parsing, the band, local dropping, the fake enforcing
it, and check-exchange choosing its far-from-market price inside the band."""

from __future__ import annotations

import time
from decimal import Decimal

import pytest
from binance.exceptions import BinanceAPIException
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from swarm_ray.commands.check_exchange import far_bid_price
from swarm_ray.core.domain import OrderIntent, Side
from swarm_ray.core.errors import OrderDropped
from swarm_ray.core.instruments import SymbolRules
from swarm_ray.exchanges.binance.parsing import parse_symbol_rules
from swarm_ray.exchanges.errors import DefiniteReject
from tests.conftest import run_check_exchange
from tests.fakes.binance_server import FakeBinance, exchange_on
from tests.unit.exchanges.test_exchange_rules import FUTURES_BTCUSDT, SPOT_BTCUSDT

D = Decimal
SPOT_WITH_BANDS = SPOT_BTCUSDT | {
    "filters": [
        *SPOT_BTCUSDT["filters"],
        {
            "filterType": "PERCENT_PRICE",
            "multiplierUp": "1.3000",
            "multiplierDown": "0.7000",
            "avgPriceMins": 5,
        },
        {
            "filterType": "PERCENT_PRICE_BY_SIDE",
            "bidMultiplierUp": "1.2",
            "bidMultiplierDown": "0.2",
            "askMultiplierUp": "5",
            "askMultiplierDown": "0.8",
            "avgPriceMins": 1,
        },
    ]
}
FUTURES_WITH_BAND = FUTURES_BTCUSDT | {
    "filters": [
        *FUTURES_BTCUSDT["filters"],
        {
            "filterType": "PERCENT_PRICE",
            "multiplierUp": "1.0500",
            "multiplierDown": "0.9500",
            "multiplierDecimal": "4",
        },
    ]
}


def test_parse_percent_price_filters() -> None:
    spot = parse_symbol_rules(SPOT_WITH_BANDS)
    assert spot.percent_price == (D("0.7"), D("1.3"))
    assert spot.percent_price_bid == (D("0.2"), D("1.2"))
    assert spot.percent_price_ask == (D("0.8"), D("5"))
    fut = parse_symbol_rules(FUTURES_WITH_BAND)
    assert fut.percent_price == (D("0.95"), D("1.05")) and fut.percent_price_bid is None
    assert not parse_symbol_rules(SPOT_BTCUSDT).has_price_band and fut.has_price_band


def test_band_is_the_tightest_filter_for_each_side() -> None:
    spot = parse_symbol_rules(SPOT_WITH_BANDS)
    ref = D("100")
    assert spot.price_band(Side.BUY, ref) == (D("70"), D("120"))  # 0.7 (PP) .. 1.2 (bid)
    assert spot.price_band(Side.SELL, ref) == (D("80"), D("130"))  # 0.8 (ask) .. 1.3 (PP)
    assert spot.price_band(None, ref) == (D("80"), D("120"))  # valid for either side
    assert spot.price_band(Side.BUY, None) == (D("0.01"), D("1000000"))  # PRICE_FILTER only


def test_violations_name_the_percent_filter_and_need_a_reference() -> None:
    spot = parse_symbol_rules(SPOT_WITH_BANDS)
    qty = D("1")
    assert spot.violations(D("69.99"), qty) == []  # no reference: not checked
    low = spot.violations(D("69.99"), qty, side=Side.BUY, reference_price=D("100"))
    assert len(low) == 1 and "below PERCENT_PRICE limit 70" in low[0]
    high = spot.violations(D("125"), qty, side=Side.BUY, reference_price=D("100"))
    assert len(high) == 1 and "above PERCENT_PRICE_BY_SIDE bid limit 120" in high[0]
    assert spot.violations(D("125"), qty, side=Side.SELL, reference_price=D("100")) == []
    sell_low = spot.violations(D("75"), qty, side=Side.SELL, reference_price=D("100"))
    assert ["PERCENT_PRICE_BY_SIDE ask" in v for v in sell_low] == [True]


def test_prepare_drops_out_of_band_orders_with_the_reason() -> None:
    fut = parse_symbol_rules(FUTURES_WITH_BAND)
    intent = OrderIntent("BTCUSDT", Side.BUY, D("54000"), D("0.01"), "far")
    assert fut.prepare(intent).price == D("54000")  # no reference: band unknown, not checked
    with pytest.raises(OrderDropped, match="below PERCENT_PRICE limit 57000"):
        fut.prepare(intent, reference_price=D("60000"))
    sell = OrderIntent("BTCUSDT", Side.SELL, D("63000.05"), D("0.01"), "hi")
    with pytest.raises(OrderDropped, match="above PERCENT_PRICE limit 63000"):
        fut.prepare(sell, reference_price=D("60000"))  # rounds up to 63000.1: out


mults = st.tuples(
    st.decimals(D("0.05"), D("1"), places=2), st.decimals(D("1"), D("5"), places=2)
).map(lambda t: (t[0], t[1]))


@st.composite
def banded_rules(draw) -> SymbolRules:
    tick = draw(st.sampled_from(["0.01", "0.1", "0.5", "1", "0.00001"]).map(D))
    step = draw(st.sampled_from(["0.001", "0.1", "1"]).map(D))
    min_price = tick * draw(st.integers(1, 100))
    return SymbolRules(
        symbol="XYZ",
        base_asset="X",
        quote_asset="Y",
        tick_size=tick,
        step_size=step,
        min_qty=step,
        max_qty=step * 10**9,
        min_notional=D(draw(st.integers(0, 50))),
        min_price=min_price,
        max_price=min_price * 10**7,
        percent_price=draw(st.none() | mults),
        percent_price_bid=draw(st.none() | mults),
        percent_price_ask=draw(st.none() | mults),
    )


positive = st.decimals(D("0.001"), D("1e6"), places=3, allow_nan=False, allow_infinity=False)


@settings(max_examples=200, deadline=None)
@given(
    r=banded_rules(),
    ref=positive,
    factor=st.decimals(D("0.01"), D("6"), places=3),  # price around the reference
    qty=positive,
    side=st.sampled_from(Side),
)
def test_prepared_orders_satisfy_the_band_around_the_reference(r, ref, factor, qty, side) -> None:
    price = ref * factor
    intent = OrderIntent("XYZ", side, price, qty, "p")
    try:
        out = r.prepare(intent, reference_price=ref)
    except OrderDropped as exc:
        assert "dropped, not sent" in str(exc)
        # dropped only when the quantised order really breaks a filter
        q, n = r.quantize_price(price, side), r.quantize_quantity(qty)
        assert r.violations(q, n, side=side, reference_price=ref) != []
        return
    assert r.violations(out.price, out.quantity, side=side, reference_price=ref) == []
    lo, hi = r.price_band(side, ref)
    assert lo <= out.price and (hi is None or out.price <= hi)


@settings(max_examples=200, deadline=None)
@given(r=banded_rules(), ref=positive, side=st.sampled_from(Side))
def test_band_edges_agree_with_violations(r, ref, side) -> None:
    lo, hi = r.price_band(side, ref)
    first = r.quantize_price(lo, Side.SELL)  # lowest tick-grid price >= lo
    if first == 0 or (hi is not None and first > hi):
        return  # empty band on the grid

    def price_problems(p: Decimal) -> list[str]:
        return [
            v
            for v in r.violations(p, r.min_qty * 1000, side=side, reference_price=ref)
            if v.startswith("price")
        ]

    assert price_problems(first) == []
    below = first - r.tick_size
    if below > 0:
        assert price_problems(below) != []
    if hi is not None:
        last = r.quantize_price(hi, Side.BUY)  # highest tick-grid price <= hi
        assert last >= first and price_problems(last) == []
        assert price_problems(last + r.tick_size) != []


@settings(max_examples=150, deadline=None)
@given(
    r=banded_rules(),
    ref=st.decimals(D("1"), D("1e5"), places=2),
    margin=st.decimals(D("0"), D("0.9"), places=2),
)
def test_far_bid_price_is_inside_the_band_and_below_the_bid(r, ref, margin) -> None:
    bid = r.quantize_price(ref, Side.BUY)
    assume(r.min_price <= bid <= r.max_price)  # a real market's bid passes PRICE_FILTER
    lo, _ = r.price_band(Side.BUY, ref)
    try:
        price = far_bid_price(r, bid, ref, margin)
    except RuntimeError:
        assert max(lo, r.tick_size) >= bid
        return
    assert price <= bid
    assert [
        v
        for v in r.violations(price, r.min_qty, side=Side.BUY, reference_price=ref)
        if v.startswith("price")
    ] == []


# ---------------------------------------------------------------- adapter and fake


@pytest.fixture
def fake():
    with FakeBinance() as f:
        yield f


def _orders_sent(fake: FakeBinance) -> int:
    return sum(1 for m, e, _ in fake.requests if (m, e) == ("POST", "order"))


@pytest.mark.parametrize(
    ("kind", "price", "reason"),
    [
        ("binance-spot", "47000", "PERCENT_PRICE_BY_SIDE bid"),
        ("binance-spot", "72500", "PERCENT_PRICE_BY_SIDE bid"),
        ("binance-futures", "56900", "PERCENT_PRICE limit"),
        ("binance-futures", "63100", "PERCENT_PRICE limit"),
    ],
)
def test_adapter_drops_out_of_band_orders_locally(fake, kind, price, reason) -> None:
    ex = exchange_on(fake, kind)
    try:
        with pytest.raises(OrderDropped, match=reason):
            ex.place_order(OrderIntent("BTCUSDT", Side.BUY, D(price), D("0.001"), "out"))
        assert _orders_sent(fake) == 0 and fake.accepted == {}
        # inside the band it goes through
        ex.place_order(OrderIntent("BTCUSDT", Side.BUY, D("58000"), D("0.001"), "in"))
        assert fake.accepted["in"] == 1
    finally:
        ex.close()


@pytest.mark.parametrize(
    ("kind", "price", "code", "msg"),
    [
        ("binance-spot", "47000.00", -1013, "Filter failure: PERCENT_PRICE_BY_SIDE"),
        ("binance-spot", "44000.00", -1013, "Filter failure: PERCENT_PRICE"),
        ("binance-futures", "56000.00", -4024, "lower than"),
        ("binance-futures", "64000.00", -4016, "higher than"),
    ],
)
def test_fake_enforces_the_band(fake, kind, price, code, msg) -> None:
    ex = exchange_on(fake, kind)
    create = ex._client.futures_create_order if ex.futures else ex._client.create_order
    try:
        with pytest.raises(BinanceAPIException) as info:
            create(
                symbol="BTCUSDT",
                side="BUY",
                type="LIMIT",
                timeInForce="GTC",
                quantity="0.001",
                price=price,
            )
        message = info.value.message
        assert info.value.code == code
        assert message == msg if msg.startswith("Filter") else msg in message
        assert fake.accepted == {}
    finally:
        ex.close()


def test_stale_reference_is_refreshed_before_checking(fake) -> None:
    ex = exchange_on(fake, "binance-futures", reference_price_max_age_s=0.05)
    try:
        ex.market_snapshot("BTCUSDT")  # reference 60000
        fake.set_book("BTCUSDT", "66000.00", "66000.01")  # the market moved 10% up
        time.sleep(0.1)
        with pytest.raises(OrderDropped, match="below PERCENT_PRICE limit 62700"):
            ex.place_order(OrderIntent("BTCUSDT", Side.BUY, D("60000"), D("0.001"), "old"))
        assert _orders_sent(fake) == 0
    finally:
        ex.close()


def test_fresh_but_wrong_reference_lets_the_venue_reject(fake) -> None:
    # the counterpart: within the age limit the last mid is trusted, and the venue has the
    # last word (a definite reject, not retried)
    ex = exchange_on(fake, "binance-futures", reference_price_max_age_s=60)
    try:
        ex.market_snapshot("BTCUSDT")
        fake.set_book("BTCUSDT", "66000.00", "66000.01")
        with pytest.raises(DefiniteReject) as info:
            ex.place_order(OrderIntent("BTCUSDT", Side.BUY, D("60000"), D("0.001"), "old"))
        assert info.value.code == -4024 and _orders_sent(fake) == 1
    finally:
        ex.close()


# ---------------------------------------------------------------- check-exchange


def _check(fake: FakeBinance, kind: str, capsys, *extra: str) -> tuple[int, dict]:
    return run_check_exchange(fake.url, kind, capsys, *extra)


@pytest.mark.parametrize(
    ("kind", "band", "lowest"),
    [
        ("binance-futures", (D("0.95"), D("1.05")), D("0.95")),
        ("binance-futures", (D("0.5"), D("1.5")), D("0.5")),
        ("binance-spot", None, D("0.8")),  # the fake's spot bid band 0.8..1.2
    ],
)
def test_check_exchange_bids_as_far_as_the_band_allows(
    fake, binance_keys, capsys, kind, band, lowest
):
    if band is not None:
        fake.futures_percent = band
    code, report = _check(fake, kind, capsys)
    assert code == 0 and report["ok"], report
    place = report["steps"][4]
    price, ref, bid = D(place["price"]), D(place["reference_price"]), D("60000")
    low = ref * lowest
    assert D(place["allowed_low"]) == low
    # inside the band, with the default 20% of the room as margin
    assert low < price <= low + (bid - low) * D("0.2")
    assert price > low + (bid - low) * D("0.19")
    assert fake.open_order_count() == 0


def test_check_exchange_margin_option_moves_the_price(fake, binance_keys, capsys) -> None:
    code, report = _check(fake, "binance-futures", capsys, "--margin", "0.5")
    assert code == 0
    assert D(report["steps"][4]["price"]) == D("58500.00")  # 57000.00475 + 0.5 * room, down


def test_check_exchange_distance_outside_the_band_fails_without_sending(fake, binance_keys, capsys):
    code, report = _check(fake, "binance-futures", capsys, "--distance", "0.10")
    assert code == 1 and not report["ok"]
    failed = report["steps"][-1]
    assert failed["step"] == "place order" and "below PERCENT_PRICE limit" in failed["detail"]
    assert "cleanup" not in report and _orders_sent(fake) == 0
