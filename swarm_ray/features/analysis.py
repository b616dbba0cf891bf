"""The 20 market-analysis features of 1-minute klines, causal in t."""

from __future__ import annotations

import math

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


def _roll(s: pd.Series, w: int) -> pd.core.window.Rolling:
    return s.rolling(w, min_periods=1)


def reference_vol(close: np.ndarray) -> float:
    r = np.diff(np.log(np.asarray(close, dtype=np.float64)))
    v = float(np.std(r)) if len(r) > 1 else 0.0
    return v if v > 0 else 1e-4


def analysis_features(klines: pd.DataFrame, ref_vol: float) -> np.ndarray:
    """Features (n, 20) float32 of kline rows (``envs.data.klines`` columns), causal in t."""
    close = klines["close"].astype(float)
    logc = np.log(close)
    ref = ref_vol if ref_vol > 0 else 1e-4
    out = np.zeros((len(klines), N_FEATURES), dtype=np.float64)
    for j, h in enumerate((1, 5, 15, 30, 60)):
        out[:, j] = (logc - logc.shift(h)).fillna(0.0) / (ref * math.sqrt(h))
    r1 = (logc - logc.shift(1)).fillna(0.0)
    out[:, 5] = _roll(r1, 20).std().fillna(0.0) / ref
    out[:, 6] = _roll(r1, 60).std().fillna(0.0) / ref
    out[:, 7] = (klines["high"] - klines["low"]) / close / ref
    out[:, 8] = (close - klines["open"]) / close / ref
    vol = klines["volume"].astype(float)
    share = (klines["taker_buy_base_volume"] / vol.where(vol > 0)).fillna(0.5)
    imb = 2.0 * share - 1.0
    out[:, 9] = imb
    out[:, 10] = _roll(imb, 15).mean()
    out[:, 11] = np.log(np.maximum(vol, 1e-12) / np.maximum(_roll(vol, 60).mean(), 1e-12))
    trades = klines["number_of_trades"].astype(float)
    out[:, 12] = np.log(np.maximum(trades, 1.0) / np.maximum(_roll(trades, 60).mean(), 1.0))
    c = close.to_numpy()
    diff = np.diff(c, prepend=c[:1])
    gain, loss = ema(np.maximum(diff, 0.0), 1 / 14), ema(np.maximum(-diff, 0.0), 1 / 14)
    tot = gain + loss
    out[:, 13] = np.divide(gain - loss, tot, out=np.zeros_like(tot), where=tot > 0)
    macd = (ema(c, 2 / 13) - ema(c, 2 / 27)) / c / ref
    out[:, 14] = macd
    out[:, 15] = macd - ema(macd, 2 / 10)
    sma, std = _roll(close, 20).mean(), _roll(close, 20).std().fillna(0.0)
    out[:, 16] = np.divide(
        (close - sma).to_numpy(), 2 * std.to_numpy(), out=np.zeros(len(c)), where=std.to_numpy() > 0
    )
    hi, lo = _roll(klines["high"], 60).max(), _roll(klines["low"], 60).min()
    width = (hi - lo).to_numpy()
    pos = np.divide((close - lo).to_numpy(), width, out=np.full(len(c), 0.5), where=width > 0)
    out[:, 17] = 2.0 * pos - 1.0
    minute = (klines["open_time_ms"].to_numpy(np.int64) // 60_000) % 1440
    out[:, 18] = np.sin(2 * np.pi * minute / 1440)
    out[:, 19] = np.cos(2 * np.pi * minute / 1440)
    np.nan_to_num(out, copy=False, nan=0.0, posinf=0.0, neginf=0.0)
    return np.clip(out, -20.0, 20.0).astype(np.float32)


N_ANALYSIS = 20


def _std1(x: np.ndarray) -> float:
    """pandas' rolling std: sample std (ddof 1), 0 for fewer than two values."""
    return float(np.std(x, ddof=1)) if len(x) > 1 else 0.0


def analysis_features_last(
    open_: np.ndarray,
    high: np.ndarray,
    low: np.ndarray,
    close: np.ndarray,
    volume: np.ndarray,
    taker_buy: np.ndarray,
    trades: np.ndarray,
    open_time_ms: int,
    ref_vol: float,
) -> np.ndarray:
    """The 20 analysis features of the newest bar (float32), as ``analysis_features`` gives."""
    ref = ref_vol if ref_vol > 0 else 1e-4
    n = len(close)
    c = close[-1]
    logc = np.log(close)
    out = np.zeros(N_ANALYSIS, dtype=np.float64)
    for j, h in enumerate((1, 5, 15, 30, 60)):
        out[j] = (logc[-1] - logc[-1 - h]) / (ref * math.sqrt(h)) if n > h else 0.0
    r1 = np.diff(logc[-61:], prepend=logc[-61] if n > 60 else logc[0])
    if n <= 60:
        r1[0] = 0.0
    out[5] = _std1(r1[-20:]) / ref
    out[6] = _std1(r1[-60:]) / ref
    out[7] = (high[-1] - low[-1]) / c / ref
    out[8] = (c - open_[-1]) / c / ref
    v15 = volume[-15:]
    share = np.divide(taker_buy[-15:], v15, out=np.full(len(v15), 0.5), where=v15 > 0)
    imb = 2.0 * share - 1.0
    out[9] = imb[-1]
    out[10] = float(np.mean(imb))
    out[11] = math.log(max(volume[-1], 1e-12) / max(float(np.mean(volume[-60:])), 1e-12))
    out[12] = math.log(max(trades[-1], 1.0) / max(float(np.mean(trades[-60:])), 1.0))
    diff = np.diff(close, prepend=close[:1])
    series = np.stack([np.maximum(diff, 0.0), np.maximum(-diff, 0.0), close, close])
    gain, loss, fast, slow = ema(series, np.array([[1 / 14], [1 / 14], [2 / 13], [2 / 27]]))
    tot = gain[-1] + loss[-1]
    out[13] = (gain[-1] - loss[-1]) / tot if tot > 0 else 0.0
    macd = (fast - slow) / close / ref
    out[14] = macd[-1]
    out[15] = macd[-1] - ema(macd, 2 / 10)[-1]
    w20 = close[-20:]
    std20 = _std1(w20)
    out[16] = (c - float(np.mean(w20))) / (2 * std20) if std20 > 0 else 0.0
    hi, lo = float(np.max(high[-60:])), float(np.min(low[-60:]))
    out[17] = 2.0 * ((c - lo) / (hi - lo) if hi > lo else 0.5) - 1.0
    minute = (open_time_ms // 60_000) % 1440
    out[18] = math.sin(2 * math.pi * minute / 1440)
    out[19] = math.cos(2 * math.pi * minute / 1440)
    np.nan_to_num(out, copy=False, nan=0.0, posinf=0.0, neginf=0.0)
    return np.clip(out, -20.0, 20.0).astype(np.float32)
