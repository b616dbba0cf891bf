"""Backtest reports: a markdown table and PNG plots (matplotlib, Agg backend)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from swarm_ray.evaluation.backtest import Run
from swarm_ray.evaluation.plots import plot_lines, plt, save_figure

METRIC_COLUMNS = ("pnl", "sharpe", "sortino", "max_drawdown", "map", "fills")


def metrics_table(results: dict[str, dict[str, float]]) -> str:
    """A markdown table, one row per strategy."""
    head = "| strategy | " + " | ".join(METRIC_COLUMNS) + " |"
    rule = "|---" * (len(METRIC_COLUMNS) + 1) + "|"
    rows = [head, rule]
    for name, m in results.items():
        cells = [f"{m[c]:.0f}" if c == "fills" else f"{m[c]:.4g}" for c in METRIC_COLUMNS]
        rows.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(rows)


def _concat(a: np.ndarray) -> np.ndarray:
    """(steps + 1, days) -> one series, days in order (each day's first row dropped after
    the first so the series is continuous)."""
    parts = [a[:, 0]] + [a[1:, j] for j in range(1, a.shape[1])]
    return np.concatenate(parts)


def plot_pnl(runs: Sequence[Run], path: Path) -> None:
    pnl = {}
    for run in runs:
        dw = np.diff(run.wealth, axis=0).T.reshape(-1)
        pnl[run.name] = np.concatenate([[0.0], np.cumsum(dw)])
    plot_lines(pnl, "Cumulative PnL, net of fees", "PnL (quote)", path, xlabel="bar (minutes)")


def plot_inventory(runs: Sequence[Run], path: Path) -> None:
    inventory = {run.name: _concat(run.inventory) for run in runs}
    plot_lines(inventory, "Inventory", "inventory (base)", path, xlabel="bar (minutes)")


def plot_quotes(runs: Sequence[Run], path: Path, window: int = 120) -> None:
    """The first ``window`` bars of the first day: the mid and each strategy's quotes."""
    fig, ax = plt.subplots(figsize=(10, 5))
    mid = runs[0].mid[: window + 1, 0]
    ax.plot(mid, color="black", lw=1.2, label="mid")
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, run in enumerate(runs):
        c = colors[i % len(colors)]
        ax.plot(run.bid[:window, 0], color=c, lw=0.7, ls="--", label=f"{run.name} bid")
        ax.plot(run.ask[:window, 0], color=c, lw=0.7, ls=":", label=f"{run.name} ask")
    ax.set(title=f"Quotes around the mid (first {window} bars)", xlabel="bar", ylabel="price")
    ax.legend(fontsize=7, ncol=2)
    save_figure(fig, path)


def write_report(
    out: str | Path,
    results: dict[str, dict[str, float]],
    runs: Sequence[Run],
    files: Sequence[str],
    fitted: dict[str, Any],
    notes: str = "",
) -> Path:
    """Write ``report.md`` and its PNG plots under ``out``; returns the report's path."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    plot_pnl(runs, out / "pnl.png")
    plot_inventory(runs, out / "inventory.png")
    plot_quotes(runs, out / "quotes.png")
    days = "\n".join(f"- `{f}`" for f in files)
    fit = ", ".join(f"{k}={v:.4g}" for k, v in fitted.items())
    text = f"""# Backtest report

Replay of real Binance 1-minute klines; each file is one episode. PnL is in the quote currency,
net of maker and taker fees; Sharpe and Sortino are annualised from per-bar PnL; `map` is the
mean absolute position (base asset); `max_drawdown` is in the quote currency.

Days evaluated:
{days}

Avellaneda-Stoikov parameters (fitted on days not evaluated): {fit}

{metrics_table(results)}

{notes}

![PnL](pnl.png)

![Inventory](inventory.png)

![Quotes](quotes.png)
"""
    path = out / "report.md"
    path.write_text(text)
    return path
