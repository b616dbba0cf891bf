"""Can anything the swarm observes predict the edge of a quote on this fill model?

For every 1-minute bar of the bundled BTCUSDT days, the edge each quoting action would have
earned (``swarm_ray.features.outcomes``: first-level quotes filled when the next bar trades
through them, marked to the mid ``--horizon`` bars later) is the target; the features are the
policies' 10 market columns plus the candidates a better policy could use: the 5- and 20-bar
taker-buy imbalance, the volatility regime (20-bar over 240-bar realised volatility), the
volume regime and the time of day. A ridge regression per action is fitted on the training
days (2024-08-01..12), its penalty chosen on the validation days (08-13..16), and judged on the
evaluation days (08-17..20), which nothing here has seen:

- ``corr``: correlation of predicted and realised edge on the evaluation days;
- per decile of the prediction (cut on the validation days), the realised edge in bps per
  bar before fees and net of each fee tier's maker fee (per fill), with standard errors;
- the rule "quote when the predicted edge net of the fee is positive": bars quoted and the mean
  realised edge per bar of the evaluation days, at each tier.

A quote that does not fill earns 0, as standing aside does; a policy can only beat standing
aside where the edge net of fees is positive. Run::

    .venv/bin/python scripts/edge_predictability.py [--horizon 5] [--json]
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from envs.actions import Action  # noqa: E402
from envs.data.klines import load_klines  # noqa: E402
from envs.features import MARKET_COLUMNS, OBS_COLUMNS, market_features  # noqa: E402
from swarm_ray.features.outcomes import OutcomeParams, action_edges  # noqa: E402
from swarm_ray.trading.quoting import QuotingParams  # noqa: E402

KLINES = ROOT / "data" / "binance-spot-1m"
TRAIN = [f"2024-08-{d:02d}" for d in range(1, 13)]
VALIDATION = [f"2024-08-{d:02d}" for d in range(13, 17)]
EVALUATION = [f"2024-08-{d:02d}" for d in range(17, 21)]
TIERS = {"regular": 2.0, "vip9": 0.0, "lp_rebate": -0.5}
ACTIONS = (Action.QUOTE_TIGHT, Action.QUOTE_WIDE, Action.SKEW_BUY, Action.SKEW_SELL)
REF_VOL_BARS = 240  # the volatility scale: the symbol's own trailing 4 hours


EXTRA_NAMES = ("imbalance_5", "imbalance_20", "vol_regime", "volume_regime", "tod_sin", "tod_cos")


def _trailing_mean(x: np.ndarray, n: int) -> np.ndarray:
    c = np.concatenate([[0.0], np.cumsum(x)])
    idx = np.arange(len(x))
    lo = np.maximum(idx + 1 - n, 0)
    return (c[idx + 1] - c[lo]) / (idx + 1 - lo)


def extra_features(
    close: np.ndarray, volume: np.ndarray, taker: np.ndarray, open_ms: np.ndarray
) -> np.ndarray:
    """The candidate columns, causal in t: taker-buy imbalance over 5 and 20 bars, realised
    volatility and volume over 20 bars against 240, the UTC time of day."""
    r = np.diff(close, prepend=close[0]) / close
    share = lambda n: _trailing_mean(taker, n) / np.maximum(_trailing_mean(volume, n), 1e-12)  # noqa: E731
    vol = lambda n: np.sqrt(np.maximum(_trailing_mean(r * r, n), 1e-18))  # noqa: E731
    day = (open_ms % 86_400_000) / 86_400_000 * 2 * np.pi
    return np.stack(
        [
            2 * share(5) - 1,
            2 * share(20) - 1,
            np.log(vol(20) / vol(240)),
            np.log(np.maximum(_trailing_mean(volume, 20), 1e-12)
                   / np.maximum(_trailing_mean(volume, 240), 1e-12)),
            np.sin(day),
            np.cos(day),
        ],
        axis=1,
    )  # fmt: skip


def day_data(dates: list[str], horizon: int, table: tuple) -> dict[str, np.ndarray]:
    """Features, edges before fees and fill counts of every decision of ``dates``."""
    xs, edges, fills = [], [], []
    for date in dates:
        prev = (np.datetime64(date) - np.timedelta64(1, "D")).astype(str)
        files = [KLINES / f"BTCUSDT-1m-{d}.csv" for d in (prev, date)]
        kl = load_klines([str(f) for f in files if f.is_file()])
        # the day before warms the features up; without it, the day's first 240 bars do
        n_warm = len(kl) - 1440 if len(kl) > 1440 else REF_VOL_BARS
        close = kl["close"].to_numpy(np.float64)
        high, low = kl["high"].to_numpy(np.float64), kl["low"].to_numpy(np.float64)
        volume = kl["volume"].to_numpy(np.float64)
        taker = kl["taker_buy_base_volume"].to_numpy(np.float64)
        r1 = np.diff(close, prepend=close[0]) / close
        ref = float(np.std(r1[max(0, n_warm - REF_VOL_BARS) : n_warm])) or 1e-4
        mkt = market_features(close, ref, high, low, volume, taker, float(volume[:n_warm].mean()))
        extra = extra_features(close, volume, taker, kl["open_time_ms"].to_numpy(np.int64))
        x = np.concatenate([mkt[:, list(MARKET_COLUMNS)], extra], axis=1)
        # decision at the close of bar t; quotes rest in bar t + 1; marked at bar t + horizon
        t = np.arange(n_warm, len(kl) - horizon)
        p = OutcomeParams(horizon, 0.0, 0.0, table)
        e = action_edges(p, close[t], high[t + 1], low[t + 1], close[t + horizon])
        # fills per action: the same edges at a 1 bps maker fee, minus the free ones
        f = np.round(e - action_edges(replace_fee(p, 1.0), close[t], high[t + 1], low[t + 1],
                                      close[t + horizon]))  # fmt: skip
        xs.append(x[t])
        edges.append(e)
        fills.append(f)
    return {"x": np.concatenate(xs), "edge": np.concatenate(edges), "fills": np.concatenate(fills)}


def replace_fee(p: OutcomeParams, maker: float) -> OutcomeParams:
    return OutcomeParams(p.horizon, maker, p.taker_bps, p.table, p.market_half_spread_bps)


def ridge(x: np.ndarray, y: np.ndarray, lam: float) -> tuple[np.ndarray, np.ndarray, float]:
    mu, sd = x.mean(0), x.std(0) + 1e-9
    z = (x - mu) / sd
    w = np.linalg.solve(z.T @ z + lam * len(z) * np.eye(z.shape[1]), z.T @ (y - y.mean()))
    return w / sd, mu, float(y.mean())


def predict(model: tuple[np.ndarray, np.ndarray, float], x: np.ndarray) -> np.ndarray:
    w, mu, b = model
    return (x - mu) @ w + b


def mean_se(v: np.ndarray) -> dict[str, float | None]:
    n = len(v)
    return {
        "mean": float(v.mean()) if n else None,
        "se": float(v.std(ddof=1) / math.sqrt(n)) if n > 1 else None,
        "n": n,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--horizon", type=int, default=5, help="bars to the mid fills are marked to")
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    args = ap.parse_args(argv)
    table = tuple(QuotingParams().table())
    train, val, ev = (day_data(d, args.horizon, table) for d in (TRAIN, VALIDATION, EVALUATION))
    names = [OBS_COLUMNS[c] for c in MARKET_COLUMNS] + list(EXTRA_NAMES)
    out: dict = {"horizon_bars": args.horizon, "features": names, "actions": {}}
    for a in ACTIONS:
        col = int(a)
        best = None
        for lam in (1e-4, 1e-3, 1e-2, 1e-1, 1.0):
            m = ridge(train["x"], train["edge"][:, col], lam)
            c = float(np.corrcoef(predict(m, val["x"]), val["edge"][:, col])[0, 1])
            if best is None or c > best[0]:
                best = (c, lam, m)
        _, lam, model = best
        cuts = np.quantile(predict(model, val["x"]), np.linspace(0, 1, 11)[1:-1])
        pred = predict(model, ev["x"])
        real, fills = ev["edge"][:, col], ev["fills"][:, col]
        decile = np.searchsorted(cuts, pred)
        deciles = []
        for k in range(10):
            m = decile == k
            row = {"bars": int(m.sum()), "before_fees": mean_se(real[m])}
            for tier, fee in TIERS.items():
                row[tier] = mean_se(real[m] - fee * fills[m])["mean"]
            deciles.append(row)
        rules = {}
        for tier, fee in TIERS.items():
            # expected fills per bar from training, to net the prediction of the fee
            fill_rate = float(train["fills"][:, col].mean())
            quote = pred - fee * fill_rate > 0
            net = np.where(quote, real - fee * fills, 0.0)
            always = real - fee * fills
            rules[tier] = {
                "bars_quoted": int(quote.sum()),
                "mean_edge_per_bar": mean_se(net),
                "always_quote": mean_se(always),
            }
        out["actions"][a.label] = {
            "ridge_lambda": lam,
            "corr_validation": best[0],
            "corr_evaluation": float(np.corrcoef(pred, real)[0, 1]),
            "fill_rate": float(fills.mean()),
            "mean_edge_before_fees": mean_se(real),
            "deciles": deciles,
            "quote_when_predicted_positive": rules,
        }
    if args.json:
        print(json.dumps(out))
        return 0
    print(f"edge of each quoting action over {args.horizon} bars, bps of the mid per bar; "
          f"fitted 08-01..12, lambda chosen 08-13..16, judged 08-17..20")  # fmt: skip
    for name, r in out["actions"].items():
        e = r["mean_edge_before_fees"]
        print(f"\n{name}: fills/bar {r['fill_rate']:.3f}, edge before fees {e['mean']:+.3f} "
              f"(se {e['se']:.3f}), corr(pred, real) validation {r['corr_validation']:+.3f}, "
              f"evaluation {r['corr_evaluation']:+.3f}")  # fmt: skip
        print("  decile  bars  before fees (se)      regular  vip9  lp_rebate")
        for k, d in enumerate(r["deciles"]):
            b = d["before_fees"]
            if b["se"] is None:  # fewer than two bars in this decile
                print(f"  {k + 1:>6} {d['bars']:>5}")
                continue
            print(f"  {k + 1:>6} {d['bars']:>5}  {b['mean']:+.3f} ({b['se']:.3f})"
                  f"      {d['regular']:+.3f} {d['vip9']:+.3f}  {d['lp_rebate']:+.3f}")  # fmt: skip
        for tier, q in r["quote_when_predicted_positive"].items():
            m, al = q["mean_edge_per_bar"], q["always_quote"]
            print(
                f"  {tier:<9}: quote when predicted > fee: {q['bars_quoted']} bars, "
                f"{m['mean']:+.4f} (se {m['se']:.4f}) bps/bar; always: {al['mean']:+.4f}"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
