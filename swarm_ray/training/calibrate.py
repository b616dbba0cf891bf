"""Fit each model's calibration map on validation days and check it on held-out days.

The whole swarm replays the days (``evaluation.swarm_backtest``, models in this process), so
the votes are the ones the swarm casts, in the states it reaches. For every model vote (not a
hard rule's) the model's raw output gives its score, and the bars that follow give its outcome
(``features.outcomes``: did the vote beat its alternative over ``horizon`` bars at the fee
tier). One logistic map per side is fitted on the fit days (``registry.calibration``); the
same votes' reliability, raw and calibrated, is measured on the fit days and on the check days,
drawn as a reliability diagram (PNG) and written into the model card with the map.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from envs.actions import Action
from swarm_ray.core.config import resolve_path
from swarm_ray.core.roles import MARKET_ANALYST, ROLES
from swarm_ray.evaluation.backtest_config import BacktestConfig
from swarm_ray.evaluation.records import DayRecord
from swarm_ray.features.outcomes import (
    ACTIVE,
    PASSIVE,
    OutcomeParams,
    action_edges,
    alternative,
    is_model_vote,
    side_of,
    vote_label,
)
from swarm_ray.registry.calibration import (
    CLASS_PROBABILITY,
    Q_MARGIN,
    Calibration,
    fit_platt,
    platt,
    policy_scores,
    reliability,
)

__all__ = ["PLOT_FILE", "VoteSamples", "calibrate_models", "outcome_params", "vote_samples"]

PLOT_FILE = "reliability.png"


@dataclass
class VoteSamples:
    """One model's votes: the score its calibration maps, the side, the outcome, the raw
    confidence it reported."""

    score: np.ndarray
    side: list[str]
    label: np.ndarray
    raw: np.ndarray

    @classmethod
    def empty(cls) -> VoteSamples:
        return cls(np.zeros(0), [], np.zeros(0), np.zeros(0))

    def extend(self, other: VoteSamples) -> VoteSamples:
        return VoteSamples(
            np.concatenate([self.score, other.score]),
            self.side + other.side,
            np.concatenate([self.label, other.label]),
            np.concatenate([self.raw, other.raw]),
        )

    def __len__(self) -> int:
        return len(self.score)


def outcome_params(cfg: BacktestConfig, fees: str, horizon: int) -> OutcomeParams:
    """Outcomes at the fee tier ``fees`` with the distances of the backtest's swarm config."""
    from swarm_ray.core.config import load_config
    from swarm_ray.evaluation.harness import SwarmSections

    swarm = load_config(resolve_path(cfg.swarm_config), SwarmSections)
    tier = cfg.tier(fees)
    return OutcomeParams(
        horizon=horizon,
        maker_bps=tier.maker_bps,
        taker_bps=tier.taker_bps,
        table=tuple(swarm.agents.quoting.table()),
        market_half_spread_bps=cfg.sizing.market_half_spread_bps,
    )


def _bars(day_file: str, n_bars: int) -> tuple[np.ndarray, np.ndarray]:
    """High and low of the bar each decision's quotes rest in: rows 1..n of the day's file."""
    from envs.data.klines import load_klines

    kl = load_klines(day_file)
    high = kl["high"].to_numpy(np.float64)[1 : n_bars + 1]
    low = kl["low"].to_numpy(np.float64)[1 : n_bars + 1]
    if len(high) != n_bars:
        raise ValueError(f"{day_file}: {len(high) + 1} bars, expected {n_bars + 1}")
    return high, low


def day_edges(rec: DayRecord, day_file: str, params: OutcomeParams) -> np.ndarray:
    """(n_bars, 7) edge of every action at each of the record's decisions."""
    n = rec.n_bars
    high, low = _bars(day_file, n)
    mid = np.asarray(rec.mid, dtype=np.float64)
    later = np.full(n, np.nan)
    k = np.arange(n)
    ok = k + params.horizon <= n
    later[ok] = mid[k[ok] + params.horizon]
    return action_edges(params, mid[:n], high, low, later)


