"""The Ray actors of a swarm: one coordinator actor per symbol (or per group of symbols).

A coordinator hosts the swarm's agents (``Agents``: each role's logic) and asks their models on
Ray Serve in one request per cycle: one hop per decision. Coordinators are named so they read
well on the Ray dashboard and can be found again by the CLI: ``coordinator:<SYMBOL>`` in the
``swarm_ray`` namespace. They restart when they die (``max_restarts=-1``); a restarted
coordinator reconciles with the venue and the journal before it quotes again.

A coordinator actor is async: its cycles run on one event loop thread (which owns the journal's
SQLite connection and the exchange), and ``status``/``stop`` calls are served between cycles.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import time
from dataclasses import asdict, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import ray

from envs.features import layout_columns
from serve.models import MODEL_ERRORS
from swarm_ray.agents.roles import Agents
from swarm_ray.core.clock import LiveClock, SimulatedClock
from swarm_ray.core.config import ConfigError, resolve_path
from swarm_ray.core.roles import POLICY_ROLES, ROLES
from swarm_ray.exchanges import build_exchange
from swarm_ray.features.analysis import N_FEATURES
from swarm_ray.features.observation import WINDOW
from swarm_ray.registry.observation import observation_spec
from swarm_ray.runtime.config import SwarmConfig
from swarm_ray.trading.coordinator import SymbolCoordinator
from swarm_ray.trading.cycle import CycleSummary

__all__ = ["CoordinatorActor", "coordinator_name"]

log = logging.getLogger(__name__)
NAMESPACE = "swarm_ray"


def coordinator_name(symbols: tuple[str, ...] | list[str]) -> str:
    if len(symbols) == 1:
        return f"coordinator:{symbols[0]}"
    return f"coordinator:{symbols[0]}+{len(symbols) - 1}"


class CoordinatorImpl:
    """Hosts the ``SymbolCoordinator`` of each of its symbols and runs their cycles."""

    def __init__(self, symbols: list[str], cfg_data: dict[str, Any]) -> None:
        self.symbols = list(symbols)
        self.cfg = SwarmConfig.model_validate(cfg_data)
        self.name = coordinator_name(self.symbols)
        self.coords: dict[str, SymbolCoordinator] = {}
        self.started = False
        self.stopping = False
        self.running = False
        self.cycles_run = 0
        self.rounds = 0
        self.history: list[dict[str, Any]] = []
        self.keep_history = False
        self.agents = _make_agents(self.cfg)
        self._clock: SimulatedClock | LiveClock | None = None
        self._next_ns = 0
        self._end_ns: int | None = None
        self.error: str | None = None
        self._retune_task: asyncio.Future | None = None
        self.retunes: list[dict[str, Any]] = []

    # -------------------------------------------------------------- start-up
    def _start(self) -> None:
        """Build exchange, journal and per-symbol state on the loop thread (SQLite is
        single-threaded), then reconcile every symbol before the first quote."""
        if self.started:
            return
        from swarm_ray.journal import Journal

        cfg = self.cfg
        paper = cfg.exchange.kind == "paper"
        self._clock = SimulatedClock(0) if paper else LiveClock()
        self.exchange = build_exchange(cfg.exchange, clock=self._clock)
        jdir = Path(cfg.journal_dir)
        if not jdir.is_absolute():
            jdir = Path(os.getcwd()) / jdir
        safe = self.name.replace(":", "_").replace("+", "_")
        self.journal = Journal(jdir / f"{safe}.sqlite", run_id=cfg.run_id, clock=self._clock)
        metrics = None
        if cfg.metrics:
            from swarm_ray.runtime.metrics import SwarmMetrics

            metrics = SwarmMetrics()
            for s in self.symbols:
                metrics.declare(s, ROLES)
        spec = self.spec = observation_spec(resolve_path(cfg.models_dir))
        if paper:
            self._next_ns = self._paper_start_ns()
            self._end_ns = min(self.exchange.replay_end_ns(s) for s in self.symbols)
            self._clock.set(self._next_ns)
        for s in self.symbols:
            self.coords[s] = SymbolCoordinator(
                s, cfg, self.exchange, self.journal, self._clock, spec, metrics, cfg.agents.quoting
            )
        for s, c in self.coords.items():
            stats = c.reconcile()
            if any(stats.values()):
                log.warning("%s reconciled after start: %s", s, stats)
        self.started = True

    def _paper_start_ns(self) -> int:
        cfg = self.cfg
        interval = int(cfg.cycle.interval_s * 1e9)
        last = [self.journal.cycles(s, limit=1) for s in self.symbols]
        if all(last):
            return max(int(c[0]["time_ns"]) for c in last) + interval
        if cfg.cycle.start:
            t = datetime.fromisoformat(cfg.cycle.start.replace("Z", "+00:00"))
            if t.tzinfo is None:
                t = t.replace(tzinfo=UTC)
            return int(t.timestamp() * 1e9)
        first = max(self.exchange.replay_start_ns(s) for s in self.symbols)
        if all(_replays_ticks(cfg, s) for s in self.symbols):
            # tick data is short: start at once (history_klines give the features their bars)
            return first + interval
        return first + WINDOW * 60 * 1_000_000_000

    # -------------------------------------------------------------- cycles
    async def _round(self) -> list[CycleSummary]:
        if self._clock is not None and isinstance(self._clock, SimulatedClock):
            self._clock.set(max(self._next_ns, self._clock.now_ns()))
        inputs = [c.prepare() for c in self.coords.values()]
        t_votes = time.perf_counter()
        opinions, failed = await self.agents.opine(inputs)
        votes_ms = (time.perf_counter() - t_votes) * 1e3
        out = []
        for c, inp, ops in zip(self.coords.values(), inputs, opinions, strict=True):
            summary = c.act(inp, ops, no_model=failed)
            out.append(replace(summary, votes_ms=votes_ms))
        self.rounds += 1
        self.cycles_run += len(out)
        every = self.cfg.cycle.retune_every_cycles
        if every and self.rounds % every == 0 and self._retune_task is None:
            self._retune_task = asyncio.ensure_future(self.retune())
            self._retune_task.add_done_callback(self._retune_done)
        self._next_ns += int(self.cfg.cycle.interval_s * 1e9)
        if self.keep_history:
            self.history.extend(_summary_dict(s) for s in out)
        return out

    async def run(
        self, max_cycles: int | None = None, keep_history: bool = False
    ) -> dict[str, Any]:
        """Run rounds until ``max_cycles`` rounds, the replay's end, or ``stop``."""
        self._start()
        self.keep_history = keep_history
        self.running, self.stopping = True, False
        paper = isinstance(self._clock, SimulatedClock)
        interval = self.cfg.cycle.interval_s
        speed = self.cfg.cycle.replay_speed
        n = 0
        try:
            while not self.stopping and (max_cycles is None or n < max_cycles):
                if paper and self._end_ns is not None and self._next_ns > self._end_ns:
                    break
                t0 = time.monotonic()
                await self._round()
                n += 1
                pause = (interval / speed if speed > 0 else 0.0) if paper else interval
                wait = pause - (time.monotonic() - t0)
                await asyncio.sleep(max(0.0, wait))
        except Exception as exc:
            self.error = f"{type(exc).__name__}: {exc}"
            log.exception("%s stopped on an error", self.name)
            raise
        finally:
            self.running = False
        return self.status_sync()

    def _retune_done(self, task: asyncio.Future) -> None:
        self._retune_task = None
        if not task.cancelled() and task.exception() is not None:
            log.warning("%s: re-tuning failed: %s", self.name, task.exception())

    async def retune(self, num_samples: int = 16) -> dict[str, Any]:
        """The strategy optimizer re-tunes the quoting parameters with Ray Tune on this actor's
        recent bars (of its first symbol); every symbol quotes with the result from now on.
        Returns the new parameters and the best trial's backtest metrics."""
        self._start()
        from swarm_ray.training.tuning import retune_quoting

        first = next(iter(self.coords.values()))
        paper = self.cfg.exchange.paper
        maker = float(paper.maker_fee_bps) if paper is not None else 2.0
        new, metrics = await asyncio.to_thread(
            retune_quoting,
            first.window.bars(),
            self.agents.cfg.quoting,
            max_inventory=self.cfg.risk.max_position,
            maker_bps=maker,
            num_samples=num_samples,
        )
        self.agents.set_quoting(new)
        for c in self.coords.values():
            c.quoting = new
            c.track.set_table(new.table())
        result = {"params": new.model_dump(), "metrics": metrics}
        self.retunes.append(result)
        return result

    async def warm_up(self) -> dict[str, str]:
        """One model request with zero inputs, so the first cycle does not pay for connecting
        to Serve; returns the model version each role is answered by."""
        if self.agents.client is None:  # scripted votes: no model
            return dict.fromkeys(self.agents.agents, "scripted")
        dims = {m: len(layout_columns(self.spec.layout(m))) for m in POLICY_ROLES}
        requests = {
            a.logic.model: np.zeros((1, dims.get(a.logic.model, N_FEATURES)), np.float32)
            for a in self.agents.agents.values()
        }
        answers = await self.agents.client.predict_models(requests)
        errors = answers.get(MODEL_ERRORS, {})
        if errors:  # e.g. a served version of another observation layout than the champion
            raise ConfigError(
                "models cannot answer the swarm's inputs: "
                + "; ".join(f"{m}: {why}" for m, why in sorted(errors.items()))
                + ". The swarm builds each policy's observation in the layout of its champion "
                "(else newest) registry version; serve that version, or one of the same layout"
            )
        return {
            r: str(answers[a.logic.model][0]["model_version"])
            for r, a in self.agents.agents.items()
        }

    async def history_since(self, index: int = 0) -> list[dict[str, Any]]:
        return self.history[index:]

    async def stop(
        self, emergency: bool = False, reason: str = "operator stop", operator: str = "operator"
    ) -> dict[str, Any]:
        """Stop after the current cycle; ``emergency`` also trips the kill switch and cancels
        every open order now. The request (who, why, when) goes into the journal."""
        self.stopping = True
        self._start()
        for s, c in self.coords.items():
            request = self.journal.request_stop(
                s, emergency=emergency, reason=reason, requested_by=operator
            )
            if emergency:
                c.emergency_stop(reason, actor=operator)
            self.journal.acknowledge_stop(request, s)
        return self.status_sync()

    async def clear_kill_switch(self, operator: str, symbol: str | None = None) -> list[str]:
        self._start()
        cleared = []
        for s in self.symbols if symbol is None else [symbol]:
            if self.journal.clear_kill_switch(s, operator):
                cleared.append(s)
        return cleared

    async def inject_fault(self, kind: str, symbol: str | None = None) -> None:
        """Chaos for paper runs: ``nan``/``crossed``/``stale``/``clear`` market data,
        ``crash_before_send`` or ``crash_after_accept`` (the process exits)."""
        self._start()
        if self.cfg.exchange.kind != "paper":
            raise RuntimeError("fault injection is only for paper runs")
        sym = symbol or self.symbols[0]
        if kind == "clear":
            self.exchange.clear_faults(symbol)
        elif kind in ("nan", "crossed", "stale"):
            self.exchange.inject_snapshot_fault(sym, kind)
        elif kind == "crash_before_send":
            self.coords[sym].crash_before_send = True
        elif kind == "crash_after_accept":
            self.exchange.crash_after_next_accept()
        else:
            raise ValueError(f"unknown fault {kind!r}")

    async def status(self) -> dict[str, Any]:
        return self.status_sync()

    def status_sync(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": self.name,
            "pid": os.getpid(),
            "node": ray.get_runtime_context().get_node_id(),
            "running": self.running,
            "cycles": self.cycles_run,
            "error": self.error,
            "agents": self.agents.info(),
            "symbols": {},
        }
        for s, c in self.coords.items():
            last = c.last_summary
            out["symbols"][s] = {
                "cycle": c.cycle_no - 1,
                "position": c.account.quantity,
                "fills": c.account.fills,
                "pnl": last.pnl if last else 0.0,
                "last": _summary_dict(last) if last else None,
                "kill_switch": self.journal.kill_switch(s) is not None if self.started else None,
                "reconciled": c.reconciled,
                "quoting": c.quoting.model_dump(),
                "track": c.track.summary(),
                "hindsight_edges": c.track.action_edges(),
                "weights": dict(c.weights),
                "mute": c.mute.summary() if c.cfg.consensus.mute.enabled else {},
            }
        return out

    async def traded_symbols(self) -> list[str]:
        return list(self.symbols)

    async def journal_path(self) -> str:
        self._start()
        return self.journal.path


CoordinatorActor = ray.remote(max_restarts=-1, max_task_retries=0, num_cpus=0)(CoordinatorImpl)


def _summary_dict(s: CycleSummary) -> dict[str, Any]:
    d = asdict(s)
    for k, v in d.items():
        if isinstance(v, float) and not math.isfinite(v):
            d[k] = None
    return d


def _make_agents(cfg: SwarmConfig) -> Agents:
    from swarm_ray.agents.llm.groq_sentiment import GroqSentiment

    # the run's registry (the storage root's, resolved on the driver) for local inference
    agents_cfg = cfg.agents.model_copy(update={"models_dir": cfg.models_dir})
    llm = agents_cfg.llm
    return Agents(agents_cfg, sentiment=GroqSentiment(llm) if llm.enabled else None)


def _replays_ticks(cfg: Any, symbol: str) -> bool:
    """Whether the paper venue replays tick data (L2, or trades + bookTicker) for ``symbol``."""
    paper = cfg.exchange.paper
    return paper is not None and symbol in paper.symbols and paper.data_spec(symbol).replays_ticks
