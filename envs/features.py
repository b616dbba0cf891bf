"""Observation columns and the market features behind them.

Market features depend only on the price path, never on the agent's actions, so they are
computed once per episode for all steps at once (vectorised over paths); the env then fills
in the agent-state columns as it steps. Every column is dimensionless: returns and volatility
are in units of the series' reference one-step volatility.
"""

from __future__ import annotations

import numpy as np

# Observation column indices (the observation layout exported with every model).
INVENTORY = 0  # inventory / max_inventory, in [-1, 1]
TIME_LEFT = 1  # fraction of the episode left, in [0, 1]
RET_1 = 2  # 1-step return / reference vol
RET_5 = 3  # 5-step return / (reference vol * sqrt 5)
RET_20 = 4  # 20-step return / (reference vol * sqrt 20)
VOLATILITY = 5  # rolling 20-step volatility / reference vol
RANGE = 6  # bar range (high - low) / mid / reference vol; |mid change| without bars
IMBALANCE = 7  # taker-buy share of volume * 2 - 1 (0 without volume data)
VOLUME = 8  # log(volume / mean volume), (0 without volume data)
RSI = 9  # (RSI(14) - 50) / 50
MACD = 10  # (EMA12 - EMA26) / mid / reference vol
BOLLINGER = 11  # (mid - SMA20) / (2 * std20)
UNREALIZED_PNL = 12  # inventory * (mid - average cost) / pnl unit
DRAWDOWN = 13  # (peak equity - equity) / pnl unit
TIME_SINCE_FILL = 14  # steps since our last fill / 50, capped at 1

OBS_COLUMNS: tuple[str, ...] = (
    "inventory",
    "time_left",
    "ret_1",
    "ret_5",
    "ret_20",
    "volatility",
    "range",
    "imbalance",
    "volume",
    "rsi",
    "macd",
    "bollinger",
    "unrealized_pnl",
    "drawdown",
    "time_since_fill",
)
N_OBS = len(OBS_COLUMNS)
MARKET_COLUMNS = (RET_1, RET_5, RET_20, VOLATILITY, RANGE, IMBALANCE, VOLUME, RSI, MACD, BOLLINGER)

OBS_LOW = np.array([-1, 0, -10, -10, -10, 0, 0, -1, -5, -1, -20, -3, -10, 0, 0], dtype=np.float32)
OBS_HIGH = np.array([1, 1, 10, 10, 10, 10, 20, 1, 5, 1, 20, 3, 10, 10, 1], dtype=np.float32)
FILL_MEMORY_STEPS = 50.0

# Layout v3: the 15 columns above, scaled by the series' own recent history instead of a
# reference pinned at training (so one policy reads any symbol), plus what might predict the
# markout of a fill. Its extra columns, appended after the 15:
IMBALANCE_5 = 15  # taker-buy share of the last 5 bars' volume * 2 - 1
IMBALANCE_20 = 16  # the same over 20 bars
VOL_LEVEL = 17  # log of the rolling one-bar volatility in bps (fees and quotes are in bps)
VOLUME_REGIME = 18  # log(mean volume of 20 bars / mean volume of the scale window)
TOD_SIN = 19  # time of day of the bar's open, sin(2 pi t / 24 h) (0 without timestamps)
TOD_COS = 20  # cos of the same (0 without timestamps)
QUOTE_MARKOUT = 21  # EMA(20) of the markout of quotes one 20-bar sigma from the mid, in sigmas

