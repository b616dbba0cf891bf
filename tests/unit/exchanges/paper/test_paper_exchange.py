"""The paper exchange beyond the shared contract: replay against the env's fill model, fees and
balances, latency, no look-ahead, faults, persistence, config errors, the end of the replay."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pytest

from envs.data.klines import load_klines
from envs.data.l2 import iter_events
from envs.market_making import MarketMakingEnv
from swarm_ray.core.clock import SimulatedClock
from swarm_ray.core.config import ConfigError, parse_config
from swarm_ray.core.domain import OrderIntent, OrderStatus, OrderType, Side
from swarm_ray.exchanges import build_exchange
from swarm_ray.exchanges.config import ExchangeConfig, PaperConfig, PaperSymbolConfig
from swarm_ray.exchanges.errors import DefiniteReject, ExchangeError, OrderNotFound
from swarm_ray.exchanges.paper import PaperExchange, ReplayFinished, ReplayNotStarted
from tests.conftest import ROOT

DAY = "data/binance-spot-1m/BTCUSDT-1m-2024-08-20.csv"
L2 = ("data/binance-l2/spot/btcusdt_20240808.gz", "data/binance-l2/spot/btcusdt_20240809.gz")
S = "BTCUSDT"
MIN = 60_000_000_000
QTY = Decimal("0.005")
BPS = Decimal("0.0001")


def paper(clock: SimulatedClock | None = None, **kw) -> tuple[PaperExchange, SimulatedClock]:
    """BTCUSDT on one real day, the clock at the first bar's close."""
    kw.setdefault("symbols", {S: PaperSymbolConfig(klines=(DAY,))})
    kw.setdefault("initial_balances", {"USDT": Decimal(100_000), "BTC": Decimal(1)})
    clock = clock or SimulatedClock()
    ex = PaperExchange(PaperConfig(**kw), clock)
    if clock.now_ns() < ex.replay_start_ns():
        clock.set(ex.replay_start_ns())
    return ex, clock


def bars() -> pd.DataFrame:
    return load_klines(DAY).reset_index(drop=True)


def dec(x: float) -> Decimal:
    return Decimal(repr(float(x)))


def buy(price: Decimal, cid: str, qty: Decimal = QTY, kind: OrderType = OrderType.LIMIT):
    return OrderIntent(S, Side.BUY, price, qty, cid, kind)


def sell(price: Decimal, cid: str, qty: Decimal = QTY, kind: OrderType = OrderType.LIMIT):
    return OrderIntent(S, Side.SELL, price, qty, cid, kind)


def through_bar(after: int, side: Side) -> tuple[int, Decimal]:
    """The first bar i after ``after`` that trades through a quote 1 USD inside its range which,
    placed at bar i-1's close, rests (does not cross the book): a buy at low + 1, a sell at
    high - 1. Returns i and that price."""
    df = bars()
    for i in range(after + 1, len(df)):
        if side is Side.BUY and dec(df.low[i]) + 1 < dec(df.close[i - 1]) - 1:
            return i, dec(df.low[i]) + 1
        if side is Side.SELL and dec(df.high[i]) - 1 > dec(df.close[i - 1]) + 1:
            return i, dec(df.high[i]) - 1
    raise AssertionError("no such bar")


# ---------------------------------------------------------------- replay = the env's fill model


def test_kline_replay_fills_exactly_as_the_env_steps_on_the_same_bars() -> None:
    n, start = 120, 300
    env = MarketMakingEnv(
        {
            "preset": "replay",
            "n_steps": n,
            "max_inventory": 100.0,
            "midprice": {"files": [DAY]},
            "fees": {"maker_bps": 2.0},
        }
    )
    env.reset(seed=0, options={"start": start})
    ex, clock = paper(market="spot")
    times = ex.replay_times_ns(S)
    u0, b0 = ex.balances()["USDT"].total, ex.balances()["BTC"].total
    distances = [Decimal("3"), Decimal("7.5"), Decimal("15"), Decimal("30")]
    fills = 0
    for t in range(n):
        clock.set(times[start + t])
        assert ex.market_snapshot(S).mid == pytest.approx(env.mid, abs=1e-9)
        mid, d = dec(env.mid), distances[t % len(distances)]
        ex.cancel_all(S)
        ex.place_order(buy(mid - d, f"b{t}"))
        ex.place_order(sell(mid + d, f"a{t}"))
        *_, info = env.step_quotes(float(d), float(d))
        clock.set(times[start + t + 1])
        got = tuple(ex.get_order(S, f"{s}{t}").status is OrderStatus.FILLED for s in "ba")
        assert got == (info["bid_filled"], info["ask_filled"]), f"step {t}"
        fills += sum(got)
    assert fills > 50  # the comparison is not vacuous
    bal = ex.balances()
    assert float(bal["USDT"].total - u0) == pytest.approx(env.cash, abs=1e-6)
    assert float(bal["BTC"].total - b0) == pytest.approx(env.inventory, abs=1e-12)


