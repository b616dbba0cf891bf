"""Binance L2 loader: book rebuild rules on hand-made messages, then the real bundled spot files."""

from __future__ import annotations

import gzip
import itertools
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from envs.data.l2 import (
    SAMPLE_COLUMNS,
    TRADE_COLUMNS,
    BookGapError,
    L2DataError,
    L2Event,
    OrderBook,
    Trade,
    iter_events,
    load_trades,
    sample_events,
    sample_l2,
)
from tests.conftest import ROOT

SPOT = [
    ROOT / "data/binance-l2/spot/btcusdt_20240808.gz",
    ROOT / "data/binance-l2/spot/btcusdt_20240809.gz",
]
KLINES = [
    ROOT / "data/binance-spot-1m/BTCUSDT-1m-2024-08-08.csv",
    ROOT / "data/binance-spot-1m/BTCUSDT-1m-2024-08-09.csv",
]
EPOCH = pd.Timestamp(0, tz="UTC")
FUTURES = Path("/work/shared/data/binance-l2/usdm/btcusdt_20240808.gz")


def lv(*pairs: tuple[float, float]) -> list[list[str]]:
    return [[f"{p:.2f}", f"{q:.8f}"] for p, q in pairs]


def snapshot_book(market: str = "spot") -> OrderBook:
    book = OrderBook(market)  # type: ignore[arg-type]
    book.apply_snapshot(100, lv((99, 1), (98, 2), (97, 3)), lv((101, 1), (102, 2), (103, 3)))
    return book


# --------------------------------------------------------------- hand-made rules
def test_snapshot_then_diff_updates_levels_and_top() -> None:
    book = snapshot_book()
    assert (book.best_bid, book.best_ask, book.last_update_id) == (99.0, 101.0, 100)
    assert book.apply_diff(101, 103, lv((100, 5), (98, 0.5)), lv((101.5, 4)))
    assert book.last_update_id == 103
    bids, asks = book.top_levels(2)
    assert bids == [(100.0, 5.0), (99.0, 1.0)]
    assert asks == [(101.0, 1.0), (101.5, 4.0)]
    assert book.bids[98.0] == 0.5
    assert book.top_levels(10)[0] == [(100.0, 5.0), (99.0, 1.0), (98.0, 0.5), (97.0, 3.0)]


def test_zero_quantity_removes_level_and_unknown_zero_is_noop() -> None:
    book = snapshot_book()
    book.apply_diff(101, 101, lv((99, 0), (50, 0)), lv((101, 0)))
    assert book.best_bid == 98.0 and book.best_ask == 102.0
    assert 99.0 not in book.bids and 50.0 not in book.bids and 101.0 not in book.asks
    assert len(book.bids) == 2 and len(book.asks) == 2
    book.apply_diff(102, 102, lv((98, 0), (97, 0)), [])
    assert math.isnan(book.best_bid) and book.top_levels(3)[0] == []


def test_buffered_diffs_stale_dropped_and_bridging_applied() -> None:
    book = OrderBook("spot")
    # Received before the snapshot: buffered, not applied.
    assert not book.apply_diff(90, 95, lv((99, 7)), [])  # u <= 100: stale
    assert not book.apply_diff(96, 100, lv((99, 8)), [])  # u == lastUpdateId: stale
    assert not book.apply_diff(101, 104, lv((99, 9)), lv((102, 0)))  # bridges 101
    assert not book.synced and book.last_update_id is None
    book.apply_snapshot(100, lv((99, 1)), lv((101, 1), (102, 2)))
    assert book.synced and book.last_update_id == 104
    assert book.bids == {99.0: 9.0} and dict(book.asks) == {101.0: 1.0}
    # After sync, a stale (already covered) event is ignored, a continuing one applied.
    assert not book.apply_diff(101, 104, lv((99, 1)), [])
    assert book.apply_diff(105, 105, lv((99, 2)), [])
    assert book.bids[99.0] == 2.0


def test_first_diff_must_bridge_snapshot_spot() -> None:
    book = snapshot_book()
    with pytest.raises(BookGapError, match="does not bridge") as info:
        book.apply_diff(102, 110, lv((99, 5)), [])  # U > lastUpdateId + 1: update 101 missed
    assert info.value.expected == 100 and info.value.first_id == 102
    assert not book.synced and math.isnan(book.best_bid)


