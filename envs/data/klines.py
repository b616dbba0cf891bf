"""Binance kline CSV loader (the public data dump format: no header, 12 columns)."""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

KLINE_COLUMNS: tuple[str, ...] = (
    "open_time_ms",
    "open",
    "high",
    "low",
    "close",
    "volume",
    "close_time_ms",
    "quote_volume",
    "number_of_trades",
    "taker_buy_base_volume",
    "taker_buy_quote_volume",
    "ignore",
)
_FLOAT_COLUMNS = ("open", "high", "low", "close", "volume", "quote_volume", "taker_buy_base_volume")


class KlineDataError(ValueError):
    """A kline file that cannot be replayed (missing, malformed, or inconsistent)."""


def load_klines(paths: str | os.PathLike[str] | Sequence[str | os.PathLike[str]]) -> pd.DataFrame:
    """Load one or more kline CSVs into one time-ordered frame indexed by open time (UTC).

    Rows are checked: prices positive and finite, ``low <= open, close <= high``, times strictly
    increasing across files. A violation raises ``KlineDataError`` naming the file and row.
    """
    if isinstance(paths, str | os.PathLike):
        paths = [paths]
    frames = [_load_one(Path(p)) for p in paths]
    if not frames:
        raise KlineDataError("no kline files given")
    df = pd.concat(frames)
    t = df["open_time_ms"].to_numpy()
    if len(t) > 1 and not np.all(np.diff(t) > 0):
        bad = int(np.argmin(np.diff(t) > 0))
        raise KlineDataError(
            f"kline times not strictly increasing at row {bad + 1} (files {paths})"
        )
    df.index = pd.to_datetime(df["open_time_ms"], unit="ms", utc=True)
    df.index.name = "time"
    return df


def _load_one(path: Path) -> pd.DataFrame:
    if not path.is_file():
        raise KlineDataError(f"{path}: kline file not found")
    try:
        # USD-M futures dumps start with a header row (open_time,open,...); spot dumps have none
        with path.open("rb") as f:
            header = f.readline(64).split(b",")[0].strip().lower() == b"open_time"
        df = pd.read_csv(path, header=None, names=list(KLINE_COLUMNS), skiprows=int(header))
    except (pd.errors.ParserError, ValueError) as exc:
        raise KlineDataError(f"{path}: not a Binance kline CSV: {exc}") from None
    if df.empty:
        raise KlineDataError(f"{path}: no rows")
    for col in ("open_time_ms", "close_time_ms", "number_of_trades"):
        df[col] = pd.to_numeric(df[col], errors="coerce")
    bad_time = df[["open_time_ms", "close_time_ms"]].isna().any(axis=1).to_numpy()
    if bad_time.any():
        row = int(np.flatnonzero(bad_time)[0])
        raise KlineDataError(
            f"{path}: not a Binance kline CSV: row {row + 1} has no numeric open/close time"
        )
    df[["open_time_ms", "close_time_ms"]] = df[["open_time_ms", "close_time_ms"]].astype(np.int64)
    # Binance's spot dumps from 2025-01-01 use microseconds; normalise to milliseconds.
    if df["open_time_ms"].iloc[0] > 10**14:
        df["open_time_ms"] //= 1000
        df["close_time_ms"] //= 1000
    return check_klines(df, path).drop(columns=["ignore"])


def check_klines(df: pd.DataFrame, path: str | os.PathLike[str]) -> pd.DataFrame:
    """``df`` with numeric price and volume columns, or ``KlineDataError`` naming ``path`` and
    the first row whose prices are not positive and finite or whose low/high do not bound its
    open and close."""
    for col in _FLOAT_COLUMNS:
        df[col] = pd.to_numeric(df[col], errors="coerce").astype(np.float64)
    px = df[["open", "high", "low", "close"]].to_numpy()
    bad = ~np.isfinite(px).all(axis=1) | (px <= 0).any(axis=1)
    bad |= (df["low"] > df[["open", "close"]].min(axis=1)) | (
        df["high"] < df[["open", "close"]].max(axis=1)
    )
    if bad.any():
        row = int(np.flatnonzero(np.asarray(bad))[0])
        raise KlineDataError(f"{path}: invalid prices at row {row + 1}: {df.iloc[row].to_dict()}")
    return df


def kline_files(
    folder: str | os.PathLike[str], days: Iterable[str], symbol: str = "BTCUSDT"
) -> list[Path]:
    """Paths of ``SYMBOL-1m-YYYY-MM-DD.csv`` for the given days in ``folder``."""
    return [Path(folder) / f"{symbol}-1m-{day}.csv" for day in days]
