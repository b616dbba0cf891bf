"""Backtest reports: a markdown table and PNG plots (matplotlib, Agg backend)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from swarm_ray.evaluation.backtest import Run
from swarm_ray.evaluation.plots import plot_lines, plt, save_figure

METRIC_COLUMNS = ("pnl", "sharpe", "sortino", "max_drawdown", "map", "fills", "quoting")


def metric_cell(column: str, metrics: dict[str, float]) -> str:
    """One cell of the metrics table, as the CLI and the report print it."""
    v = metrics.get(column)
    if v is None:
        return ""
    if column == "fills":
        return f"{v:.0f}"
    if column == "quoting":
        return f"{v:.0%}"
    return f"{v:.4g}"


def metrics_table(
    results: dict[str, dict[str, float]], labels: dict[str, str] | None = None
) -> str:
    """A markdown table, one row per strategy (``labels``: a display name per strategy, such
    as a policy's registry version)."""
    head = "| strategy | " + " | ".join(METRIC_COLUMNS) + " |"
    rule = "|---" * (len(METRIC_COLUMNS) + 1) + "|"
    rows = [head, rule]
    for name, m in results.items():
        cells = [metric_cell(c, m) for c in METRIC_COLUMNS]
        rows.append(f"| {(labels or {}).get(name, name)} | " + " | ".join(cells) + " |")
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
    labels: dict[str, str] | None = None,
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
mean absolute position (base asset); `max_drawdown` is in the quote currency; `quoting` is the
share of bars with a quote on the book.

Days evaluated:
{days}

Avellaneda-Stoikov parameters (fitted on days not evaluated): {fit}

{metrics_table(results, labels)}

{notes}

![PnL](pnl.png)

![Inventory](inventory.png)

![Quotes](quotes.png)
"""
    path = out / "report.md"
    path.write_text(text)
    return path


# -- swarm-ray backtest ----------------------------------------------------------------------


def _f(x: Any, fmt: str = "{:.2f}") -> str:
    return "–" if x is None else fmt.format(x)


def _ci_text(ci: Any) -> str:
    return "–" if not ci else f"[{ci[0]:.1f}, {ci[1]:.1f}]"


def _markout(m: dict[str, Any], h: str) -> str:
    return _f(((m.get("markout_bps") or {}).get(h) or {}).get("mean"), "{:+.2f}")


# (header, cell of a strategy's metrics); the two groups are the CLI's two tables
RETURN_COLUMNS: tuple[tuple[str, Any], ...] = (
    ("pnl", lambda m: _f(m["pnl"])),
    ("sharpe", lambda m: _f(m.get("sharpe"))),
    ("95% CI", lambda m: _ci_text(m.get("sharpe_ci"))),
    ("day sharpe", lambda m: _f(m.get("day_sharpe"))),
    ("95% CI ", lambda m: _ci_text(m.get("day_sharpe_ci"))),
    ("max dd", lambda m: _f(m.get("max_drawdown"))),
    ("map", lambda m: _f(m.get("map"), "{:.4g}")),
)
FILL_COLUMNS: tuple[tuple[str, Any], ...] = (
    ("fills", lambda m: str(m.get("fills", 0))),
    ("quoting", lambda m: _f(m.get("quoting_share"), "{:.0%}")),
    ("edge 1b", lambda m: _markout(m, "1")),
    ("edge 5b", lambda m: _markout(m, "5")),
    ("edge 15b", lambda m: _markout(m, "15")),
    ("b/e fee", lambda m: _f(m.get("breakeven_maker_bps"), "{:+.2f}")),
    ("pnl/notl", lambda m: _f(m.get("pnl_per_notional_bps"), "{:+.2f}")),
)
TRADE_COLUMNS: tuple[tuple[str, Any], ...] = (
    ("round trips", lambda m: str((m.get("trades") or {}).get("round_trips", 0))),
    ("win rate", lambda m: _f((m.get("trades") or {}).get("win_rate"), "{:.0%}")),
    ("avg win", lambda m: _f((m.get("trades") or {}).get("avg_win"), "{:.3f}")),
    ("avg loss", lambda m: _f((m.get("trades") or {}).get("avg_loss"), "{:.3f}")),
    ("profit factor", lambda m: _f((m.get("trades") or {}).get("profit_factor"))),
    ("SQN", lambda m: _f((m.get("trades") or {}).get("sqn"))),
)
ALL_COLUMNS = RETURN_COLUMNS + FILL_COLUMNS + TRADE_COLUMNS
SUMMARY_COLUMNS = ("strategy", *(h.strip() for h, _ in ALL_COLUMNS))


def summary_rows(result: Any, columns: Any = ALL_COLUMNS) -> list[list[str]]:
    return [[name, *(cell(m) for _, cell in columns)] for name, m in result.strategies.items()]


def summary_tables(result: Any) -> list[Any]:
    """The strategies as three rich tables that fit a terminal: returns, fills, round trips."""
    from rich import box
    from rich.table import Table

    tables = []
    for title, columns in (
        ("Returns: quote currency, net of fees; 95% day-block bootstrap", RETURN_COLUMNS),
        ("Fills: edge vs the mid 1/5/15 bars later, break-even maker fee (bps)", FILL_COLUMNS),
        ("Round trips (FIFO)", TRADE_COLUMNS),
    ):
        table = Table(title=title, box=box.SIMPLE_HEAD, pad_edge=False)
        table.add_column("strategy", no_wrap=True)
        for header, _ in columns:
            table.add_column(header.strip(), justify="right", overflow="fold")
        for row in summary_rows(result, columns):
            table.add_row(*row)
        tables.append(table)
    return tables


def summary_markdown(result: Any) -> str:
    """The strategies as one markdown table (the report's, and the CLI's in a pipe)."""
    return _md_table(SUMMARY_COLUMNS, summary_rows(result))


def _md_table(head: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def _plot_backtest_pnl(result: Any, path: Path) -> None:
    fig, ax = plt.subplots(figsize=(11, 4.5))
    for name, recs in result.records.items():
        equity, offset, xs, fills_x, fills_y = [], 0.0, [], [], []
        x0 = 0
        for r in recs:
            e = r.equity + offset
            equity.append(e)
            xs.append(np.arange(len(e)) + x0)
            t = r.fills.t
            fills_x.append(t + 1 + x0)
            fills_y.append(e[t + 1])
            offset, x0 = float(e[-1]), x0 + len(e)
        line = ax.plot(np.concatenate(xs), np.concatenate(equity), lw=1, label=name)[0]
        fx, fy = np.concatenate(fills_x), np.concatenate(fills_y)
        if len(fx):
            ax.plot(fx, fy, ".", ms=2, color=line.get_color())
    ax.axhline(0, color="grey", lw=0.5)
    ax.set(title="Cumulative PnL net of fees (dots: fills)", xlabel="bar (minutes, days in order)")
    ax.set_ylabel("PnL (quote)")
    ax.legend(fontsize=8)
    save_figure(fig, path)


def _plot_backtest_quotes(result: Any, path: Path, window: int = 120) -> None:
    """One panel per quoting strategy over the first ``window`` bars of the first day: the mid,
    the best bid and ask resting during each bar, and the fills."""
    quoting = {n: r[0] for n, r in result.records.items() if r[0].bid is not None}
    quoting = {n: r for n, r in quoting.items() if np.isfinite(r.bid[:window]).any()
               or np.isfinite(r.ask[:window]).any()}  # fmt: skip
    if not quoting:
        return
    fig, axes = plt.subplots(
        len(quoting), 1, figsize=(11, 2.2 * len(quoting) + 0.6), sharex=True, squeeze=False
    )
    x = np.arange(window + 1)
    for ax, (name, r) in zip(axes[:, 0], quoting.items(), strict=True):
        ax.plot(x, r.mid[: window + 1], color="black", lw=1.0, label="mid")
        ax.step(x[:-1], r.bid[:window], where="post", color="tab:blue", lw=0.9, label="bid")
        ax.step(x[:-1], r.ask[:window], where="post", color="tab:red", lw=0.9, label="ask")
        keep = r.fills.t < window
        buys, sells = keep & (r.fills.side > 0), keep & (r.fills.side < 0)
        ax.plot(r.fills.t[buys] + 0.5, r.fills.price[buys], "^", color="tab:blue", ms=6)
        ax.plot(r.fills.t[sells] + 0.5, r.fills.price[sells], "v", color="tab:red", ms=6)
        ax.set_ylabel("price")
        ax.set_title(f"{name}: {int(keep.sum())} fills", fontsize=9, loc="left")
        ax.grid(alpha=0.3)
    first = next(iter(quoting.values()))
    axes[0, 0].legend(fontsize=8, ncol=3, loc="upper right")
    axes[-1, 0].set_xlabel(f"bar of {first.symbol} {first.date} (▲ bought, ▼ sold)")
    save_figure(fig, path)


def _fills_text(fill_model: dict[str, Any]) -> str:
    if fill_model.get("kind") == "queue":
        return (
            f"the paper exchange's tick replay (queue model {fill_model['queue_model']}, "
            f"{fill_model['latency_ms']:g} ms order latency) on L2 data, one step every "
            f"{fill_model['interval_ms']} ms (a bar below is a step)"
        )
    return "the paper exchange's trade-through model on 1-minute bars"


def write_backtest_report(out: str | Path, result: Any, cfg: Any) -> Path:
    """``report.md``, ``days.csv``, ``backtest.json`` and PNG plots under ``out``."""
    import json

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    _plot_backtest_pnl(result, out / "pnl.png")
    _plot_backtest_quotes(result, out / "quotes.png")
    names = list(result.strategies)
    day_head = ["date", "symbol", *names]
    day_rows = [
        [d["date"], d["symbol"], *(_f(d["pnl"].get(n)) for n in names)] for d in result.days
    ]
    (out / "days.csv").write_text(
        "\n".join(",".join(r) for r in [day_head, *day_rows]).replace("–", "") + "\n"
    )
    (out / "backtest.json").write_text(json.dumps(result.to_json(), indent=1, allow_nan=False))
    tier = cfg.tier(result.fees)
    swarm = (result.strategies.get("swarm") or {}).get("swarm")
    swarm_text = ""
    if swarm:
        decisions = ", ".join(f"{k} {v}" for k, v in sorted(swarm["decisions"].items()))
        swarm_text = (
            f"\n## The swarm's votes\n\nThe vote carried in {swarm['carried_share']:.0%} of "
            f"{swarm['cycles']} cycles. Decisions: {decisions}.\n"
        )
    text = f"""# Backtest

Fee tier **{result.fees}**: maker {tier.maker_bps:g} bps, taker {tier.taker_bps:g} bps
({tier.source}).

Fills: {_fills_text(result.fill_model)}. PnL in the quote currency,
net of fees; Sharpe annualised from per-bar PnL, day Sharpe from daily PnL,
both with 95% day-block bootstrap intervals. Markouts: mean signed edge of fills against the mid
1, 5 and 15 bars later, before fees. Break-even maker bps: the maker fee at which PnL is zero.

{summary_markdown(result)}
{swarm_text}
## Days

{_md_table(day_head, day_rows)}

{chr(10).join("- " + w for w in result.warnings + result.notes)}

![Cumulative PnL](pnl.png)

![Quotes](quotes.png)
"""
    path = out / "report.md"
    path.write_text(text)
    return path
