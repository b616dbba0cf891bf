"""``swarm-ray data download`` against the fake data site: layout, manifest, resume, and every
way a day can go wrong leaving nothing of it behind."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from pathlib import Path

import pandas as pd
import pytest

from envs.data.klines import load_klines
from swarm_ray.cli import main
from swarm_ray.marketdata import day_files, download_days
from tests.fakes.binance_data_site import KLINES, SiteFault, build_csv, make_zip

SYMBOL_DIR = ("spot", "klines", "BTCUSDT")
THREE_DAYS = ("--symbols", "BTCUSDT", "--start", "2024-08-01", "--end", "2024-08-03")


def folder(out: Path, market: str = "spot", kind: str = "klines") -> Path:
    return out / market / kind / "BTCUSDT"


def manifest(out: Path, market: str = "spot", kind: str = "klines") -> dict:
    return json.loads((folder(out, market, kind) / "manifest.json").read_text())


def files_of(out: Path, date: str) -> list[Path]:
    """Every file under ``out`` (hidden temporaries too) whose name mentions ``date``."""
    return [p for p in out.rglob("*") if p.is_file() and date in p.name]


def bundled(date: str) -> bytes:
    return (KLINES / f"BTCUSDT-1m-{date}.csv").read_bytes()


def test_downloads_verifies_unpacks_and_records_each_day(cli, out, site) -> None:
    code, report = cli(*THREE_DAYS)
    assert code == 0
    assert [d["date"] for d in report["downloaded"]] == ["2024-08-01", "2024-08-02", "2024-08-03"]
    assert report["skipped"] == report["missing"] == report["failed"] == []
    names = sorted(p.name for p in folder(out).iterdir())
    assert names == [f"BTCUSDT-1m-2024-08-0{i}.csv" for i in (1, 2, 3)] + ["manifest.json"]
    for i in (1, 2, 3):
        assert (folder(out) / f"BTCUSDT-1m-2024-08-0{i}.csv").read_bytes() == bundled(
            f"2024-08-0{i}"
        )
    entry = manifest(out)["files"]["BTCUSDT-1m-2024-08-01.csv"]
    zip_bytes = make_zip("BTCUSDT-1m-2024-08-01.csv", build_csv("spot", "klines", "2024-08-01"))
    assert entry["url"] == (
        f"{site.url}/data/spot/daily/klines/BTCUSDT/1m/BTCUSDT-1m-2024-08-01.zip"
    )
    assert entry["zip_sha256"] == hashlib.sha256(zip_bytes).hexdigest()
    assert entry["csv_sha256"] == hashlib.sha256(bundled("2024-08-01")).hexdigest()
    assert (entry["rows"], entry["first"], entry["last"]) == (
        1440,
        "2024-08-01T00:00:00Z",
        "2024-08-01T23:59:00Z",
    )
    assert entry["time_unit"] == "ms" and entry["gaps"] == 0
    datetime.fromisoformat(entry["downloaded_at"])
    assert report["out"] == str(out)


def test_a_second_run_downloads_nothing_and_a_changed_file_is_fetched_again(cli, out, site) -> None:
    cli(*THREE_DAYS)
    before = site.count()
    code, report = cli(*THREE_DAYS)
    assert code == 0 and report["downloaded"] == [] and len(report["skipped"]) == 3
    assert site.count() == before  # not even a checksum asked for

    day2 = folder(out) / "BTCUSDT-1m-2024-08-02.csv"
    day2.write_bytes(day2.read_bytes()[:-100])  # damaged after the download
    code, report = cli(*THREE_DAYS)
    assert code == 0
    assert [d["date"] for d in report["downloaded"]] == ["2024-08-02"]
    assert len(report["skipped"]) == 2
    assert day2.read_bytes() == bundled("2024-08-02")
    assert site.count("2024-08-01") == site.count("2024-08-03") == 2


def test_a_bad_checksum_fails_that_day_only_and_names_the_file(cli, out, site, capsys) -> None:
    site.faults.append(SiteFault("bad_checksum", date="2024-08-02"))
    code, report = cli(*THREE_DAYS)
    assert code == 1
    [failed] = report["failed"]
    assert failed["date"] == "2024-08-02" and failed["file"] == "BTCUSDT-1m-2024-08-02.zip"
    assert "BTCUSDT-1m-2024-08-02.zip: checksum mismatch" in failed["error"]
    assert files_of(out, "2024-08-02") == []
    assert set(manifest(out)["files"]) == {"BTCUSDT-1m-2024-08-01.csv", "BTCUSDT-1m-2024-08-03.csv"}
    assert [d["date"] for d in report["downloaded"]] == ["2024-08-01", "2024-08-03"]

    argv = ["data", "download", "--base-url", site.url, "--out", str(out), *THREE_DAYS]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert "failed: BTCUSDT 2024-08-02: BTCUSDT-1m-2024-08-02.zip: checksum mismatch" in err


def test_a_day_the_site_does_not_have_is_missing_and_the_others_download(
    cli, out, site, capsys
) -> None:
    site.faults.append(SiteFault("missing", date="2024-08-02"))
    code, report = cli("--symbols", "BTCUSDT", "--start", "2024-08-01", "--end", "2024-08-03")
    assert code == 3
    assert report["failed"] == []
    assert [(m["date"], m["url"].rsplit("/", 1)[1]) for m in report["missing"]] == [
        ("2024-08-02", "BTCUSDT-1m-2024-08-02.zip")
    ]
    assert len(report["downloaded"]) == 2 and files_of(out, "2024-08-02") == []

    code = main(
        ["data", "download", "--base-url", site.url, "--out", str(out), "--symbols", "BTCUSDT",
         "--start", "2024-08-20", "--end", "2024-08-21"]
    )  # fmt: skip
    assert code == 3
    assert "missing (the site has no such file): BTCUSDT 2024-08-21" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("fault", "message"),
    [("truncated", "checksum mismatch"), ("bad_zip", "not a readable zip")],
)
def test_a_truncated_zip_leaves_nothing_behind(cli, out, site, fault, message) -> None:
    site.faults.append(SiteFault(fault, date="2024-08-01"))
    code, report = cli("--symbols", "BTCUSDT", "--start", "2024-08-01", "--end", "2024-08-02")
    assert code == 1
    [failed] = report["failed"]
    assert failed["date"] == "2024-08-01" and message in failed["error"]
    assert "BTCUSDT-1m-2024-08-01.zip" in failed["error"]
    assert files_of(out, "2024-08-01") == []
    assert list(manifest(out)["files"]) == ["BTCUSDT-1m-2024-08-02.csv"]


def test_a_dropped_connection_is_retried(cli, out, site) -> None:
    site.faults.append(SiteFault("drop", date="2024-08-01", times=2))
    code, report = cli("--symbols", "BTCUSDT", "--start", "2024-08-01", "--end", "2024-08-01")
    assert code == 0 and len(report["downloaded"]) == 1
    assert site.count("2024-08-01.zip") - site.count("2024-08-01.zip.CHECKSUM") == 3
    assert (folder(out) / "BTCUSDT-1m-2024-08-01.csv").read_bytes() == bundled("2024-08-01")


def test_a_connection_that_drops_every_time_fails_that_day_cleanly(cli, out, site) -> None:
    site.faults.append(SiteFault("drop", date="2024-08-01"))
    code, report = cli(
        "--symbols", "BTCUSDT", "--start", "2024-08-01", "--end", "2024-08-02", "--retries", "2"
    )
    assert code == 1
    [failed] = report["failed"]
    assert "connection dropped" in failed["error"] and "3 tries" in failed["error"]
    assert site.count("2024-08-01.zip") - site.count("2024-08-01.zip.CHECKSUM") == 3
    assert files_of(out, "2024-08-01") == []
    assert [d["date"] for d in report["downloaded"]] == ["2024-08-02"]


def test_an_interrupted_download_leaves_no_partial_file(out, site, monkeypatch) -> None:
    from swarm_ray.marketdata import download as dl

    def interrupted(*args: object) -> str:
        raise KeyboardInterrupt

    monkeypatch.setattr(dl, "_unpack", interrupted)
    days = day_files("spot", "klines", ["BTCUSDT"], "2024-08-01", "2024-08-01")
    with pytest.raises(KeyboardInterrupt):
        download_days(days, out, base_url=site.url, backoff=0)
    assert files_of(out, "2024-08-01") == []


def test_a_microsecond_day_loads_like_the_millisecond_one(cli, out, site) -> None:
    site.faults.append(SiteFault("microseconds", date="2024-08-01"))
    code, _ = cli("--symbols", "BTCUSDT", "--start", "2024-08-01", "--end", "2024-08-01")
    assert code == 0
    got = folder(out) / "BTCUSDT-1m-2024-08-01.csv"
    assert int(got.read_text().split(",", 1)[0]) > 10**14  # kept as the site published it
    pd.testing.assert_frame_equal(load_klines(got), load_klines(KLINES / got.name))
    entry = manifest(out)["files"][got.name]
    assert (entry["time_unit"], entry["first"], entry["last"]) == (
        "us",
        "2024-08-01T00:00:00Z",
        "2024-08-01T23:59:00Z",
    )


def test_usdm_klines_with_a_header_row_load_like_spot(cli, out) -> None:
    code, _ = cli(
        "--market", "usdm", "--symbols", "BTCUSDT", "--start", "2024-08-05", "--end", "2024-08-05"
    )
    assert code == 0
    got = folder(out, "usdm") / "BTCUSDT-1m-2024-08-05.csv"
    assert got.read_text().startswith("open_time,open,high")
    pd.testing.assert_frame_equal(load_klines(got), load_klines(KLINES / got.name))
    assert manifest(out, "usdm")["files"][got.name]["rows"] == 1440


def test_aggtrades_and_bookticker_land_in_their_folders(cli, out) -> None:
    day = ("--symbols", "BTCUSDT", "--start", "2024-08-01", "--end", "2024-08-01")
    assert cli("--kind", "aggTrades", *day)[0] == 0
    assert cli("--market", "usdm", "--kind", "bookTicker", *day)[0] == 0
    trades = manifest(out, "spot", "aggTrades")["files"]["BTCUSDT-aggTrades-2024-08-01.csv"]
    assert (trades["rows"], trades["first"], trades["last"]) == (
        2880,
        "2024-08-01T00:00:00.500Z",
        "2024-08-01T23:59:30.500Z",
    )
    book = folder(out, "usdm", "bookTicker") / "BTCUSDT-bookTicker-2024-08-01.csv"
    assert book.read_text().startswith("update_id,best_bid_price")
    entry = manifest(out, "usdm", "bookTicker")["files"][book.name]
    assert entry["url"].endswith(
        "/data/futures/um/daily/bookTicker/BTCUSDT/BTCUSDT-bookTicker-2024-08-01.zip"
    )
    assert (entry["rows"], entry["gaps"]) == (2880, 0)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--start", "2024-13-01"), "--start: 2024-13-01 is not a date YYYY-MM-DD"),
        (("--end", "2024-8-1"), "--end: 2024-8-1 is not a date YYYY-MM-DD"),
        (("--start", "2024-08-03", "--end", "2024-08-01"), "--end 2024-08-01 is before --start"),
        (("--kind", "bookTicker"), "the site publishes no spot bookTicker"),
        (("--kind", "aggTrades", "--interval", "1m"), "--interval: applies to --kind klines"),
        (("--interval", "7m"), "--interval: '7m' is not a daily spot kline interval"),
        (("--symbols", "BTC/USDT"), "--symbols: 'BTC/USDT' is not a symbol"),
        (("--base-url", "ftp://x"), "--base-url: 'ftp://x' is not an http(s) address"),
    ],
)
def test_bad_input_is_one_line_naming_the_option(site, out, capsys, args, message) -> None:
    base = {"--symbols": "BTCUSDT", "--start": "2024-08-01", "--end": "2024-08-02"}
    argv = ["data", "download", "--base-url", site.url, "--out", str(out)]
    for k, v in base.items():
        if k not in args:
            argv += [k, v]
    assert main([*argv, *args]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and err.count("\n") == 1
    assert site.count() == 0 and not out.exists()
