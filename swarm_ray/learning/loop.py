"""One learning step, and the walk-forward run that replays them day by day.

A step at day ``D`` (the run's clock, UTC):

1. the window: the ``evaluation_days`` most recent days before ``D`` and, before them, the
   ``train_days`` the challengers train on (from the kline files the config names);
2. the challengers: one Tune experiment, a trial per role, warm-started from the champions
   (``learning.train``);
3. the judgement: the whole swarm on the evaluation days with the champions, then with each
   challenger in its champion's place, role after role (once one is promoted, the next is
   judged against the swarm with it); a challenger that failed training or its health check,
   whose layout differs from its champion's, or whose champion trained on the evaluation days is
   not judged (``learning.judge``);
4. the decision: promote (a new registry version with its lineage, made champion, rolled out
   on Serve when it runs) or reject (remembered in ``champions.json``), and a journal row each.
"""

from __future__ import annotations

import logging
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from swarm_ray.core.config import ConfigError, resolve_path
from swarm_ray.core.roles import POLICY_ROLES
from swarm_ray.evaluation.backtest_config import BacktestConfig
from swarm_ray.learning.config import ANALYST, LearnConfig
from swarm_ray.learning.judge import (
    Verdict,
    failed,
    judging_backtest,
    side_metrics,
    swarm_records,
    verdict,
    view_registry,
)
from swarm_ray.learning.train import Challenger, train_challengers
from swarm_ray.registry.champions import (
    ensure_recorded,
    record_rejected,
    serving_dir,
    serving_version,
)
from swarm_ray.registry.files import read_card, write_card
from swarm_ray.registry.policies import layout_of, new_version_dir, seen_days

__all__ = [
    "Decision",
    "LearnStep",
    "kline_days",
    "learn_step",
    "promote",
    "step_window",
    "walk_forward",
]

log = logging.getLogger(__name__)

ALL_MODELS = (*POLICY_ROLES, ANALYST)
_DAY_FILE = re.compile(r"^(?P<symbol>[A-Z0-9]+)-1m-(?P<date>\d{4}-\d{2}-\d{2})\.csv$")


@dataclass
class Decision:
    """What a step decided about one role's challenger (``--json``'s ``decisions`` entries)."""

    time: str
    role: str
    decision: str
    reason: str
    champion: dict[str, Any]
    challenger: dict[str, Any]
    interval: tuple[float, float] | None
    champion_version: str | None
    challenger_id: str
    promoted_version: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "time": self.time,
            "role": self.role,
            "decision": self.decision,
            "champion": {"version": self.champion_version, **self.champion},
            "challenger": {
                "id": self.challenger_id,
                "version": self.promoted_version,
                **self.challenger,
            },
            "interval": None if self.interval is None else list(self.interval),
            "reason": self.reason,
        }


@dataclass
class LearnStep:
    day: date
    train_days: tuple[date, ...]
    evaluation_days: tuple[date, ...]
    decisions: list[Decision] = field(default_factory=list)


def kline_days(paths: Sequence[str], symbol: str) -> dict[date, str]:
    """The Binance daily kline files of ``symbol`` among ``paths`` (files or folders), by day."""
    found: dict[date, str] = {}
    for given in paths:
        p = Path(resolve_path(given)).resolve()
        if not p.exists():
            raise ConfigError(f"data: {given} does not exist")
        files = sorted(p.glob(f"{symbol}-1m-*.csv")) if p.is_dir() else [p]
        for f in files:
            m = _DAY_FILE.match(f.name)
            if m is None:
                raise ConfigError(f"data: {f} is not a daily kline file like {symbol}-1m-DATE.csv")
            if m["symbol"] == symbol:
                found[date.fromisoformat(m["date"])] = str(f)
    if not found:
        raise ConfigError(f"data: no {symbol} daily kline files in {list(paths)}")
    return dict(sorted(found.items()))


