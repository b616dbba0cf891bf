"""Every backtest figure, computed once, from the ``DayRecord`` of each day of one strategy.

Conventions (see ``records``): time runs over bar boundaries ``0..T`` of each day; ``mid[t]`` and
``equity[t]`` are at boundary ``t``; a fill with ``fills.t == t`` happened during bar ``t``,
between ``mid[t]`` and ``mid[t + 1]``. Days are independent: each starts flat with zero equity,
and the figures over several days treat them as one curve, day after day.

- PnL is in the quote currency, net of fees (as ``equity`` is).
- Per-bar PnL is ``diff(equity)`` of each day, the days concatenated. Sharpe is its mean over its
  standard deviation (population, ``ddof=0``) times ``sqrt(periods_per_year)``; 0 when the
  deviation is 0 (a flat or constant curve). Sortino divides by the downside deviation
  ``sqrt(mean(min(r, 0) ** 2))`` instead; ``None`` when no bar lost.
- Day Sharpe is the mean daily PnL over its sample standard deviation (``ddof=1``) times
  ``sqrt(365)``; ``None`` with fewer than 2 days, 0 when the deviation is 0.
- Confidence intervals: 95% percentile intervals of a block bootstrap over days (whole days drawn
  with replacement, as many as there are), ``None`` with fewer than 2 days. Both Sharpes use the
  same draws. Only the days are resampled, so bars within a day keep their dependence.
- Markouts: for each fill, the signed edge ``side * (mid[t + h] - price) / price * 1e4`` bps
  against the mid ``h`` bars after the fill's bar began (``mid[t + 1]`` is the mid at the end of
  the bar it filled in), before fees; fills with ``t + h > T`` are left out. Every fill weighs
  the same, whatever its size.
- Round trips: fills matched first-in first-out within each day; a fill that flips the position
  closes the old lots and opens a new one with the rest; a position still open at the day's end
  is closed at the day's last mid without a fee (such round trips are counted, and marked).
  Fees are shared among the round trips a fill takes part in, pro rata to quantity, so the
  round trips of a day add up to its PnL.
- Break-even maker fee: PnL is linear in the maker fee rate ``f`` with fills unchanged:
  ``PnL(f) = pnl + maker_fees - f * maker_notional``; the rate where it is zero, in bps.

Every function returns plain ``float``, ``int``, ``str``, ``list``, ``dict`` or ``None``: the
result goes through ``json.dumps(..., allow_nan=False)``.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from swarm_ray.evaluation.records import DayRecord

__all__ = [
    "MARKOUT_HORIZONS",
    "RoundTrips",
    "bootstrap_sharpes",
    "day_rows",
    "markouts",
    "round_trips",
    "strategy_metrics",
    "trade_stats",
]

MARKOUT_HORIZONS = (1, 5, 15)
"""Bars after a fill's bar began at which its markout is taken."""

DAYS_PER_YEAR = 365
CI_LEVEL = 0.95

_ZERO_VAR = 1e-12
"""A variance below this share of the second moment is rounding: the series is constant."""
_QTY_TOL = 1e-9
"""Quantities below this share of the day's largest fill are rounding (a position of 1e-18)."""


# -- the figures of one strategy --------------------------------------------------------------