def vote_samples(rec: DayRecord, edges: np.ndarray, models: dict[str, Any]) -> dict[str, Any]:
    """Per model name: its ``VoteSamples`` on this day (``models``: name -> ``ServedModel``)."""
    rows: dict[str, list[tuple[int, Action, tuple[float, ...]]]] = {n: [] for n in models}
    for k, ops in enumerate(rec.opinions):
        for op in ops:
            if op.agent_id in rows and is_model_vote(op.model_version) and op.features:
                rows[op.agent_id].append((k, op.action, op.features))
    out: dict[str, VoteSamples] = {}
    for name, votes in rows.items():
        if not votes:
            out[name] = VoteSamples.empty()
            continue
        model = models[name]
        ks = np.array([v[0] for v in votes])
        x = np.array([v[2] for v in votes], dtype=np.float32)
        answers = model.answer(x)  # as served; the raw confidence does not use any map
        outputs = np.array([a.get("q_values", a.get("probabilities")) for a in answers])
        raw = np.array([a["raw_confidence"] for a in answers])
        if name == MARKET_ANALYST:
            actions = [v[1] for v in votes]
            score = outputs.max(axis=1)
            alts = [Action.STAND_ASIDE] * len(votes)
        else:
            greedy, score = policy_scores(outputs)
            actions = [Action(int(a)) for a in greedy]
            alts = [alternative(a, q) for a, q in zip(actions, outputs, strict=True)]
        label = np.array(
            [vote_label(edges[k], a, alt) for k, a, alt in zip(ks, actions, alts, strict=True)]
        )
        keep = np.isfinite(label)
        sides = [side_of(a) for a, ok in zip(actions, keep, strict=True) if ok]
        out[name] = VoteSamples(score[keep], sides, label[keep], raw[keep])
    return out


def collect(
    cfg: BacktestConfig,
    files: Sequence[str],
    fees: str,
    params: OutcomeParams,
    models: dict[str, Any],
    progress: Callable[[Any], None] | None = None,
) -> tuple[dict[str, VoteSamples], list[str]]:
    """Every model's votes over the whole-swarm replay of ``files``, and the days replayed."""
    from swarm_ray.agents.clients import LocalModelsClient
    from swarm_ray.evaluation.days import resolve_days
    from swarm_ray.evaluation.runner import run_backtest, run_in_process

    # the models' raw votes: the fit does not depend on a map already in the cards
    raw = LocalModelsClient(str(resolve_path(cfg.models_dir)), ROLES, calibrated=False)
    executor = partial(run_in_process, cache={"keep_opinions": True, "clients": raw})
    result = run_backtest(
        cfg, files, strategies=["swarm"], fees=fees, executor=executor, progress=progress
    )
    days, _ = resolve_days([str(resolve_path(f)) for f in files], None, "runs/backtest/data")
    by_key = {(d.symbol, d.date): d for d in days}
    total = {n: VoteSamples.empty() for n in models}
    dates = []
    for rec in result.records.get("swarm", []):
        day = by_key[(rec.symbol, rec.date)]
        dates.append(rec.date)
        edges = day_edges(rec, day.file, params)
        for name, s in vote_samples(rec, edges, models).items():
            total[name] = total[name].extend(s)
    return total, sorted(dates)


def _sides(s: VoteSamples, side: str) -> np.ndarray:
    return np.array([x == side for x in s.side], dtype=bool)


def fit_calibration(
    name: str, s: VoteSamples, params: OutcomeParams, fees: str, days: Sequence[str]
) -> Calibration:
    maps = {}
    for side in (ACTIVE, PASSIVE):
        m = _sides(s, side)
        maps[side] = fit_platt(s.score[m], s.label[m])
    return Calibration(
        score=CLASS_PROBABILITY if name == MARKET_ANALYST else Q_MARGIN,
        maps=maps,
        horizon=params.horizon,
        fees=fees,
        maker_bps=params.maker_bps,
        taker_bps=params.taker_bps,
        days=tuple(days),
    )


def check(cal: Calibration, s: VoteSamples) -> dict[str, Any]:
    """Reliability of the raw and the calibrated confidence on ``s``, and the votes per side."""
    p = cal.probability(s.score, s.side) if len(s) else np.zeros(0)
    return {
        "calibrated": reliability(p, s.label),
        "raw": reliability(s.raw, s.label),
        "votes": {side: int(_sides(s, side).sum()) for side in (ACTIVE, PASSIVE)},
    }


