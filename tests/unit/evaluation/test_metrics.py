"""evaluation.metrics: hand-computed small days, FIFO round trips, the break-even fee, the
bootstrap against a naive one, and JSON-ready output."""

from __future__ import annotations

import json
import math
from collections import deque

import numpy as np
import pytest

from swarm_ray.evaluation.metrics import (
    bootstrap_sharpes,
    day_rows,
    markouts,
    round_trips,
    strategy_metrics,
)
from swarm_ray.evaluation.records import DayRecord, FillTable

Row = tuple[int, int, float, float, float, bool]


def make_day(
    mid: list[float] | np.ndarray,
    rows: list[Row],
    *,
    date: str = "2024-08-01",
    symbol: str = "BTCUSDT",
    strategy: str = "s",
    quoting: list[bool] | None = None,
    **swarm: tuple,
) -> DayRecord:
    """A record whose equity and position follow from its fills in the records' convention: a
    fill during bar t (``fills.t == t``) shows from boundary t + 1 on; equity is cash plus the
    position marked to the mid, net of fees."""
    mid = np.asarray(mid, np.float64)
    n_bars = len(mid) - 1
    position = np.zeros(n_bars + 1)
    cash = np.zeros(n_bars + 1)
    for t, side, price, qty, fee, _ in rows:
        position[t + 1 :] += side * qty
        cash[t + 1 :] -= side * price * qty + fee
    return DayRecord(
        strategy=strategy,
        symbol=symbol,
        date=date,
        mid=mid,
        equity=cash + position * mid,
        position=position,
        quoting=np.asarray(quoting if quoting is not None else [True] * n_bars, bool),
        fills=FillTable.from_rows(rows),
        **swarm,
    )


def refee(rows: list[Row], maker_rate: float) -> list[Row]:
    """The same fills with maker fees at ``maker_rate`` of notional (taker fees unchanged)."""
    return [(t, s, p, q, p * q * maker_rate if m else fee, m) for t, s, p, q, fee, m in rows]


# -- a hand-made day ---------------------------------------------------------------------------

MID = [100.0, 100.0, 101.0, 102.0, 101.0, 100.0, 100.0]  # T = 6
ROWS: list[Row] = [
    (0, +1, 99.5, 1.0, 0.02, True),  # long 1
    (2, -1, 102.0, 1.0, 0.02, True),  # flat: +2.5 - 0.04
    (3, -1, 102.5, 1.0, 0.02, True),  # short 1
    (4, +1, 100.5, 1.0, 0.05, False),  # flat (market order): +2.0 - 0.07
    (5, +1, 100.2, 1.0, 0.02, True),  # long 1, closed at the last mid 100: -0.2 - 0.02
]
QUOTING = [True, True, False, True, True, True]


@pytest.fixture
def hand_day() -> DayRecord:
    return make_day(MID, ROWS, quoting=QUOTING)


def test_hand_day_equity_is_what_was_computed_by_hand(hand_day) -> None:
    # cash + position * mid at each boundary, worked out on paper
    assert hand_day.equity == pytest.approx([0, 0.48, 1.48, 2.46, 3.94, 4.39, 4.17])
    assert list(hand_day.position) == [0, 1, 1, 0, -1, 0, 1]


def test_hand_day_figures(hand_day) -> None:
    m = strategy_metrics([hand_day], periods_per_year=1.0)
    assert m["pnl"] == pytest.approx(4.17)
    assert m["max_drawdown"] == pytest.approx(0.22)
    assert m["map"] == pytest.approx(4 / 7)
    assert m["fills"] == 5
    assert m["quoting_share"] == pytest.approx(5 / 6)
    assert m["maker_notional"] == pytest.approx(99.5 + 102 + 102.5 + 100.2)
    assert m["taker_notional"] == pytest.approx(100.5)
    assert m["fees"] == pytest.approx(0.13)
    assert m["maker_fees"] == pytest.approx(0.08)
    assert m["breakeven_maker_bps"] == pytest.approx((4.17 + 0.08) / 404.2 * 1e4)
    assert m["pnl_per_notional_bps"] == pytest.approx(4.17 / 404.2 * 1e4)
    r = np.array([0.48, 1.0, 0.98, 1.48, 0.45, -0.22])
    assert m["sharpe"] == pytest.approx(r.mean() / r.std())
    assert m["sortino"] == pytest.approx(r.mean() / math.sqrt(0.22**2 / 6))
    # one day: no day Sharpe, no intervals
    assert m["day_sharpe"] is None and m["day_sharpe_ci"] is None and m["sharpe_ci"] is None
    assert m["swarm"] is None


