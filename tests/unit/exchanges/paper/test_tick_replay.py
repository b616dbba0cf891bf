"""The paper exchange's tick replay (``fill_model: queue``) on a small L2 recording written here:
queue position, partial fills in the account, trade-through, the opposite touch, latencies."""

from __future__ import annotations

import gzip
import json
from decimal import Decimal
from pathlib import Path

import pytest

from swarm_ray.core.clock import SimulatedClock
from swarm_ray.core.config import ConfigError
from swarm_ray.core.domain import OrderIntent, OrderStatus, OrderType, Side
from swarm_ray.exchanges.config import PaperConfig, PaperSymbolConfig
from swarm_ray.exchanges.paper import PaperExchange

S = "BTCUSDT"
T0 = 1_721_347_000_000  # ms


def _diff(t: int, u: int, bids=(), asks=()) -> str:
    d = {
        "e": "depthUpdate",
        "E": t,
        "T": t,
        "U": u - 1,
        "u": u,
        "pu": u - 1,
        "b": [list(x) for x in bids],
        "a": [list(x) for x in asks],
    }
    return json.dumps({"stream": "btcusdt@depth@0ms", "data": d})


def _trade(t: int, i: int, price: str, qty: str, taker_sell: bool) -> str:
    d = {"e": "trade", "E": t, "T": t, "t": i, "p": price, "q": qty, "m": taker_sell}
    return json.dumps({"stream": "btcusdt@trade", "data": d})


def recording(path: Path, lines: list[str]) -> str:
    snap = {
        "lastUpdateId": 100,
        "E": T0,
        "T": T0,
        "bids": [["100.0", "2.0"], ["99.9", "5.0"]],
        "asks": [["100.1", "3.0"], ["100.2", "4.0"]],
    }
    body = [json.dumps(snap), *lines]
    with gzip.open(path, "wt") as fh:
        for k, line in enumerate(body):
            fh.write(f"{(T0 + k) * 1_000_000} {line}\n")
    return str(path)


def exchange(tmp_path: Path, lines: list[str], **kw) -> tuple[PaperExchange, SimulatedClock]:
    f = recording(tmp_path / "rec.gz", lines)
    sym = PaperSymbolConfig(
        l2=(f,),
        tick_size=Decimal("0.1"),
        step_size=Decimal("0.001"),
        min_qty=Decimal("0.001"),
        min_notional=Decimal(0),
    )
    kw.setdefault("latency_ms", 0.0)
    cfg = PaperConfig(
        symbols={S: sym},
        fill_model="queue",
        leverage=10,
        initial_balances={"USDT": Decimal(100_000)},
        **kw,
    )
    clock = SimulatedClock(T0 * 1_000_000 + 500_000_000)
    return PaperExchange(cfg, clock), clock


def bid(price: str, qty: str, cid: str) -> OrderIntent:
    return OrderIntent(S, Side.BUY, Decimal(price), Decimal(qty), cid, OrderType.LIMIT_MAKER)


def test_trades_use_up_the_queue_ahead_then_fill_the_order_partly(tmp_path: Path) -> None:
    ex, clock = exchange(
        tmp_path,
        [
            _trade(T0 + 1000, 1, "100.0", "1.5", taker_sell=True),  # 2.0 ahead -> 0.5 ahead
            _trade(T0 + 2000, 2, "100.0", "0.6", taker_sell=True),  # 0.1 reaches us
            _trade(T0 + 2500, 3, "100.0", "0.5", taker_sell=False),  # a buyer: not against a bid
            _trade(T0 + 3000, 4, "100.0", "0.3", taker_sell=True),  # the rest (0.2 of it)
            _diff(T0 + 9000, 101, asks=[("100.1", "3.0")]),
        ],
    )
    ex.place_order(bid("100.0", "0.3", "b1"))
    clock.set((T0 + 2500) * 1_000_000)
    o = ex.get_order(S, "b1")
    assert o.status is OrderStatus.PARTIALLY_FILLED and o.filled_quantity == Decimal("0.1")
    # the partial fill is in the position and the wallet (fee included)
    assert ex.position(S).quantity == Decimal("0.1")
    clock.set((T0 + 3500) * 1_000_000)
    o = ex.get_order(S, "b1")
    assert o.status is OrderStatus.FILLED and o.filled_quantity == Decimal("0.3")
    fills = ex.fills_since(S, 0)
    assert [f.quantity for f in fills] == [Decimal("0.1"), Decimal("0.2")]
    assert all(f.is_maker and f.price == Decimal("100.0") for f in fills)
    assert ex.position(S).quantity == Decimal("0.3")
    fees = sum(f.fee for f in fills)
    assert fees == Decimal("0.3") * 100 * Decimal("2") / 10_000
    assert ex.balances()["USDT"].total == Decimal(100_000) - fees