V3_EXTRA_COLUMNS: tuple[str, ...] = (
    "imbalance_5",
    "imbalance_20",
    "vol_level",
    "volume_regime",
    "tod_sin",
    "tod_cos",
    "quote_markout",
)
LAYOUTS: dict[str, tuple[str, ...]] = {"v2": OBS_COLUMNS, "v3": OBS_COLUMNS + V3_EXTRA_COLUMNS}
"""Observation layouts by name: v2 pins the scale to the training days; v3 scales each series
by its own trailing ``scale_window`` bars and appends ``V3_EXTRA_COLUMNS``."""
_V3_LOW = np.array([-1, -1, -3, -5, -1, -1, -5], dtype=np.float32)
_V3_HIGH = np.array([1, 1, 6, 5, 1, 1, 5], dtype=np.float32)
_BOUNDS = {
    "v2": (OBS_LOW, OBS_HIGH),
    "v3": (np.concatenate([OBS_LOW, _V3_LOW]), np.concatenate([OBS_HIGH, _V3_HIGH])),
}
DEFAULT_SCALE_WINDOW = 240
_DAY_MS = 86_400_000


def layout_columns(layout: str) -> tuple[str, ...]:
    """The column names of an observation layout; a clear error for an unknown one."""
    try:
        return LAYOUTS[layout]
    except KeyError:
        raise ValueError(
            f"unknown observation layout {layout!r}; known: {sorted(LAYOUTS)}"
        ) from None


def layout_bounds(layout: str) -> tuple[np.ndarray, np.ndarray]:
    """(low, high) float32 bounds of each column of an observation layout."""
    layout_columns(layout)
    return _BOUNDS[layout]


def ema(x: np.ndarray, alpha: float | np.ndarray) -> np.ndarray:
    """Exponential moving average along the last axis, seeded with the first value.

    Computed chunk by chunk in closed form (y_j = b^j (b s + alpha sum b^-i x_i)), so it costs
    a few numpy calls per 64 steps instead of a Python loop per step. ``alpha`` may be an
    array broadcasting against ``x[..., :1]`` (several averages in one call).
    """
    x = np.asarray(x, dtype=np.float64)
    out = np.empty_like(x)
    alpha = np.asarray(alpha, dtype=np.float64)
    b = 1.0 - alpha
    chunk = min(64, x.shape[-1])
    j = np.arange(chunk)
    inv, fwd = b ** (-j), b**j  # the same powers serve every chunk
    state = x[..., 0].copy()
    for start in range(0, x.shape[-1], chunk):
        seg = x[..., start : start + chunk]
        m = seg.shape[-1]
        cum = np.cumsum(seg * inv[..., :m], axis=-1)
        y = fwd[..., :m] * (b * state[..., None] + alpha * cum)
        out[..., start : start + chunk] = y
        state = y[..., -1]
    return out


def _rolling_mean_std(x: np.ndarray, window: int) -> tuple[np.ndarray, np.ndarray]:
    """Trailing mean and std over ``window`` points (fewer at the start), along the last axis."""
    n = x.shape[-1]
    pad = [(0, 0)] * (x.ndim - 1) + [(1, 0)]
    c1 = np.pad(np.cumsum(x, axis=-1), pad)
    c2 = np.pad(np.cumsum(x * x, axis=-1), pad)
    idx = np.arange(n)
    lo = np.maximum(idx + 1 - window, 0)
    count = (idx + 1 - lo).astype(np.float64)
    s1 = c1[..., idx + 1] - c1[..., lo]
    s2 = c2[..., idx + 1] - c2[..., lo]
    mean = s1 / count
    var = np.maximum(s2 / count - mean * mean, 0.0)
    return mean, np.sqrt(var)


def _lagged_return(mid: np.ndarray, h: int) -> np.ndarray:
    prev = np.concatenate([np.repeat(mid[..., :1], h, axis=-1), mid[..., :-h]], axis=-1)
    return (mid - prev) / np.where(prev > 0, prev, 1.0)


