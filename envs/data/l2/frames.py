"""An L2 event stream sampled on a fixed exchange-time grid (the book at each interval's close,
the trades within it)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd

from envs.data.l2.book import Market
from envs.data.l2.stream import L2Event, PathArg, iter_events

__all__ = ["SAMPLE_COLUMNS", "sample_events", "sample_l2"]


SAMPLE_COLUMNS: tuple[str, ...] = (
    "time",
    "best_bid",
    "best_ask",
    "mid",
    "spread",
    "imbalance5",
    "volume",
    "trade_count",
    "high",
    "low",
)


def _interval_ms(interval: str | pd.Timedelta) -> int:
    td = pd.Timedelta(interval)
    ms = td // pd.Timedelta(milliseconds=1)
    if ms <= 0 or pd.Timedelta(milliseconds=ms) != td:
        raise ValueError(
            f"interval must be a positive whole number of milliseconds, got {interval}"
        )
    return int(ms)


def sample_events(events: Iterable[L2Event], interval: str | pd.Timedelta = "1s") -> pd.DataFrame:
    """Sample an event stream on a fixed exchange-time grid (same convention as klines).

    Row ``time`` (UTC) is the start of the interval ``[time, time + interval)``. The book columns
    are the book as of the close of the interval (the last "book" event with exchange time before
    ``time + interval``), forward-filled, NaN before the book is synchronised; ``imbalance5`` is
    ``(sum bid qty - sum ask qty) / (sum bid qty + sum ask qty)`` over the top 5 levels per side
    (over fewer if the events carry fewer). ``volume``, ``trade_count``, ``high``, ``low`` cover the
    trades with trade time in the interval (``high``/``low`` NaN when there were none). The grid
    runs from the interval holding the first timed event to the one holding the last. Times are
    Binance's clock: ``E`` for book events (a snapshot without ``E`` takes the latest exchange time
    seen so far), ``T`` for trades; tickers are not used.
    """
    dt = _interval_ms(interval)
    bt: list[int] = []
    bid: list[float] = []
    ask: list[float] = []
    imb: list[float] = []
    tt: list[int] = []
    tp: list[float] = []
    tq: list[float] = []
    last_t: int | None = None
    held: list[L2Event] = []  # book events without a time, before any timed event

    def add_book(ev: L2Event, t: int) -> None:
        sb = sum(q for _, q in ev.bids[:5])
        sa = sum(q for _, q in ev.asks[:5])
        bt.append(t)
        bid.append(ev.best_bid)
        ask.append(ev.best_ask)
        imb.append((sb - sa) / (sb + sa) if sb + sa > 0 else math.nan)

    for ev in events:
        if ev.exchange_time_ms is not None:
            t = ev.exchange_time_ms
            last_t = t if last_t is None else max(last_t, t)
            for h in held:
                add_book(h, last_t)
            held.clear()
        if ev.kind == "trade":
            tr = ev.trade
            assert tr is not None
            tt.append(tr.time_ms)
            tp.append(tr.price)
            tq.append(tr.qty)
        elif ev.kind == "book":
            if last_t is None:
                held.append(ev)
            else:
                add_book(ev, last_t)
    all_t = bt + tt
    if not all_t:
        return pd.DataFrame({c: pd.Series(dtype=np.float64) for c in SAMPLE_COLUMNS})
    t0 = (min(all_t) // dt) * dt
    n = (max(all_t) - t0) // dt + 1
    starts = t0 + dt * np.arange(n, dtype=np.int64)

    book_t = np.maximum.accumulate(np.asarray(bt, dtype=np.int64)) if bt else np.empty(0, np.int64)
    idx = np.searchsorted(book_t, starts + dt, side="left") - 1
    have = idx >= 0
    take = np.where(have, idx, 0)

    def at_close(values: list[float]) -> np.ndarray:
        if not values:
            return np.full(n, np.nan)
        return np.where(have, np.asarray(values, dtype=np.float64)[take], np.nan)

    best_bid, best_ask, imbalance = at_close(bid), at_close(ask), at_close(imb)

    ti = (np.asarray(tt, dtype=np.int64) - t0) // dt
    p = np.asarray(tp, dtype=np.float64)
    volume = np.bincount(ti, weights=np.asarray(tq, dtype=np.float64), minlength=n)
    count = np.bincount(ti, minlength=n).astype(np.int64)
    high = np.full(n, -np.inf)
    low = np.full(n, np.inf)
    np.maximum.at(high, ti, p)
    np.minimum.at(low, ti, p)
    high[count == 0] = np.nan
    low[count == 0] = np.nan

    return pd.DataFrame(
        {
            "time": pd.to_datetime(starts, unit="ms", utc=True),
            "best_bid": best_bid,
            "best_ask": best_ask,
            "mid": (best_bid + best_ask) / 2.0,
            "spread": best_ask - best_bid,
            "imbalance5": imbalance,
            "volume": volume,
            "trade_count": count,
            "high": high,
            "low": low,
        }
    )


def sample_l2(
    files: PathArg | Sequence[PathArg],
    interval: str | pd.Timedelta = "1s",
    market: Market | None = None,
) -> pd.DataFrame:
    """Replay L2 files and sample them on a fixed grid: ``sample_events(iter_events(files))``.

    Columns ``SAMPLE_COLUMNS`` (see ``sample_events``), one row per interval, e.g. "100ms", "1s".
    """
    return sample_events(iter_events(files, depth=5, market=market), interval)
