"""The market-analysis network: 20 kline features -> 64 -> 64 -> 5 classes.

Classes are the direction of the forward return over ``horizon`` bars: strong sell, sell,
hold, buy, strong buy, split at the configured thresholds (in basis points). Features are
computed from 1-minute klines by ``analysis_features`` only from bars up to and including t, so
the coordinator can build the same vector live from the bars it has seen.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from swarm_ray.features.analysis import FEATURE_NAMES, WARMUP_BARS, analysis_features, reference_vol
from swarm_ray.features.outcomes import classify_returns
from swarm_ray.registry.analysis_model import (
    ANALYSIS_CLASSES,
    FEATURE_LAYOUT,
    MarketAnalysisModel,
    build_network,
    network_architecture,
)


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


@dataclass(frozen=True)
class AnalysisTrainingResult:
    network: Any
    mean: np.ndarray
    std: np.ndarray
    ref_vol: float
    metrics: dict[str, Any]
    history: list[dict[str, float]]


def train_analysis(
    cfg: Any,
    train_files: list[str],
    validation_files: list[str],
    epochs: int | None = None,
    init_state: dict[str, Any] | None = None,
    init_scaling: tuple[np.ndarray, np.ndarray, float] | None = None,
) -> AnalysisTrainingResult:
    """Fit the network on the training days; pick the epoch with the best validation macro-F1.
    ``init_state``: start from these weights (a warm start from the serving version), with
    ``init_scaling`` (its feature mean, std and reference volatility), which it was fitted to.

    ``cfg`` is an ``AnalysisConfig``. Metrics compare the model with the majority class (of the
    training days) and the previous-direction rule on the validation days.
    """
    import torch

    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    from envs.data.klines import load_klines

    if init_scaling is not None:
        ref_vol = float(init_scaling[2])
    else:
        ref_vol = reference_vol(load_klines(train_files)["close"].to_numpy())
    train = label_days(train_files, cfg.horizon, tuple(cfg.thresholds_bps), ref_vol)
    val = label_days(validation_files, cfg.horizon, tuple(cfg.thresholds_bps), ref_vol)
    if init_scaling is not None:
        mean = np.asarray(init_scaling[0], dtype=train.x.dtype)
        std = np.asarray(init_scaling[1], dtype=train.x.dtype)
    else:
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
    if init_state is not None:
        net.load_state_dict(init_state, strict=True)
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
    """Write weights (safetensors), feature layout and card to ``models_dir/name/version``.

    The card gets the network's ``architecture``, the weight file's size and sha256 and
    ``smoke`` (a smoke export goes to a scratch registry only); the folder appears complete or
    not at all.
    """
    from swarm_ray.registry.files import staged_version, write_weights
    from swarm_ray.registry.policies import ANALYSIS_KIND, git_commit, new_version_dir, write_card

    smoke = card.get("smoke") is True
    dest = new_version_dir(models_dir, name, version, smoke)
    version = dest.name
    layout = {
        "features": list(FEATURE_NAMES),
        "classes": list(ANALYSIS_CLASSES),
        "mean": [float(v) for v in result.mean],
        "std": [float(v) for v in result.std],
        "ref_vol": result.ref_vol,
        "warmup_bars": WARMUP_BARS,
        "builder": "swarm_ray.features.analysis.analysis_features",
    }
    with staged_version(dest) as stage:
        weights = write_weights(stage, result.network.state_dict())
        (stage / FEATURE_LAYOUT).write_text(json.dumps(layout, indent=2) + "\n")
        full = {
            "name": name,
            "kind": ANALYSIS_KIND,
            "version": version,
            "commit": git_commit(),
            "smoke": smoke,
            "architecture": network_architecture(result.network),
            "weights": weights,
            **{k: v for k, v in card.items() if k not in ("architecture", "weights")},
            "metrics": result.metrics,
        }
        write_card(stage, full)
    return dest