def test_touch_fill_prob_thins_fills_deterministically_per_seed() -> None:
    def run(p: float, seed: int) -> list[str]:
        ex, clock = paper(touch_fill_prob=p, seed=seed)
        times = ex.replay_times_ns(S)
        for t in range(100, 160):
            clock.set(times[t])
            mid = dec(ex.market_snapshot(S).mid)
            ex.cancel_all(S)
            ex.place_order(buy(mid - 5, f"b{t}"))
            ex.place_order(sell(mid + 5, f"a{t}"))
        clock.set(times[160])
        return [f.client_order_id for f in ex.fills_since(S, 0)]

    always, half, never = run(1.0, 0), run(0.5, 0), run(0.0, 0)
    assert never == [] and set(half) < set(always)
    assert 0.25 < len(half) / len(always) < 0.75
    assert run(0.5, 0) == half and run(0.5, 1) != half


# ---------------------------------------------------------------- fees and balances


def test_spot_maker_fill_settles_funds_and_fee_exactly() -> None:
    ex, clock = paper(market="spot")
    i, price = through_bar(0, Side.BUY)
    clock.set(ex.replay_times_ns(S)[i - 1])
    order = ex.place_order(buy(price, "m1"))
    held = QTY * price * (1 + 5 * BPS)  # locked at the order price, with room for the fee
    assert ex.balances()["USDT"].locked == held
    assert ex.balances()["USDT"].free == 100_000 - held
    clock.set(ex.replay_times_ns(S)[i])
    [fill] = ex.fills_since(S, 0)
    fee = QTY * price * 2 * BPS
    assert (fill.price, fill.quantity, fill.fee, fill.fee_asset) == (price, QTY, fee, "USDT")
    assert fill.is_maker and fill.client_order_id == "m1" and order.exchange_order_id
    bal = ex.balances()
    assert bal["USDT"] == type(bal["USDT"])("USDT", 100_000 - QTY * price - fee, Decimal(0))
    assert bal["BTC"].total == 1 + QTY and ex.position(S).quantity == 1 + QTY


def test_market_and_crossing_limit_orders_fill_at_the_touch_as_taker() -> None:
    ex, _ = paper(market="spot")
    snap = ex.market_snapshot(S)
    ask, bid = dec(snap.best_ask), dec(snap.best_bid)
    m = ex.place_order(buy(ask, "mkt", kind=OrderType.MARKET))
    x = ex.place_order(sell(bid - 100, "cross"))  # crosses: fills at the bid, not its limit
    assert m.status is OrderStatus.FILLED and x.status is OrderStatus.FILLED
    f_m, f_x = ex.fills_since(S, 0)
    assert (f_m.price, f_m.is_maker, f_m.fee) == (ask, False, QTY * ask * 5 * BPS)
    assert (f_x.price, f_x.is_maker, f_x.fee) == (bid, False, QTY * bid * 5 * BPS)
    usdt = ex.balances()["USDT"]
    assert usdt.locked == 0
    assert usdt.free == 100_000 - QTY * ask - f_m.fee + QTY * bid - f_x.fee


def test_futures_round_trip_realises_pnl_and_margin_follows_the_position() -> None:
    ex, clock = paper(market="futures", leverage=5, initial_balances={"USDT": Decimal(1000)})
    ask = dec(ex.market_snapshot(S).best_ask)
    ex.place_order(buy(ask, "open", kind=OrderType.MARKET))
    pos = ex.position(S)
    assert (pos.quantity, pos.entry_price) == (QTY, ask)
    fee_open = QTY * ask * 5 * BPS
    usdt = ex.balances()["USDT"]
    assert usdt.total == 1000 - fee_open and usdt.locked == QTY * ask / 5
    i, price = through_bar(5, Side.SELL)
    clock.set(ex.replay_times_ns(S)[i - 1])
    ex.place_order(sell(price, "close"))
    clock.set(ex.replay_times_ns(S)[i])
    pos = ex.position(S)
    assert (pos.quantity, pos.entry_price, pos.unrealized_pnl) == (0, None, 0)
    fee_close = QTY * price * 2 * BPS
    usdt = ex.balances()["USDT"]
    assert usdt.total == 1000 + QTY * (price - ask) - fee_open - fee_close
    assert usdt.locked == 0 and usdt.free == usdt.total


