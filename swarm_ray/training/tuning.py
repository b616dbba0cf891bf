"""The strategy optimizer's re-tuning: a Ray Tune search over the quoting parameters, scored by
a backtest on the coordinator's recent bars with the environment's trade-through fill rule.

The backtest quotes symmetrically at ``tight_bps`` around each bar's close (the quote_tight
action), fills a side when the next bar trades through it, pays the maker fee, caps inventory at
``max_inventory`` and marks to the close. Its score is the Sharpe ratio of per-bar PnL changes
minus an inventory penalty, so a search cannot win by warehousing risk.
"""

from __future__ import annotations

import math
import tempfile
from collections.abc import Sequence
from typing import Any

import numpy as np

from swarm_ray.core.instruments import Kline
from swarm_ray.trading.quoting import QuotingParams

__all__ = ["quote_backtest", "retune_quoting"]


def quote_backtest(
    close: np.ndarray,
    high: np.ndarray,
    low: np.ndarray,
    half_spread_bps: float,
    size: float,
    max_inventory: float,
    maker_bps: float,
    inventory_penalty: float = 0.1,
) -> dict[str, float]:
    """PnL, Sharpe per bar, fills and mean |inventory| of quoting at ``half_spread_bps``."""
    q = cash = 0.0
    pnl = np.zeros(len(close))
    fills = 0
    inv_abs = 0.0
    fee = maker_bps * 1e-4
    for t in range(len(close) - 1):
        mid = close[t]
        bid, ask = mid * (1 - half_spread_bps * 1e-4), mid * (1 + half_spread_bps * 1e-4)
        if low[t + 1] < bid and q + size <= max_inventory + 1e-12:
            q += size
            cash -= bid * size * (1 + fee)
            fills += 1
        if high[t + 1] > ask and q - size >= -max_inventory - 1e-12:
            q -= size
            cash += ask * size * (1 - fee)
            fills += 1
        pnl[t + 1] = cash + q * close[t + 1]
        inv_abs += abs(q)
    d = np.diff(pnl)
    sd = float(np.std(d))
    sharpe = float(np.mean(d) / sd) if sd > 0 else 0.0
    mean_inv = inv_abs / max(1, len(close) - 1)
    return {
        "pnl": float(pnl[-1]),
        "sharpe": sharpe,
        "fills": float(fills),
        "mean_abs_inventory": mean_inv,
        "score": sharpe - inventory_penalty * mean_inv / max_inventory,
    }


def retune_quoting(
    bars: Sequence[Kline],
    base: QuotingParams,
    *,
    max_inventory: float,
    maker_bps: float,
    num_samples: int = 16,
    seed: int = 0,
    bounds_bps: tuple[float, float] = (1.0, 25.0),
) -> tuple[QuotingParams, dict[str, Any]]:
    """New quoting parameters from a Tune search on ``bars``; the tight half-spread is searched,
    the wide one keeps its ratio to it. Returns (params, the best trial's metrics)."""
    from ray import tune

    if len(bars) < 30:
        raise ValueError(f"re-tuning needs at least 30 bars, got {len(bars)}")
    close = np.array([b.close for b in bars])
    high = np.array([b.high for b in bars])
    low = np.array([b.low for b in bars])
    ratio = base.wide_bps / base.tight_bps

    def trainable(config: dict[str, Any]) -> None:
        tune.report(
            quote_backtest(
                close, high, low, config["tight_bps"], base.size, max_inventory, maker_bps
            )
        )

    searcher = tune.search.BasicVariantGenerator(random_state=seed)
    tuner = tune.Tuner(
        tune.with_resources(trainable, {"cpu": 0.25}),
        param_space={"tight_bps": tune.uniform(*bounds_bps)},
        tune_config=tune.TuneConfig(
            metric="score", mode="max", num_samples=num_samples, search_alg=searcher
        ),
        run_config=tune.RunConfig(
            storage_path=tempfile.mkdtemp(prefix="swarm_retune_"), verbose=0, name="retune"
        ),
    )
    best = tuner.fit().get_best_result()
    tight = float(best.config["tight_bps"])
    metrics = {
        k: best.metrics[k] for k in ("pnl", "sharpe", "fills", "score", "mean_abs_inventory")
    }
    if not math.isfinite(metrics["score"]):
        return base, metrics
    new = base.model_copy(
        update={"tight_bps": round(tight, 2), "wide_bps": round(tight * ratio, 2)}
    )
    return new, metrics
