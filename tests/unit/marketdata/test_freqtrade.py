"""``swarm-ray data import-freqtrade``: feather and JSON OHLCV round trip to kline CSVs."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from envs.data.klines import load_klines
from swarm_ray.cli import main
from tests.fakes.binance_data_site import KLINES

DAYS = [KLINES / f"BTCUSDT-1m-2024-08-0{d}.csv" for d in (1, 2)]
OHLCV = ("open", "high", "low", "close", "volume")


@pytest.fixture
def bars() -> pd.DataFrame:
    return load_klines(DAYS)


def _freqtrade_frame(bars: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "date": pd.to_datetime(bars["open_time_ms"].to_numpy(), unit="ms", utc=True),
            **{c: bars[c].to_numpy() for c in OHLCV},
        }
    )


def _check_round_trip(bars: pd.DataFrame, out) -> None:
    files = sorted(out.glob("*.csv"))
    assert [f.name for f in files] == [d.name for d in DAYS]
    got = load_klines(files)
    assert (got["open_time_ms"].to_numpy() == bars["open_time_ms"].to_numpy()).all()
    assert (got["close_time_ms"].to_numpy() == bars["close_time_ms"].to_numpy()).all()
    for c in OHLCV:
        np.testing.assert_allclose(got[c].to_numpy(), bars[c].to_numpy(), rtol=1e-12)
    assert main(["data", "info", str(out), "--json"]) == 0


def test_feather_round_trip(tmp_path, bars, capsys) -> None:
    src = tmp_path / "BTC_USDT-1m.feather"
    _freqtrade_frame(bars).to_feather(src)
    out = tmp_path / "out"
    assert main(["data", "import-freqtrade", str(src), "--out", str(out), "--json"]) == 0
    written = json.loads(capsys.readouterr().out)["files"]
    assert [p.rsplit("/", 1)[1] for p in written] == [d.name for d in DAYS]
    _check_round_trip(bars, out)
    [summary] = json.loads(capsys.readouterr().out)
    assert (summary["rows"], summary["gaps"], summary["symbol"]) == (2880, 0, "BTCUSDT")


def test_json_round_trip_with_the_symbol_given(tmp_path, bars) -> None:
    rows = [
        [int(t), *(float(bars[c].iloc[i]) for c in OHLCV)]
        for i, t in enumerate(bars["open_time_ms"])
    ]
    src = tmp_path / "pairs.json"
    src.write_text(json.dumps(rows))
    out = tmp_path / "out"
    assert (
        main(["data", "import-freqtrade", str(src), "--symbol", "btcusdt", "--out", str(out)]) == 0
    )
    _check_round_trip(bars, out)


def test_five_minute_bars_keep_their_interval(tmp_path, bars) -> None:
    five = _freqtrade_frame(bars).iloc[::5].reset_index(drop=True)
    src = tmp_path / "BTC_USDT_USDT-5m-futures.feather"
    five.to_feather(src)
    assert main(["data", "import-freqtrade", str(src), "--out", str(tmp_path / "o")]) == 0
    f = tmp_path / "o" / "BTCUSDT-5m-2024-08-01.csv"
    got = load_klines(f)
    assert len(got) == 288
    assert (got["close_time_ms"] - got["open_time_ms"] == 300_000 - 1).all()


def test_no_symbol_in_the_name_is_an_error_naming_the_option(tmp_path, bars, capsys) -> None:
    src = tmp_path / "candles.feather"
    _freqtrade_frame(bars).to_feather(src)
    assert main(["data", "import-freqtrade", str(src), "--out", str(tmp_path / "o")]) == 1
    assert "--symbol: cannot tell the symbol from candles.feather" in capsys.readouterr().err
