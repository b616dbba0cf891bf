"""Tune the consensus (weights, threshold, the split-vote rule) with Ray Tune, scored by the
whole-swarm backtest on days the models were not trained on.

Each trial replays the days with the swarm of the base swarm config, its ``consensus`` section
replaced by the trial's, at one fee tier; the base config's own consensus is the first trial,
so the result says whether anything beat it. ``write_tuned_config`` writes the winner as a swarm
config with the evidence beside it.
"""

from __future__ import annotations

import json
import math
import tempfile
from collections.abc import Sequence
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import yaml

from swarm_ray.core.config import ConfigError, load_config, resolve_path
from swarm_ray.core.roles import ROLES
from swarm_ray.evaluation.backtest_config import BacktestConfig
from swarm_ray.trading.consensus import ConsensusConfig

__all__ = ["OBJECTIVES", "check_inputs", "tune_consensus", "write_tuned_config"]

OBJECTIVES = ("sharpe", "pnl")
RULES = ("stand_aside", "quote_wide", "keep_quotes")
_FIGURES = ("pnl", "sharpe", "sharpe_ci", "fills", "quoting_share", "max_drawdown")


def _trial_consensus(config: dict[str, Any], base: ConsensusConfig) -> dict[str, Any]:
    weights = {r: round(float(config[f"w_{r}"]), 4) for r in ROLES}
    return base.model_copy(
        update={
            "weights": weights,
            "threshold": round(float(config["threshold"]), 4),
            "no_consensus": config["no_consensus"],
        }
    ).model_dump(mode="json")


def score_consensus(
    cfg: BacktestConfig,
    swarm_sections: dict[str, Any],
    consensus: dict[str, Any],
    files: Sequence[str],
    fees: str,
) -> dict[str, Any]:
    """The whole-swarm backtest of ``files`` with ``consensus`` in place of the base's."""
    from swarm_ray.evaluation.harness import SwarmSections
    from swarm_ray.evaluation.runner import run_backtest, run_in_process

    sections = SwarmSections.model_validate({**swarm_sections, "consensus": consensus})
    executor = partial(run_in_process, cache={"swarm_config": sections})  # this trial's swarm
    result = run_backtest(cfg, files, strategies=["swarm"], fees=fees, executor=executor)
    m = result.strategies["swarm"]
    figures = {k: m[k] for k in _FIGURES}
    figures["carried_share"] = m["swarm"]["carried_share"]
    return figures


def check_inputs(
    cfg: BacktestConfig, files: Sequence[str], fees: str | None, objective: str, num_samples: int
) -> None:
    """A ``ConfigError`` naming what is wrong with a tuning request (cheap: run it before Ray
    starts)."""
    if objective not in OBJECTIVES:
        raise ConfigError(f"objective {objective!r} is not one of {list(OBJECTIVES)}")
    if num_samples < 1:
        raise ConfigError(f"num_samples must be at least 1, got {num_samples}")
    try:
        cfg.tier(fees)  # an unknown tier, naming the known ones
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    for f in files:
        if not resolve_path(f).is_file():
            raise ConfigError(f"--data: {f}: file not found")


