"""Websocket market data: python-binance's socket manager against a fake stream on loopback.

The fake REST book (bid 60000) and the fake stream's book (bid 61000) differ, so every snapshot
says where it came from; the REST server's request log says whether REST was asked.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from tests.fakes.binance_server import FakeBinance, exchange_on
from tests.fakes.binance_stream import FakeBinanceStream

SYMBOL = "BTCUSDT"
REST_BID, WS_BID = 60000.0, 61000.0
PATHS = {
    "binance-spot": "/ws/btcusdt@depth5",
    "binance-futures": "/public/stream?streams=btcusdt@depth5",
}


@pytest.fixture
def servers() -> Iterator[tuple[FakeBinance, FakeBinanceStream]]:
    with FakeBinance() as rest, FakeBinanceStream() as ws:
        yield rest, ws


def _streaming(rest: FakeBinance, ws: FakeBinanceStream, kind: str = "binance-spot", **cfg):
    ex = exchange_on(rest, kind, use_websocket=True, ws_url=ws.url, **cfg)
    ex.start_market_stream(SYMBOL)
    stream = ex._streams[SYMBOL]
    assert ws.wait_for(lambda: stream.latest() is not None), "no stream message arrived"
    return ex, stream


def _depth_requests(rest: FakeBinance) -> int:
    return sum(1 for _, endpoint, _ in rest.requests if endpoint == "depth")


def _eventually(fn, timeout: float = 3.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if fn():
            return True
        time.sleep(0.02)
    return bool(fn())


@pytest.mark.parametrize("kind", list(PATHS))
def test_fresh_stream_serves_snapshots_without_rest(servers, kind) -> None:
    rest, ws = servers
    ex, _ = _streaming(rest, ws, kind)
    try:
        assert ws.paths == [PATHS[kind]]  # the path and envelope python-binance really uses
        snap = ex.market_snapshot(SYMBOL, depth=3)
        assert (snap.best_bid, snap.best_ask) == (WS_BID, 61000.5)
        assert len(snap.bids) == len(snap.asks) == 3 and snap.problems() == []
        ws.set_book(SYMBOL, "61234.00", "61234.10")
        assert _eventually(lambda: ex.market_snapshot(SYMBOL).best_bid == 61234.0)
        assert _depth_requests(rest) == 0
    finally:
        ex.close()


def test_silent_stream_goes_stale_and_rest_is_asked(servers) -> None:
    rest, ws = servers
    ex, stream = _streaming(rest, ws, market_data_max_age_s=0.3)
    try:
        ws.pause()
        assert _eventually(lambda: ex.market_snapshot(SYMBOL).best_bid == REST_BID)
        assert _depth_requests(rest) >= 1
        assert stream.latest() is not None  # a book is held, but too old to be served
        assert ex.market_snapshot(SYMBOL).best_bid == REST_BID
        ws.resume()
        assert _eventually(lambda: ex.market_snapshot(SYMBOL).best_bid == WS_BID)
    finally:
        ex.close()


@pytest.mark.parametrize("kind", list(PATHS))
def test_dropped_connection_is_not_served_and_rest_takes_over(servers, kind) -> None:
    rest, ws = servers
    # the book is young for 30 s: only noticing the drop can keep it from being served
    ex, stream = _streaming(rest, ws, kind, market_data_max_age_s=30)
    try:
        ws.refuse()  # the reconnect fails too
        ws.drop()
        assert _eventually(lambda: ex.market_snapshot(SYMBOL).best_bid == REST_BID, 2.0)
        assert stream.latest() is None
        assert ex.market_snapshot(SYMBOL, depth=2).bids[1].price == REST_BID - 0.01
        t0 = time.monotonic()
        ex.close()  # while python-binance waits to reconnect
        assert not stream.is_alive() and time.monotonic() - t0 < 1.5
    finally:
        ex.close()


def test_stream_comes_back_after_a_drop(servers) -> None:
    rest, ws = servers
    ex, _ = _streaming(rest, ws, market_data_max_age_s=30)
    try:
        ws.drop()
        assert _eventually(lambda: ex.market_snapshot(SYMBOL).best_bid == REST_BID, 2.0)
        ws.set_book(SYMBOL, "61500.00", "61500.20")
        # python-binance reconnects after 1-2 s
        assert _eventually(lambda: ex.market_snapshot(SYMBOL).best_bid == 61500.0, 5.0)
        assert ws.paths == [PATHS["binance-spot"]] * 2
    finally:
        ex.close()


def test_unreachable_stream_falls_back_to_rest(servers) -> None:
    rest, ws = servers
    ws.refuse()
    ex = exchange_on(rest, use_websocket=True, ws_url=ws.url)
    try:
        ex.start_market_stream(SYMBOL)
        assert _eventually(lambda: ws.refused >= 1)
        assert ex.market_snapshot(SYMBOL).best_bid == REST_BID
    finally:
        ex.close()


def test_close_stops_the_stream_thread_promptly_even_on_a_quiet_stream(servers) -> None:
    rest, ws = servers
    ex, stream = _streaming(rest, ws)
    ws.pause()  # no message will wake the library's read loop
    t0 = time.monotonic()
    ex.close()
    assert time.monotonic() - t0 < 1.5
    assert not stream.is_alive()
    assert _eventually(lambda: ws.open_connections == 0, 2.0)  # the server saw it go


def test_no_stream_when_websocket_disabled(servers) -> None:
    rest, ws = servers
    ex = exchange_on(rest, use_websocket=False, ws_url=ws.url)
    ex.start_market_stream(SYMBOL)
    assert ex.market_snapshot(SYMBOL).best_bid == REST_BID
    time.sleep(0.1)
    assert ws.paths == [] and ex._streams == {}
    ex.close()
