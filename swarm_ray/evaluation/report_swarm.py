"""The report of a swarm run: markdown with PNG plots (PnL, inventory, quotes around the mid,
consensus share) from the cycle summaries, and the journal's counts."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from swarm_ray.evaluation.plots import plot_lines, plt, save_figure

__all__ = ["write_swarm_report"]

MAX_MUTE_EVENTS = 12
"""Mutes and un-mutes listed in the report; the rest are counted."""


def _times(hist: Sequence[dict[str, Any]]) -> np.ndarray:
    return np.array([h["time_ns"] for h in hist], dtype="datetime64[ns]")


def _arr(hist: Sequence[dict[str, Any]], key: str) -> np.ndarray:
    return np.array([np.nan if h.get(key) is None else h[key] for h in hist], dtype=float)


def _plot_quotes(hist: Sequence[dict[str, Any]], path: Path, window: int = 180) -> None:
    """Mid, touch and our best bid/ask over the busiest ``window`` cycles."""
    quoting = np.array([bool(h["bids"] or h["asks"]) for h in hist], dtype=float)
    if len(hist) > window:
        counts = np.convolve(quoting, np.ones(window), mode="valid")
        lo = int(np.argmax(counts))
    else:
        lo = 0
    part = hist[lo : lo + window]
    t = _times(part)
    fig, ax = plt.subplots(figsize=(10, 4))
    ax.plot(t, _arr(part, "mid"), color="black", lw=1, label="mid")
    ax.plot(t, _arr(part, "best_bid"), color="grey", lw=0.5, alpha=0.6, label="touch")
    ax.plot(t, _arr(part, "best_ask"), color="grey", lw=0.5, alpha=0.6)
    bid = np.array([h["bids"][0] if h["bids"] else np.nan for h in part])
    ask = np.array([h["asks"][0] if h["asks"] else np.nan for h in part])
    ax.step(t, bid, where="post", color="tab:green", lw=1, label="our bid")
    ax.step(t, ask, where="post", color="tab:red", lw=1, label="our ask")
    ax.set_title("Quotes around the mid (the busiest stretch)")
    ax.set_ylabel("price")
    ax.legend(loc="upper left", fontsize=8)
    ax.grid(alpha=0.3)
    save_figure(fig, path, dates=True)


def _plot_consensus(hist: Sequence[dict[str, Any]], threshold: float, path: Path) -> None:
    t = _times(hist)
    share = _arr(hist, "share")
    fig, ax = plt.subplots(figsize=(10, 3.5))
    ax.plot(t, share, lw=0.8, color="tab:blue", label="winner's share")
    ax.axhline(threshold, color="tab:red", ls="--", lw=0.8, label=f"threshold {threshold:.2f}")
    carried = np.array([h["reason"] in ("consensus", "emergency_stop") for h in hist])
    ax.scatter(t[carried], share[carried], s=6, color="tab:green", label="carried", zorder=3)
    ax.set_ylim(0, 1.05)
    ax.set_title("Consensus share per cycle")
    ax.legend(loc="lower left", fontsize=8)
    ax.grid(alpha=0.3)
    save_figure(fig, path, dates=True)


def _table(counter: Counter, head: tuple[str, str]) -> str:
    rows = [f"| {head[0]} | {head[1]} |", "|---|---|"]
    rows += [f"| {k} | {v} |" for k, v in counter.most_common()]
    return "\n".join(rows)


def write_swarm_report(
    out: str | Path,
    history: Sequence[dict[str, Any]],
    journal_summary: dict[str, Any],
    *,
    title: str,
    threshold: float,
    explained: dict[str, Any] | None = None,
    notes: Sequence[str] = (),
    agents: Sequence[dict[str, Any]] = (),
    track: str = "",
    hindsight: dict[str, Any] | None = None,
    fees: tuple[float, float] | None = None,
) -> Path:
    """Write ``report.md`` and its PNGs into ``out``; returns the report's path."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    hist = [h for h in history if h.get("mid") is not None] or list(history)
    if not hist:
        raise ValueError("no cycles to report")
    t = _times(hist)
    size, lw = (10, 3.5), 1.2
    pnl_title = "PnL (net of fees, marked to the mid)"
    plot_lines({"pnl": _arr(hist, "pnl")}, pnl_title, "USDT", out / "pnl.png", t, None, size, lw)
    position = {"position": _arr(hist, "position")}
    plot_lines(position, "Inventory", "base asset", out / "inventory.png", t, None, size, lw)
    _plot_quotes(hist, out / "quotes.png")
    _plot_consensus(hist, threshold, out / "consensus.png")

    actions = Counter(h["action"] for h in history)
    reasons = Counter(h["reason"] for h in history)
    timeouts = Counter(a for h in history for a in h["timed_out"])
    problems = sum(1 for h in history if h["data_problems"])
    lat = np.array([h["latency_ms"] for h in history], dtype=float)
    last = history[-1]
    fills = sum(h["new_fills"] for h in history)
    lines = [
        f"# {title}",
        "",
        *[f"{n}" for n in notes],
        "",
        "| figure | value |",
        "|---|---|",
        f"| cycles | {len(history)} |",
        f"| first / last cycle (UTC) | {t[0]} / {t[-1]} |",
        f"| final PnL (USDT, net of fees) | {last['pnl']:.2f} |",
        f"| final position | {last['position']:g} |",
        f"| fills | {fills} |",
        f"| orders placed / canceled | {sum(h['placed'] for h in history)} / "
        f"{sum(h['canceled'] for h in history)} |",
        f"| cycles with bad market data | {problems} |",
        f"| kill switch tripped at the end | {last['kill_switch']} |",
        f"| cycle latency p50 / p99 (ms) | {np.percentile(lat, 50):.2f} / "
        f"{np.percentile(lat, 99):.2f} |",
        "",
        "## Decisions",
        "",
        _table(actions, ("action taken", "cycles")),
        "",
        _table(reasons, ("consensus outcome", "cycles")),
        "",
        *_why(history, hindsight, fees, track),
    ]
    if timeouts:
        lines += ["Agents missing from votes:", "", _table(timeouts, ("agent", "cycles")), ""]
    if agents:
        lines += _agents_section(agents, track)
    lines += _muted_section(history)
    lines += [
        "## Plots",
        "",
        "![PnL](pnl.png)",
        "",
        "![Inventory](inventory.png)",
        "",
        "![Quotes](quotes.png)",
        "",
        "![Consensus](consensus.png)",
        "",
        "## Journal",
        "",
        "The run's journal (SQLite) is `journal/`; every order is explained by its cycle's votes:",
        "`swarm-ray explain <client order id> --journal-dir <this folder>/journal`.",
        "",
        "```json",
        _json(journal_summary),
        "```",
    ]
    if explained:
        lines += ["", "One order, explained:", "", "```json", _json(explained), "```"]
    path = out / "report.md"
    path.write_text("\n".join(lines) + "\n")
    return path


