"""Live features equal the training features on a real day; the analysis features' windows are
pandas' trailing windows; the quote ladder and order diff."""

from __future__ import annotations

from decimal import Decimal

import numpy as np
import pandas as pd
import pytest

from envs.actions import Action
from envs.data.klines import load_klines
from envs.features import INVENTORY, MARKET_COLUMNS, TIME_LEFT, market_features
from swarm_ray.core.domain import Order, OrderStatus, OrderType, Side
from swarm_ray.core.instruments import Kline, SymbolRules
from swarm_ray.features.analysis import FEATURE_NAMES, analysis_features
from swarm_ray.features.observation import WINDOW, BarWindow, ObservationSpec, agent_observation
from swarm_ray.trading.quoting import QuotingParams, diff_orders, ladder
from tests.conftest import kline_day

RULES = SymbolRules("BTCUSDT", "BTC", "USDT", Decimal("0.01"), Decimal("0.00001"),
                    Decimal("0.00001"), Decimal("9000"), Decimal("5"))  # fmt: skip


@pytest.fixture(scope="module")
def day():
    return load_klines([kline_day("13")])


def _bars(df, lo: int, hi: int) -> list[Kline]:
    rows = df.iloc[lo:hi]
    return [
        Kline(int(r.open_time_ms), r.open, r.high, r.low, r.close, r.volume,
              int(r.open_time_ms) + 59_999, int(r.number_of_trades), r.taker_buy_base_volume)
        for r in rows.itertuples()
    ]  # fmt: skip


@pytest.mark.parametrize("t", [60, 61, 300, 777, 1439])
def test_live_features_match_the_training_features_of_the_same_bar(day, t) -> None:
    ref_vol, mean_vol = 1.2e-4, float(day["volume"].mean())
    spec = ObservationSpec(ref_vol, 10.0, mean_vol, 0.005, 0.05, 240, analysis_ref_vol=3e-4)
    w = BarWindow(spec)
    assert w.extend(_bars(day, max(0, t + 1 - WINDOW), t + 1)) == min(t + 1, WINDOW)
    analysis, market = w.features()
    want_analysis = analysis_features(day, 3e-4)[t]
    np.testing.assert_allclose(analysis, want_analysis, atol=2e-4, rtol=1e-4)
    full = market_features(
        day["close"].to_numpy(), ref_vol, day["high"].to_numpy(), day["low"].to_numpy(),
        day["volume"].to_numpy(), day["taker_buy_base_volume"].to_numpy(), mean_vol,
    )[t]  # fmt: skip
    cols = list(MARKET_COLUMNS)
    np.testing.assert_allclose(market[cols], full[cols], atol=2e-4, rtol=1e-4)


def test_analysis_windows_are_pandas_rolling_windows_with_partial_starts(day) -> None:
    ref = 3e-4
    df = day.copy()
    df.loc[df.index[100:160], "volume"] = np.nan  # a window mean skips what is missing
    got = analysis_features(df, ref)
    col = {name: got[:, i] for i, name in enumerate(FEATURE_NAMES)}
    close, vol, trades = df["close"], df["volume"], df["number_of_trades"].astype(float)

    def roll(s: pd.Series, w: int):
        return s.rolling(w, min_periods=1)

    r1 = np.log(close).diff().fillna(0.0)
    sma, std = roll(close, 20).mean(), roll(close, 20).std().fillna(0.0)
    hi, lo = roll(df["high"], 60).max(), roll(df["low"], 60).min()
    with np.errstate(invalid="ignore"):
        want = {
            "vol_20": roll(r1, 20).std().fillna(0.0) / ref,
            "vol_60": roll(r1, 60).std().fillna(0.0) / ref,
            "volume": np.log(np.maximum(vol, 1e-12) / np.maximum(roll(vol, 60).mean(), 1e-12)),
            "trades": np.log(np.maximum(trades, 1.0) / np.maximum(roll(trades, 60).mean(), 1.0)),
            "bollinger": ((close - sma) / (2 * std)).where(std > 0, 0.0),
            "channel": (2 * (close - lo) / (hi - lo) - 1).where(hi > lo, 0.0),
        }
    for name, w in want.items():
        expected = np.clip(np.nan_to_num(w.to_numpy(np.float64), nan=0.0), -20, 20)
        np.testing.assert_allclose(col[name], expected, atol=1e-5, err_msg=name)


def test_window_ignores_bars_it_already_has(day) -> None:
    w = BarWindow(ObservationSpec(1e-4, 1.0, None, 0.005, 0.05, 240))
    bars = _bars(day, 0, 10)
    assert w.extend(bars) == 10 and w.extend(bars[5:]) == 0 and len(w) == 10
    with pytest.raises(ValueError, match="warming up: 10 of 61"):
        w.features()


