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
    ref_vol: float,
    high: np.ndarray | None = None,
    low: np.ndarray | None = None,
    volume: np.ndarray | None = None,
    taker_buy: np.ndarray | None = None,
    mean_volume: float | None = None,
) -> np.ndarray:
    """Observation rows (..., n, N_OBS) with the market columns filled and the rest zero.

    ``mid`` is (n,) or (paths, n); the other arrays, where given, have the same shape.
    """
    mid = np.asarray(mid, dtype=np.float64)
    ref = float(ref_vol) if ref_vol > 0 else 1.0
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