def _why(
    history: Sequence[dict[str, Any]],
    hindsight: dict[str, Any] | None,
    fees: tuple[float, float] | None,
    track: str,
) -> list[str]:
    """Why the swarm quoted or stood aside: how often the vote carried, and what each action
    would have earned in hindsight against the fee."""
    n = len(history)
    carried = sum(1 for h in history if h.get("carried"))
    quoted = sum(1 for h in history if h.get("bids") or h.get("asks"))
    lines = [
        f"The vote carried in {carried} of {n} cycles ({carried / n:.0%}); the swarm quoted in "
        f"{quoted} ({quoted / n:.0%}).",
        "",
    ]
    if not hindsight or not hindsight.get("cycles"):
        return lines
    maker, taker = fees or (float("nan"), float("nan"))
    lines += [
        f"Why: what each action would have earned per cycle in hindsight ({track}), averaged "
        f"over {hindsight['cycles']} cycles; the votes' confidences estimate the chance of "
        "beating standing aside (0) from the same yardstick. Quotes pay the maker fee "
        f"({maker:g} bps) on each fill, `reduce_*` the taker fee ({taker:g} bps).",
        "",
        "| action | edge per cycle (bps of the mid, net of fees) |",
        "|---|---|",
    ]
    trades = {a: e for a, e in hindsight.items() if a not in ("cycles", "stand_aside")}
    lines += [f"| stand_aside | {0.0:+.3f} |"]
    lines += [f"| {action} | {edge:+.3f} |" for action, edge in trades.items()]
    best = max((e, a) for a, e in trades.items())
    verdict = (
        f"Every way to trade lost to standing aside on average; the best, {best[1]}, by "
        f"{-best[0]:.3f} bps per cycle."
        if best[0] <= 0
        else f"{best[1]} would have earned {best[0]:+.3f} bps per cycle on average."
    )
    return [*lines, "", verdict, ""]


def _fmt(x: Any, spec: str) -> str:
    return "-" if x is None else format(x, spec)


def _agents_section(agents: Sequence[dict[str, Any]], track: str) -> list[str]:
    """Each agent's votes, agreement and track record in hindsight (``journal.agent_records``)."""
    lines = [
        "## Agents",
        "",
        "Each vote's confidence is the calibrated probability that it beats its alternative "
        "(trade vs stand aside); a vote below 0.5 is cast for the alternative. In hindsight "
        f"({track}) each scored vote won (1), lost (0) or tied (0.5) against its alternative; "
        "a calibrated agent's hit rate matches the confidence it stated.",
        "",
        "| agent | votes | agreed with carried | scored | hit rate | stated confidence | "
        "mean edge of its action (bps, net of fees) | models |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for a in agents:
        lines.append(
            f"| {a['agent_id']} | {a['voted']} | {_fmt(a['agreement'], '.0%')} | {a['scored']} "
            f"| {_fmt(a['hit_rate'], '.3f')} | {_fmt(a['scored_confidence'], '.3f')} "
            f"| {_fmt(a['mean_edge_bps'], '+.2f')} | {', '.join(a['model_versions'])} |"
        )
    return [*lines, ""]


def _muted_section(history: Sequence[dict[str, Any]]) -> list[str]:
    """Which agents ``consensus.mute`` muted, when and why (nothing if none was)."""
    events = [e for h in history for e in h.get("mute_events") or ()]
    if not events:
        return []
    n = len(history)
    cycles = Counter(a for h in history for a in h.get("muted") or ())
    lines = [
        "## Muted agents",
        "",
        "An agent whose rolling hit rate (the analyst: its rolling accuracy) fell below its "
        "floor less the margin was muted (`consensus.mute`) until back at its floor or its "
        "model changed.",
        "",
    ]
    for e in events[:MAX_MUTE_EVENTS]:
        when = np.datetime64(int(e["time_ns"]), "ns").astype("datetime64[s]")
        lines.append(f"- {when} (cycle {e['cycle']}): {e['reason']}")
    if len(events) > MAX_MUTE_EVENTS:
        lines.append(f"- and {len(events) - MAX_MUTE_EVENTS} more (in the swarm's log)")
    lines.append("")
    lines += [f"{a} was muted in {k} of {n} cycles." for a, k in sorted(cycles.items())]
    still = history[-1].get("muted") or ()
    if still:
        lines.append(f"Still muted at the end: {', '.join(still)}.")
    return [*lines, ""]


def _json(x: Any) -> str:
    import json

    return json.dumps(x, indent=2, default=str)[:6000]
