"""The strategy optimizer's quoting backtest (the score its Ray Tune search maximises)."""

from __future__ import annotations

import numpy as np
import pytest

from swarm_ray.training.tuning import quote_backtest


def test_backtest_fills_when_the_next_bar_trades_through_and_pays_maker_fees() -> None:
    close = np.array([100.0, 100.0, 100.0])
    high = np.array([100.0, 100.2, 100.0])
    low = np.array([100.0, 99.8, 100.0])
    # 10 bps: bid 99.9, ask 100.1, both traded through by bar 1; flat after
    r = quote_backtest(close, high, low, 10.0, 1.0, 5.0, maker_bps=0.0)
    assert r["fills"] == 2 and r["pnl"] == pytest.approx(0.2)
    fee = quote_backtest(close, high, low, 10.0, 1.0, 5.0, maker_bps=2.0)
    assert fee["pnl"] == pytest.approx(0.2 - (99.9 + 100.1) * 2e-4)
    # 30 bps is beyond the bar's range: no fills, no PnL
    assert quote_backtest(close, high, low, 30.0, 1.0, 5.0, 0.0)["fills"] == 0


def test_backtest_caps_inventory_and_penalises_holding_it() -> None:
    n = 50
    close = np.linspace(100, 90, n)  # a falling market fills only bids
    r = quote_backtest(close, close + 0.01, close - 0.5, 1.0, 1.0, 3.0, 0.0)
    assert r["fills"] == 3 and r["mean_abs_inventory"] > 2.5
    assert r["score"] < r["sharpe"]