def strategy_metrics(
    days: Sequence[DayRecord],
    periods_per_year: float = 525_600,
    rng_seed: int = 0,
    n_boot: int = 2000,
    horizons: Sequence[int] = MARKOUT_HORIZONS,
) -> dict[str, Any]:
    """Every figure of one strategy over its days (one ``DayRecord`` each), JSON-ready.

    ``periods_per_year``: bars a year (525,600 one-minute bars); ``n_boot`` bootstrap draws,
    seeded by ``rng_seed`` (the same seed gives the same intervals); ``horizons`` of the
    markouts, in bars. Keys:

    ``days``, ``bars``; ``pnl``; ``sharpe`` and ``sharpe_ci`` (``[lo, hi]``); ``sortino``;
    ``day_sharpe`` and ``day_sharpe_ci``; ``max_drawdown`` (of the days' concatenated equity, a
    positive amount); ``map`` (mean absolute position over every boundary); ``fills``;
    ``quoting_share`` (share of bars with a quote resting); ``markout_bps`` (``{"1": {"mean",
    "se", "n"}, ...}``); ``maker_notional``, ``taker_notional``, ``fees``, ``maker_fees``;
    ``breakeven_maker_bps``; ``pnl_per_notional_bps`` (PnL per maker notional); ``trades``
    (``trade_stats`` of the round trips); ``swarm`` (votes and decisions of swarm records, else
    ``None``).
    """
    days = list(days)
    if not days:
        raise ValueError("strategy_metrics: no days")
    r_days = [np.diff(np.asarray(d.equity, np.float64)) for d in days]
    r = np.concatenate(r_days)
    day_pnl = np.array([x.sum() for x in r_days])
    pnl = float(day_pnl.sum())

    if len(r):
        mean = float(r.mean())
        var = float(r.var())
        sharpe: float | None = _ratio(mean, var, float(np.mean(r**2))) * math.sqrt(periods_per_year)
        downside = math.sqrt(float(np.mean(np.minimum(r, 0.0) ** 2)))
        sortino = mean / downside * math.sqrt(periods_per_year) if downside > 0 else None
        equity = np.concatenate([[0.0], np.cumsum(r)])
        max_dd = float(np.max(np.maximum.accumulate(equity) - equity))
    else:
        sharpe = sortino = None
        max_dd = 0.0

    day_sharpe = _day_sharpe(day_pnl)
    sharpe_ci, day_sharpe_ci = bootstrap_sharpes(
        r_days, periods_per_year, n_boot=n_boot, rng_seed=rng_seed
    )

    positions = np.concatenate([np.asarray(d.position, np.float64) for d in days])
    quoting = np.concatenate([np.asarray(d.quoting, bool) for d in days])
    notional = [d.fills.notional for d in days]
    maker = [np.asarray(d.fills.maker, bool) for d in days]
    maker_notional = float(sum(float(n[m].sum()) for n, m in zip(notional, maker, strict=True)))
    taker_notional = float(sum(float(n[~m].sum()) for n, m in zip(notional, maker, strict=True)))
    fees = float(sum(float(d.fills.fee.sum()) for d in days))
    maker_fees = float(sum(float(d.fills.fee[m].sum()) for d, m in zip(days, maker, strict=True)))

    out: dict[str, Any] = {
        "days": len(days),
        "bars": len(r),
        "pnl": pnl,
        "sharpe": sharpe,
        "sharpe_ci": sharpe_ci,
        "sortino": sortino,
        "day_sharpe": day_sharpe,
        "day_sharpe_ci": day_sharpe_ci,
        "max_drawdown": max_dd,
        "map": float(np.mean(np.abs(positions))) if len(positions) else None,
        "fills": int(sum(len(d.fills) for d in days)),
        "quoting_share": float(quoting.mean()) if len(quoting) else None,
        "markout_bps": markouts(days, horizons),
        "maker_notional": maker_notional,
        "taker_notional": taker_notional,
        "fees": fees,
        "maker_fees": maker_fees,
        "breakeven_maker_bps": (
            (pnl + maker_fees) / maker_notional * 1e4 if maker_notional > 0 else None
        ),
        "pnl_per_notional_bps": pnl / maker_notional * 1e4 if maker_notional > 0 else None,
        "trades": trade_stats([round_trips(d) for d in days]),
        "swarm": _swarm(days),
    }
    return _json_ready(out)


def day_rows(records_by_strategy: Mapping[str, Sequence[DayRecord]]) -> list[dict[str, Any]]:
    """One row per (date, symbol), sorted by date then symbol: ``{"date", "symbol", "pnl":
    {strategy: PnL}, "fills": {strategy: count}}``; a strategy without that day is absent."""
    rows: dict[tuple[str, str], dict[str, Any]] = {}
    for name, recs in records_by_strategy.items():
        for d in recs:
            row = rows.setdefault(
                (d.date, d.symbol), {"date": d.date, "symbol": d.symbol, "pnl": {}, "fills": {}}
            )
            if name in row["pnl"]:
                raise ValueError(f"day_rows: {name} has two records of {d.symbol} {d.date}")
            row["pnl"][name] = float(d.equity[-1] - d.equity[0])
            row["fills"][name] = len(d.fills)
    return [_json_ready(rows[k]) for k in sorted(rows)]