def test_futures_short_position_and_insufficient_margin() -> None:
    ex, _ = paper(market="futures", leverage=2, initial_balances={"USDT": Decimal(200)})
    bid = dec(ex.market_snapshot(S).best_bid)
    ex.place_order(sell(bid, "short", kind=OrderType.MARKET))
    assert ex.position(S).quantity == -QTY
    with pytest.raises(DefiniteReject, match="Margin is insufficient") as exc:
        ex.place_order(sell(bid + 500, "more"))  # 0.005 * 60k / 2 = 150 > what is left
    assert exc.value.code == -2019
    # reducing the position needs no margin
    assert ex.place_order(buy(bid - 500, "reduce")).status is OrderStatus.NEW


def test_spot_insufficient_balance_is_a_definite_reject_naming_the_asset() -> None:
    ex, _ = paper(market="spot", initial_balances={"USDT": Decimal(100)})
    bid = dec(ex.market_snapshot(S).best_bid)
    with pytest.raises(DefiniteReject, match=r"insufficient balance.*USDT"):
        ex.place_order(buy(bid - 100, "big", qty=Decimal("0.01")))
    with pytest.raises(DefiniteReject, match=r"insufficient balance.*BTC"):
        ex.place_order(sell(bid + 100, "no-btc"))
    assert ex.get_order(S, "big") is None and ex.open_orders(S) == []
    assert ex.balances()["USDT"].free == 100


# ---------------------------------------------------------------- order rules


def test_duplicate_client_id_post_only_crossing_and_unknown_symbol_are_rejected() -> None:
    ex, _ = paper()
    snap = ex.market_snapshot(S)
    bid, ask = dec(snap.best_bid), dec(snap.best_ask)
    ex.place_order(buy(bid - 50, "dup"))
    ex.cancel_order(S, "dup")
    with pytest.raises(DefiniteReject, match="Duplicate") as exc:
        ex.place_order(buy(bid - 60, "dup"))  # even once the first is final
    assert exc.value.code == -2010
    with pytest.raises(DefiniteReject, match="immediately match"):
        ex.place_order(buy(ask, "pm", kind=OrderType.LIMIT_MAKER))
    assert ex.get_order(S, "pm") is None
    ok = ex.place_order(buy(bid, "pm2", kind=OrderType.LIMIT_MAKER))
    assert ok.status is OrderStatus.NEW and ok.order_type is OrderType.LIMIT_MAKER
    with pytest.raises(DefiniteReject, match="unknown symbol"):
        ex.market_snapshot("ETHUSDT")
    with pytest.raises(OrderNotFound):
        ex.cancel_order(S, "never")


def test_injected_trade_fills_partially_best_price_first() -> None:
    ex, _ = paper()
    bid = dec(ex.market_snapshot(S).best_bid)
    ex.place_order(buy(bid - 10, "hi", qty=Decimal("0.002")))
    ex.place_order(buy(bid - 20, "lo", qty=Decimal("0.002")))
    assert ex.inject_trade(S, bid - 30, qty="0.003") == 2
    assert ex.get_order(S, "hi").status is OrderStatus.FILLED
    lo = ex.get_order(S, "lo")
    assert lo.status is OrderStatus.PARTIALLY_FILLED and lo.filled_quantity == Decimal("0.001")
    assert ex.cancel_order(S, "lo").status is OrderStatus.CANCELED
    assert ex.cancel_order(S, "hi").status is OrderStatus.FILLED  # final: its final state
    assert [f.trade_id for f in ex.fills_since(S, 0)] == ["1", "2"]


# ---------------------------------------------------------------- latency and look-ahead


