"""The days a backtest trades: data files in any supported format, split into UTC days.

A day is traded from its first bar to its last; the day before it (when the data has it, or a
Binance file of it lies beside) warms the features up and is not scored. A day with no day
before it is used only as warm-up for the next one.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from envs.data.klines import KlineDataError, load_klines
from envs.data.ohlcv import load_ohlcv, symbol_from_path, write_binance_csv

__all__ = ["DataError", "Day", "resolve_days"]

_DAY_MS = 86_400_000


class DataError(ValueError):
    """A data file that cannot be backtested; the message names it."""


@dataclass(frozen=True)
class Day:
    """One UTC day of one symbol, as Binance kline CSVs the replay reads."""

    symbol: str
    date: str
    file: str
    warmup_file: str | None
    first_row: int
    """Index of the day's first bar in the replay of ``[warmup_file, file]``."""
    n_bars: int
    """Bars traded: the day's rows less one (the last close ends the day)."""
    first_open_ms: int


def _binance_day_file(path: Path) -> bool:
    return path.suffix.lower() == ".csv" and symbol_from_path(path) is not None


def _sibling(path: Path, symbol: str, date: str) -> Path | None:
    cand = path.with_name(f"{symbol}-1m-{date}.csv")
    return cand if cand.is_file() else None


def resolve_days(
    files: Sequence[str | os.PathLike[str]], symbol: str | None, work_dir: str | os.PathLike[str]
) -> tuple[list[Day], list[str]]:
    """The days of ``files`` (any supported format) and notes on days used only as warm-up.

    Files that are not one-day Binance CSVs are split into one such file per day under
    ``work_dir``.
    """
    by_symbol: dict[str, dict[str, tuple[Path, pd.DataFrame]]] = {}
    for f in files:
        path = Path(f)
        sym = symbol or symbol_from_path(path)
        if sym is None:
            raise DataError(f"{path}: cannot tell the symbol from the file name; pass --symbol")
        try:
            df = load_ohlcv(path)
        except KlineDataError as exc:
            raise DataError(str(exc)) from None
        dates = (df["open_time_ms"] // _DAY_MS).to_numpy()
        one_day = len(set(dates.tolist())) == 1
        for d in sorted(set(dates.tolist())):
            date = pd.Timestamp(int(d) * _DAY_MS, unit="ms", tz="UTC").strftime("%Y-%m-%d")
            part = df[dates == d]
            if one_day and _binance_day_file(path):
                out = path
            else:
                out = Path(work_dir) / sym / f"{sym}-1m-{date}.csv"
                write_binance_csv(part, out)
            by_symbol.setdefault(sym, {})[date] = (out, part)
    days: list[Day] = []
    notes: list[str] = []
    for sym, dated in sorted(by_symbol.items()):
        for date, (path, part) in sorted(dated.items()):
            prev = (pd.Timestamp(date) - pd.Timedelta(days=1)).strftime("%Y-%m-%d")
            warm = dated[prev][0] if prev in dated else _sibling(path, sym, prev)
            if warm is None:
                notes.append(f"{sym} {date}: no data of the day before; used as warm-up only")
                continue
            if len(part) < 2:
                notes.append(f"{sym} {date}: fewer than two bars; skipped")
                continue
            warm_rows = len(dated[prev][1]) if prev in dated else len(load_klines(warm))
            days.append(
                Day(
                    symbol=sym,
                    date=date,
                    file=str(path),
                    warmup_file=str(warm),
                    first_row=warm_rows,
                    n_bars=len(part) - 1,
                    first_open_ms=int(part["open_time_ms"].iloc[0]),
                )
            )
    if not days:
        raise DataError(
            "no day to backtest: each day needs the day before it for warm-up "
            f"({'; '.join(notes) or 'no data'})"
        )
    return days, notes