def plot_reliability(path: Path, title: str, curves: dict[str, dict[str, Any]]) -> None:
    from swarm_ray.evaluation.plots import plt, save_figure

    fig, ax = plt.subplots(figsize=(5.5, 5))
    ax.plot([0, 1], [0, 1], color="grey", lw=0.8, ls="--", label="perfect")
    for label, r in curves.items():
        bins = r["bins"]
        if not bins:
            continue
        ece = r["ece"]
        ax.plot(
            [b["p"] for b in bins],
            [b["y"] for b in bins],
            marker="o",
            label=f"{label} (ECE {ece:.3f}, n={r['n']})",
        )
    ax.set(xlim=(0, 1), ylim=(0, 1), title=title)
    ax.set(xlabel="stated confidence", ylabel="share of votes that beat the alternative")
    ax.legend(fontsize=8, loc="upper left")
    save_figure(fig, path)


def _guard_days(
    cards: Sequence[dict[str, Any]], fit_dates: Sequence[str], check_dates: Sequence[str]
) -> None:
    for card in cards:
        data = card.get("data") or {}
        trained = set(data.get("train_days", ()))
        name = card.get("name")
        bad = sorted(trained & set(fit_dates))
        if bad:
            raise ValueError(f"--data: {name} trained on {bad}; fit calibration on other days")
        seen = trained | set(data.get("validation_days", ())) | set(fit_dates)
        bad = sorted(seen & set(check_dates))
        if bad:
            raise ValueError(f"--check: {bad} were used to train, validate or fit; hold them out")


def calibrate_models(
    cfg: BacktestConfig,
    fit_files: Sequence[str],
    check_files: Sequence[str],
    fees: str | None = None,
    horizon: int = 5,
    roles: Sequence[str] = ROLES,
    write: bool = True,
    progress: Callable[[Any], None] | None = None,
) -> dict[str, Any]:
    """Fit every role's map on ``fit_files``, check it on ``check_files``, and (``write``)
    put it in the champion's model card (else the newest version's) with a reliability diagram
    beside it."""
    from serve.models import load_served_model
    from swarm_ray.evaluation.days import resolve_days
    from swarm_ray.registry.champions import serving_dir
    from swarm_ray.registry.files import write_card
    from swarm_ray.registry.policies import read_card

    tier = fees or cfg.fees
    cfg.tier(tier)  # an unknown tier fails here, naming the known ones
    models_dir = resolve_path(cfg.models_dir)
    fit_dates = [d.date for d in resolve_days(fit_files, None, "runs/backtest/data")[0]]
    check_dates = (
        [d.date for d in resolve_days(check_files, None, "runs/backtest/data")[0]]
        if check_files
        else []
    )
    models = {r: load_served_model(models_dir, r) for r in roles}
    _guard_days([m.card for m in models.values()], fit_dates, check_dates)
    params = outcome_params(cfg, tier, horizon)
    fit, fit_days = collect(cfg, fit_files, tier, params, models, progress)
    held, check_days = (
        collect(cfg, check_files, tier, params, models, progress) if check_files else ({}, [])
    )
    report: dict[str, Any] = {
        "fees": tier,
        "horizon_bars": horizon,
        "fit_days": fit_days,
        "check_days": check_days,
        "models": {},
    }
    for name, model in models.items():
        cal = fit_calibration(name, fit[name], params, tier, fit_days)
        figures = {"fit": check(cal, fit[name])}
        if name in held:
            figures["check"] = check(cal, held[name])
        entry = {
            "version": model.version,
            "meaning": cal.meaning,
            "maps": {s: list(ab) for s, ab in cal.maps.items()},
            **figures,
        }
        if write:
            vdir = serving_dir(models_dir, name)
            if vdir.name != model.version:
                raise ValueError(f"{name}: its champion moved to {vdir.name} during the run")
            curves = {"raw, fit days": figures["fit"]["raw"]}
            curves["calibrated, fit days"] = figures["fit"]["calibrated"]
            if "check" in figures:
                curves["raw, check days"] = figures["check"]["raw"]
                curves["calibrated, check days"] = figures["check"]["calibrated"]
            plot_reliability(vdir / PLOT_FILE, f"{name} {model.version}", curves)
            full = replace(
                cal,
                extra={
                    "checked_on": check_days,
                    "reliability": figures,
                    "plot": PLOT_FILE,
                    "fitted": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                },
            )
            card = read_card(vdir)
            card["calibration"] = full.to_card()
            write_card(vdir, card)
            entry["plot"] = str(vdir / PLOT_FILE)
        report["models"][name] = entry
    return report