def test_spot_chain_gap_raises_then_new_snapshot_resyncs() -> None:
    book = snapshot_book()
    book.apply_diff(101, 105, lv((99, 5)), [])
    with pytest.raises(BookGapError, match=r"U=107 != previous u\+1=106"):
        book.apply_diff(107, 110, lv((99, 6)), [])
    assert not book.synced
    # While out of sync, diffs are buffered; the offending one is kept for the next snapshot.
    assert not book.apply_diff(111, 112, lv((99, 7)), [])
    book.apply_snapshot(108, lv((99, 1)), lv((101, 1)))
    assert book.synced and book.last_update_id == 112 and book.bids[99.0] == 7.0


def test_futures_pu_rule_and_bridge() -> None:
    book = OrderBook("futures")
    # Futures U jumps (ids are shared across symbols); only pu links the chain.
    assert not book.apply_diff(80, 95, lv((99, 7)), [], prev_id=70)  # stale (u < 100)
    assert not book.apply_diff(96, 100, lv((99, 8)), [], prev_id=95)  # u == 100: kept, bridges
    assert not book.apply_diff(130, 140, lv((98, 4)), [], prev_id=100)
    book.apply_snapshot(100, lv((99, 1), (98, 2)), lv((101, 1)))
    assert book.last_update_id == 140
    assert book.bids == {99.0: 8.0, 98.0: 4.0}
    assert book.apply_diff(150, 160, lv((97, 1)), [], prev_id=140)
    with pytest.raises(BookGapError, match="pu=165 != previous u=160"):
        book.apply_diff(170, 180, lv((97, 2)), [], prev_id=165)


def test_futures_first_event_rule_differs_from_spot() -> None:
    # The event with u == lastUpdateId: futures applies it as the bridge, spot drops it as stale.
    fut = snapshot_book("futures")
    assert fut.apply_diff(95, 100, lv((99, 3)), [], prev_id=90)
    assert fut.bids[99.0] == 3.0
    spot = snapshot_book("spot")
    assert not spot.apply_diff(95, 100, lv((99, 3)), [])
    assert spot.bids[99.0] == 1.0
    # Futures bridge needs U <= lastUpdateId <= u: U == lastUpdateId + 1 is a gap there.
    with pytest.raises(BookGapError):
        snapshot_book("futures").apply_diff(101, 105, lv((99, 3)), [], prev_id=100)
    assert snapshot_book("spot").apply_diff(101, 105, lv((99, 3)), [])


