"""Binance L2 stream files: order-book rebuild, a time-ordered event stream, sampled frames, trades.

- ``envs.data.l2.book``: the order book and its update-id chain rules (``OrderBook``);
- ``envs.data.l2.stream``: the file format, ``iter_events`` (each message with the rebuilt book's
  state after it) and ``load_trades``;
- ``envs.data.l2.frames``: ``sample_events`` / ``sample_l2``, the stream on a fixed time grid.

Everything public is importable from ``envs.data.l2``.
"""

from envs.data.l2.book import BookGapError, L2DataError, Level, Market, OrderBook
from envs.data.l2.frames import SAMPLE_COLUMNS, sample_events, sample_l2
from envs.data.l2.stream import (
    TRADE_COLUMNS,
    BookTicker,
    EventKind,
    L2Event,
    Trade,
    iter_events,
    load_trades,
)

__all__ = [
    "SAMPLE_COLUMNS",
    "TRADE_COLUMNS",
    "BookGapError",
    "BookTicker",
    "EventKind",
    "L2DataError",
    "L2Event",
    "Level",
    "Market",
    "OrderBook",
    "Trade",
    "iter_events",
    "load_trades",
    "sample_events",
    "sample_l2",
]