# -- Sharpe ratios and their bootstrap intervals ----------------------------------------------


def _ratio(mean: float, var: float, second_moment: float) -> float:
    """``mean / sqrt(var)``; 0 when the variance is 0 or only rounding."""
    if not var > _ZERO_VAR * second_moment or var <= 0:
        return 0.0
    return mean / math.sqrt(var)


def _day_sharpe(day_pnl: np.ndarray) -> float | None:
    if len(day_pnl) < 2:
        return None
    var = float(day_pnl.var(ddof=1))
    return _ratio(float(day_pnl.mean()), var, float(np.mean(day_pnl**2))) * math.sqrt(DAYS_PER_YEAR)


def bootstrap_sharpes(
    r_days: Sequence[np.ndarray],
    periods_per_year: float,
    n_boot: int = 2000,
    rng_seed: int = 0,
    level: float = CI_LEVEL,
) -> tuple[list[float] | None, list[float] | None]:
    """Percentile intervals ``[lo, hi]`` of the per-bar Sharpe and the day Sharpe, from one
    block bootstrap over days (``r_days``: each day's per-bar PnL); ``None`` with fewer than 2
    days or no draws.

    Each draw is a matrix row of day indices; a draw's per-bar Sharpe comes from the sums over
    its days of ``r - c``, ``(r - c) ** 2`` and the bar counts (``c``: the overall mean, which
    keeps the cancellation in the variance small), so no bars are concatenated.
    """
    n_days = len(r_days)
    if n_days < 2 or n_boot <= 0:
        return None, None
    n = np.array([len(x) for x in r_days], np.float64)
    if n.sum() == 0:
        return None, None
    c = float(sum(float(x.sum()) for x in r_days) / n.sum())
    s1 = np.array([float((x - c).sum()) for x in r_days])
    s2 = np.array([float(((x - c) ** 2).sum()) for x in r_days])
    day_pnl = np.array([float(x.sum()) for x in r_days])

    idx = np.random.default_rng(rng_seed).integers(0, n_days, size=(n_boot, n_days))
    bars = n[idx].sum(axis=1)
    safe = np.where(bars > 0, bars, 1.0)
    dev = s1[idx].sum(axis=1) / safe  # mean of r - c
    m2 = s2[idx].sum(axis=1) / safe  # mean of (r - c) ** 2
    var = m2 - dev**2
    mean = dev + c
    ok = (bars > 0) & (var > _ZERO_VAR * (m2 + c * c)) & (var > 0)
    sharpe = np.where(ok, mean / np.sqrt(np.where(ok, var, 1.0)), 0.0)
    sharpe *= math.sqrt(periods_per_year)

    p = day_pnl[idx]
    dmean = p.mean(axis=1)
    dvar = p.var(axis=1, ddof=1)
    dok = (dvar > _ZERO_VAR * np.mean(p**2, axis=1)) & (dvar > 0)
    day_sharpe = np.where(dok, dmean / np.sqrt(np.where(dok, dvar, 1.0)), 0.0)
    day_sharpe *= math.sqrt(DAYS_PER_YEAR)

    q = [50 * (1 - level), 100 - 50 * (1 - level)]
    return (
        [float(v) for v in np.percentile(sharpe, q)],
        [float(v) for v in np.percentile(day_sharpe, q)],
    )


# -- markouts ---------------------------------------------------------------------------------


def markouts(
    days: Sequence[DayRecord], horizons: Sequence[int] = MARKOUT_HORIZONS
) -> dict[str, dict[str, Any]]:
    """``{str(h): {"mean", "se", "n"}}``: the fills' signed edge in bps against the mid ``h``
    bars after their bar began, before fees, every fill weighted the same; ``se`` is the
    standard error ``std(ddof=1) / sqrt(n)`` (``None`` below 2 fills, ``mean`` below 1)."""
    out: dict[str, dict[str, Any]] = {}
    for h in horizons:
        parts = []
        for d in days:
            f = d.fills
            keep = f.t + h <= d.n_bars
            t = f.t[keep]
            price = f.price[keep]
            parts.append(f.side[keep] * (np.asarray(d.mid)[t + h] - price) / price * 1e4)
        edge = np.concatenate(parts) if parts else np.zeros(0)
        n = len(edge)
        out[str(h)] = {
            "mean": float(edge.mean()) if n else None,
            "se": float(edge.std(ddof=1) / math.sqrt(n)) if n > 1 else None,
            "n": n,
        }
    return out