def test_an_order_cannot_fill_on_a_bar_that_closed_before_it_went_live() -> None:
    df = bars()
    i, price = through_bar(10, Side.BUY)
    later = next(k for k in range(i + 1, len(df)) if dec(df.low[k]) < price)
    for latency, fill_bar in ((5.0, i), (20.0, later)):
        ex, clock = paper(latency_ms=latency)
        times = ex.replay_times_ns(S)
        clock.set(times[i] - 10_000_000)  # sent 10 ms before bar i closes
        ex.place_order(buy(price, "late"))
        clock.set(times[i])
        assert (ex.get_order(S, "late").status is OrderStatus.FILLED) is (fill_bar == i)
        clock.set(times[later])
        [fill] = ex.fills_since(S, 0)
        assert fill.time_ms * 1_000_000 == times[fill_bar], f"latency {latency} ms"


def test_a_cancel_that_arrives_after_the_market_traded_through_finds_the_order_filled() -> None:
    i, price = through_bar(20, Side.BUY)
    for latency, final in ((20.0, OrderStatus.FILLED), (0.0, OrderStatus.CANCELED)):
        ex, clock = paper()
        ex.set_latency(latency)
        clock.set(ex.replay_times_ns(S)[i - 1])
        ex.place_order(buy(price, "race"))
        clock.set(ex.replay_times_ns(S)[i] - 10_000_000)  # 10 ms before the bar that fills it
        assert ex.open_orders(S)[0].client_order_id == "race"
        assert ex.cancel_order(S, "race").status is final, f"latency {latency} ms"


def test_snapshots_and_klines_show_only_bars_closed_by_now() -> None:
    ex, clock = paper()
    df = bars()
    times = ex.replay_times_ns(S)
    k = 200
    for now, last in ((times[k] - 1, k - 1), (times[k], k), (times[k] + 59 * 10**9, k)):
        clock.set(now)
        snap = ex.market_snapshot(S)
        assert snap.time_ns == times[last] <= now
        assert snap.last_price == df.close[last] and snap.mid == pytest.approx(df.close[last])
        kl = ex.recent_klines(S, "1m", 5)
        assert [x.close for x in kl] == df.close[last - 4 : last + 1].tolist()
        assert kl[-1].close_time_ms * 1_000_000 <= now
        assert kl[-1].trades == df.number_of_trades[last]
    five = ex.recent_klines(S, "5m", 2)  # the last 5m candle holds only the closed minutes
    assert five[-1].open_time_ms == int(df.open_time_ms[200]) and five[-1].close == df.close[k]
    assert five[-1].high == df.high[200 : k + 1].max()
    assert five[0].volume == pytest.approx(df.volume[195:200].sum())
    with pytest.raises(ValueError, match="1m bars"):
        ex.recent_klines(S, "1s")


def test_kline_book_is_the_close_plus_minus_half_spread_on_ticks() -> None:
    ex, _ = paper(
        symbols={S: PaperSymbolConfig(klines=(DAY,), half_spread=Decimal("0.015"), book_levels=3)}
    )
    snap = ex.market_snapshot(S, depth=10)
    close = dec(bars().close[0])
    assert dec(snap.best_bid) == close - Decimal("0.02")
    assert dec(snap.best_ask) == close + Decimal("0.02")
    assert [dec(b.price) for b in snap.bids] == [close - Decimal(c) / 100 for c in (2, 3, 4)]
    assert [dec(a.price) for a in snap.asks] == [close + Decimal(c) / 100 for c in (2, 3, 4)]


# ---------------------------------------------------------------- faults and the end


@pytest.mark.parametrize("kind", ["nan", "crossed", "stale", "frozen"])
def test_injected_snapshot_faults_make_problems_until_cleared(kind: str) -> None:
    ex, clock = paper()
    max_age = 120 * 10**9
    assert ex.market_snapshot(S).problems(clock.now_ns(), max_age) == []
    ex.inject_snapshot_fault(S, kind)
    clock.advance(5 * MIN)  # a frozen feed shows its age
    assert ex.market_snapshot(S).problems(clock.now_ns(), max_age) != []
    ex.clear_faults(S)
    assert ex.market_snapshot(S).problems(clock.now_ns(), max_age) == []
    with pytest.raises(ValueError, match="unknown fault"):
        ex.inject_snapshot_fault(S, "gremlins")