def market_features(
    mid: np.ndarray,
    ref_vol: float | np.ndarray,
    high: np.ndarray | None = None,
    low: np.ndarray | None = None,
    volume: np.ndarray | None = None,
    taker_buy: np.ndarray | None = None,
    mean_volume: float | None = None,
) -> np.ndarray:
    """Observation rows (..., n, N_OBS) with the market columns filled and the rest zero.

    ``mid`` is (n,) or (paths, n); the other arrays, where given, have the same shape.
    ``ref_vol`` and ``mean_volume`` may also be arrays of that shape (a scale per step).
    """
    mid = np.asarray(mid, dtype=np.float64)
    ref_arr = np.asarray(ref_vol, dtype=np.float64)
    ref = (
        np.where(ref_arr > 0, ref_arr, 1.0)
        if ref_arr.ndim
        else (float(ref_arr) if ref_arr > 0 else 1.0)
    )
    out = np.zeros((*mid.shape, N_OBS), dtype=np.float64)
    safe_mid = np.where(mid > 0, mid, 1.0)

    r1 = _lagged_return(mid, 1)
    out[..., RET_1] = r1 / ref
    out[..., RET_5] = _lagged_return(mid, 5) / (ref * np.sqrt(5.0))
    out[..., RET_20] = _lagged_return(mid, 20) / (ref * np.sqrt(20.0))
    # the two 20-step windows (returns for volatility, mid for Bollinger) in one pass
    (_, sma), (vol, std) = _rolling_mean_std(np.stack([r1, mid]), 20)
    out[..., VOLATILITY] = vol / ref

    if high is not None and low is not None:
        out[..., RANGE] = (np.asarray(high) - np.asarray(low)) / safe_mid / ref
    else:
        out[..., RANGE] = np.abs(r1) / ref
    if volume is not None:
        vol_arr = np.asarray(volume, dtype=np.float64)
        if taker_buy is not None:
            tb = np.asarray(taker_buy, dtype=np.float64)
            share = np.divide(tb, vol_arr, out=np.full_like(vol_arr, 0.5), where=vol_arr > 0)
            out[..., IMBALANCE] = 2.0 * share - 1.0
        if isinstance(mean_volume, np.ndarray):
            mv = np.where(mean_volume > 0, mean_volume, 1.0)
        else:
            mv = mean_volume if mean_volume and mean_volume > 0 else float(np.mean(vol_arr)) or 1.0
        out[..., VOLUME] = np.log(np.maximum(vol_arr, 1e-12) / mv)

    diff = np.diff(mid, axis=-1, prepend=mid[..., :1])
    # RSI's two Wilder averages and MACD's two EMAs in one call
    series = np.stack([np.maximum(diff, 0.0), np.maximum(-diff, 0.0), mid, mid])
    alphas = np.array([1.0 / 14.0, 1.0 / 14.0, 2.0 / 13.0, 2.0 / 27.0])
    gain, loss, fast, slow = ema(series, alphas.reshape((4,) + (1,) * mid.ndim))
    total = gain + loss
    out[..., RSI] = np.divide(gain - loss, total, out=np.zeros_like(total), where=total > 0)
    out[..., MACD] = (fast - slow) / safe_mid / ref
    out[..., BOLLINGER] = np.divide(mid - sma, 2.0 * std, out=np.zeros_like(std), where=std > 0)

    np.nan_to_num(out, copy=False, nan=0.0, posinf=0.0, neginf=0.0)
    np.clip(out, OBS_LOW.astype(np.float64), OBS_HIGH.astype(np.float64), out=out)
    return out


def _trailing_sum(x: np.ndarray, window: int) -> np.ndarray:
    """Sum of the last ``window`` values (fewer at the start), along the last axis."""
    c = np.cumsum(x, axis=-1)
    out = c.copy()
    out[..., window:] -= c[..., :-window]
    return out


def rolling_scale(mid: np.ndarray, window: int = DEFAULT_SCALE_WINDOW) -> np.ndarray:
    """The series' own one-bar volatility of simple returns over the trailing ``window`` bars,
    at every bar (``mid``'s shape): the scale of layout v3. Floored at 0.1 bps so a flat
    stretch does not divide by zero."""
    mid = np.asarray(mid, dtype=np.float64)
    r1 = _lagged_return(mid, 1)
    _, std = _rolling_mean_std(r1, window)
    return np.maximum(std, 1e-5)  # the first bar, without a return, gets the floor