def test_hand_day_markouts(hand_day) -> None:
    mk = markouts([hand_day])
    one = [
        0.5 / 99.5 * 1e4,  # bought at 99.5, mid 100 at the end of bar 0
        0.0,  # sold at 102, mid 102 at the end of bar 2
        1.5 / 102.5 * 1e4,  # sold at 102.5, mid 101
        -0.5 / 100.5 * 1e4,  # bought at 100.5, mid 100
        -0.2 / 100.2 * 1e4,  # bought at 100.2, mid 100
    ]
    assert mk["1"]["n"] == 5
    assert mk["1"]["mean"] == pytest.approx(np.mean(one))
    assert mk["1"]["se"] == pytest.approx(np.std(one, ddof=1) / math.sqrt(5))
    # 5 bars on only the fill of bar 0 has a mid (boundary 5 <= T = 6): mid[5] = 100
    assert mk["5"] == {"mean": pytest.approx(0.5 / 99.5 * 1e4), "se": None, "n": 1}
    assert mk["15"] == {"mean": None, "se": None, "n": 0}


def test_markout_keeps_the_last_bar_and_drops_beyond_it() -> None:
    day = make_day([100, 100, 100, 104], [(2, -1, 101.0, 1.0, 0.0, True)])
    mk = markouts([day], (1, 2))
    assert mk["1"]["n"] == 1 and mk["1"]["mean"] == pytest.approx(-3 / 101 * 1e4)
    assert mk["2"]["n"] == 0


def test_hand_day_round_trips(hand_day) -> None:
    rt = round_trips(hand_day)
    assert list(rt.direction) == [1, -1, 1]
    assert rt.pnl == pytest.approx([2.46, 1.93, -0.22])
    assert list(rt.entry_t) == [0, 3, 5] and list(rt.exit_t) == [2, 4, 6]
    assert list(rt.at_mark) == [False, False, True]
    tr = strategy_metrics([hand_day])["trades"]
    assert tr["round_trips"] == 3 and tr["closed_at_mark"] == 1
    assert tr["win_rate"] == pytest.approx(2 / 3)
    assert tr["profit_factor"] == pytest.approx(4.39 / 0.22)
    assert tr["avg_win"] == pytest.approx(2.195) and tr["avg_loss"] == pytest.approx(-0.22)
    p = np.array([2.46, 1.93, -0.22])
    assert tr["sqn"] == pytest.approx(math.sqrt(3) * p.mean() / p.std(ddof=1))


def test_two_winning_round_trips_have_no_profit_factor_and_a_hand_sqn() -> None:
    day = make_day(MID, ROWS[:4])
    tr = strategy_metrics([day])["trades"]
    assert tr["profit_factor"] is None and tr["avg_loss"] is None
    # sqrt(2) * mean / (|a - b| / sqrt(2)) = (a + b) / |a - b|
    assert tr["sqn"] == pytest.approx(4.39 / 0.53)


# -- break-even maker fee -------------------------------------------------------------------


@pytest.mark.parametrize("rows", [ROWS, refee(ROWS, -0.0001), refee(ROWS, 0.0002)])
def test_breakeven_maker_fee_is_where_pnl_crosses_zero(rows) -> None:
    day = make_day(MID, rows)
    be = strategy_metrics([day])["breakeven_maker_bps"]
    at = make_day(MID, refee(rows, be / 1e4))
    assert at.equity[-1] == pytest.approx(0.0, abs=1e-9)
    above = make_day(MID, refee(rows, (be + 1) / 1e4))
    below = make_day(MID, refee(rows, (be - 1) / 1e4))
    assert above.equity[-1] < 0 < below.equity[-1]


def test_breakeven_over_several_days_zeroes_the_total() -> None:
    rng = np.random.default_rng(3)
    days = [random_day(rng, f"2024-08-0{i + 1}") for i in range(4)]
    be = strategy_metrics(days)["breakeven_maker_bps"]
    total = sum(make_day(d.mid, refee(fill_rows(d), be / 1e4)).equity[-1] for d in days)
    assert total == pytest.approx(0.0, abs=1e-8)