def tune_consensus(
    cfg: BacktestConfig,
    files: Sequence[str],
    *,
    fees: str | None = None,
    num_samples: int = 24,
    objective: str = "sharpe",
    seed: int = 0,
    threshold_range: tuple[float, float] = (0.4, 0.9),
    trial_cpus: float = 1.0,
) -> dict[str, Any]:
    """Search weights, threshold and ``no_consensus`` on ``files``; returns the evidence: the
    base consensus and its figures, every trial, and the best (the base when nothing beat it).
    Needs a Ray cluster (``ray.init`` first)."""
    from ray import tune

    from swarm_ray.evaluation.harness import SwarmSections

    check_inputs(cfg, files, fees, objective, num_samples)
    tier = fees or cfg.fees
    files = [str(resolve_path(f)) for f in files]
    swarm_path = resolve_path(cfg.swarm_config)
    sections = load_config(swarm_path, SwarmSections).model_dump(mode="json")
    base = ConsensusConfig.model_validate(sections["consensus"])
    base_point = {f"w_{r}": base.weights.get(r, 0.0) for r in ROLES} | {
        "threshold": base.threshold,
        "no_consensus": base.no_consensus,
    }

    def trainable(config: dict[str, Any]) -> None:
        consensus = _trial_consensus(config, base)
        figures = score_consensus(cfg, sections, consensus, files, tier)
        value = figures[objective]
        tune.report({**figures, "objective": value if math.isfinite(value) else -1e9})

    space: dict[str, Any] = {f"w_{r}": tune.uniform(0.0, 1.0) for r in ROLES}
    space |= {
        "threshold": tune.uniform(*threshold_range),
        "no_consensus": tune.choice(list(RULES)),
    }
    searcher = tune.search.BasicVariantGenerator(points_to_evaluate=[base_point], random_state=seed)
    tuner = tune.Tuner(
        tune.with_resources(trainable, {"cpu": trial_cpus}),
        param_space=space,
        tune_config=tune.TuneConfig(
            metric="objective", mode="max", num_samples=num_samples, search_alg=searcher
        ),
        run_config=tune.RunConfig(
            storage_path=tempfile.mkdtemp(prefix="swarm_tune_consensus_"),
            name="tune_consensus",
            verbose=1,
        ),
    )
    grid = tuner.fit()
    trials = []
    for r in grid:
        if r.error is not None:
            trials.append({"consensus": _trial_consensus(r.config, base), "error": str(r.error)})
            continue
        figures = {k: r.metrics[k] for k in (*_FIGURES, "carried_share", "objective")}
        trials.append({"consensus": _trial_consensus(r.config, base), **figures})
    scored = [t for t in trials if "error" not in t]
    if not scored:
        raise RuntimeError(f"every trial failed; the first: {trials[0].get('error')}")
    base_dump = base.model_dump(mode="json")
    base_trial = next((t for t in scored if _same(t["consensus"], base_dump)), None)
    best = max(scored, key=lambda t: t["objective"])
    if base_trial is not None and best["objective"] <= base_trial["objective"]:
        best = base_trial
    return {
        "objective": objective,
        "fees": tier,
        "days": [Path(f).name for f in files],
        "swarm_config": str(swarm_path),
        "num_samples": num_samples,
        "seed": seed,
        "base": base_trial,
        "best": best,
        "beats_base": base_trial is None or best is not base_trial,
        "trials": sorted(scored, key=lambda t: -t["objective"])
        + [t for t in trials if "error" in t],
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def _same(a: dict[str, Any], b: dict[str, Any]) -> bool:
    wa, wb = a["weights"], b["weights"]
    return (
        all(abs(wa.get(r, 0.0) - wb.get(r, 0.0)) < 1e-3 for r in ROLES)
        and abs(a["threshold"] - b["threshold"]) < 1e-3
        and a["no_consensus"] == b["no_consensus"]
    )


def write_tuned_config(evidence: dict[str, Any], out: str | Path) -> tuple[Path, Path]:
    """The base swarm config with the best consensus, at ``out``; the evidence as JSON beside
    it (``<out stem>.evidence.json``). Returns both paths."""
    out = Path(out)
    data = yaml.safe_load(Path(evidence["swarm_config"]).read_text())
    data["consensus"] = evidence["best"]["consensus"]
    best, base = evidence["best"], evidence["base"] or {}

    def line(name: str, t: dict[str, Any]) -> str:
        if not t:
            return f"#   {name}: not scored"
        ci = t.get("sharpe_ci")
        interval = f" [{ci[0]:.1f}, {ci[1]:.1f}]" if ci else ""
        return (
            f"#   {name}: PnL {t['pnl']:.2f} USDT, Sharpe {t['sharpe']:.2f}{interval}, "
            f"{t['fills']} fills, quoting {t['quoting_share']:.0%}, carried "
            f"{t['carried_share']:.0%}"
        )

    header = [
        f"# Generated by `swarm-ray tune-consensus` from {evidence['swarm_config']}",
        f"# on {', '.join(evidence['days'])} at the {evidence['fees']} fee tier,",
        f"# {len(evidence['trials'])} trials, objective {evidence['objective']}; its comments "
        "were not kept.",
        line("tuned consensus", best),
        line("base consensus ", base),
        "# "
        + (
            "the tuned consensus beats the base"
            if evidence["beats_base"]
            else "nothing beat the base consensus: it is kept"
        ),
        f"# Every trial: {out.stem}.evidence.json. Judge it on days it was not tuned on.",
        "",
    ]
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(header) + yaml.safe_dump(data, sort_keys=False))
    proof = out.with_name(f"{out.stem}.evidence.json")
    proof.write_text(json.dumps(evidence, indent=2))
    return out, proof