def test_replay_not_started_and_finished_are_clear_errors() -> None:
    clock = SimulatedClock(1)
    ex = PaperExchange(PaperConfig(), clock)
    with pytest.raises(ReplayNotStarted, match="starts at"):
        ex.market_snapshot(S)
    clock.set(ex.replay_end_ns(S))
    assert ex.market_snapshot(S).time_ns == ex.replay_end_ns(S)
    with pytest.raises(ReplayFinished):  # an order would arrive after the data ends
        ex.place_order(buy(Decimal(50_000), "late"))
    clock.advance(1)
    with pytest.raises(ReplayFinished, match="ended"):
        ex.market_snapshot(S)
    assert issubclass(ReplayFinished, ExchangeError)
    ex.cancel_all(S)  # the account still answers


# ---------------------------------------------------------------- persistence


def test_state_round_trip_restores_the_account_and_the_replay_goes_on(tmp_path: Path) -> None:
    state = str(tmp_path / "paper.db")
    ex, clock = paper(market="futures", state_path=state)
    times = ex.replay_times_ns(S)
    ask = dec(ex.market_snapshot(S).best_ask)
    ex.place_order(buy(ask, "m", kind=OrderType.MARKET))
    ex.place_order(sell(ask + 500, "c"))
    ex.cancel_order(S, "c")
    i, price = through_bar(30, Side.BUY)
    clock.set(times[i - 1])
    ex.place_order(buy(price, "rest"))
    before = (ex.balances(), ex.position(S), ex.fills_since(S, 0), ex.open_orders(S))
    # no close(): a crash right after the call returned
    clock2 = SimulatedClock(clock.now_ns())
    ex2, _ = paper(clock2, market="futures", state_path=state)
    after = (ex2.balances(), ex2.position(S), ex2.fills_since(S, 0), ex2.open_orders(S))
    assert after == before
    assert ex2.get_order(S, "c").status is OrderStatus.CANCELED
    with pytest.raises(DefiniteReject, match="Duplicate"):
        ex2.place_order(buy(price, "rest"))
    clock2.set(times[i])  # the restored order meets the bar that trades through it
    assert ex2.get_order(S, "rest").status is OrderStatus.FILLED
    assert [f.trade_id for f in ex2.fills_since(S, 0)] == ["1", "2"]
    ex2.close()
    with pytest.raises(ExchangeError, match="other symbols, data or market"):
        paper(market="spot", state_path=state)