def step_window(
    days: Sequence[date], today: date, train_n: int, eval_n: int, what: str = "window"
) -> tuple[tuple[date, ...], tuple[date, ...]]:
    """(training days, evaluation days) of a step on ``today``: the ``eval_n`` latest days
    before it, and the ``train_n`` latest before those (``what``: the config section)."""
    before = [d for d in sorted(days) if d < today]
    if len(before) < train_n + eval_n:
        raise ConfigError(
            f"learning on {today}: {len(before)} days of data before it, the window needs "
            f"{train_n} to train and {eval_n} to judge ({what}.train_days, "
            f"{what}.evaluation_days; or more days in data)"
        )
    evaluation = tuple(before[-eval_n:])
    train = tuple(before[-(eval_n + train_n) : -eval_n])
    return train, evaluation


def _seen_days(models_dir: str | Path, role: str) -> set[str]:
    """Days the champion of ``role`` trained, validated or was judged on (``seen_days``)."""
    try:
        card = read_card(serving_dir(models_dir, role))
    except FileNotFoundError:
        return set()
    return seen_days(card)


def promote(
    models_dir: str | Path,
    role: str,
    challenger: Path,
    lineage: dict[str, Any],
    serve_app: bool | str = "auto",
    before_record: Callable[[], None] | None = None,
) -> dict[str, Any]:
    """Copy ``challenger`` into the registry as ``role``'s next version with its ``lineage``,
    then make it the champion (rolled out on Serve when it runs). Until the last step, the old
    champion stays the one served by default: a crash leaves the old or the new one, never
    none. ``before_record``: called between the rollout and the decision (a crash drill).
    Returns ``switch_champion``'s answer (``version``, ``served_by``, ...)."""
    import os

    from swarm_ray.learning.serving import SwitchError, UnhealthyVersion, switch_champion

    card = read_card(challenger)
    ensure_recorded(models_dir, role)  # the folder about to appear must not become "newest"
    while True:  # reserve the version: a concurrent promotion gets the next one
        dest = new_version_dir(models_dir, role, None, smoke=card.get("smoke") is True)
        try:
            os.mkdir(dest)
            break
        except FileExistsError:
            continue
    stage = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", suffix=".partial", dir=dest.parent))
    try:
        shutil.copytree(challenger, stage, dirs_exist_ok=True)
        card["version"] = dest.name
        card["lineage"] = {**(card.get("lineage") or {}), **lineage}
        write_card(stage, card)
        os.chmod(stage, 0o755)
        os.rename(stage, dest)  # onto the reserved empty folder: complete or not at all
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        if dest.is_dir() and not any(dest.iterdir()):
            dest.rmdir()
        raise
    try:
        return switch_champion(
            models_dir,
            role,
            dest.name,
            "promoted",
            details={"parent": lineage.get("parent"), "evidence": lineage.get("evidence")},
            serve_app=serve_app,
            before_record=before_record,
        )
    except SwitchError as exc:  # not the champion; a version nothing serves is removed
        exc.version = dest.name  # type: ignore[attr-defined]
        if isinstance(exc, UnhealthyVersion):
            shutil.rmtree(dest, ignore_errors=True)
        raise


def _judge(
    cfg: LearnConfig,
    bt: BacktestConfig,
    models_dir: Path,
    step_dir: Path,
    role: str,
    ch: Challenger,
    eval_files: list[str],
    eval_days: tuple[date, ...],
    champion_records: list,
    fees: str,
) -> Verdict:
    champ = side_metrics(champion_records) | {"fees": fees}
    overlap = sorted(_seen_days(models_dir, role) & {str(d) for d in eval_days})
    if overlap:
        return failed(
            f"not judged: the champion has seen the evaluation days {overlap} (trained, "
            f"validated or was judged on them)",
            champ,
        )
    if ch.error is not None or ch.path is None:
        return failed(f"training failed: {ch.error}", champ)
    view = view_registry(models_dir, step_dir / "views" / role, ALL_MODELS, ch.path)
    if role != ANALYST:
        now, new = read_card(serving_dir(models_dir, role)), read_card(ch.path)
        if layout_of(now) != layout_of(new):
            return failed(
                f"its observation layout {layout_of(new)} differs from the champion's "
                f"{layout_of(now)}; train it with the champion's layout",
                champ,
            )
    from swarm_ray.learning.serving import UnhealthyVersion, health_check

    try:
        health_check(view, role, str(serving_version(view, role)), seed=cfg.promotion.seed)
    except UnhealthyVersion as exc:
        return failed(f"never served: {exc}", champ)
    records = swarm_records(bt, view, eval_files, step_dir, fees)
    return verdict(champion_records, records, cfg.promotion, fees)