def summary_line(name: str, entry: dict[str, Any]) -> str:
    def ece(part: str, which: str) -> str:
        r = entry.get(part, {}).get(which, {})
        v = r.get("ece")
        return "-" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.3f}"

    votes = entry["fit"]["votes"]
    return (
        f"{name:<19} {entry['version']:<4} votes {votes[ACTIVE]:>5} trade / {votes[PASSIVE]:>5} "
        f"aside | ECE fit raw {ece('fit', 'raw')} -> {ece('fit', 'calibrated')} | "
        f"check raw {ece('check', 'raw')} -> {ece('check', 'calibrated')}"
    )


# -- the LLM's confidence, from a recorded history --------------------------------------------

BAR_NS = 60_000_000_000


def llm_history(journal_files: Sequence[str | Path], horizon: int) -> tuple[np.ndarray, ...]:
    """The LLM answers the analyst recorded in ``journal_files`` (its rationale's ``llm
    score@confidence``, neutral answers excluded) and whether each direction was right:
    (time_ns, confidence, label), label 1 when the mid ``horizon`` bars later moved the way
    the score pointed, 0 the other way, 0.5 unchanged; in time order."""
    from swarm_ray.agents.roles import parse_llm_note
    from swarm_ray.journal import Journal

    rows: list[tuple[int, float, float]] = []
    for path in journal_files:
        with Journal(str(path), read_only=True) as j:
            for symbol in j.symbols():
                notes = j.agent_notes(symbol, MARKET_ANALYST)
                times = np.asarray(notes["time_ns"], dtype=np.int64)
                mids = np.array([np.nan if m is None else m for m in notes["mid"]], dtype=float)
                for i, text in enumerate(notes["rationale"]):
                    answer = parse_llm_note(text)
                    if answer is None or answer[0] == 0.0 or not np.isfinite(mids[i]):
                        continue
                    k = int(np.searchsorted(times, times[i] + horizon * BAR_NS))
                    # the first mid at the horizon, not one after a gap in the run
                    late = k < len(times) and times[k] - times[i] > (horizon + 1) * BAR_NS
                    if k >= len(times) or late or not np.isfinite(mids[k]):
                        continue
                    move = (mids[k] - mids[i]) * answer[0]
                    rows.append((int(times[i]), answer[1], 1.0 if move > 0 else 0.0 if move < 0
                                 else 0.5))  # fmt: skip
    rows.sort()
    return tuple(np.array(c) for c in zip(*rows, strict=True)) if rows else (np.zeros(0),) * 3


def calibrate_llm(journal_files: Sequence[str | Path], horizon: int = 5) -> dict[str, Any]:
    """A calibration map of the LLM's confidence (``agents.llm.calibration``), fitted on every
    recorded answer, with its reliability checked out of sample: fitted on the first two
    thirds of the history (in time), measured on the last third."""
    from swarm_ray.registry.calibration import MIN_VOTES

    _, conf, label = llm_history(journal_files, horizon)
    if len(conf) < MIN_VOTES:
        raise ValueError(
            f"--llm-journal: {len(conf)} recorded LLM answers with a view; at least "
            f"{MIN_VOTES} are needed (run the swarm with llm.enabled and GROQ_API_KEY first)"
        )
    cut = 2 * len(conf) // 3
    a_fit, b_fit = fit_platt(conf[:cut], label[:cut])
    held = platt(a_fit, b_fit, conf[cut:])
    a, b = fit_platt(conf, label)
    return {
        "horizon_bars": horizon,
        "answers": len(conf),
        "right_share": float(label.mean()),
        "calibration": [a, b],
        "check": {
            "fitted_on_first": cut,
            "raw": reliability(conf[cut:], label[cut:]),
            "calibrated": reliability(held, label[cut:]),
        },
    }