def test_a_trade_through_the_price_fills_the_rest_at_once(tmp_path: Path) -> None:
    ex, clock = exchange(
        tmp_path,
        [
            _trade(T0 + 1000, 1, "99.9", "0.01", taker_sell=True),
            _diff(T0 + 9000, 101, asks=[("100.1", "3.0")]),
        ],
    )
    ex.place_order(bid("100.0", "0.5", "b1"))
    clock.set((T0 + 1500) * 1_000_000)
    [f] = ex.fills_since(S, 0)
    assert f.quantity == Decimal("0.5") and f.time_ms == T0 + 1000


def test_the_opposite_touch_reaching_the_price_fills_it(tmp_path: Path) -> None:
    ex, clock = exchange(
        tmp_path,
        [
            _diff(T0 + 1000, 101, asks=[("100.1", "0"), ("100.0", "1.0")], bids=[("100.0", "0")]),
            _diff(T0 + 9000, 102, asks=[("100.2", "4.0")]),
        ],
    )
    ex.place_order(bid("100.0", "0.2", "b1"))
    clock.set((T0 + 1500) * 1_000_000)
    [f] = ex.fills_since(S, 0)
    assert f.quantity == Decimal("0.2") and f.time_ms == T0 + 1000


def test_cancels_move_the_order_up_only_in_the_probabilistic_models(tmp_path: Path) -> None:
    lines = [
        _diff(T0 + 1000, 101, bids=[("100.0", "6.0")]),  # 4.0 joins behind the order
        _diff(T0 + 1500, 102, bids=[("100.0", "4.0")]),  # 2.0 cancelled: ahead or behind?
        _trade(T0 + 2000, 1, "100.0", "2.0", taker_sell=True),
        _diff(T0 + 9000, 103, asks=[("100.1", "3.0")]),
    ]
    # risk-averse: still 2.0 ahead, the trade only reaches the front of the order.
    # power_prob (n=2): 0.8 of the cancel was behind, 0.4 ahead: 1.6 ahead, 0.4 reaches it.
    for model, filled in (("risk_averse", Decimal(0)), ("power_prob", Decimal("0.2"))):
        ex, clock = exchange(tmp_path, lines, queue_model=model, queue_power=2.0)
        ex.place_order(bid("100.0", "0.2", "b1"))
        clock.set((T0 + 2500) * 1_000_000)
        assert ex.get_order(S, "b1").filled_quantity == filled, model
        ex.close()


def test_entry_and_feed_latency(tmp_path: Path) -> None:
    ex, clock = exchange(
        tmp_path,
        [
            _diff(T0 + 1000, 101, bids=[("100.0", "7.0")]),
            _trade(T0 + 1010, 1, "99.9", "0.01", taker_sell=True),
            _diff(T0 + 9000, 102, asks=[("100.1", "3.0")]),
        ],
        latency_ms=20.0,
        feed_latency_ms=300.0,
    )
    clock.set((T0 + 995) * 1_000_000)
    ex.place_order(bid("100.0", "0.1", "b1"))  # live at +1015: after the trade at +1010
    clock.set((T0 + 1200) * 1_000_000)
    # the 100.0 bid level changed at +1000 ms, but the trader sees the book as of +900 ms
    assert ex.market_snapshot(S).bids[0].qty == 2.0
    clock.set((T0 + 2000) * 1_000_000)
    assert ex.fills_since(S, 0) == []


def test_the_queue_model_needs_tick_data() -> None:
    with pytest.raises(ValueError, match=r"symbols\.BTCUSDT: fill_model 'queue' needs tick data"):
        PaperConfig(fill_model="queue")
    with pytest.raises(ValueError, match="queue_model"):
        PaperConfig(queue_model="fifo")  # type: ignore[arg-type]
    assert ConfigError  # the CLI reports both through ConfigError