# -- round trips ------------------------------------------------------------------------------


@dataclass(frozen=True)
class RoundTrips:
    """Round trips of one day, one row each, ordered by when their entry was opened (and within
    an entry, by exit)."""

    direction: np.ndarray
    """int8: +1 long (bought, then sold), -1 short."""
    qty: np.ndarray
    """float64: base units matched."""
    entry_t: np.ndarray
    """int64: bar of the entry fill (0 for a position held at the day's start)."""
    exit_t: np.ndarray
    """int64: bar of the exit fill; ``T`` when closed at the day's last mid."""
    entry_price: np.ndarray
    exit_price: np.ndarray
    pnl: np.ndarray
    """float64: ``qty * (exit - entry) * direction`` minus the pro-rated fees of both fills."""
    at_mark: np.ndarray
    """bool: closed at the day's last mid, not by a fill."""

    def __len__(self) -> int:
        return len(self.pnl)


def round_trips(day: DayRecord) -> RoundTrips:
    """The day's fills matched first-in first-out into round trips (see the module notes).

    The fills are split into opening and closing pieces (a fill that flips the position gives
    one of each); FIFO then pairs the k-th unit opened with the k-th unit closed, so each round
    trip is an overlap of an opening and a closing piece on the cumulative quantity axis. A
    position held at the day's start (days normally start flat) is an entry at ``mid[0]``.
    """
    f = day.fills
    mid = np.asarray(day.mid, np.float64)
    p0 = float(day.position[0]) if len(day.position) else 0.0
    qty = np.asarray(f.qty, np.float64)
    scale = max(float(qty.max()) if len(qty) else 0.0, abs(p0))
    tol = _QTY_TOL * scale
    if scale == 0:
        return _round_trips_from([], [], day.n_bars, mid)

    signed = f.side.astype(np.float64) * qty
    pos = p0 + np.cumsum(signed)
    pos[np.abs(pos) <= tol] = 0.0
    before = np.concatenate([[0.0 if abs(p0) <= tol else p0], pos[:-1]])[: len(pos)]
    reduces = (before != 0) & (np.sign(signed) != np.sign(before))
    close_q = np.where(reduces, np.minimum(qty, np.abs(before)), 0.0)
    open_q = qty - close_q
    close_q[close_q <= tol] = 0.0
    open_q[open_q <= tol] = 0.0
    fee_unit = np.divide(f.fee, qty, out=np.zeros(len(qty)), where=qty > 0)

    # pieces: (qty, t, price, fee per unit, side); the day's start and end are fee-free marks
    opens = [(open_q, f.t, f.price, fee_unit, f.side)]
    if abs(p0) > tol:
        opens.insert(0, _piece(abs(p0), 0, mid[0], np.sign(p0)))
    closes = [(close_q, f.t, f.price, fee_unit, f.side)]
    end = float(pos[-1]) if len(pos) else (p0 if abs(p0) > tol else 0.0)
    if end != 0:
        closes.append(_piece(abs(end), day.n_bars, mid[-1], -np.sign(end)))
    return _round_trips_from(opens, closes, day.n_bars, mid, tol, end != 0)


def _piece(q: float, t: int, price: float, side: float) -> tuple[np.ndarray, ...]:
    return (
        np.array([q]),
        np.array([t], np.int64),
        np.array([price]),
        np.zeros(1),
        np.array([side], np.int8),
    )


