"""The market-analysis network: 20 kline features -> 64 -> 64 -> 5 classes.

Classes are the direction of the forward return over ``horizon`` bars: strong sell, sell,
hold, buy, strong buy, split at the configured thresholds (in basis points). Features are
computed from 1-minute klines by ``analysis_features`` only from bars up to and including t, so
the coordinator can build the same vector live from the bars it has seen.
"""

from __future__ import annotations

import json
import math
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from envs.features import ema

ANALYSIS_CLASSES: tuple[str, ...] = ("strong_sell", "sell", "hold", "buy", "strong_buy")
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
FEATURE_LAYOUT = "feature_layout.json"
WEIGHTS = "weights.pt"


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


def classify_returns(ret_bps: np.ndarray, thresholds_bps: tuple[float, float]) -> np.ndarray:
    """Class index 0..4 of returns in bps: strong sell, sell, hold, buy, strong buy."""
    t1, t2 = thresholds_bps
    r = np.asarray(ret_bps, dtype=np.float64)
    cls = np.full(r.shape, 2, dtype=np.int64)
    cls[r > t1] = 3
    cls[r > t2] = 4
    cls[r < -t1] = 1
    cls[r < -t2] = 0
    return cls


@dataclass(frozen=True)
class LabelledDays:
    """Features, forward-return labels and the previous-direction baseline of some days."""

    x: np.ndarray  # (n, 20) float32
    y: np.ndarray  # (n,) int64 class of the forward return
    prev: np.ndarray  # (n,) int64 class of the backward return over the same horizon


def label_days(
    files: list[str], horizon: int, thresholds_bps: tuple[float, float], ref_vol: float
) -> LabelledDays:
    """Each day on its own (no window crosses a gap between files), warm-up bars dropped."""
    from envs.data.klines import load_klines

    xs, ys, ps = [], [], []
    for f in files:
        df = load_klines([f])
        x = analysis_features(df, ref_vol)
        c = df["close"].to_numpy(np.float64)
        fwd = np.full(len(c), np.nan)
        fwd[:-horizon] = (c[horizon:] / c[:-horizon] - 1.0) * 1e4
        back = np.full(len(c), np.nan)
        back[horizon:] = (c[horizon:] / c[:-horizon] - 1.0) * 1e4
        keep = np.arange(len(c)) >= max(WARMUP_BARS, horizon)
        keep &= ~np.isnan(fwd)
        xs.append(x[keep])
        ys.append(classify_returns(fwd[keep], thresholds_bps))
        ps.append(classify_returns(back[keep], thresholds_bps))
    return LabelledDays(np.concatenate(xs), np.concatenate(ys), np.concatenate(ps))


def macro_f1(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int = 5) -> float:
    """Unweighted mean of per-class F1 over the classes present in truth or prediction."""
    f1s = []
    for c in range(n_classes):
        tp = np.sum((y_pred == c) & (y_true == c))
        fp = np.sum((y_pred == c) & (y_true != c))
        fn = np.sum((y_pred != c) & (y_true == c))
        if tp + fp + fn == 0:
            continue
        f1s.append(2 * tp / (2 * tp + fp + fn))
    return float(np.mean(f1s)) if f1s else 0.0