def test_agent_columns_are_scaled_as_the_env_scales_them() -> None:
    spec = ObservationSpec(1e-4, 10.0, None, 0.005, 0.05, 240)
    obs = agent_observation(np.zeros(15, np.float32), spec, inventory=0.025, unrealized_pnl=0.0,
                            drawdown=0.0, bars_since_fill=100, bar_open_ms=60 * 60_000)  # fmt: skip
    assert obs[INVENTORY] == pytest.approx(0.5)
    assert obs[TIME_LEFT] == pytest.approx(1 - 60 / 240)
    assert obs[14] == 1.0  # time since fill capped


PARAMS = QuotingParams(tight_bps=3.0, wide_bps=8.0, skew=0.5, levels=2, level_step_bps=2.0,
                       size=0.005)  # fmt: skip


def test_ladder_uses_the_training_distances_and_rounds_passively() -> None:
    lad = ladder(Action.QUOTE_TIGHT, 60_000.0, 59_999.99, 60_000.01, PARAMS, RULES, 1.0, 1.0)
    assert [o.price for o in lad.bids] == [Decimal("59982.00"), Decimal("59970.00")]
    assert [o.price for o in lad.asks] == [Decimal("60018.00"), Decimal("60030.00")]
    assert all(o.quantity == Decimal("0.005") for o in lad.orders)
    skew = ladder(Action.SKEW_BUY, 60_000.0, 59_999.99, 60_000.01, PARAMS, RULES, 1.0, 1.0)
    assert skew.bids[0].price == Decimal("59991.00") and skew.asks[0].price == Decimal("60027.00")


def test_ladder_respects_side_capacity_and_never_crosses() -> None:
    lad = ladder(Action.QUOTE_TIGHT, 60_000.0, 59_999.99, 60_000.01, PARAMS, RULES, 0.007, 0.0)
    assert [o.quantity for o in lad.bids] == [Decimal("0.005"), Decimal("0.002")]
    assert lad.asks == ()
    # a mid far from the touch: quotes are clamped to stay passive
    far = ladder(Action.QUOTE_TIGHT, 60_100.0, 59_999.99, 60_000.01, PARAMS, RULES, 1.0, 1.0)
    assert all(o.price < Decimal("60000.01") for o in far.bids)


def test_reduce_is_one_market_order_within_capacity() -> None:
    lad = ladder(Action.REDUCE_SELL, 60_000.0, 59_999.99, 60_000.01, PARAMS, RULES, 0.0, 0.003)
    assert lad.market is not None and lad.market.side is Side.SELL
    assert lad.market.quantity == Decimal("0.003") and lad.market.order_type is OrderType.MARKET
    assert ladder(Action.STAND_ASIDE, 60_000.0, 1, 2, PARAMS, RULES, 1, 1).orders == ()


def _open(cid: str, side: Side, price: str, qty: str = "0.005") -> Order:
    return Order("BTCUSDT", side, Decimal(price), Decimal(qty), cid, OrderStatus.NEW)


def test_diff_keeps_matching_orders_and_replaces_the_rest() -> None:
    lad = ladder(Action.QUOTE_TIGHT, 60_000.0, 59_999.99, 60_000.01, PARAMS, RULES, 1.0, 1.0)
    open_ = [_open("a", Side.BUY, "59982.00"), _open("b", Side.SELL, "60019.00"),
             _open("c", Side.BUY, "59000.00")]  # fmt: skip
    d = diff_orders(lad, open_, 0, RULES)
    assert [o.client_order_id for o in d.keeps] == ["a"]
    assert {o.client_order_id for o in d.cancels} == {"b", "c"}
    assert len(d.places) == 3
    tolerant = diff_orders(lad, open_, 100, RULES)
    assert {o.client_order_id for o in tolerant.keeps} == {"a", "b"}


def test_observation_spec_takes_the_scale_pinned_in_the_model_card() -> None:
    card = {"env_config": {"preset": "replay", "n_steps": 120, "midprice": {
        "ref_vol": 3e-4, "step_sigma": 17.0, "mean_volume": 42.0,
        "files": ["/elsewhere/BTCUSDT-1m-2024-08-01.csv"]}}}  # fmt: skip
    spec = ObservationSpec.from_card(card, analysis_ref_vol=2e-4)
    assert (spec.ref_vol, spec.step_sigma, spec.mean_volume) == (3e-4, 17.0, 42.0)
    assert spec.n_steps == 120 and spec.analysis_ref_vol == 2e-4
    assert spec.pnl_unit == pytest.approx(10 * 0.005 * 17.0)


def test_observation_spec_without_a_pinned_scale_reads_the_training_days() -> None:
    card = {"env_config": {"preset": "replay", "midprice": {"files": [
        "/elsewhere/BTCUSDT-1m-2024-08-01.csv"]}}}  # fmt: skip
    spec = ObservationSpec.from_card(card)
    day = load_klines([kline_day("01")])["close"].to_numpy()
    assert spec.ref_vol == pytest.approx(np.std(np.diff(day) / day[:-1]))
