"""check-llm asks about real recent market data: the figures the fake Groq server receives are
recomputed here independently, from the bundled kline file or from the fake venue's klines."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from swarm_ray.agents.llm.market_context import summarize_klines
from swarm_ray.cli import main
from swarm_ray.core.instruments import Kline
from tests.conftest import KLINES
from tests.fakes.binance_server import FakeBinance, exchange_on
from tests.fakes.groq_server import FAKE_GROQ_KEY, FakeGroq


@pytest.fixture
def groq(monkeypatch):
    monkeypatch.setenv("GROQ_API_KEY", FAKE_GROQ_KEY)
    with FakeGroq() as fake:
        yield fake


def _prompt(groq: FakeGroq) -> str:
    assert len(groq.requests) == 1
    return groq.requests[0]["messages"][1]["content"]


def _expected_lines(open0: float, closes: np.ndarray, volumes: np.ndarray, per_hour: int) -> list:
    """The figures, from first principles: returns against the close 1h/4h/24h before the last
    bar's end (the first open for the full day), log-return volatility over the day, and the
    last hour's volume against the day's hourly average."""
    last = closes[-1]
    series = np.concatenate([[open0], closes])
    r = {h: last / series[-1 - h * per_hour] - 1 for h in (1, 4, 24)}
    logs = np.diff(np.log(series))
    vol = np.std(logs, ddof=1) * math.sqrt(len(logs))
    ratio = volumes[-per_hour:].sum() / (volumes.sum() / 24)
    return [
        f"Last price: {last:.8g}",
        f"Returns: 1h {r[1] * 100:+.2f}%, 4h {r[4] * 100:+.2f}%, 24h {r[24] * 100:+.2f}%",
        f"Realised volatility (24h): {vol * 100:.2f}%",
        f"({ratio:.2f}x the average hourly volume",
    ]


def test_check_llm_without_exchange_uses_the_latest_bundled_day(groq, capsys) -> None:
    latest = sorted(KLINES.glob("BTCUSDT-1m-*.csv"))[-1]
    df = pd.read_csv(latest, header=None)
    assert len(df) == 1440
    code = main(["check-llm", "--symbol", "BTCUSDT", "--base-url", groq.url, "--json"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0 and out["ok"]
    prompt = _prompt(groq)
    assert latest.name in prompt and "1440 bars of 1m" in prompt
    for line in _expected_lines(df[1].iloc[0], df[4].to_numpy(), df[5].to_numpy(), 60):
        assert line in prompt, (line, prompt)
    assert f"Price: {df[4].iloc[-1]:.8g}" in prompt and "spread" not in prompt  # no fake book
    assert out["market_data"]["last_price"] == df[4].iloc[-1]


def _day(path: Path, start_ms: int, price: float) -> None:
    rows = [
        [
            start_ms + i * 60_000,
            price,
            price + 20,
            price - 1,
            price + i * 0.01,
            2.0,
            start_ms + (i + 1) * 60_000 - 1,
            0,
            1,
            1.0,
            0,
            0,
        ]
        for i in range(1440)
    ]
    pd.DataFrame(rows).to_csv(path, header=False, index=False)


def test_check_llm_picks_the_newest_file_of_the_symbol(groq, capsys, tmp_path) -> None:
    day = 86_400_000
    _day(tmp_path / "BTCUSDT-1m-2024-09-02.csv", 1725235200000, 100.0)
    _day(tmp_path / "BTCUSDT-1m-2024-09-01.csv", 1725235200000 - day, 50.0)
    _day(tmp_path / "ETHUSDT-1m-2024-09-03.csv", 1725235200000 + day, 7.0)
    code = main(
        ["check-llm", "--symbol", "BTCUSDT", "--base-url", groq.url, "--data-dir", str(tmp_path)]
    )
    assert code == 0, capsys.readouterr()
    prompt = _prompt(groq)
    assert "BTCUSDT-1m-2024-09-02.csv" in prompt and "Last price: 114.39" in prompt
    # +0.6 over the last 60 bars from 113.79 (closes step 0.01)
    assert f"1h {(114.39 / 113.79 - 1) * 100:+.2f}%" in prompt
    assert "1.00x the average hourly volume" in prompt


def test_check_llm_without_any_data_fails_before_asking(groq, capsys, tmp_path) -> None:
    code = main(
        ["check-llm", "--symbol", "BTCUSDT", "--base-url", groq.url, "--data-dir", str(tmp_path)]
    )
    assert code == 2 and groq.requests == []
    assert "--exchange" in capsys.readouterr().err


def _kline_rows(start_ms: int, closes: list[float], volumes: list[float]) -> list[list]:
    step = 300_000
    rows, prev = [], closes[0] * 0.999
    for i, (c, v) in enumerate(zip(closes, volumes, strict=True)):
        rows.append(
            [
                start_ms + i * step,
                f"{prev}",
                f"{max(prev, c) + 5}",
                f"{min(prev, c) - 5}",
                f"{c}",
                f"{v}",
                start_ms + (i + 1) * step - 1,
                "0",
                10,
                "0",
                "0",
                "0",
            ]
        )
        prev = c
    return rows


@pytest.mark.parametrize("kind", ["binance-spot", "binance-futures"])
def test_check_llm_with_exchange_uses_its_book_and_klines(groq, capsys, kind) -> None:
    n = 289
    rng = np.random.default_rng(7)
    closes = list(np.round(60000 * np.exp(np.cumsum(rng.normal(0, 0.002, n))), 2))
    volumes = list(np.round(rng.uniform(1, 10, n), 3))
    rows = _kline_rows(1_720_000_000_000, closes, volumes)
    with FakeBinance() as venue:
        venue.set_klines("BTCUSDT", rows)
        code = main(
            [
                "check-llm",
                "--symbol",
                "BTCUSDT",
                "--base-url",
                groq.url,
                "--exchange",
                kind,
                "--exchange-url",
                venue.url,
            ]
        )
        asked = [(e, p) for _, e, p in venue.requests if e == "klines"]
    assert code == 0, capsys.readouterr()
    assert asked == [("klines", {"symbol": "BTCUSDT", "interval": "5m", "limit": "289"})]
    prompt = _prompt(groq)
    assert "Best bid: 60000  best ask: 60000.01" in prompt  # the venue's book
    assert "289 bars of 5m" in prompt and kind in prompt
    # the 24h window is the last 288 bars; the bar before it gives the starting price
    c = np.array(closes)
    for line in _expected_lines(float(rows[1][1]), c[1:], np.array(volumes[1:]), 12):
        assert line in prompt, (line, prompt)


def test_recent_klines_through_the_adapter(groq) -> None:
    rows = _kline_rows(1_720_000_000_000, [100.0, 101.5, 99.25], [1.0, 2.0, 3.5])
    with FakeBinance() as venue:
        venue.set_klines("BTCUSDT", rows)
        for kind in ("binance-spot", "binance-futures"):
            ex = exchange_on(venue, kind)
            got = ex.recent_klines("BTCUSDT", "5m", 2)
            ex.close()
            assert got == [
                Kline(
                    1_720_000_300_000, 100.0, 106.5, 95.0, 101.5, 2.0, 1_720_000_599_999, 10, 0.0
                ),
                Kline(
                    1_720_000_600_000, 101.5, 106.5, 94.25, 99.25, 3.5, 1_720_000_899_999, 10, 0.0
                ),
            ]
            with pytest.raises(ValueError, match="limit"):
                ex.recent_klines("BTCUSDT", "5m", 5000)
        # public market data: never signed
        assert all("signature" not in p for _, e, p in venue.requests if e == "klines")


def test_short_history_says_what_it_cannot_know() -> None:
    ks = [
        Kline(i * 60_000, 100.0 + i, 101.0 + i, 99.0 + i, 100.5 + i, 1.0, (i + 1) * 60_000 - 1)
        for i in range(30)
    ]
    s = summarize_klines("X", ks, "test")
    assert s.returns[1] is None and s.returns[24] is None and s.volume_ratio_1h is None
    assert "1h n/a, 4h n/a, 24h n/a" in s.as_context() and "Last price: 129.5" in s.as_context()
    with pytest.raises(ValueError):
        summarize_klines("X", [], "test")
