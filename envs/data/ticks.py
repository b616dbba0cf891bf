"""Binance's daily trade and best bid/ask files (``data.binance.vision``), as DataFrames.

- aggTrades: ``agg_trade_id, price, quantity, first_trade_id, last_trade_id, transact_time,
  is_buyer_maker[, is_best_match]``; spot files have no header row, USD-M files have one.
- bookTicker (USD-M only): ``update_id, best_bid_price, best_bid_qty, best_ask_price,
  best_ask_qty, transaction_time, event_time``, with a header row.

Times are normalised to milliseconds (``to_ms``): the site's spot files switched to
microseconds on 2025-01-01. Several files are read in the order given.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from envs.data.l2.book import L2DataError

__all__ = ["l2_to_ticks", "load_book_ticker", "load_trades_csv", "to_ms"]

PathArg = str | os.PathLike[str]


def to_ms(values: np.ndarray) -> tuple[np.ndarray, str]:
    """Epoch times in milliseconds, and the unit they came in (``ms``, ``us`` or ``ns``)."""
    v = np.asarray(values, dtype=np.int64)
    unit = "ms"
    if len(v) and v.max() > 10**17:
        unit = "ns"
    elif len(v) and v.max() > 10**14:
        unit = "us"
    out = np.where(v > 10**17, v // 1_000_000, np.where(v > 10**14, v // 1_000, v))
    return out, unit


def _read(path: Path, names: Sequence[str], min_cols: int) -> pd.DataFrame:
    if not path.is_file():
        raise L2DataError(f"{path}: file not found")
    with path.open("rb") as fh:
        first = fh.readline(4096).decode("utf-8", "replace").strip().split(",")
    header = 0 if first and not first[0].strip().lstrip("-").isdigit() else None
    try:
        df = pd.read_csv(path, header=header)
    except (ValueError, pd.errors.ParserError) as exc:
        raise L2DataError(f"{path}: not a CSV: {exc}") from None
    if df.shape[1] < min_cols:
        raise L2DataError(f"{path}: expected {min_cols} columns, found {df.shape[1]}")
    df = df.iloc[:, : len(names)]
    df.columns = list(names)[: df.shape[1]]
    return df


def _read_all(
    files: Sequence[PathArg], names: Sequence[str], min_cols: int, kind: str
) -> tuple[pd.DataFrame, np.ndarray]:
    """The files one after another, and their ``time`` column in milliseconds."""
    parts = [_read(Path(f), names, min_cols) for f in files]
    if not parts:
        raise L2DataError(f"no {kind} files given")
    df = pd.concat(parts, ignore_index=True)
    return df, to_ms(df["time"].to_numpy())[0]


def load_trades_csv(files: Sequence[PathArg]) -> pd.DataFrame:
    """aggTrades files -> ``time_ms, price, qty, is_buyer_maker`` in file order."""
    names = ("id", "price", "qty", "first_id", "last_id", "time", "is_buyer_maker")
    df, ms = _read_all(files, names, 7, "aggTrades")
    maker = df["is_buyer_maker"]
    if maker.dtype != bool:
        maker = maker.astype(str).str.strip().str.lower().isin(("true", "1"))
    return pd.DataFrame(
        {
            "time_ms": ms,
            "price": df["price"].to_numpy(np.float64),
            "qty": df["qty"].to_numpy(np.float64),
            "is_buyer_maker": maker.to_numpy(bool),
        }
    )


def load_book_ticker(files: Sequence[PathArg]) -> pd.DataFrame:
    """bookTicker files -> ``time_ms, bid, bid_qty, ask, ask_qty`` (transaction time)."""
    names = ("update_id", "bid", "bid_qty", "ask", "ask_qty", "time", "event_time")
    df, ms = _read_all(files, names, 6, "bookTicker")
    return pd.DataFrame(
        {
            "time_ms": ms,
            "bid": df["bid"].to_numpy(np.float64),
            "bid_qty": df["bid_qty"].to_numpy(np.float64),
            "ask": df["ask"].to_numpy(np.float64),
            "ask_qty": df["ask_qty"].to_numpy(np.float64),
        }
    )


def l2_to_ticks(files: Sequence[PathArg], out_dir: PathArg, symbol: str) -> tuple[Path, Path]:
    """Write the trades and the best bid/ask updates of an L2 recording (``@trade`` and
    ``@bookTicker`` messages) as the data site's USD-M aggTrades and bookTicker CSVs (one trade
    per row; a ticker's event time stands for its transaction time). Returns both paths: the
    same market seen through the files a user can download, to compare with the full book."""
    from envs.data.l2.stream import iter_events

    trades, tickers = [], []
    for ev in iter_events(list(files), depth=0):
        if ev.kind == "trade" and ev.trade is not None:
            tr = ev.trade
            trades.append((tr.trade_id, tr.price, tr.qty, tr.trade_id, tr.trade_id, tr.time_ms,
                           tr.is_buyer_maker))  # fmt: skip
        elif ev.kind == "ticker" and ev.ticker is not None and ev.exchange_time_ms is not None:
            t = ev.ticker
            tickers.append((t.update_id, t.bid, t.bid_qty, t.ask, t.ask_qty, ev.exchange_time_ms,
                            ev.exchange_time_ms))  # fmt: skip
    if not tickers:
        raise L2DataError(f"{[str(f) for f in files]}: no bookTicker messages with a time")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    day = pd.Timestamp(tickers[0][5], unit="ms", tz="UTC").strftime("%Y-%m-%d")
    tp = out / f"{symbol}-aggTrades-{day}.csv"
    kp = out / f"{symbol}-bookTicker-{day}.csv"
    pd.DataFrame(
        trades,
        columns=["agg_trade_id", "price", "quantity", "first_trade_id", "last_trade_id",
                 "transact_time", "is_buyer_maker"],
    ).to_csv(tp, index=False)  # fmt: skip
    pd.DataFrame(
        tickers,
        columns=["update_id", "best_bid_price", "best_bid_qty", "best_ask_price",
                 "best_ask_qty", "transaction_time", "event_time"],
    ).to_csv(kp, index=False)  # fmt: skip
    return tp, kp