def learn_step(
    cfg: LearnConfig,
    today: date,
    models_dir: str | Path,
    work_dir: str | Path,
    *,
    smoke: bool = False,
    serve_app: bool | str = "auto",
    journal: Any = None,
    say: Callable[[str], None] = lambda line: None,
    challengers: Mapping[str, Challenger] | None = None,
) -> LearnStep:
    """Train, judge and decide once, as of the start of ``today`` (UTC). ``challengers``:
    judge these model folders instead of training (models trained elsewhere)."""
    from swarm_ray.training.config import load_train_config

    models = Path(models_dir)
    days = kline_days(cfg.data, cfg.symbol)
    train_n = cfg.smoke.train_days if smoke else cfg.window.train_days
    eval_n = cfg.smoke.evaluation_days if smoke else cfg.window.evaluation_days
    train, evaluation = step_window(
        list(days), today, train_n, eval_n, "smoke" if smoke else "window"
    )
    step_id = f"c{today:%Y%m%d}t{time.strftime('%H%M%S', time.gmtime())}"
    step_dir = Path(work_dir) / step_id
    step_dir.mkdir(parents=True, exist_ok=True)
    stamp = datetime(today.year, today.month, today.day, tzinfo=UTC)
    folders = {str(Path(days[d]).parent) for d in train}
    if len(folders) > 1:
        raise ConfigError(f"data: the training days {train[0]}..{train[-1]} are in several folders")
    base = load_train_config(resolve_path(cfg.train_config))
    data = base.data.model_copy(update={"symbol": cfg.symbol, "kline_dir": folders.pop()})
    base = base.model_copy(update={"data": data})
    bt, fees = judging_backtest(cfg)
    if challengers is None:
        say(f"{today}: training {', '.join(cfg.roles)} on {train[0]}..{train[-1]}")
        challengers = train_challengers(cfg, base, str(models), step_dir, train, step_id, smoke)
    eval_files = [days[d] for d in evaluation]
    say(f"{today}: judging on {', '.join(map(str, evaluation))} at the {fees} tier")
    champion_view = view_registry(models, step_dir / "views" / "champion", ALL_MODELS)
    champion_records = swarm_records(bt, champion_view, eval_files, step_dir, fees)
    step = LearnStep(today, train, evaluation)
    for role in [r for r in cfg.roles if r in challengers]:
        ch = challengers[role]
        champion_version = serving_version(models, role)
        v = _judge(
            cfg, bt, models, step_dir, role, ch, eval_files, evaluation, champion_records, fees
        )
        evidence = {
            "champion": v.champion,
            "challenger": v.challenger,
            "interval": None if v.interval is None else list(v.interval),
            "train_days": [str(d) for d in train],
            "evaluation_days": [str(d) for d in evaluation],
            "reason": v.reason,
        }
        decision = Decision(
            stamp.isoformat(),
            role,
            v.decision,
            v.reason,
            v.champion,
            v.challenger,
            v.interval,
            champion_version,
            step_id,
        )
        failed_version = None
        if v.decision == "promoted":
            assert ch.path is not None
            try:
                switched = promote(
                    models,
                    role,
                    ch.path,
                    {
                        "parent": champion_version,
                        "warm_start": ch.parent,
                        "train_days": [str(d) for d in train],
                        "evaluation_days": [str(d) for d in evaluation],
                        "evidence": evidence,
                        "challenger": step_id,
                    },
                    serve_app=serve_app,
                )
            except Exception as exc:  # never served: the old champion stays
                decision.decision = "rejected"
                decision.reason = f"promotion failed, the champion stays: {exc}"
                log.error("%s: %s", role, decision.reason)
                failed_version = getattr(exc, "version", None)
            else:
                decision.promoted_version = switched["version"]
                decision.challenger["served_by"] = switched["served_by"]
                if switched["served_by"] != "serve":
                    decision.reason += " (registry only: no Serve app serves it)"
                # the next role's challenger is judged against the swarm as it is now
                champion_view = view_registry(
                    models, step_dir / "views" / f"champion_{role}", ALL_MODELS
                )
                champion_records = swarm_records(bt, champion_view, eval_files, step_dir, fees)
        if decision.decision == "rejected":
            extra = {"version": failed_version} if failed_version else {}
            record_rejected(
                models,
                role,
                id=step_id,
                reason=decision.reason,
                evidence=evidence,
                path=None if ch.path is None else str(ch.path),
                **extra,
            )
        if journal is not None:
            journal.record_model_decision(
                role,
                decision.decision,
                champion=champion_version,
                challenger=decision.promoted_version or step_id,
                reason=decision.reason,
                evidence=evidence,
                time_ns=int(stamp.timestamp() * 1e9),
            )
        say(f"{today}: {role}: {decision.decision}: {decision.reason}")
        step.decisions.append(decision)
    return step


