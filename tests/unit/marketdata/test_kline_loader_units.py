"""The project's kline loader (``envs.data.klines``) on the site's newer file shapes: times in
microseconds (spot, from 2025-01-01) and a header row (USD-M futures)."""

from __future__ import annotations

import pandas as pd
import pytest

from envs.data.klines import KlineDataError, load_klines
from tests.fakes.binance_data_site import KLINE_HEADER, KLINES, build_csv

NAME = "BTCUSDT-1m-2024-08-01.csv"


def test_a_microsecond_file_loads_identically_to_the_millisecond_one(tmp_path) -> None:
    us = tmp_path / NAME
    us.write_text(build_csv("spot", "klines", "2024-08-01", micro=True))
    assert us.read_text().startswith("1722470400000000,")
    ref = load_klines(KLINES / NAME)
    got = load_klines(us)
    pd.testing.assert_frame_equal(got, ref)
    assert got.index[0] == pd.Timestamp("2024-08-01T00:00:00Z")
    assert got["close_time_ms"].iloc[0] == 1722470459999


def test_microsecond_and_millisecond_days_load_together_in_order(tmp_path) -> None:
    us = tmp_path / "BTCUSDT-1m-2024-08-02.csv"
    us.write_text(build_csv("spot", "klines", "2024-08-02", micro=True))
    both = load_klines([KLINES / NAME, us])
    ref = load_klines([KLINES / NAME, KLINES / us.name])
    pd.testing.assert_frame_equal(both, ref)


def test_a_header_row_is_skipped(tmp_path) -> None:
    f = tmp_path / NAME
    f.write_text(KLINE_HEADER + "\n" + (KLINES / NAME).read_text())
    pd.testing.assert_frame_equal(load_klines(f), load_klines(KLINES / NAME))


def test_a_file_that_is_not_klines_is_still_an_error_naming_it(tmp_path) -> None:
    bad = tmp_path / NAME
    bad.write_text("this,is,not\na,kline,file\n")
    with pytest.raises(KlineDataError, match="no numeric open/close time"):
        load_klines(bad)
