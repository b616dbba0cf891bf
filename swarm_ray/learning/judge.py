"""Challenger against champion: the whole swarm on days neither model trained on, once with the
champion and once with the challenger in its place, and a paired block-bootstrap interval on the
difference of their PnL.

The two runs see the same days, the same fill model, fee tier and sizes; only one model differs.
The interval resamples blocks of ``block_minutes`` of the per-minute PnL difference (the same
blocks for both, so what the market did cancels out), within each day.
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from swarm_ray.evaluation.backtest_config import BacktestConfig
from swarm_ray.evaluation.records import DayRecord
from swarm_ray.learning.config import LearnConfig, PromotionConfig
from swarm_ray.registry.champions import serving_dir
from swarm_ray.registry.files import is_scratch_registry, mark_scratch_registry, read_card
from swarm_ray.registry.policies import next_version

__all__ = [
    "Verdict",
    "judging_backtest",
    "paired_interval",
    "side_metrics",
    "swarm_records",
    "verdict",
    "view_registry",
]


@dataclass(frozen=True)
class Verdict:
    decision: str
    """promoted or rejected"""
    reason: str
    champion: dict[str, Any] = field(default_factory=dict)
    challenger: dict[str, Any] = field(default_factory=dict)
    interval: tuple[float, float] | None = None


def view_registry(
    models_dir: str | Path,
    dest: Path,
    roles: Sequence[str],
    challenger: Path | None = None,
    scratch: bool = False,
) -> Path:
    """A registry at ``dest`` holding the serving version of each of ``roles`` from
    ``models_dir`` and, when given, ``challenger`` as the newest version of its role (so it is
    the one served there). It is a scratch registry (smoke models load there) when ``scratch``,
    when ``models_dir`` is one, or when the challenger is a smoke model."""
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    if scratch or is_scratch_registry(models_dir):
        mark_scratch_registry(dest)
    for role in roles:
        try:
            src = serving_dir(models_dir, role)
        except FileNotFoundError:
            continue
        shutil.copytree(src, dest / role / src.name)
    if challenger is not None:
        role = challenger.parent.name
        target = dest / role / next_version(models_dir, role)
        shutil.copytree(challenger, target)
        card = read_card(target)
        if card.get("smoke") is True:
            mark_scratch_registry(dest)
    return dest


def judging_backtest(cfg: LearnConfig) -> tuple[BacktestConfig, str]:
    """The backtest config that judges (only the swarm runs, so the A-S fit days play no part)
    and its fee tier: the learning config's, else the backtest config's."""
    from swarm_ray.core.config import load_config, resolve_path

    bt = load_config(resolve_path(cfg.backtest_config), BacktestConfig)
    return bt.model_copy(update={"fit_files": ()}), cfg.fees or bt.fees


def swarm_records(
    bt: BacktestConfig, models_dir: Path, files: Sequence[str], work_dir: Path, fees: str
) -> list[DayRecord]:
    """The whole-swarm backtest (``judging_backtest``) of the registry ``models_dir`` on
    ``files``, at the tier ``fees``: one record a day."""
    from swarm_ray.evaluation.runner import run_backtest

    result = run_backtest(
        bt.model_copy(update={"models_dir": str(models_dir)}),
        files,
        strategies=["swarm"],
        fees=fees,
        work_dir=str(work_dir / "data"),
    )
    return list(result.records.get("swarm", []))


def side_metrics(records: Sequence[DayRecord]) -> dict[str, Any]:
    """What one side made on the evaluation days."""
    pnl = [float(r.equity[-1]) for r in records]
    quoting = np.concatenate([r.quoting for r in records]) if records else np.zeros(0)
    return {
        "pnl": round(sum(pnl), 4),
        "daily_pnl": [round(x, 4) for x in pnl],
        "fills": int(sum(len(r.fills) for r in records)),
        "quoting_share": round(float(quoting.mean()) if quoting.size else 0.0, 4),
        "days": [r.date for r in records],
    }


def paired_interval(
    champion: Sequence[DayRecord], challenger: Sequence[DayRecord], p: PromotionConfig
) -> tuple[float, tuple[float, float]]:
    """(challenger - champion PnL, its ``p.confidence`` interval) by a paired block bootstrap
    of the per-minute PnL difference, blocks of ``p.block_minutes`` within each day."""
    blocks: list[float] = []
    for a, b in zip(champion, challenger, strict=True):
        if a.date != b.date or len(a.equity) != len(b.equity):
            raise ValueError(f"the two sides traded different days ({a.date} / {b.date})")
        diff = np.diff(b.equity) - np.diff(a.equity)
        for i in range(0, len(diff), p.block_minutes):
            blocks.append(float(diff[i : i + p.block_minutes].sum()))
    x = np.asarray(blocks, dtype=np.float64)
    total = float(x.sum())
    if len(x) == 0 or np.all(x == 0):
        return total, (0.0, 0.0)
    rng = np.random.default_rng(p.seed)
    draws = rng.integers(0, len(x), size=(p.bootstrap_samples, len(x)))
    sums = x[draws].sum(axis=1)
    alpha = (1 - p.confidence) / 2
    lo, hi = np.quantile(sums, [alpha, 1 - alpha])
    return total, (float(lo), float(hi))


def verdict(
    champion: Sequence[DayRecord],
    challenger: Sequence[DayRecord],
    p: PromotionConfig,
    fees: str,
) -> Verdict:
    """Promote only when the challenger made more than the champion by more than the margin,
    with an interval that excludes zero."""
    a, b = side_metrics(champion), side_metrics(challenger)
    diff, (lo, hi) = paired_interval(champion, challenger, p)
    a |= {"fees": fees}
    b |= {"fees": fees, "minus_champion": round(diff, 4)}
    where = (
        f"{diff:+.2f} USDT against the champion, {p.confidence:.0%} interval [{lo:+.2f}, {hi:+.2f}]"
    )
    if diff > p.margin_usdt and lo > 0:
        return Verdict("promoted", f"won: {where}", a, b, (lo, hi))
    if diff == 0 and lo == hi == 0:
        why = "no difference: both traded the same"
        if a["fills"] == 0:
            why += " (neither filled an order)"
        return Verdict("rejected", why, a, b, (lo, hi))
    if diff <= p.margin_usdt:
        return Verdict(
            "rejected", f"did not beat the champion by the margin {p.margin_usdt}: {where}", a, b,
            (lo, hi),
        )  # fmt: skip
    return Verdict("rejected", f"the interval does not exclude zero: {where}", a, b, (lo, hi))


def failed(reason: str, champion: Mapping[str, Any] | None = None) -> Verdict:
    """A challenger that is never served (failed training or its health check)."""
    return Verdict("rejected", reason, dict(champion or {}), {}, None)
