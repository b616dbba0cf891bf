"""Trades and best bid/ask files (the data site's aggTrades and bookTicker) as a tick tape: the
paper exchange, the environment and the tick backtest replay them with the queue model."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pandas as pd
import pytest

from envs.data.l2 import iter_events
from envs.data.l2.tape import TickTape, load_tick_tape
from envs.data.ticks import l2_to_ticks, load_book_ticker, load_trades_csv
from envs.market_making import MarketMakingEnv
from swarm_ray.core.clock import SimulatedClock
from swarm_ray.core.domain import OrderIntent, OrderType, Side
from swarm_ray.exchanges.config import PaperConfig, PaperSymbolConfig
from swarm_ray.exchanges.paper import PaperExchange

FILES = ("data/binance-l2/usdm/btcusdt_20240718.gz", "data/binance-l2/usdm/btcusdt_20240719.gz")


@pytest.fixture(scope="module")
def ticks(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return l2_to_ticks(FILES, tmp_path_factory.mktemp("ticks"), "BTCUSDT")


def test_the_files_hold_the_recordings_trades_and_touch(ticks: tuple[Path, Path]) -> None:
    trades, tickers = load_trades_csv([ticks[0]]), load_book_ticker([ticks[1]])
    recorded = [ev for ev in iter_events(list(FILES), depth=0) if ev.kind != "book"]
    n_trades = sum(ev.kind == "trade" for ev in recorded)
    assert len(trades) == n_trades and len(tickers) == len(recorded) - n_trades
    tape = TickTape.from_ticks(trades, tickers)
    assert tape.touch_only and len(tape.trade_ms) == n_trades
    # every book is a recorded touch, with its sizes
    first = next(ev.ticker for ev in recorded if ev.kind == "ticker")
    assert tape.bids[0] == ((first.bid, first.bid_qty),)
    assert tape.asks[0] == ((first.ask, first.ask_qty),)
    i = len(tape.book_ms) // 2
    bid, size = tape.bids[i][0]
    assert tape.level_qty(True, bid, i) == size
    # behind the touch and never seen there: estimated by the touch's size
    assert tape.level_qty(True, round(bid - 1000.0, 1), i) == size
    assert tape.level_qty(True, round(bid + 1000.0, 1), i) == 0.0  # better than the touch


def test_microsecond_times_read_as_milliseconds(tmp_path: Path, ticks: tuple[Path, Path]) -> None:
    df = pd.read_csv(ticks[0])
    df["transact_time"] = df["transact_time"] * 1000  # the spot site's 2025 format
    us = tmp_path / "BTCUSDT-aggTrades-us.csv"
    df.to_csv(us, index=False)
    assert (load_trades_csv([us])["time_ms"] == load_trades_csv([ticks[0]])["time_ms"]).all()


def test_paper_exchange_and_env_replay_them_with_the_queue(ticks: tuple[Path, Path]) -> None:
    tape = load_tick_tape([ticks[0]], [ticks[1]])
    sym = PaperSymbolConfig(trades=(str(ticks[0]),), book_ticker=(str(ticks[1]),),
                            tick_size=Decimal("0.1"), step_size=Decimal("0.001"),
                            min_qty=Decimal("0.001"), min_notional=Decimal(0))  # fmt: skip
    cfg = PaperConfig(symbols={"BTCUSDT": sym}, fill_model="queue", latency_ms=0.0,
                      leverage=100, initial_balances={"USDT": Decimal(10**7)})  # fmt: skip
    t0 = tape.book_ms[100]
    clock = SimulatedClock(t0 * 1_000_000)
    ex = PaperExchange(cfg, clock)
    snap = ex.market_snapshot("BTCUSDT")
    assert (snap.best_bid, snap.best_ask) == (tape.best_bid[100], tape.best_ask[100])
    ex.place_order(OrderIntent("BTCUSDT", Side.BUY, Decimal(repr(snap.best_bid)),
                               Decimal("0.01"), "b1", OrderType.LIMIT_MAKER))  # fmt: skip
    clock.set(tape.book_ms[-1] * 1_000_000)
    assert ex.get_order("BTCUSDT", "b1").filled_quantity > 0  # the price came down through it
    env = MarketMakingEnv({
        "preset": "replay", "n_steps": 200, "max_inventory": 10.0,
        "midprice": {"kind": "tick", "trades": [str(ticks[0])], "book_ticker": [str(ticks[1])],
                     "tick_size": 0.1, "lot_size": 0.001, "random_start": False},
        "fills": {"kind": "queue"},
        "actions": {"unit": "bps", "tight": 0.1, "wide": 1.0, "order_size": 0.01},
    })  # fmt: skip
    env.reset(options={"start": 0})
    fills = 0
    for _ in range(200):
        fills += len(env.step(1)[4]["fills"])
    assert fills > 0


def test_config_errors_name_the_fields(ticks: tuple[Path, Path]) -> None:
    with pytest.raises(ValueError, match="trades and book_ticker go together"):
        PaperSymbolConfig(trades=(str(ticks[0]),))
    with pytest.raises(ValueError, match="exactly one of klines, l2, trades"):
        PaperSymbolConfig(trades=(str(ticks[0]),), book_ticker=(str(ticks[1]),), l2=FILES)
    with pytest.raises(ValueError, match="go together"):
        mid = {"kind": "tick", "trades": [str(ticks[0])], "tick_size": 0.1}
        MarketMakingEnv({"preset": "replay", "midprice": mid, "fills": {"kind": "queue"}})
