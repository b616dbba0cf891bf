"""``swarm-ray data info``: kind detection, times, rows and gaps of files and folders."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from swarm_ray.cli import main
from swarm_ray.marketdata import file_stats
from tests.fakes.binance_data_site import KLINES, build_csv

DAY1 = KLINES / "BTCUSDT-1m-2024-08-01.csv"


def info(capsys: pytest.CaptureFixture[str], path: Path) -> dict | list:
    assert main(["data", "info", str(path), "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_a_bundled_day(capsys) -> None:
    got = info(capsys, DAY1)
    assert {k: got[k] for k in ("symbol", "kind", "first", "last", "rows", "gaps")} == {
        "symbol": "BTCUSDT",
        "kind": "klines",
        "first": "2024-08-01T00:00:00Z",
        "last": "2024-08-01T23:59:00Z",
        "rows": 1440,
        "gaps": 0,
    }
    assert got["interval"] == "1m" and got["time_unit"] == "ms"


def test_missing_minutes_are_counted(tmp_path, capsys) -> None:
    lines = DAY1.read_text().splitlines()
    holed = tmp_path / DAY1.name
    holed.write_text("\n".join(lines[:100] + lines[110:500] + lines[501:]) + "\n")
    got = info(capsys, holed)
    assert (got["rows"], got["gaps"], got["largest_gap_s"]) == (1429, 11, 660.0)
    assert main(["data", "info", str(holed)]) == 0
    assert "1429 rows, 11 missing bars" in capsys.readouterr().out


def test_a_folder_is_one_summary_per_symbol_and_kind_with_gaps_between_files(
    tmp_path, capsys
) -> None:
    for d in ("01", "02", "04"):
        shutil.copy(KLINES / f"BTCUSDT-1m-2024-08-{d}.csv", tmp_path)
    (tmp_path / "trades").mkdir()
    (tmp_path / "trades" / "BTCUSDT-aggTrades-2024-08-01.csv").write_text(
        build_csv("spot", "aggTrades", "2024-08-01")
    )
    (tmp_path / "manifest.json").write_text("{}")
    got = info(capsys, tmp_path)
    assert isinstance(got, list) and [g["kind"] for g in got] == ["aggTrades", "klines"]
    trades, klines = got
    assert (klines["rows"], klines["gaps"], len(klines["files"])) == (4320, 1440, 3)
    assert (klines["first"], klines["last"]) == ("2024-08-01T00:00:00Z", "2024-08-04T23:59:00Z")
    assert (trades["rows"], trades["gaps"]) == (2880, 0)


@pytest.mark.parametrize(
    ("market", "kind", "name"),
    [
        ("spot", "klines", "bars.csv"),
        ("futures/um", "klines", "bars.csv"),
        ("spot", "aggTrades", "trades.csv"),
        ("futures/um", "aggTrades", "trades.csv"),
        ("futures/um", "bookTicker", "book.csv"),
    ],
)
def test_the_kind_comes_from_the_columns_without_a_telling_name(
    tmp_path, market, kind, name
) -> None:
    f = tmp_path / name
    f.write_text(build_csv(market, kind, "2024-08-01"))
    s = file_stats(f)
    assert s.kind == kind and s.symbol is None
    assert s.rows == (1440 if kind == "klines" else 2880)
    assert s.gaps == 0
    if kind == "klines":
        assert s.interval == "1m"


@pytest.mark.parametrize("kind", ["klines", "aggTrades"])
def test_microsecond_files_read_like_millisecond_ones(tmp_path, kind) -> None:
    name = "BTCUSDT-1m-2024-08-01.csv" if kind == "klines" else "BTCUSDT-aggTrades-2024-08-01.csv"
    (tmp_path / "ms").mkdir()
    (tmp_path / "us").mkdir()
    (tmp_path / "ms" / name).write_text(build_csv("spot", kind, "2024-08-01"))
    (tmp_path / "us" / name).write_text(build_csv("spot", kind, "2024-08-01", micro=True))
    ms, us = file_stats(tmp_path / "ms" / name), file_stats(tmp_path / "us" / name)
    assert (us.time_unit, ms.time_unit) == ("us", "ms")
    same = ("first_ms", "last_ms", "rows", "gaps", "largest_gap_ms", "kind", "symbol")
    assert all(getattr(us, k) == getattr(ms, k) for k in same)
    assert ms.first_ms == 1722470400000 + (0 if kind == "klines" else 500)


def test_a_pause_over_a_minute_in_trades_is_a_gap(tmp_path) -> None:
    rows = build_csv("spot", "aggTrades", "2024-08-01").splitlines()
    f = tmp_path / "BTCUSDT-aggTrades-2024-08-01.csv"
    f.write_text("\n".join(rows[:10] + rows[14:]) + "\n")  # two minutes without a trade
    s = file_stats(f)
    assert (s.gaps, s.largest_gap_ms, s.rows) == (1, 150_000, 2876)


def test_unreadable_input_is_an_error_naming_it(tmp_path, capsys) -> None:
    odd = tmp_path / "odd.csv"
    odd.write_text("a,b,c\n1,2,3\n")
    assert main(["data", "info", str(odd)]) == 1
    assert f"error: {odd}: not a kline, aggTrades or bookTicker CSV" in capsys.readouterr().err
    assert main(["data", "info", str(tmp_path / "nope")]) == 1
    assert "nope: no such file or folder" in capsys.readouterr().err
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["data", "info", str(empty)]) == 1
    assert "no .csv file" in capsys.readouterr().err
