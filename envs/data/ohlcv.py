"""OHLCV files in the formats users already have, as Binance kline frames.

- Binance kline CSV (the public data dump: no header, 12 columns; open times in milliseconds
  or, in newer dumps, microseconds): ``envs.data.klines.load_klines``.
- freqtrade feather (``BTC_USDT-1m.feather``: columns ``date, open, high, low, close, volume``).
- freqtrade JSON (``BTC_USDT-1m.json``: a list of ``[open_time_ms, open, high, low, close,
  volume]`` rows).

Columns freqtrade does not keep read as neutral: trade count 0 and taker-buy volume half the
volume, so the features built on them (trade activity, taker imbalance) read as average.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import numpy as np
import pandas as pd

from envs.data.klines import KLINE_COLUMNS, KlineDataError, check_klines, load_klines

__all__ = ["load_ohlcv", "symbol_from_path", "write_binance_csv"]

_ONE_MINUTE_MS = 60_000


def symbol_from_path(path: str | os.PathLike[str]) -> str | None:
    """``BTCUSDT`` from ``BTCUSDT-1m-2024-08-01.csv`` or ``BTC_USDT-1m.feather``."""
    m = re.match(r"^([A-Za-z0-9]+(?:_[A-Za-z0-9]+)?)-1m", Path(path).name)
    return m.group(1).replace("_", "").upper() if m else None


def load_ohlcv(path: str | os.PathLike[str]) -> pd.DataFrame:
    """One file of 1-minute bars as a kline frame (``load_klines`` columns and checks)."""
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix == ".csv":
        return load_klines(p)
    if not p.is_file():
        raise KlineDataError(f"{p}: OHLCV file not found")
    try:
        if suffix == ".feather":
            raw = pd.read_feather(p)
            if "date" not in raw.columns:
                raise KlineDataError(f"{p}: a freqtrade feather file needs a 'date' column")
            t = pd.to_datetime(raw["date"], utc=True).dt.as_unit("ms").astype("int64")
            frame = raw.assign(open_time_ms=t.to_numpy())
        elif suffix == ".json":
            rows = json.loads(p.read_text())
            frame = pd.DataFrame(
                rows, columns=["open_time_ms", "open", "high", "low", "close", "volume"]
            )
        else:
            raise KlineDataError(f"{p}: unknown OHLCV format (.csv, .feather or .json)")
    except (ValueError, OSError, KeyError) as exc:
        if isinstance(exc, KlineDataError):
            raise
        raise KlineDataError(f"{p}: cannot read OHLCV: {exc}") from None
    missing = {"open", "high", "low", "close", "volume"} - set(frame.columns)
    if missing:
        raise KlineDataError(f"{p}: missing columns {sorted(missing)}")
    return _as_klines(frame, p)


def _as_klines(frame: pd.DataFrame, path: Path) -> pd.DataFrame:
    df = pd.DataFrame({"open_time_ms": frame["open_time_ms"].to_numpy(np.int64)})
    for col in ("open", "high", "low", "close", "volume"):
        df[col] = pd.to_numeric(frame[col], errors="coerce").to_numpy(np.float64)
    df["close_time_ms"] = df["open_time_ms"] + _ONE_MINUTE_MS - 1
    df["quote_volume"] = df["volume"] * df["close"]
    df["number_of_trades"] = 0
    df["taker_buy_base_volume"] = df["volume"] / 2
    df["taker_buy_quote_volume"] = df["quote_volume"] / 2
    df["ignore"] = 0
    df = check_klines(df, path)
    t = df["open_time_ms"].to_numpy()
    if len(t) > 1 and not np.all(np.diff(t) > 0):
        raise KlineDataError(f"{path}: bar times not strictly increasing")
    df.index = pd.to_datetime(df["open_time_ms"], unit="ms", utc=True)
    df.index.name = "time"
    return df.drop(columns=["ignore"])


def write_binance_csv(df: pd.DataFrame, path: str | os.PathLike[str]) -> Path:
    """Write a kline frame as a Binance kline CSV (what the paper exchange replays)."""
    out = df.copy()
    out["ignore"] = 0
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    out[list(KLINE_COLUMNS)].to_csv(p, header=False, index=False)
    return p
