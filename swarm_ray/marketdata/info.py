"""What a market-data CSV holds: symbol, kind, first and last time, rows and gaps.

Reads the site's kline, aggTrades and bookTicker CSVs, with or without a header row (spot files
have none, USD-M futures files have one). The kind comes from the file name
(``BTCUSDT-1m-2024-08-01.csv``, ``BTCUSDT-aggTrades-...``, ``BTCUSDT-bookTicker-...``), else from
the header or the columns. Times are normalised to milliseconds: the site's spot files switched
to microseconds on 2025-01-01 (a value above 1e14 is read as microseconds).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from envs.data.ticks import to_ms
from swarm_ray.marketdata.site import MarketDataError

__all__ = ["FileStats", "file_stats", "iso", "summarise", "to_ms"]

TRADE_GAP_MS = 60_000
"""For trades and bookTicker, a pause longer than this counts as a gap."""

_NAME = re.compile(
    r"^(?P<sym>[A-Z0-9]+)-(?P<mid>[A-Za-z0-9]+)-(?P<date>\d{4}-\d{2}(?:-\d{2})?)\.csv$"
)
_INTERVAL = re.compile(r"^(?P<n>\d+)(?P<u>[smhdw])$")
_UNIT_MS = {"s": 1_000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000}
# kind -> (time column without a header, names it may have in a header row)
_TIME_COLUMN: dict[str, tuple[int, tuple[str, ...]]] = {
    "klines": (0, ("open_time",)),
    "aggTrades": (5, ("transact_time",)),
    "bookTicker": (5, ("transaction_time", "event_time")),
}


def iso(ms: int | None) -> str | None:
    """``2024-08-01T00:00:00Z`` (milliseconds shown only when not zero)."""
    if ms is None:
        return None
    t = datetime.fromtimestamp(ms / 1000, tz=UTC)
    text = t.strftime("%Y-%m-%dT%H:%M:%S")
    return f"{text}.{ms % 1000:03d}Z" if ms % 1000 else f"{text}Z"


def interval_ms(interval: str) -> int | None:
    m = _INTERVAL.match(interval)
    return int(m["n"]) * _UNIT_MS[m["u"]] if m else None


@dataclass
class FileStats:
    """One file's summary (times in milliseconds since the epoch, UTC)."""

    path: str
    symbol: str | None
    kind: str
    interval: str | None
    rows: int
    first_ms: int | None
    last_ms: int | None
    time_unit: str
    gaps: int
    largest_gap_ms: int
    files: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "symbol": self.symbol,
            "kind": self.kind,
            "first": iso(self.first_ms),
            "last": iso(self.last_ms),
            "rows": self.rows,
            "gaps": self.gaps,
        }
        if self.interval:
            out["interval"] = self.interval
        out["largest_gap_s"] = self.largest_gap_ms / 1000
        out["time_unit"] = self.time_unit
        out["files"] = self.files or [self.path]
        return out


def _first_line(path: Path) -> list[str]:
    with path.open("rb") as f:
        line = f.readline(4096)
    return [c.strip().lower() for c in line.decode("utf-8", "replace").strip().split(",")]


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _detect(path: Path, name: str, cells: list[str], has_header: bool) -> tuple[str, str | None]:
    """(kind, interval) from the name, else from the header or the columns."""
    m = _NAME.match(name)
    if m:
        mid = m["mid"]
        if mid in ("aggTrades", "bookTicker"):
            return mid, None
        if interval_ms(mid):
            return "klines", mid
    if has_header:
        for kind, (_, names) in _TIME_COLUMN.items():
            if any(n in cells for n in names):
                return kind, None
    elif len(cells) == 12:
        return "klines", None
    elif len(cells) == 8:
        return "aggTrades", None
    elif len(cells) == 7:
        return ("aggTrades", None) if cells[6] in ("true", "false") else ("bookTicker", None)
    raise MarketDataError(
        f"{path}: not a kline, aggTrades or bookTicker CSV "
        f"(first row has {len(cells)} columns: {','.join(cells)[:80]})"
    )


def _read_times(path: Path, kind: str, cells: list[str], has_header: bool) -> np.ndarray:
    col, names = _TIME_COLUMN[kind]
    if has_header:
        col = next((cells.index(n) for n in names if n in cells), col)
    try:
        raw = pd.read_csv(path, header=None, usecols=[col], skiprows=1 if has_header else 0)
    except (pd.errors.ParserError, ValueError, OSError) as exc:
        raise MarketDataError(f"{path}: cannot read: {exc}") from None
    t = pd.to_numeric(raw.iloc[:, 0], errors="coerce")
    if t.isna().any():
        row = int(np.flatnonzero(t.isna().to_numpy())[0]) + 1 + int(has_header)
        raise MarketDataError(f"{path}: row {row} has no numeric time in column {col + 1}")
    return t.to_numpy(np.int64)


