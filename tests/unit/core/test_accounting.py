"""Position and average-cost accounting (``swarm_ray.core.accounting``)."""

from __future__ import annotations

import random
from decimal import Decimal

import pytest

from envs.market_making import apply_fill
from swarm_ray.core.accounting import CostBasis, PositionLedger, fee_in_quote, to_decimal
from swarm_ray.core.domain import Fill, Side

D = Decimal


def fill(side: Side, qty: str, price: str, fee: str = "0", fee_asset: str = "USDT", t: int = 0):
    return Fill("BTCUSDT", "1", "c", side, D(price), D(qty), D(fee), fee_asset, t)


def test_average_cost_through_open_add_reduce_flip_and_close() -> None:
    b, r = CostBasis().trade(D(2), D(100))
    assert (b, r) == (CostBasis(D(2), D(100)), 0)
    b, r = b.trade(D(2), D(110))
    assert (b, r) == (CostBasis(D(4), D(105)), 0)
    b, r = b.trade(D(-1), D(120))  # reducing keeps the entry and realises the closed part
    assert (b, r) == (CostBasis(D(3), D(105)), 15)
    b, r = b.trade(D(-5), D(90))  # through flat: the rest opens at the trade's price
    assert (b, r) == (CostBasis(D(-2), D(90)), -45)
    assert b.unrealized(D(80)) == 20  # a short gains as the price falls
    b, r = b.trade(D(2), D(95))
    assert (b, r) == (CostBasis(), -10)
    assert b.unrealized(D(1)) == 0 and b.entry_price is None


def test_matches_the_environments_float_average_cost() -> None:
    rnd = random.Random(7)
    basis, q, avg = CostBasis(), 0.0, 0.0
    for _ in range(500):
        qty = rnd.choice([-1, 1]) * rnd.randint(1, 40) / 1000
        price = rnd.randint(90_000, 110_000) / 1000
        basis, _ = basis.trade(to_decimal(qty), to_decimal(price))
        q, avg = apply_fill(q, avg, qty, price)
        q = 0.0 if abs(q) < 1e-12 else q
        assert float(basis.quantity) == pytest.approx(q, abs=1e-9)
        assert float(basis.entry_price or 0) == pytest.approx(avg if q else 0.0, rel=1e-9)


def test_ledger_books_cash_fees_and_pnl() -> None:
    led = PositionLedger()
    assert led.apply(fill(Side.BUY, "2", "100", "0.2", t=5), "BTC", "USDT") == 0
    assert led.apply(fill(Side.SELL, "1", "110", "0.001", "BTC", t=3), "BTC", "USDT") == 10
    led.apply(fill(Side.SELL, "0.5", "120", "7", "BNB", t=9), "BTC", "USDT")  # not valued
    assert (led.quantity, led.entry_price) == (D("0.5"), D(100))
    assert led.cash == D(-200 + 110 + 60)
    assert led.fees == D("0.2") + D("0.110")
    assert led.realized_pnl == 20
    assert (led.fills, led.last_fill_ms) == (3, 9)
    assert led.unrealized(130.0) == 15  # a float mark counts by its shortest repr
    assert led.pnl(D(130)) == led.realized_pnl + led.unrealized(D(130)) - led.fees


def test_fee_in_quote() -> None:
    assert fee_in_quote(fill(Side.BUY, "1", "50", "0.5"), "BTC", "USDT") == D("0.5")
    assert fee_in_quote(fill(Side.BUY, "1", "50", "0.01", "BTC"), "BTC", "USDT") == D("0.50")
    assert fee_in_quote(fill(Side.BUY, "1", "50", "1", "BNB"), "BTC", "USDT") == 0
    assert to_decimal(0.1) == D("0.1") and to_decimal(3) == 3 and to_decimal("1.5") == D("1.5")
