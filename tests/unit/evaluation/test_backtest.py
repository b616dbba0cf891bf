"""swarm-ray backtest: sizes, data formats, the baselines against evaluate, the CLI contract."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from envs.data.klines import KLINE_COLUMNS, load_klines
from swarm_ray.cli import main
from swarm_ray.core.config import PROJECT_ROOT, load_config
from swarm_ray.evaluation.backtest import EvaluateConfig, evaluate_days
from swarm_ray.evaluation.backtest_config import BacktestConfig, symbol_sizes
from swarm_ray.evaluation.days import DataError, resolve_days
from swarm_ray.evaluation.runner import run_backtest
from tests.conftest import quoting_registry

DATA = PROJECT_ROOT / "data" / "binance-spot-1m"
CONFIG = PROJECT_ROOT / "configs" / "backtest.yaml"


def day(d: str, symbol: str = "BTCUSDT") -> str:
    return str(DATA / f"{symbol}-1m-2024-08-{d}.csv")


@pytest.fixture(scope="module")
def cfg() -> BacktestConfig:
    return load_config(CONFIG, BacktestConfig)


def scaled_copy(src: str, dest: Path, factor: float) -> Path:
    """A real day with prices divided by ``factor`` and volumes multiplied by it (an
    XRP-like price scale on real price paths)."""
    raw = pd.read_csv(src, header=None, names=list(KLINE_COLUMNS))
    for c in ("open", "high", "low", "close"):
        raw[c] = (raw[c] / factor).round(10)
    for c in ("volume", "taker_buy_base_volume"):
        raw[c] = raw[c] * factor
    raw.to_csv(dest, header=False, index=False)
    return dest


def test_sizes_are_notional_over_the_reference_price_on_the_step(cfg) -> None:
    btc = symbol_sizes(cfg, "BTCUSDT", 60_000.0)
    assert btc.order_size == pytest.approx(0.005) and btc.max_position == pytest.approx(0.05)
    assert btc.market_half_spread == pytest.approx(0.005)  # half a 0.01 tick
    xrp = symbol_sizes(cfg, "XRPUSDT", 1.5)
    assert xrp.order_size == pytest.approx(200.0) and xrp.max_position == pytest.approx(2000.0)
    assert Decimal(str(xrp.order_size)) % Decimal("0.1") == 0
    assert xrp.market_half_spread == pytest.approx(0.00005)


def test_unknown_symbol_and_too_small_notional_name_the_field(cfg) -> None:
    with pytest.raises(ValueError, match=r"symbols: no filters for .DOGEUSDT."):
        symbol_sizes(cfg, "DOGEUSDT", 0.1)
    small = cfg.model_copy(update={"sizing": cfg.sizing.model_copy(update={"order_notional": 2})})
    with pytest.raises(ValueError, match=r"sizing\.order_notional"):
        symbol_sizes(small, "BTCUSDT", 60_000.0)


def test_freqtrade_feather_and_json_and_microsecond_csv_give_the_same_day(tmp_path) -> None:
    ref = load_klines(day("18"))
    both = pd.concat([load_klines(day("17")), ref])
    ft = pd.DataFrame(
        {
            "date": pd.to_datetime(both["open_time_ms"], unit="ms", utc=True),
            **{c: both[c].to_numpy() for c in ("open", "high", "low", "close", "volume")},
        }
    )
    ft.reset_index(drop=True).to_feather(tmp_path / "BTC_USDT-1m.feather")
    rows = [[int(t), o, h, lo, c, v] for t, o, h, lo, c, v in ft.assign(
        date=both["open_time_ms"].to_numpy()).itertuples(index=False)]  # fmt: skip
    (tmp_path / "BTC_USDT-1m.json").write_text(json.dumps(rows))
    micro = pd.read_csv(day("18"), header=None)
    micro[0] *= 1000
    micro[6] *= 1000
    (tmp_path / "us").mkdir()
    micro.to_csv(tmp_path / "us" / "BTCUSDT-1m-2024-08-18.csv", header=False, index=False)
    pd.read_csv(day("17"), header=None).to_csv(
        tmp_path / "us" / "BTCUSDT-1m-2024-08-17.csv", header=False, index=False
    )
    for f in ("BTC_USDT-1m.feather", "BTC_USDT-1m.json", "us/BTCUSDT-1m-2024-08-18.csv"):
        days, _ = resolve_days([tmp_path / f], None, tmp_path / "work")
        got = load_klines(days[-1].file)
        assert days[-1].symbol == "BTCUSDT" and days[-1].date == "2024-08-18"
        np.testing.assert_allclose(got["close"].to_numpy(), ref["close"].to_numpy())
        assert days[-1].n_bars == 1439 and days[-1].warmup_file


def test_a_bad_file_is_an_error_naming_it(tmp_path) -> None:
    bad = tmp_path / "BTCUSDT-1m-2024-08-18.csv"
    bad.write_text("this,is,not\na,kline,file\n")
    with pytest.raises(DataError, match=str(bad)):
        resolve_days([bad], None, tmp_path)
    code = main(["backtest", "--data", str(bad), "--strategies", "fixed_spread", "--json"])
    assert code == 2


def test_baselines_reproduce_evaluate_day_by_day(cfg) -> None:
    files = [day("17"), day("18")]
    res = run_backtest(cfg, files, strategies=["fixed_spread", "avellaneda_stoikov"])
    s = symbol_sizes(cfg, "BTCUSDT", float(load_klines(list(cfg.fit_files))["close"].mean()))
    ev = EvaluateConfig(
        env={
            "preset": "replay",
            "max_inventory": s.max_position,
            "fees": {"maker_bps": 2.0, "taker_bps": 5.0, "market_half_spread": 0.005},
            "actions": {"order_size": s.order_size, "reduce_size": s.reduce_size},
        },
        fit_files=cfg.fit_files,
        fixed_spread={"half_spread_bps": 8.0},
        avellaneda_stoikov={"gamma": 6e-4 / (s.reference_price * 1e-4), "horizon": 60},
    )
    _, runs, _ = evaluate_days(files, ev)
    for run in runs:
        per_day = run.wealth[-1] - run.wealth[0]
        got = [d["pnl"][run.name] for d in res.days]
        np.testing.assert_allclose(got, per_day, rtol=1e-9, atol=1e-9)
        assert res.strategies[run.name]["fills"] == int(run.fills.sum())


def test_other_price_scale_trades_sizes_worth_the_same_notional(cfg, tmp_path) -> None:
    for d in ("17", "18"):
        scaled_copy(day(d), tmp_path / f"XRPUSDT-1m-2024-08-{d}.csv", 40_000.0)
    # the v2 models' own votes (not turned by their calibration) quote: sizes are what is tested
    swarm = yaml.safe_load((PROJECT_ROOT / "configs" / "paper.yaml").read_text())
    swarm["agents"]["unlikely_vote"] = "keep"
    (tmp_path / "swarm.yaml").write_text(yaml.safe_dump(swarm))
    models = quoting_registry(tmp_path / "models")
    quoting = cfg.model_copy(
        update={"swarm_config": str(tmp_path / "swarm.yaml"), "models_dir": str(models)}
    )
    res = run_backtest(
        quoting, [tmp_path / "XRPUSDT-1m-2024-08-18.csv"], strategies=["fixed_spread", "swarm"]
    )
    size = res.sizes["XRPUSDT"]["order_size"]
    price = res.sizes["XRPUSDT"]["reference_price"]
    assert 250 < size * price < 350  # 300 USDT a quote, at the first evaluated open
    for name in ("fixed_spread", "swarm"):
        recs = res.records[name]
        assert len(recs[0].fills) > 0, name
        maker = recs[0].fills.maker
        np.testing.assert_allclose(recs[0].fills.qty[maker], size)
    btc = run_backtest(cfg, [day("18")], strategies=["fixed_spread"])
    # the same price path at 1/40,000 the scale: the same fills, and the same PnL per traded
    # notional (the quantities differ only by their step rounding)
    xrp_fs, btc_fs = res.strategies["fixed_spread"], btc.strategies["fixed_spread"]
    assert xrp_fs["fills"] == btc_fs["fills"]
    assert xrp_fs["pnl_per_notional_bps"] == pytest.approx(btc_fs["pnl_per_notional_bps"], abs=0.05)


def test_json_is_one_object_with_strategies_days_fees_and_data(capsys) -> None:
    code = main(
        ["backtest", "--data", day("18"), "--strategies", "stand_aside", "fixed_spread",
         "--fees", "lp_rebate", "--json"]
    )  # fmt: skip
    assert code == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert set(out) >= {"strategies", "days", "fees", "data"} and out["fees"] == "lp_rebate"
    assert out["days"] == [
        {
            "date": "2024-08-18",
            "symbol": "BTCUSDT",
            "pnl": {"stand_aside": 0.0, "fixed_spread": out["days"][0]["pnl"]["fixed_spread"]},
            "fills": {"stand_aside": 0, "fixed_spread": out["strategies"]["fixed_spread"]["fills"]},
        }
    ]
    fs = out["strategies"]["fixed_spread"]
    # a maker rebate: the break-even fee is the same whatever tier it was measured at
    regular = run_backtest(
        load_config(CONFIG, BacktestConfig), [day("18")], strategies=["fixed_spread"]
    )
    assert fs["breakeven_maker_bps"] == pytest.approx(
        regular.strategies["fixed_spread"]["breakeven_maker_bps"], abs=1e-6
    )


def test_scoring_a_training_day_warns_and_walk_forward_skips_it(cfg) -> None:
    res = run_backtest(cfg, [day("13")], strategies=["risk_manager"])
    assert any("in-sample" in w and "2024-08-13" in w for w in res.warnings)
    wf = run_backtest(cfg, [day("13")], strategies=["risk_manager", "fixed_spread"],
                      walk_forward=True)  # fmt: skip
    assert "risk_manager" not in wf.strategies and "fixed_spread" in wf.strategies
    assert any("not scored" in n for n in wf.notes)