def test_no_maker_fills_no_breakeven() -> None:
    day = make_day([100, 101, 102], [(0, 1, 100.0, 1.0, 0.1, False)])
    m = strategy_metrics([day])
    assert m["breakeven_maker_bps"] is None and m["pnl_per_notional_bps"] is None


# -- FIFO ----------------------------------------------------------------------------------------


def test_fifo_partial_fills_split_lots() -> None:
    rows: list[Row] = [
        (0, 1, 100.0, 0.005, 0.001, True),
        (1, 1, 101.0, 0.005, 0.002, True),
        (2, -1, 102.0, 0.01, 0.004, True),  # closes both buys, half its fee each
    ]
    rt = round_trips(make_day([100] * 4, rows))
    assert len(rt) == 2 and not rt.at_mark.any()
    assert rt.qty == pytest.approx([0.005, 0.005])
    assert rt.entry_price == pytest.approx([100, 101])
    assert rt.pnl == pytest.approx([0.005 * 2 - 0.001 - 0.002, 0.005 * 1 - 0.002 - 0.002])


def test_fifo_a_fill_that_flips_closes_and_opens() -> None:
    rows: list[Row] = [
        (0, 1, 100.0, 0.01, 0.003, True),
        (1, -1, 103.0, 0.015, 0.006, True),  # closes 0.01 (fee 0.004), opens short 0.005 (0.002)
        (2, 1, 101.0, 0.005, 0.001, True),
    ]
    rt = round_trips(make_day([100, 100, 100, 100], rows))
    assert list(rt.direction) == [1, -1]
    assert rt.qty == pytest.approx([0.01, 0.005])
    assert rt.pnl == pytest.approx([0.01 * 3 - 0.003 - 0.004, 0.005 * 2 - 0.002 - 0.001])
    assert list(rt.entry_t) == [0, 1] and list(rt.exit_t) == [1, 2]


def test_fifo_rounding_leaves_no_sliver() -> None:
    rows: list[Row] = [(0, 1, 10.0, 0.1, 0, True), (1, 1, 10.0, 0.2, 0, True)]
    rows.append((2, -1, 11.0, 0.3, 0, True))  # 0.1 + 0.2 != 0.3 in floats
    rows.append((3, 1, 10.5, 0.7, 0, True))
    rows.append((4, -1, 11.5, 0.1 + 0.6, 0, True))
    rt = round_trips(make_day([10.0] * 6, rows))
    assert len(rt) == 3 and not rt.at_mark.any()
    assert rt.qty == pytest.approx([0.1, 0.2, 0.7])


def reference_fifo(day: DayRecord) -> list[tuple[int, float, float]]:
    """A plain lot-by-lot FIFO: (direction, qty, pnl) of each round trip."""
    lots: deque[list[float]] = deque()  # [direction, qty, price, fee per unit]
    out = []
    for _, side, price, qty, fee, _ in fill_rows(day):
        unit, rest = fee / qty, qty
        while rest > 1e-12 and lots and lots[0][0] != side:
            lot = lots[0]
            q = min(rest, lot[1])
            out.append((int(lot[0]), q, q * (price - lot[2]) * lot[0] - q * (lot[3] + unit)))
            lot[1] -= q
            rest -= q
            if lot[1] <= 1e-12:
                lots.popleft()
        if rest > 1e-12:
            lots.append([side, rest, price, unit])
    for d, q, p, unit in lots:
        out.append((int(d), q, q * (day.mid[-1] - p) * d - q * unit))
    return out


@pytest.mark.parametrize("seed", range(8))
def test_round_trips_match_a_lot_by_lot_fifo_and_add_up_to_pnl(seed) -> None:
    day = random_day(np.random.default_rng(seed))
    rt = round_trips(day)
    ref = reference_fifo(day)
    assert list(rt.direction) == [d for d, _, _ in ref]
    assert rt.qty == pytest.approx([q for _, q, _ in ref])
    assert rt.pnl == pytest.approx([p for _, _, p in ref])
    assert rt.pnl.sum() == pytest.approx(day.equity[-1], abs=1e-9)
    assert rt.at_mark.any() == (abs(day.position[-1]) > 1e-12)
    assert (rt.exit_t[rt.at_mark] == day.n_bars).all()


# -- several days, bootstrap ---------------------------------------------------------------------


