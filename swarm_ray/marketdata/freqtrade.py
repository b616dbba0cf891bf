"""freqtrade OHLCV files (feather or JSON) as Binance kline CSVs, one file per UTC day.

Reads with ``envs.data.ohlcv.load_ohlcv`` and writes with ``write_binance_csv``, so the CSVs
are what the backtest, training and the paper exchange replay. freqtrade keeps no trade counts or
taker volume: the CSVs have trade count 0 and taker-buy volume half the volume.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from envs.data.klines import KlineDataError
from envs.data.ohlcv import load_ohlcv, write_binance_csv
from swarm_ray.marketdata.info import interval_ms
from swarm_ray.marketdata.site import MarketDataError, parse_symbol

__all__ = ["import_freqtrade"]

_DAY_MS = 86_400_000
# BTC_USDT-1m.feather, BTC_USDT_USDT-5m-futures.json (the pair's base and quote come first)
_NAME = re.compile(r"^([A-Za-z0-9]+)_([A-Za-z0-9]+)(?:_[A-Za-z0-9]+)?-(\d+[smhdw])(?:-\w+)?$")
_STEPS = (("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1_000))


def _interval(step_ms: int) -> str:
    for unit, ms in _STEPS:
        if step_ms % ms == 0:
            return f"{step_ms // ms}{unit}"
    raise MarketDataError(f"bar spacing of {step_ms} ms is not a kline interval")


def import_freqtrade(
    path: str | os.PathLike[str], out: str | os.PathLike[str], symbol: str | None = None
) -> list[Path]:
    """Split a freqtrade file into ``{out}/{SYM}-{interval}-{YYYY-MM-DD}.csv`` files (the site's
    kline format, times in milliseconds); the paths written, in date order."""
    p = Path(path)
    if p.suffix.lower() not in (".feather", ".json"):
        raise MarketDataError(f"{p}: not a freqtrade OHLCV file (.feather or .json)")
    m = _NAME.match(p.stem)
    if symbol:
        sym = parse_symbol(symbol)
    elif m:
        sym = (m[1] + m[2]).upper()
    else:
        raise MarketDataError(f"--symbol: cannot tell the symbol from {p.name}; pass --symbol")
    try:
        df = load_ohlcv(p)
    except KlineDataError as exc:
        raise MarketDataError(str(exc)) from None
    if df.empty:
        raise MarketDataError(f"{p}: no bars")
    t = df["open_time_ms"].to_numpy(np.int64)
    steps = np.diff(t)
    if len(steps):
        step = int(steps.min())
    elif m:
        step = interval_ms(m[3]) or 60_000
    else:
        step = 60_000
    interval = _interval(step)
    df["close_time_ms"] = t + step - 1
    days = t // _DAY_MS
    written: list[Path] = []
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    for d in np.unique(days):
        date = pd.Timestamp(int(d) * _DAY_MS, unit="ms", tz="UTC").strftime("%Y-%m-%d")
        target = folder / f"{sym}-{interval}-{date}.csv"
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{target.name}.", suffix=".part")
        os.close(fd)
        try:
            write_binance_csv(df[days == d], tmp)
            os.replace(tmp, target)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
        written.append(target)
    return written