def _round_trips_from(
    opens: list, closes: list, n_bars: int, mid: np.ndarray, tol: float = 0.0, marked: bool = False
) -> RoundTrips:
    if not opens or not closes:
        e = np.zeros(0)
        return RoundTrips(
            np.zeros(0, np.int8), e, np.zeros(0, np.int64), np.zeros(0, np.int64), e, e, e,
            np.zeros(0, bool),
        )  # fmt: skip

    def stack(pieces: list) -> tuple[np.ndarray, ...]:
        cols = [np.concatenate(c) for c in zip(*pieces, strict=True)]
        keep = cols[0] > 0
        return tuple(c[keep] for c in cols)

    oq, ot, op, of, os_ = stack(opens)
    cq, ct, cp, cf, _ = stack(closes)
    o_end, c_end = np.cumsum(oq), np.cumsum(cq)
    total = min(float(o_end[-1]) if len(o_end) else 0.0, float(c_end[-1]) if len(c_end) else 0.0)
    cuts = np.unique(np.concatenate([o_end, c_end]))
    cuts = np.concatenate([cuts[cuts < total - tol], [total]]) if total > 0 else np.zeros(0)
    starts = np.concatenate([[0.0], cuts[:-1]])
    length = cuts - starts
    keep = length > tol
    starts, length = starts[keep], length[keep]
    middle = starts + length / 2
    i = np.minimum(np.searchsorted(o_end, middle), len(o_end) - 1)
    j = np.minimum(np.searchsorted(c_end, middle), len(c_end) - 1)
    direction = os_[i].astype(np.int8)
    pnl = length * (cp[j] - op[i]) * direction - length * (of[i] + cf[j])
    at_mark = np.zeros(len(j), bool)
    if marked:
        at_mark = j == len(c_end) - 1
    return RoundTrips(direction, length, ot[i], ct[j], op[i], cp[j], pnl, at_mark)


def trade_stats(trips: Sequence[RoundTrips]) -> dict[str, Any]:
    """``round_trips`` (count, including ``closed_at_mark`` ones closed at a day's last mid),
    ``win_rate`` (share with PnL > 0), ``profit_factor`` (gross wins / gross losses; ``None``
    without losses), ``avg_win``, ``avg_loss`` (negative), ``sqn`` (``sqrt(n) * mean / std``,
    ``ddof=1``; ``None`` below 2 round trips or with no spread)."""
    pnl = np.concatenate([t.pnl for t in trips]) if trips else np.zeros(0)
    marked = int(sum(int(t.at_mark.sum()) for t in trips))
    n = len(pnl)
    wins, losses = pnl[pnl > 0], pnl[pnl < 0]
    sqn = None
    if n >= 2:
        sd = float(pnl.std(ddof=1))
        if sd > 0 and sd**2 > _ZERO_VAR * float(np.mean(pnl**2)):
            sqn = math.sqrt(n) * float(pnl.mean()) / sd
    return {
        "round_trips": n,
        "closed_at_mark": marked,
        "win_rate": float(len(wins) / n) if n else None,
        "profit_factor": float(wins.sum() / -losses.sum()) if len(losses) else None,
        "avg_win": float(wins.mean()) if len(wins) else None,
        "avg_loss": float(losses.mean()) if len(losses) else None,
        "sqn": sqn,
    }


# -- the swarm's votes ------------------------------------------------------------------------


def _swarm(days: Sequence[DayRecord]) -> dict[str, Any] | None:
    decisions = [a for d in days for a in d.decisions]
    if not decisions:
        return None
    carried = [bool(c) for d in days for c in d.carried]
    votes: dict[str, Counter[str]] = defaultdict(Counter)
    for d in days:
        for cycle in d.votes:
            for agent, action in cycle.items():
                votes[str(agent)][str(action)] += 1
    return {
        "cycles": len(decisions),
        "carried_share": sum(carried) / len(carried) if carried else None,
        "decisions": dict(sorted(Counter(map(str, decisions)).items())),
        "vote_shares": {
            agent: {a: k / sum(c.values()) for a, k in sorted(c.items())}
            for agent, c in sorted(votes.items())
        },
    }


# -- JSON ---------------------------------------------------------------------------------------


def _json_ready(x: Any) -> Any:
    """Python scalars only; a non-finite float (never expected) becomes ``None``."""
    if isinstance(x, dict):
        return {str(k): _json_ready(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_json_ready(v) for v in x]
    if isinstance(x, bool | np.bool_):
        return bool(x)
    if isinstance(x, int | np.integer):
        return int(x)
    if isinstance(x, float | np.floating):
        return float(x) if math.isfinite(x) else None
    return x