def pnl_unit(order_size: float, mid: np.ndarray | float, scale: np.ndarray | float) -> np.ndarray:
    """Layout v3's PnL unit at each step: ten one-step standard deviations of one order's value
    at that step's own scale (``rolling_scale``); 1 where that is not positive."""
    unit = 10.0 * order_size * np.asarray(mid, dtype=np.float64) * np.asarray(scale)
    return np.where(unit > 0, unit, 1.0)


def market_features_v3(
    mid: np.ndarray,
    high: np.ndarray | None = None,
    low: np.ndarray | None = None,
    volume: np.ndarray | None = None,
    taker_buy: np.ndarray | None = None,
    time_ms: np.ndarray | None = None,
    window: int = DEFAULT_SCALE_WINDOW,
) -> tuple[np.ndarray, np.ndarray]:
    """Observation rows of layout v3 (..., n, 22), market columns filled and the agent ones
    zero, and the per-bar scale (..., n) they were divided by (``rolling_scale``).

    The 15 columns of v2 are the same functions of the bars, with the reference volatility and
    mean volume taken from each bar's own trailing ``window`` bars; every value at bar t uses
    bars up to t only."""
    mid = np.asarray(mid, dtype=np.float64)
    scale = rolling_scale(mid, window)
    mean_vol = None
    vol_arr = tb = None
    if volume is not None:
        vol_arr = np.asarray(volume, dtype=np.float64)
        mean_vol = _rolling_mean_std(vol_arr, window)[0]
    base = market_features(mid, scale, high, low, vol_arr, taker_buy, mean_vol)
    out = np.zeros((*mid.shape, len(LAYOUTS["v3"])), dtype=np.float64)
    out[..., :N_OBS] = base
    if vol_arr is not None and taker_buy is not None:
        tb = np.asarray(taker_buy, dtype=np.float64)
        for col, k in ((IMBALANCE_5, 5), (IMBALANCE_20, 20)):
            v, b = _trailing_sum(vol_arr, k), _trailing_sum(tb, k)
            share = np.divide(b, v, out=np.full_like(v, 0.5), where=v > 0)
            out[..., col] = 2.0 * share - 1.0
    out[..., VOL_LEVEL] = np.log(scale * 1e4)
    if vol_arr is not None and mean_vol is not None:
        m20 = _rolling_mean_std(vol_arr, 20)[0]
        out[..., VOLUME_REGIME] = np.log(np.maximum(m20, 1e-12) / np.maximum(mean_vol, 1e-12))
    if time_ms is not None:
        phase = 2.0 * np.pi * (np.asarray(time_ms, dtype=np.int64) % _DAY_MS) / _DAY_MS
        out[..., TOD_SIN] = np.sin(phase)
        out[..., TOD_COS] = np.cos(phase)
    if high is not None and low is not None:
        # a bid and an ask one 20-bar sigma from the previous close; a side fills when the bar
        # trades through it, and is marked to the bar's close (in those sigmas). The short
        # sigma keeps the average's memory inside a live window of 256 bars.
        prev = np.concatenate([mid[..., :1], mid[..., :-1]], axis=-1)
        s20 = np.maximum(_rolling_mean_std(_lagged_return(mid, 1), 20)[1], 1e-5)
        d = np.concatenate([s20[..., :1], s20[..., :-1]], axis=-1) * prev
        safe = np.where(d > 0, d, 1.0)
        move = (mid - prev) / safe
        bid = np.asarray(low) < prev - d
        ask = np.asarray(high) > prev + d
        markout = np.where(bid, 1.0 + move, 0.0) + np.where(ask, 1.0 - move, 0.0)
        markout[..., 0] = 0.0
        out[..., QUOTE_MARKOUT] = ema(markout, 1.0 / 20.0)
    low_b, high_b = layout_bounds("v3")
    np.nan_to_num(out, copy=False, nan=0.0, posinf=0.0, neginf=0.0)
    np.clip(out, low_b.astype(np.float64), high_b.astype(np.float64), out=out)
    return out, scale