def random_day(rng: np.random.Generator, date: str = "2024-08-01", n_bars: int = 60) -> DayRecord:
    mid = 100 * np.exp(np.cumsum(np.r_[0, rng.normal(0, 1e-3, n_bars)]))
    rows: list[Row] = []
    for t in np.sort(rng.choice(n_bars, size=n_bars // 3, replace=False)):
        side = int(rng.choice([-1, 1]))
        price = float(mid[t]) * (1 - side * 1e-4)
        qty = int(rng.integers(1, 8)) * 0.001
        maker = bool(rng.random() < 0.8)
        rows.append((int(t), side, price, qty, price * qty * (1e-4 if maker else 5e-4), maker))
    return make_day(mid, rows, date=date)


def fill_rows(day: DayRecord) -> list[Row]:
    f = day.fills
    return [
        (int(t), int(s), float(p), float(q), float(fee), bool(m))
        for t, s, p, q, fee, m in zip(f.t, f.side, f.price, f.qty, f.fee, f.maker, strict=True)
    ]


def flat_day(date: str, n_bars: int = 60) -> DayRecord:
    return make_day(np.full(n_bars + 1, 100.0), [], date=date, quoting=[False] * n_bars)


def naive_sharpe(x: np.ndarray) -> float:
    sd = x.std()
    return float(x.mean() / sd) if sd > 0 else 0.0


def test_vectorised_bootstrap_equals_concatenating_each_draw() -> None:
    rng = np.random.default_rng(11)
    days = [random_day(rng, f"2024-08-{i + 1:02d}") for i in range(6)] + [flat_day("2024-08-07")]
    r_days = [np.diff(d.equity) for d in days]
    pnl = np.array([x.sum() for x in r_days])
    n_boot, seed = 300, 5
    # the draws the implementation makes: one row of day indices per draw
    idx = np.random.default_rng(seed).integers(0, len(days), size=(n_boot, len(days)))
    bar = [naive_sharpe(np.concatenate([r_days[i] for i in row])) for row in idx]
    day = [
        float(pnl[row].mean() / pnl[row].std(ddof=1)) if pnl[row].std(ddof=1) > 0 else 0.0
        for row in idx
    ]
    ci, day_ci = bootstrap_sharpes(r_days, 4.0, n_boot=n_boot, rng_seed=seed)
    assert ci == pytest.approx(list(2 * np.percentile(bar, [2.5, 97.5])), rel=1e-9)
    assert day_ci == pytest.approx(list(math.sqrt(365) * np.percentile(day, [2.5, 97.5])))


def test_bootstrap_interval_contains_the_estimate_and_is_reproducible() -> None:
    rng = np.random.default_rng(0)
    days = [random_day(rng, f"2024-08-{i + 1:02d}") for i in range(12)]
    a = strategy_metrics(days, rng_seed=7, n_boot=500)
    b = strategy_metrics(days, rng_seed=7, n_boot=500)
    c = strategy_metrics(days, rng_seed=8, n_boot=500)
    assert a == b
    assert a["sharpe_ci"] != c["sharpe_ci"]
    lo, hi = a["sharpe_ci"]
    assert lo < a["sharpe"] < hi
    lo, hi = a["day_sharpe_ci"]
    assert lo < a["day_sharpe"] < hi


def test_flat_days_have_zero_sharpes_and_no_nan() -> None:
    days = [flat_day(f"2024-08-0{i + 1}") for i in range(3)]
    m = strategy_metrics(days)
    assert m["sharpe"] == 0.0 and m["sharpe_ci"] == [0.0, 0.0]
    assert m["day_sharpe"] == 0.0 and m["day_sharpe_ci"] == [0.0, 0.0]
    assert m["sortino"] is None and m["max_drawdown"] == 0.0
    assert m["markout_bps"]["1"] == {"mean": None, "se": None, "n": 0}
    assert m["trades"]["round_trips"] == 0 and m["trades"]["win_rate"] is None
    json.dumps(m, allow_nan=False)


def test_a_constant_gain_is_not_an_infinite_sharpe() -> None:
    # every bar gains 0.1: the standard deviation is rounding, not risk
    mid = 100 + 0.1 * np.arange(11)
    days = [make_day(mid, [(0, 1, 100.0, 1.0, 0.0, True)], date=f"2024-08-0{i}") for i in (1, 2)]
    m = strategy_metrics(days)
    assert m["sharpe"] == 0.0 and m["sharpe_ci"] == [0.0, 0.0] and m["day_sharpe"] == 0.0


def test_drawdown_and_sortino_run_across_days() -> None:
    a = make_day([10, 12, 11], [(0, 1, 10.0, 1.0, 0.0, True)], date="2024-08-01")
    b = make_day([10, 7, 10.5], [(0, 1, 10.0, 1.0, 0.0, True)], date="2024-08-02")
    assert list(a.equity) == [0, 2, 1] and list(b.equity) == [0, -3, 0.5]
    m = strategy_metrics([a, b], periods_per_year=1.0)
    # the days end to end: 0, 2, 1 | 1, -2, 1.5: peak 2, trough -2
    assert m["max_drawdown"] == pytest.approx(4.0)
    assert m["pnl"] == pytest.approx(1.5)
    # per-bar PnL 2, -1, -3, 3.5: downside deviation sqrt((1 + 9) / 4)
    assert m["sortino"] == pytest.approx(0.375 / math.sqrt(2.5))
    # daily PnL 1 and 0.5: mean 0.75, sample std 0.5 / sqrt(2)
    assert m["day_sharpe"] == pytest.approx(0.75 / (0.5 / math.sqrt(2)) * math.sqrt(365))


# -- swarm, day rows, JSON -----------------------------------------------------------------------


def test_swarm_votes_and_decisions() -> None:
    day = make_day(
        [100.0] * 4,
        [],
        decisions=("quote", "hold", "quote"),
        carried=(True, False, True),
        votes=(
            {"a": "quote", "b": "quote"},
            {"a": "hold", "b": "quote"},
            {"a": "quote", "b": "quote", "c": "hold"},
        ),
    )
    sw = strategy_metrics([day, day])["swarm"]
    assert sw["cycles"] == 6
    assert sw["carried_share"] == pytest.approx(2 / 3)
    assert sw["decisions"] == {"hold": 2, "quote": 4}
    assert sw["vote_shares"]["a"] == pytest.approx({"hold": 1 / 3, "quote": 2 / 3})
    assert sw["vote_shares"]["b"] == {"quote": 1.0}
    assert sw["vote_shares"]["c"] == {"hold": 1.0}


def test_day_rows_by_date_then_symbol() -> None:
    rng = np.random.default_rng(1)
    x = random_day(rng, "2024-08-02")
    recs = {
        "fixed": [x, flat_day("2024-08-01")],
        "swarm": [make_day(MID, ROWS, date="2024-08-02", symbol="ETHUSDT")],
    }
    rows = day_rows(recs)
    assert [(r["date"], r["symbol"]) for r in rows] == [
        ("2024-08-01", "BTCUSDT"),
        ("2024-08-02", "BTCUSDT"),
        ("2024-08-02", "ETHUSDT"),
    ]
    assert rows[0]["pnl"] == {"fixed": 0.0} and rows[0]["fills"] == {"fixed": 0}
    assert rows[1]["pnl"] == {"fixed": pytest.approx(x.equity[-1])}
    assert rows[1]["fills"] == {"fixed": len(x.fills)}
    assert rows[2]["pnl"] == {"swarm": pytest.approx(4.17)} and rows[2]["fills"] == {"swarm": 5}
    with pytest.raises(ValueError, match="two records"):
        day_rows({"fixed": [x, x]})


def only_python_types(x: object) -> bool:
    if isinstance(x, dict):
        return all(isinstance(k, str) and only_python_types(v) for k, v in x.items())
    if isinstance(x, list):
        return all(only_python_types(v) for v in x)
    return x is None or type(x) in (bool, int, float, str)


def test_output_is_json_ready() -> None:
    rng = np.random.default_rng(2)
    days = [
        random_day(rng, "2024-08-01"),
        flat_day("2024-08-02"),
        make_day(MID, ROWS, date="2024-08-03", decisions=("quote",) * 6, carried=(True,) * 6),
    ]
    m = strategy_metrics(days, n_boot=200)
    assert only_python_types(m)
    text = json.dumps(m, allow_nan=False)
    assert json.loads(text) == m
    assert set(m["markout_bps"]) == {"1", "5", "15"}
    assert only_python_types(day_rows({"a": days}))


def test_no_days_is_an_error() -> None:
    with pytest.raises(ValueError, match="no days"):
        strategy_metrics([])