def scores(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    return {
        "accuracy": float(np.mean(y_true == y_pred)),
        "macro_f1": macro_f1(y_true, y_pred),
    }


def build_network(hidden: tuple[int, int] = (64, 64), dropout: float = 0.2):
    """20 -> 64 -> 64 -> 5 logits (ReLU, dropout); softmax is applied at inference."""
    from torch import nn

    return nn.Sequential(
        nn.Linear(N_FEATURES, hidden[0]),
        nn.ReLU(),
        nn.Dropout(dropout),
        nn.Linear(hidden[0], hidden[1]),
        nn.ReLU(),
        nn.Dropout(dropout),
        nn.Linear(hidden[1], len(ANALYSIS_CLASSES)),
    )


@dataclass(frozen=True)
class AnalysisTrainingResult:
    network: Any
    mean: np.ndarray
    std: np.ndarray
    ref_vol: float
    metrics: dict[str, Any]
    history: list[dict[str, float]]


def train_analysis(
    cfg: Any, train_files: list[str], validation_files: list[str], epochs: int | None = None
) -> AnalysisTrainingResult:
    """Fit the network on the training days; pick the epoch with the best validation macro-F1.

    ``cfg`` is an ``AnalysisConfig``. Metrics compare the model with the majority class (of the
    training days) and the previous-direction rule on the validation days.
    """
    import torch

    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    from envs.data.klines import load_klines

    ref_vol = reference_vol(load_klines(train_files)["close"].to_numpy())
    train = label_days(train_files, cfg.horizon, tuple(cfg.thresholds_bps), ref_vol)
    val = label_days(validation_files, cfg.horizon, tuple(cfg.thresholds_bps), ref_vol)
    mean, std = train.x.mean(0), train.x.std(0) + 1e-6
    xt = torch.as_tensor((train.x - mean) / std)
    yt = torch.as_tensor(train.y)
    xv = torch.as_tensor((val.x - mean) / std)
    counts = np.bincount(train.y, minlength=len(ANALYSIS_CLASSES)).astype(np.float64)
    weight = None
    if cfg.class_weighting:
        w = counts.sum() / np.maximum(counts, 1.0) / len(counts)
        weight = torch.as_tensor(w, dtype=torch.float32)
    net = build_network(tuple(cfg.hidden), cfg.dropout)
    opt = torch.optim.Adam(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    loss_fn = torch.nn.CrossEntropyLoss(weight=weight)
    best, best_state, history = -1.0, None, []
    n = len(xt)
    for epoch in range(epochs or cfg.epochs):
        net.train()
        order = rng.permutation(n)
        total = 0.0
        for i in range(0, n, cfg.batch_size):
            idx = torch.as_tensor(order[i : i + cfg.batch_size])
            opt.zero_grad()
            loss = loss_fn(net(xt[idx]), yt[idx])
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
        net.eval()
        with torch.no_grad():
            pred = net(xv).argmax(-1).numpy()
        s = scores(val.y, pred)
        history.append({"epoch": epoch + 1, "train_loss": total / n, **s})
        if s["macro_f1"] > best:
            best = s["macro_f1"]
            best_state = {k: v.clone() for k, v in net.state_dict().items()}
    assert best_state is not None
    net.load_state_dict(best_state)
    net.eval()
    with torch.no_grad():
        pred = net(xv).argmax(-1).numpy()
    majority = int(np.argmax(counts))
    metrics = {
        "validation": {
            "model": scores(val.y, pred),
            "majority_class": scores(val.y, np.full_like(val.y, majority)),
            "previous_direction": scores(val.y, val.prev),
            "n_samples": len(val.y),
            "class_counts": np.bincount(val.y, minlength=5).tolist(),
        },
        "train": {"n_samples": n, "class_counts": counts.astype(int).tolist()},
        "best_epoch": int(max(history, key=lambda h: h["macro_f1"])["epoch"]),
    }
    return AnalysisTrainingResult(net, mean, std, ref_vol, metrics, history)


def evaluate_analysis(
    model: MarketAnalysisModel, files: list[str], horizon: int, thresholds: tuple[float, float]
) -> dict[str, Any]:
    """Model vs majority-of-these-days and previous direction on other days (e.g. evaluation)."""
    days = label_days(files, horizon, thresholds, model.ref_vol)
    pred = model.predict_proba(days.x).argmax(-1)
    majority = int(np.argmax(model.card["metrics"]["train"]["class_counts"]))
    return {
        "model": scores(days.y, pred),
        "majority_class": scores(days.y, np.full_like(days.y, majority)),
        "previous_direction": scores(days.y, days.prev),
        "n_samples": len(days.y),
    }


def export_analysis(
    result: AnalysisTrainingResult,
    models_dir: str | Path,
    name: str,
    card: dict[str, Any],
    version: str | None = None,
) -> Path:
    """Write weights, feature layout and card to ``models_dir/name/version``."""
    import torch

    from swarm_ray.registry.policies import ANALYSIS_KIND, git_commit, next_version, write_card

    version = version or next_version(models_dir, name)
    dest = Path(models_dir) / name / version
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    torch.save(result.network.state_dict(), dest / WEIGHTS)
    layout = {
        "features": list(FEATURE_NAMES),
        "classes": list(ANALYSIS_CLASSES),
        "mean": [float(v) for v in result.mean],
        "std": [float(v) for v in result.std],
        "ref_vol": result.ref_vol,
        "warmup_bars": WARMUP_BARS,
        "builder": "swarm_ray.training.analysis.analysis_features",
    }
    (dest / FEATURE_LAYOUT).write_text(json.dumps(layout, indent=2) + "\n")
    full = {
        "name": name,
        "kind": ANALYSIS_KIND,
        "version": version,
        "commit": git_commit(),
        **card,
        "metrics": result.metrics,
    }
    write_card(dest, full)
    return dest


class MarketAnalysisModel:
    """The exported network with its feature standardisation, for CPU inference."""

    def __init__(self, network: Any, layout: dict[str, Any], card: dict[str, Any]) -> None:
        self.network = network.eval()
        self.card = card
        self.name: str = card.get("name", "market_analyst")
        self.version: str = card.get("version", "")
        self.feature_names: tuple[str, ...] = tuple(layout["features"])
        self.classes: tuple[str, ...] = tuple(layout["classes"])
        self.ref_vol = float(layout["ref_vol"])
        self._mean = np.asarray(layout["mean"], dtype=np.float32)
        self._std = np.asarray(layout["std"], dtype=np.float32)

    def features(self, klines: pd.DataFrame) -> np.ndarray:
        """Feature rows of kline rows, with the reference volatility of the training days."""
        return analysis_features(klines, self.ref_vol)

    def predict_proba(self, features: np.ndarray) -> np.ndarray:
        """Class probabilities (n, 5), strong sell .. strong buy, of features (n, 20)."""
        import torch

        x = (
            np.asarray(features, dtype=np.float32).reshape(-1, N_FEATURES) - self._mean
        ) / self._std
        with torch.no_grad():
            return torch.softmax(self.network(torch.as_tensor(x)), dim=-1).numpy()


def load_analysis_model(
    models_dir: str | Path, name: str = "market_analyst", version: str | None = None
) -> MarketAnalysisModel:
    """Load the newest (or the given) version of the market-analysis network."""
    import torch

    from swarm_ray.registry.policies import ANALYSIS_KIND, latest_dir, read_card

    vdir = Path(models_dir) / name / version if version else latest_dir(models_dir, name)
    card = read_card(vdir)
    if card.get("kind") != ANALYSIS_KIND:
        raise ValueError(f"{vdir}: kind {card.get('kind')!r} is not {ANALYSIS_KIND}")
    layout = json.loads((vdir / FEATURE_LAYOUT).read_text())
    if tuple(layout["features"]) != FEATURE_NAMES:
        raise ValueError(f"{vdir}: feature layout differs from this code's FEATURE_NAMES")
    cfg = card.get("config", {})
    net = build_network(tuple(cfg.get("hidden", (64, 64))), float(cfg.get("dropout", 0.2)))
    net.load_state_dict(torch.load(vdir / WEIGHTS, map_location="cpu", weights_only=True))
    return MarketAnalysisModel(net, layout, card)