def _gaps(times: np.ndarray, step_ms: int | None) -> tuple[int, int]:
    """(gaps, largest pause): missing bars when ``step_ms`` is a kline interval, else the
    number of pauses longer than ``TRADE_GAP_MS``."""
    if len(times) < 2:
        return 0, 0
    d = np.diff(times)
    largest = int(max(d.max(), 0))
    if step_ms:
        big = d[d > step_ms]
        return int((big // step_ms - 1 + (big % step_ms > 0)).sum()), largest
    return int((d > TRADE_GAP_MS).sum()), largest


def _kline_step(interval: str | None, times: np.ndarray) -> int | None:
    if interval:
        return interval_ms(interval)
    d = np.diff(times)
    d = d[d > 0]
    return int(d.min()) if len(d) else None


def file_stats(path: str | os.PathLike[str], name: str | None = None) -> FileStats:
    """Summarise one CSV, or ``MarketDataError`` naming it; ``name`` stands for its file name
    (symbol, kind and interval are read from it) when the file has a temporary name."""
    p = Path(path)
    name = name or p.name
    if not p.is_file():
        raise MarketDataError(f"{p}: no such file")
    cells = _first_line(p)
    if cells == [""]:
        raise MarketDataError(f"{p}: empty file")
    has_header = not _is_number(cells[0])
    kind, interval = _detect(p, name, cells, has_header)
    times, unit = to_ms(_read_times(p, kind, cells, has_header))
    step = _kline_step(interval, times) if kind == "klines" else None
    if kind == "klines" and interval is None and step:
        interval = _interval_name(step)
    gaps, largest = _gaps(times, step)
    m = _NAME.match(name)
    return FileStats(
        path=str(p),
        symbol=m["sym"] if m else None,
        kind=kind,
        interval=interval,
        rows=len(times),
        first_ms=int(times.min()) if len(times) else None,
        last_ms=int(times.max()) if len(times) else None,
        time_unit=unit,
        gaps=gaps,
        largest_gap_ms=largest,
    )


def _interval_name(step_ms: int) -> str | None:
    for unit, ms in sorted(_UNIT_MS.items(), key=lambda kv: -kv[1]):
        if step_ms % ms == 0:
            return f"{step_ms // ms}{unit}"
    return None


def _merge(parts: list[FileStats]) -> FileStats:
    """One (symbol, kind, interval)'s files as one series: rows summed, gaps inside each file
    plus the gaps between consecutive files (a missing day is a gap)."""
    parts = sorted(parts, key=lambda s: (s.first_ms is None, s.first_ms or 0))
    step = (
        interval_ms(parts[0].interval) if parts[0].kind == "klines" and parts[0].interval else None
    )
    gaps = sum(s.gaps for s in parts)
    largest = max(s.largest_gap_ms for s in parts)
    dated = [s for s in parts if s.first_ms is not None]
    for a, b in pairwise(dated):
        bridge = np.array([a.last_ms, b.first_ms], dtype=np.int64)
        g, big = _gaps(bridge, step)
        gaps += g
        largest = max(largest, big)
    firsts = [s.first_ms for s in dated]
    lasts = [s.last_ms for s in dated if s.last_ms is not None]
    units = {s.time_unit for s in parts}
    return FileStats(
        path=str(Path(parts[0].path).parent),
        symbol=parts[0].symbol,
        kind=parts[0].kind,
        interval=parts[0].interval,
        rows=sum(s.rows for s in parts),
        first_ms=min(firsts) if firsts else None,
        last_ms=max(lasts) if lasts else None,
        time_unit="+".join(sorted(units)),
        gaps=gaps,
        largest_gap_ms=largest,
        files=[s.path for s in parts],
    )


def summarise(path: str | os.PathLike[str]) -> FileStats | list[FileStats]:
    """A file's summary, or for a folder (searched recursively) one summary per
    (symbol, kind, interval), its files taken together."""
    p = Path(path)
    if p.is_file():
        return file_stats(p)
    if not p.is_dir():
        raise MarketDataError(f"{p}: no such file or folder")
    files = sorted(f for f in p.rglob("*.csv") if not f.name.startswith("."))
    if not files:
        raise MarketDataError(f"{p}: no .csv file in this folder")
    groups: dict[tuple[str, str, str], list[FileStats]] = {}
    for f in files:
        s = file_stats(f)
        groups.setdefault((s.symbol or "", s.kind, s.interval or ""), []).append(s)
    return [_merge(parts) for _, parts in sorted(groups.items())]
