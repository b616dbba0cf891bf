"""Recent market data for the sentiment prompt: a summary of klines (last price, returns over
1h/4h/24h, realised volatility, volume against its average) and its text for the LLM."""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from swarm_ray.core.instruments import Kline

__all__ = [
    "MarketSummary",
    "klines_from_frame",
    "latest_kline_file",
    "summarize_klines",
]

_HOUR_MS = 3_600_000
RETURN_HORIZONS_H = (1, 4, 24)


@dataclass(frozen=True, slots=True)
class MarketSummary:
    """What the klines say. Returns are fractions (0.01 = +1 %); None when the data is shorter."""

    symbol: str
    source: str
    end_time_ms: int
    last_price: float
    returns: dict[int, float | None]  # hours -> return over that horizon
    volatility_24h: float | None  # stdev of bar log returns * sqrt(bars), over <= 24 h
    volume_1h: float
    volume_ratio_1h: float | None  # last hour's volume / the window's average hourly volume
    high_24h: float
    low_24h: float
    bars: int
    interval_ms: int

    def as_context(self) -> str:
        """The block of text that goes into the prompt (figures in fixed formats)."""
        lines = [
            f"Source: {self.source}, {self.bars} bars of {self.interval_ms // 60_000}m "
            f"up to {_utc(self.end_time_ms)}",
            f"Last price: {self.last_price:.8g}",
            "Returns: " + ", ".join(f"{h}h {_pct(self.returns[h])}" for h in RETURN_HORIZONS_H),
            f"24h range: low {self.low_24h:.8g} high {self.high_24h:.8g}",
        ]
        if self.volatility_24h is not None:
            lines.append(f"Realised volatility (24h): {self.volatility_24h * 100:.2f}%")
        if self.volume_ratio_1h is not None:
            lines.append(
                f"Volume last 1h: {self.volume_1h:.6g} ({self.volume_ratio_1h:.2f}x the "
                "average hourly volume of the window)"
            )
        return "\n".join(lines)

    def as_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "end_time": _utc(self.end_time_ms),
            "bars": self.bars,
            "last_price": self.last_price,
            **{f"return_{h}h": self.returns[h] for h in RETURN_HORIZONS_H},
            "volatility_24h": self.volatility_24h,
            "volume_ratio_1h": self.volume_ratio_1h,
        }


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{x * 100:+.2f}%"


def _utc(ms: int) -> str:
    import datetime as dt

    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def summarize_klines(symbol: str, klines: Sequence[Kline], source: str) -> MarketSummary:
    """Summarise time-ordered klines of one interval (the last one may still be open).

    Prices at a past instant are read from a series of points: the first bar's open at its
    open time, then every bar's close at its end. The return over ``h`` hours is the last close
    against the last point at or before ``end - h``.
    """
    if not klines:
        raise ValueError(f"{symbol}: no klines to summarise")
    interval = (
        klines[1].open_time_ms - klines[0].open_time_ms
        if len(klines) > 1
        else klines[0].close_time_ms + 1 - klines[0].open_time_ms
    )
    if interval <= 0:
        raise ValueError(f"{symbol}: klines are not time-ordered")
    times = [klines[0].open_time_ms] + [k.open_time_ms + interval for k in klines]
    prices = [klines[0].open] + [k.close for k in klines]
    end, last = times[-1], prices[-1]

    def price_at(t: int) -> float | None:
        if t < times[0]:
            return None
        lo, hi = 0, len(times) - 1  # last index with times[i] <= t
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if times[mid] <= t:
                lo = mid
            else:
                hi = mid - 1
        return prices[lo]

    returns: dict[int, float | None] = {}
    for h in RETURN_HORIZONS_H:
        past = price_at(end - h * _HOUR_MS)
        returns[h] = None if past is None or past <= 0 else last / past - 1

    window = [k for k in klines if k.open_time_ms >= end - 24 * _HOUR_MS]
    closes = [window[0].open] + [k.close for k in window]
    logs = [math.log(b / a) for a, b in itertools.pairwise(closes) if a > 0 and b > 0]
    vol = None
    if len(logs) >= 2:
        mean = sum(logs) / len(logs)
        var = sum((x - mean) ** 2 for x in logs) / (len(logs) - 1)
        vol = math.sqrt(var) * math.sqrt(len(logs))

    last_hour = [k for k in window if k.open_time_ms >= end - _HOUR_MS]
    volume_1h = sum(k.volume for k in last_hour)
    span_h = len(window) * interval / _HOUR_MS
    total = sum(k.volume for k in window)
    ratio = volume_1h / (total / span_h) if span_h > 1 and total > 0 else None
    return MarketSummary(
        symbol=symbol,
        source=source,
        end_time_ms=end,
        last_price=last,
        returns=returns,
        volatility_24h=vol,
        volume_1h=volume_1h,
        volume_ratio_1h=ratio,
        high_24h=max(k.high for k in window),
        low_24h=min(k.low for k in window),
        bars=len(klines),
        interval_ms=interval,
    )


def klines_from_frame(df: Any) -> list[Kline]:
    """Rows of ``envs.data.klines.load_klines`` output as ``Kline`` values."""
    cols = ("open_time_ms", "open", "high", "low", "close", "volume", "close_time_ms")
    return [
        Kline(int(t), float(o), float(h), float(lo), float(c), float(v), int(ct))
        for t, o, h, lo, c, v, ct in df[list(cols)].itertuples(index=False, name=None)
    ]


def latest_kline_file(data_dir: str | Path, symbol: str) -> Path | None:
    """The newest ``<SYMBOL>-1m-YYYY-MM-DD.csv`` in ``data_dir`` (names sort by date)."""
    files = sorted(Path(data_dir).glob(f"{symbol.upper()}-1m-*.csv"))
    return files[-1] if files else None
