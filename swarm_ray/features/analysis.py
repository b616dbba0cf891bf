"""The 20 market-analysis features of 1-minute klines, causal in t.

One implementation over numpy arrays, ``analysis_feature_rows``: training builds the rows of
whole days with it (through ``analysis_features``, for a kline frame) and the live cycle the
rows of its bar window, of which it uses the newest. Rolling windows are trailing and hold
fewer bars at the start of the series (a mean of what there is, a standard deviation 0 of a
single value); the exponential averages are seeded with the first value.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from envs.features import ema

FEATURE_NAMES: tuple[str, ...] = (
    "ret_1",  # 1-bar log return / ref vol
    "ret_5",  # 5-bar log return / (ref vol sqrt 5)
    "ret_15",
    "ret_30",
    "ret_60",
    "vol_20",  # rolling std of 1-bar returns / ref vol
    "vol_60",
    "range",  # (high - low) / close / ref vol
    "body",  # (close - open) / close / ref vol
    "imbalance",  # taker-buy share * 2 - 1
    "imbalance_15",  # its 15-bar mean
    "volume",  # log(volume / 60-bar mean volume)
    "trades",  # log(trades / 60-bar mean trades)
    "rsi",  # (RSI14 - 50) / 50
    "macd",  # (EMA12 - EMA26) / close / ref vol
    "macd_hist",  # (macd - EMA9 of macd)
    "bollinger",  # (close - SMA20) / (2 std20)
    "channel",  # position in the 60-bar high/low channel, in [-1, 1]
    "tod_sin",  # time of day (UTC)
    "tod_cos",
)


N_FEATURES = len(FEATURE_NAMES)


WARMUP_BARS = 60

_HORIZONS = (1, 5, 15, 30, 60)  # of the returns ret_1 .. ret_60
_HORIZON_SQRT = np.sqrt(np.array(_HORIZONS, dtype=np.float64))[:, None]
_EMA_ALPHAS = np.array([[1 / 14], [1 / 14], [2 / 13], [2 / 27]])  # RSI gain, loss; MACD 12, 26


def reference_vol(close: np.ndarray) -> float:
    r = np.diff(np.log(np.asarray(close, dtype=np.float64)))
    v = float(np.std(r)) if len(r) > 1 else 0.0
    return v if v > 0 else 1e-4


def _trailing(x: np.ndarray, w: int, op: np.ufunc) -> np.ndarray:
    """``op`` (``np.add``, ``np.maximum`` or ``np.minimum``) over the trailing ``w`` values of
    each point along the last axis, over fewer at the start.

    Built by doubling spans (``log2 w`` whole-array operations): sums add disjoint spans, so
    each is summed pairwise and stays exact to rounding at any series length; maxima and minima
    may overlap their two spans.
    """
    n = x.shape[-1]
    if op is np.add:
        pad = np.zeros((*x.shape[:-1], w - 1))
    else:  # the first value, which every early window holds anyway
        pad = np.repeat(x[..., :1], w - 1, axis=-1)
    spans = [np.concatenate([pad, x], axis=-1)]  # spans[k][..., j]: op of padded[j : j + 2**k]
    s = 1
    while 2 * s <= w:
        spans.append(op(spans[-1][..., :-s], spans[-1][..., s:]))
        s *= 2
    if op is not np.add:
        return op(spans[-1][..., :n], spans[-1][..., w - s : w - s + n])
    out, off = None, 0
    for k in range(len(spans) - 1, -1, -1):
        size = 1 << k
        if off + size <= w:
            part = spans[k][..., off : off + n]
            out = part if out is None else out + part
            off += size
    assert out is not None
    return out


def _counts(n: int, w: int) -> np.ndarray:
    """How many of ``n`` points the trailing window of ``w`` of each holds."""
    return np.minimum(np.arange(1.0, n + 1.0), w)


def _rolling_mean(x: np.ndarray, w: int) -> np.ndarray:
    """Trailing mean over ``w`` points along the last axis, skipping NaN (NaN where a window
    holds none)."""
    valid = ~np.isnan(x)
    if valid.all():
        return _trailing(x, w, np.add) / _counts(x.shape[-1], w)
    count = _trailing(valid.astype(np.float64), w, np.add)
    with np.errstate(invalid="ignore", divide="ignore"):
        return _trailing(np.where(valid, x, 0.0), w, np.add) / count


def _rolling_mean_std(x: np.ndarray, w: int) -> tuple[np.ndarray, np.ndarray]:
    """Trailing mean and sample standard deviation (ddof 1; 0 for one value, and for equal
    values where rounding would leave a trace) over ``w`` points along the last axis."""
    first = x[..., :1]
    xc = x - first  # centred: the squares stay small against the deviations
    count = _counts(x.shape[-1], w)
    s1, s2 = _trailing(np.stack([xc, xc * xc]), w, np.add)
    ss = s2 - s1 * s1 / count
    ss[ss <= 1e-12 * s2] = 0.0
    return s1 / count + first, np.sqrt(ss / np.maximum(count - 1.0, 1.0))


def analysis_feature_rows(
    open_: np.ndarray,
    high: np.ndarray,
    low: np.ndarray,
    close: np.ndarray,
    volume: np.ndarray,
    taker_buy: np.ndarray,
    trades: np.ndarray,
    open_time_ms: np.ndarray,
    ref_vol: float,
) -> np.ndarray:
    """Features (n, 20) float32 of ``n`` consecutive 1-minute bars (arrays of length n, oldest
    first; ``open_time_ms`` in UTC milliseconds), causal in t."""
    bars = (open_, high, low, close, volume, taker_buy, trades)
    open_, high, low, close, volume, taker_buy, trades = (np.asarray(x, np.float64) for x in bars)
    n = len(close)
    ref = ref_vol if ref_vol > 0 else 1e-4
    f = np.zeros((N_FEATURES, n))  # one row a feature: each is written contiguously
    if n == 0:
        return f.T.astype(np.float32)
    logc = np.log(close)
    for j, h in enumerate(_HORIZONS):
        np.subtract(logc[h:], logc[:-h], out=f[j, h:])  # 0 for the first h bars
    r1 = f[0].copy()
    f[:5] /= ref * _HORIZON_SQRT
    # the two 20-bar windows (returns for volatility, close for Bollinger) in one pass
    (_, sma), (vol20, std20) = _rolling_mean_std(np.stack([r1, close]), 20)
    f[5] = vol20 / ref
    f[6] = _rolling_mean_std(r1, 60)[1] / ref
    f[7] = (high - low) / close / ref
    f[8] = (close - open_) / close / ref
    share = np.divide(taker_buy, volume, out=np.full(n, 0.5), where=volume > 0)
    share[np.isnan(share)] = 0.5
    imb = f[9]
    np.subtract(2.0 * share, 1.0, out=imb)
    f[10] = _rolling_mean(imb, 15)
    mean_vol, mean_trades = _rolling_mean(np.stack([volume, trades]), 60)
    with np.errstate(invalid="ignore", divide="ignore"):
        f[11] = np.log(np.maximum(volume, 1e-12) / np.maximum(mean_vol, 1e-12))
        f[12] = np.log(np.maximum(trades, 1.0) / np.maximum(mean_trades, 1.0))
    diff = np.diff(close, prepend=close[:1])
    # RSI's two Wilder averages and MACD's two EMAs in one call
    series = np.stack([np.maximum(diff, 0.0), np.maximum(-diff, 0.0), close, close])
    gain, loss, fast, slow = ema(series, _EMA_ALPHAS)
    tot = gain + loss
    np.divide(gain - loss, tot, out=f[13], where=tot > 0)
    macd = f[14]
    np.divide((fast - slow) / close, ref, out=macd)
    f[15] = macd - ema(macd, 2 / 10)
    np.divide(close - sma, 2 * std20, out=f[16], where=std20 > 0)
    hi, neg_lo = _trailing(np.stack([high, -low]), 60, np.maximum)
    width = hi + neg_lo
    pos = np.divide(close + neg_lo, width, out=np.full(n, 0.5), where=width > 0)
    f[17] = 2.0 * pos - 1.0
    minute = (np.asarray(open_time_ms, dtype=np.int64) // 60_000) % 1440
    angle = 2 * np.pi * minute / 1440
    f[18] = np.sin(angle)
    f[19] = np.cos(angle)
    f[~np.isfinite(f)] = 0.0
    np.clip(f, -20.0, 20.0, out=f)
    return f.T.astype(np.float32, order="C")


def analysis_features(klines: pd.DataFrame, ref_vol: float) -> np.ndarray:
    """Features (n, 20) float32 of kline rows (``envs.data.klines`` columns), causal in t."""
    return analysis_feature_rows(
        klines["open"].to_numpy(np.float64),
        klines["high"].to_numpy(np.float64),
        klines["low"].to_numpy(np.float64),
        klines["close"].to_numpy(np.float64),
        klines["volume"].to_numpy(np.float64),
        klines["taker_buy_base_volume"].to_numpy(np.float64),
        klines["number_of_trades"].to_numpy(np.float64),
        klines["open_time_ms"].to_numpy(np.int64),
        ref_vol,
    )