def test_an_order_accepted_just_before_a_crash_is_found_at_the_venue(tmp_path: Path) -> None:
    state = str(tmp_path / "paper.db")
    script = textwrap.dedent(
        f"""
        from decimal import Decimal
        from swarm_ray.core.domain import OrderIntent, Side
        from swarm_ray.exchanges.config import PaperConfig
        from swarm_ray.exchanges.paper import PaperExchange
        ex = PaperExchange(PaperConfig(state_path={state!r}))
        ex.crash_after_next_accept(exit_code=70)
        ex.place_order(OrderIntent("BTCUSDT", Side.BUY, Decimal(50000), Decimal("0.001"), "x1"))
        print("returned")
        """
    )
    root = ROOT
    proc = subprocess.run(
        [sys.executable, "-c", script], cwd=root, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 70 and "returned" not in proc.stdout, proc.stderr
    ex = PaperExchange(PaperConfig(state_path=state))
    order = ex.get_order(S, "x1")
    assert order is not None and order.status is OrderStatus.NEW
    assert [o.client_order_id for o in ex.open_orders(S)] == ["x1"]


# ---------------------------------------------------------------- config


@pytest.mark.parametrize(
    ("paper_section", "field"),
    [
        ({"symbols": {S: {"klines": ["nope.csv"]}}}, f"paper.symbols.{S}.klines"),
        ({"symbols": {S: {}}}, f"paper.symbols.{S}"),
        ({"symbols": {"X": {"source_symbol": S}}}, "source_symbol"),
        ({"symbols": {S: {"klines": [DAY], "tick_size": 0}}}, f"paper.symbols.{S}.tick_size"),
        ({"latency_ms": -1}, "paper.latency_ms"),
        ({"maker_fee_bps": "lots"}, "paper.maker_fee_bps"),
        ({"market": "options"}, "paper.market"),
        ({"touch_fill_prob": 2}, "paper.touch_fill_prob"),
        ({"initial_balances": {"USDT": -1}}, "paper.initial_balances"),
        ({"latency": 5}, "paper.latency"),
    ],
)
def test_bad_paper_config_names_the_field(paper_section: dict, field: str) -> None:
    with pytest.raises(ConfigError, match=field.replace(".", r"\.")):
        parse_config(ExchangeConfig, {"kind": "paper", "paper": paper_section})


def test_default_config_builds_a_paper_exchange_on_a_bundled_day() -> None:
    ex = build_exchange(ExchangeConfig())
    assert isinstance(ex, PaperExchange) and ex.name == "paper-futures"
    assert isinstance(ex.clock, SimulatedClock) and ex.clock.now_ns() == ex.replay_start_ns()
    assert ex.market_snapshot(S).problems() == []
    assert len(ex.replay_times_ns(S)) == 1440


def test_synthetic_symbols_share_one_day_with_their_own_offset_and_assets() -> None:
    ex, clock = paper(
        market="spot",
        symbols={
            S: PaperSymbolConfig(klines=(DAY,)),
            "SYM001": PaperSymbolConfig(source_symbol=S, time_offset_ms=60_000),
        },
        initial_balances={"USDT": Decimal(1000)},
    )
    assert ex.symbol_rules("SYM001").base_asset == "SYM001"
    assert ex.replay_start_ns("SYM001") == ex.replay_start_ns(S) + MIN
    with pytest.raises(ReplayNotStarted):
        ex.market_snapshot("SYM001")
    clock.advance(MIN)
    a, b = ex.market_snapshot(S), ex.market_snapshot("SYM001")
    assert b.time_ns == a.time_ns and dec(b.best_bid) == dec(bars().close[0]) - Decimal("0.01")
    assert a.last_price == bars().close[1] and b.last_price == bars().close[0]
    ex.place_order(OrderIntent("SYM001", Side.BUY, dec(b.best_ask), QTY, "s1", OrderType.MARKET))
    assert ex.position("SYM001").quantity == QTY and ex.position(S).quantity == 0


def test_align_to_clock_starts_the_replay_at_the_clock() -> None:
    clock = SimulatedClock(1_900_000_000 * 10**9)
    ex, _ = paper(clock, align_to_clock=True)
    assert ex.replay_start_ns() == clock.now_ns()
    assert ex.market_snapshot(S).best_ask == pytest.approx(bars().close[0] + 0.01)


# ---------------------------------------------------------------- L2 replay


def test_l2_replay_shows_the_real_book_and_fills_on_real_trades() -> None:
    ex, clock = paper(symbols={S: PaperSymbolConfig(l2=L2)})
    sent = ex.replay_start_ns(S) + 90 * 10**9
    clock.set(sent)
    book, trades = None, []
    for ev in iter_events(list(L2), depth=5):
        if ev.kind == "book" and ev.exchange_time_ms and ev.exchange_time_ms * 10**6 <= sent:
            book = ev
        elif ev.kind == "trade":
            trades.append(ev.trade)
    snap = ex.market_snapshot(S, depth=5)
    assert book is not None and (snap.best_bid, snap.best_ask) == (book.best_bid, book.best_ask)
    assert [(b.price, b.qty) for b in snap.bids] == list(book.bids)
    assert [(a.price, a.qty) for a in snap.asks] == list(book.asks)
    # a bid 2 USD under the touch fills on the first real trade strictly below it once live
    price = dec(snap.best_bid) - 2
    ex.place_order(buy(price, "l2"))
    clock.set(ex.replay_end_ns(S))
    [fill] = ex.fills_since(S, 0)
    live_ms = sent // 10**6 + 20
    first = next(t for t in trades if t.time_ms > live_ms and t.price < float(price))
    assert fill.time_ms == first.time_ms and fill.price == price and fill.is_maker


def test_l2_one_minute_klines_equal_the_venue_klines() -> None:
    """The recorded trades rebuild the published 1m bars (see data/PROVENANCE.md)."""
    ex, clock = paper(symbols={S: PaperSymbolConfig(l2=L2)})
    clock.set(ex.replay_end_ns(S))
    day = load_klines("data/binance-spot-1m/BTCUSDT-1m-2024-08-09.csv").reset_index(drop=True)
    got = {k.open_time_ms: k for k in ex.recent_klines(S, "1m", 20)}
    for r in day.iloc[1:4].itertuples():  # whole minutes inside the recording
        k = got[r.open_time_ms]
        assert (k.open, k.high, k.low, k.close) == (r.open, r.high, r.low, r.close)
        assert k.volume == pytest.approx(r.volume) and k.trades == r.number_of_trades
        assert k.taker_buy_volume == pytest.approx(r.taker_buy_base_volume)