@st.composite
def update_streams(draw: st.DrawFn) -> tuple[list[tuple[int, float, float]], list[int], int, int]:
    """Individual updates (side 0/1, price, qty) with ids 1..n, event boundaries, snapshot id,
    and how many events arrive before the snapshot."""
    n = draw(st.integers(3, 60))
    prices = st.sampled_from([float(p) for p in range(90, 111)])
    ups = draw(
        st.lists(
            st.tuples(st.integers(0, 1), prices, st.sampled_from([0.0, 0.5, 1.0, 2.25])),
            min_size=n,
            max_size=n,
        )
    )
    cuts = sorted(set(draw(st.lists(st.integers(1, n - 1), max_size=n // 2))))
    snap = draw(st.integers(1, n - 1))
    early = draw(st.integers(0, len(cuts) + 1))
    return ups, cuts, snap, early


def _reference(ups: list[tuple[int, float, float]]) -> tuple[dict[float, float], ...]:
    sides: tuple[dict[float, float], dict[float, float]] = ({}, {})
    for side, p, q in ups:
        if q == 0:
            sides[side].pop(p, None)
        else:
            sides[side][p] = q
    return sides


@pytest.mark.parametrize("market", ["spot", "futures"])
@settings(max_examples=150, deadline=None)
@given(data=update_streams())
def test_replay_with_any_snapshot_point_equals_reference(market: str, data) -> None:
    """Whatever the snapshot id and however many diffs were buffered, the result is the book
    after all updates (each event carries the last qty per price of its own updates)."""
    ups, cuts, snap, early = data
    bounds = [0, *cuts, len(ups)]
    events = []
    for lo, hi in itertools.pairwise(bounds):
        agg: tuple[dict[float, float], dict[float, float]] = ({}, {})
        for side, p, q in ups[lo:hi]:
            agg[side][p] = q
        events.append((lo + 1, hi, lo, lv(*agg[0].items()), lv(*agg[1].items())))
    snap_bids, snap_asks = _reference(ups[:snap])
    book = OrderBook(market)  # type: ignore[arg-type]
    # Events before the snapshot id must have been received before it (Binance's order).
    early = max(early, sum(1 for ev in events if ev[1] < snap))
    for first, last, prev, b, a in events[:early]:
        book.apply_diff(first, last, b, a, prev)
    book.apply_snapshot(snap, lv(*snap_bids.items()), lv(*snap_asks.items()))
    for first, last, prev, b, a in events[early:]:
        book.apply_diff(first, last, b, a, prev)
    ref_bids, ref_asks = _reference(ups)
    assert dict(book.bids) == ref_bids and dict(book.asks) == ref_asks
    assert book.last_update_id == len(ups)
    assert book.best_bid == max(ref_bids) if ref_bids else math.isnan(book.best_bid)
    assert book.best_ask == min(ref_asks) if ref_asks else math.isnan(book.best_ask)
    bids, asks = book.top_levels(5)
    assert bids == sorted(ref_bids.items(), reverse=True)[:5]
    assert asks == sorted(ref_asks.items())[:5]


# ----------------------------------------------------------------- hand-made files
def write_l2(path: Path, messages: list[dict]) -> Path:
    with gzip.open(path, "wt") as fh:
        for i, m in enumerate(messages):
            fh.write(f"{1_700_000_000_000_000_000 + i * 1_000_000} {json.dumps(m)}\n")
    return path


def depth(first: int, last: int, bids, asks, e: int = 1_700_000_001_000) -> dict:
    return {
        "stream": "btcusdt@depth@100ms",
        "data": {"e": "depthUpdate", "E": e, "U": first, "u": last, "b": bids, "a": asks},
    }


def trade(tid: int, t: int, p: float, q: float, m: bool) -> dict:
    return {
        "stream": "btcusdt@trade",
        "data": {"e": "trade", "E": t, "t": tid, "p": f"{p}", "q": f"{q}", "T": t, "m": m},
    }


def test_files_continue_one_book_and_gap_across_files_is_reported(tmp_path: Path) -> None:
    snap = {"lastUpdateId": 10, "bids": lv((99, 1)), "asks": lv((101, 1))}
    f1 = write_l2(
        tmp_path / "a.gz",
        [
            trade(1, 1_700_000_000_900, 100.0, 0.1, True),
            depth(5, 12, lv((99, 2)), []),
            snap,
            depth(13, 14, lv((100, 1)), []),
        ],
    )
    f2 = write_l2(tmp_path / "b.gz", [depth(15, 16, [], lv((101, 0), (102, 3)))])
    evs = list(iter_events([f1, f2], depth=2))
    assert [e.kind for e in evs] == ["trade", "book", "book", "book"]
    assert evs[0].update_id is None and math.isnan(evs[0].best_bid) and evs[0].bids == ()
    assert evs[1].update_id == 12 and evs[1].bids == ((99.0, 2.0),)
    assert evs[1].exchange_time_ms is None  # a spot snapshot carries no event time
    assert evs[-1].update_id == 16 and evs[-1].asks == ((102.0, 3.0),)
    assert evs[-1].bids == ((100.0, 1.0), (99.0, 2.0))
    f3 = write_l2(tmp_path / "c.gz", [depth(18, 19, lv((99, 3)), [])])
    with pytest.raises(BookGapError, match=r"c\.gz:1: .*U=18 != previous u\+1=17"):
        list(iter_events([f1, f2, f3]))


def test_malformed_and_missing_inputs_raise(tmp_path: Path) -> None:
    with pytest.raises(L2DataError, match="not found"):
        list(iter_events(tmp_path / "none.gz"))
    bad = tmp_path / "bad.gz"
    with gzip.open(bad, "wt") as fh:
        fh.write('{"stream": "x"}\n')
    with pytest.raises(L2DataError, match=r"bad\.gz:1"):
        list(iter_events(bad))
    nosnap = write_l2(tmp_path / "nosnap.gz", [depth(1, 2, lv((99, 1)), [])])
    with pytest.raises(L2DataError, match="no depth snapshot"):
        list(iter_events(nosnap))


def _ev(kind: str, t: int | None, bid: float = math.nan, ask: float = math.nan, tr=None):
    bids = ((bid, 3.0),) if not math.isnan(bid) else ()
    asks = ((ask, 1.0),) if not math.isnan(ask) else ()
    return L2Event(kind, t, 0, 1, bid, ask, bids, asks, trade=tr)  # type: ignore[arg-type]


def test_sample_events_grid_close_and_trade_aggregates() -> None:
    evs = [
        _ev("trade", 1000, tr=Trade(1000, 10.0, 1.0, False, 1)),
        _ev("book", 1050, 9.0, 11.0),
        _ev("book", 1099, 9.5, 10.5),  # the close of [1000, 1100)
        _ev("trade", 1150, tr=Trade(1150, 12.0, 2.0, True, 2)),
        _ev("trade", 1199, tr=Trade(1199, 8.0, 0.5, True, 3)),
        _ev("book", 1300, 9.0, 9.5),
    ]
    df = sample_events(evs, "100ms")
    assert list(df.columns) == list(SAMPLE_COLUMNS)
    assert df["time"].tolist() == list(
        pd.to_datetime([1000, 1100, 1200, 1300], unit="ms", utc=True)
    )
    assert df["best_bid"].tolist() == [9.5, 9.5, 9.5, 9.0]  # forward-filled close
    assert df["spread"].tolist() == [1.0, 1.0, 1.0, 0.5]
    assert df["mid"].iloc[3] == 9.25
    assert df["imbalance5"].iloc[0] == pytest.approx(0.5)  # (3 - 1) / (3 + 1)
    assert df["volume"].tolist() == [1.0, 2.5, 0.0, 0.0]
    assert df["trade_count"].tolist() == [1, 2, 0, 0]
    assert df["high"].iloc[1] == 12.0 and df["low"].iloc[1] == 8.0
    assert np.isnan(df["high"].iloc[2])
    with pytest.raises(ValueError):
        sample_events(evs, "1us")


# ------------------------------------------------------------ real bundled data
@pytest.fixture(scope="module")
def spot_events() -> list[L2Event]:
    return list(iter_events(SPOT, depth=5))


def _raw_depth_ids(path: Path) -> list[tuple[int, int]]:
    out = []
    with gzip.open(path, "rt") as fh:
        for line in fh:
            msg = json.loads(line.split(" ", 1)[1])
            if "@depth" in msg.get("stream", ""):
                out.append((msg["data"]["U"], msg["data"]["u"]))
    return out


def test_real_spot_update_id_chain_unbroken_across_files(spot_events: list[L2Event]) -> None:
    first, second = _raw_depth_ids(SPOT[0]), _raw_depth_ids(SPOT[1])
    ids = first + second
    breaks = [i for i in range(1, len(ids)) if ids[i][0] != ids[i - 1][1] + 1]
    assert breaks == []
    assert second[0][0] == first[-1][1] + 1  # the file boundary
    book_u = [e.update_id for e in spot_events if e.kind == "book"]
    assert book_u[-1] == second[-1][1]
    assert all(b > a for a, b in itertools.pairwise(book_u))


def test_real_spot_book_matches_book_ticker_at_same_update_id(spot_events: list[L2Event]) -> None:
    """The bookTicker ``u`` is an update id. When a depth event ends exactly at it, the rebuilt
    best bid/ask (prices and quantities) equal the ticker. (When the book has only passed it,
    later updates in the same 100 ms diff can differ, so nothing exact holds there.)"""
    state: dict[int, tuple[float, float, float, float]] = {}
    for e in spot_events:
        if e.kind == "book":
            state[e.update_id] = (e.best_bid, e.bids[0][1], e.best_ask, e.asks[0][1])
    matched = 0
    for e in spot_events:
        if e.kind == "ticker" and e.ticker.update_id in state:
            t = e.ticker
            assert state[t.update_id] == (t.bid, t.bid_qty, t.ask, t.ask_qty), t
            matched += 1
    assert matched >= 1000  # 1072 in the bundled files


def test_real_spot_book_never_crosses_and_levels_sorted(spot_events: list[L2Event]) -> None:
    book_events = [e for e in spot_events if e.kind == "book"]
    assert len(book_events) > 6000
    for e in book_events:
        assert e.best_bid < e.best_ask
        assert len(e.bids) == 5 and len(e.asks) == 5
        assert e.bids[0][0] == e.best_bid and e.asks[0][0] == e.best_ask
        assert all(a[0] > b[0] for a, b in itertools.pairwise(e.bids))
        assert all(a[0] < b[0] for a, b in itertools.pairwise(e.asks))
    # Events in between carry the book of the last book event.
    last = None
    for e in spot_events:
        if e.kind == "book":
            last = e
        elif last is not None:
            assert (e.update_id, e.bids, e.asks) == (last.update_id, last.bids, last.asks)


def _klines() -> pd.DataFrame:
    cols = ["open_time_ms", "open", "high", "low", "close", "volume", "close_time_ms"]
    cols += ["quote_volume", "number_of_trades", "tbb", "tbq", "ignore"]
    return pd.concat(pd.read_csv(p, header=None, names=cols) for p in KLINES).set_index(
        "open_time_ms"
    )


def _covered_minutes(trades: pd.DataFrame) -> np.ndarray:
    lo = -(-int(trades["time_ms"].min()) // 60_000) * 60_000
    hi = int(trades["time_ms"].max()) // 60_000 * 60_000  # start of the last, partial minute
    return np.arange(lo, hi, 60_000)


def test_real_spot_trades_reproduce_klines() -> None:
    trades = load_trades(SPOT)
    assert list(trades.columns) == list(TRADE_COLUMNS)
    assert np.all(np.diff(trades["trade_id"].to_numpy()) == 1)  # no trade missed, across files
    minutes = _covered_minutes(trades)
    assert len(minutes) == 10  # 23:55 .. 00:04
    g = trades.groupby(trades["time_ms"] // 60_000 * 60_000)
    agg = g["price"].agg(["first", "max", "min", "last", "size"]).join(g["qty"].sum())
    agg, k = agg.loc[minutes], _klines().loc[minutes]
    np.testing.assert_array_equal(agg["first"], k["open"])
    np.testing.assert_array_equal(agg["max"], k["high"])
    np.testing.assert_array_equal(agg["min"], k["low"])
    np.testing.assert_array_equal(agg["last"], k["close"])
    np.testing.assert_array_equal(agg["size"], k["number_of_trades"])
    np.testing.assert_allclose(agg["qty"], k["volume"], rtol=1e-12)
    # The partial first minute does not match (trades before the recording started are missing).
    assert g.size().iloc[0] < _klines().loc[g.size().index[0], "number_of_trades"]


def test_real_spot_sampled_frame_consistent(spot_events: list[L2Event]) -> None:
    df = sample_events(spot_events, "1min")
    trades = load_trades(SPOT)
    assert df["trade_count"].sum() == len(trades)
    assert df["volume"].sum() == pytest.approx(trades["qty"].sum(), rel=1e-12)
    k = _klines()
    minutes = _covered_minutes(trades)
    sub = df.set_index((df["time"] - EPOCH) // pd.Timedelta("1ms")).loc[minutes]
    np.testing.assert_array_equal(sub["high"], k.loc[minutes, "high"])
    np.testing.assert_array_equal(sub["low"], k.loc[minutes, "low"])
    np.testing.assert_array_equal(sub["trade_count"], k.loc[minutes, "number_of_trades"])
    assert (df["spread"] > 0).all() and (df["best_bid"] < df["mid"]).all()
    assert df["imbalance5"].between(-1, 1).all()
    # Book columns are the book at the close of each interval.
    fine = sample_l2(SPOT, "100ms")
    assert len(fine) > 6000 and fine["time"].diff().iloc[1:].eq(pd.Timedelta("100ms")).all()
    books = [(e.exchange_time_ms, e.best_bid, e.best_ask) for e in spot_events if e.kind == "book"]
    books = [b for b in books if b[0] is not None]
    bt = np.array([b[0] for b in books])
    for row in fine.iloc[[50, 1000, 3000, 6000]].itertuples():
        end = (row.time - EPOCH) // pd.Timedelta("1ms") + 100
        i = np.searchsorted(bt, end, side="left") - 1
        assert (row.best_bid, row.best_ask) == books[i][1:]


@pytest.mark.skipif(not FUTURES.is_file(), reason="futures L2 file not available")
def test_real_futures_pu_chain_replays_and_spot_rule_would_fail() -> None:
    n_book = 0
    for e in iter_events(FUTURES, depth=1):  # market inferred from "pu"
        if e.kind == "book":
            n_book += 1
            assert e.best_bid < e.best_ask
    assert n_book > 6000
    with pytest.raises(BookGapError):  # futures U does not follow previous u + 1
        list(iter_events(FUTURES, market="spot"))