def walk_forward(
    cfg: LearnConfig,
    models_dir: str | Path,
    work_dir: str | Path,
    *,
    smoke: bool = False,
    max_steps: int | None = None,
    say: Callable[[str], None] = lambda line: None,
) -> dict[str, Any]:
    """Each day from the first one the window allows (and that no champion trained on) to the
    last: a learning step in the morning, then the day traded by the champions it started with
    (``champion_only``) and by the champions of that morning (``learning``). Works on a copy of
    the registry; the given one is not changed."""
    from swarm_ray.journal import Journal

    work = Path(work_dir)
    if work.exists():
        shutil.rmtree(work)
    start_registry = view_registry(models_dir, work / "champion_only", ALL_MODELS)
    learning = view_registry(start_registry, work / "registry", ALL_MODELS, scratch=smoke)
    files = kline_days(cfg.data, cfg.symbol)
    days = list(files)
    train_n = cfg.smoke.train_days if smoke else cfg.window.train_days
    eval_n = cfg.smoke.evaluation_days if smoke else cfg.window.evaluation_days
    trained = set().union(*(_seen_days(start_registry, r) for r in ALL_MODELS))
    steps = [
        d
        for i, d in enumerate(days)
        if i >= train_n + eval_n and not (set(map(str, days[i - eval_n : i])) & trained)
    ]
    if max_steps is not None:
        steps = steps[:max_steps]
    if not steps:
        raise ConfigError(
            f"walk-forward: no day has {train_n} + {eval_n} days before it that the champions "
            f"did not train on"
        )
    bt, fees = judging_backtest(cfg)
    start = {r: serving_version(start_registry, r) for r in ALL_MODELS}
    journal = Journal(str(work / "journal.sqlite"), run_id="walk_forward")
    rows: list[dict[str, Any]] = []
    decisions: list[Decision] = []
    cum = {"champion_only": 0.0, "learning": 0.0}
    try:
        for today in steps:
            step = learn_step(
                cfg,
                today,
                learning,
                work / "steps",
                smoke=smoke,
                serve_app=False,
                journal=journal,
                say=say,
            )
            decisions += step.decisions
            day_dir = work / "days" / str(today)
            a = swarm_records(bt, start_registry, [files[today]], day_dir, fees)
            champions = {r: serving_version(learning, r) for r in ALL_MODELS}
            b = a  # the same champions trade the same day the same way
            if champions != start:
                live = view_registry(learning, day_dir / "learning", ALL_MODELS)
                b = swarm_records(bt, live, [files[today]], day_dir, fees)
            pa, pb = side_metrics(a)["pnl"], side_metrics(b)["pnl"]
            cum["champion_only"] += pa
            cum["learning"] += pb
            rows.append(
                {
                    "day": str(today),
                    "champion_only": pa,
                    "learning": pb,
                    "cumulative_champion_only": round(cum["champion_only"], 4),
                    "cumulative_learning": round(cum["learning"], 4),
                    "champions": champions,
                    "promoted": [d.role for d in step.decisions if d.decision == "promoted"],
                }
            )
            say(f"{today}: traded: champion only {pa:+.2f}, learning {pb:+.2f} USDT")
    finally:
        journal.close()
    return {
        "decisions": [d.to_json() for d in decisions],
        "pnl": {k: round(v, 4) for k, v in cum.items()},
        "days": rows,
        "fees": fees,
        "smoke": smoke,
        "registry": str(learning),
    }
