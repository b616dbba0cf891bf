"""The swarm on Ray: agent actors, coordinator actors, and starting/stopping/inspecting a run.

Actors are named so they read well on the Ray dashboard and can be found again by the CLI:
``agent:<role>`` (one per role, shared by every symbol of the run) and ``coordinator:<SYMBOL>``
(one per symbol by default), all in the ``swarm_ray`` namespace. Both restart when they die
(``max_restarts=-1``); a restarted coordinator reconciles with the venue and the journal before
it quotes again.

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

import ray
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from swarm_ray.agents.roles import NAMESPACE, AgentActorImpl, CycleInput, agent_actor_name
from swarm_ray.core.clock import LiveClock, SimulatedClock
from swarm_ray.core.config import resolve_path
from swarm_ray.core.domain import Opinion
from swarm_ray.exchanges import build_exchange
from swarm_ray.features.observation import WINDOW, ObservationSpec
from swarm_ray.trading.consensus import ROLES
from swarm_ray.trading.coordinator import CycleSummary, SwarmConfig, SymbolCoordinator

__all__ = [
    "AgentActor",
    "CoordinatorActor",
    "coordinator_name",
    "ensure_models_served",
    "start_swarm",
    "swarm_status",
]

log = logging.getLogger(__name__)

AgentActor = ray.remote(max_restarts=-1, max_task_retries=0, num_cpus=0)(AgentActorImpl)


def coordinator_name(symbols: tuple[str, ...] | list[str]) -> str:
    if len(symbols) == 1:
        return f"coordinator:{symbols[0]}"
    return f"coordinator:{symbols[0]}+{len(symbols) - 1}"


def _observation_spec(cfg: SwarmConfig) -> ObservationSpec:
    """Scales of the policies' training env, from the newest strategy optimizer's card."""
    from swarm_ray.registry.policies import latest_dir, read_card

    models = resolve_path(cfg.models_dir)
    analysis_ref = 1e-4
    try:
        import json

        layout = json.loads(
            (latest_dir(models, "market_analyst") / "feature_layout.json").read_text()
        )
        analysis_ref = float(layout["ref_vol"])
    except (FileNotFoundError, KeyError, ValueError):
        log.warning("no market_analyst layout under %s; analysis ref vol 1e-4", models)
    try:
        card = read_card(latest_dir(models, "strategy_optimizer"))
    except FileNotFoundError:
        card = {}
    return ObservationSpec.from_card(card, analysis_ref_vol=analysis_ref)


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
        self._agents: dict[str, Any] = {}
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
        from swarm_ray.journal.store import Journal

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
        spec = _observation_spec(cfg)
        if paper:
            self._next_ns = self._paper_start_ns()
            self._end_ns = min(self.exchange.replay_end_ns(s) for s in self.symbols)
            self._clock.set(self._next_ns)
        for s in self.symbols:
            self.coords[s] = SymbolCoordinator(
                s, cfg, self.exchange, self.journal, self._clock, spec, metrics
            )
        for s, c in self.coords.items():
            stats = c.reconcile()
            if any(stats.values()):
                log.warning("%s reconciled after start: %s", s, stats)
        self.started = True

    def _agent_handles(self) -> dict[str, Any]:
        """Handles of the agent actors, looked up by name; an agent that cannot be found (not
        started yet, or gone) is missing from this round's vote instead of failing the cycle."""
        for r in ROLES:
            if r not in self._agents:
                try:
                    self._agents[r] = ray.get_actor(agent_actor_name(r), namespace=NAMESPACE)
                except ValueError:
                    log.warning("%s: agent %s not found; its vote is missing", self.name, r)
        return self._agents

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
        return first + WINDOW * 60 * 1_000_000_000

    # -------------------------------------------------------------- cycles
    async def _gather(
        self, inputs: list[CycleInput]
    ) -> tuple[list[list[Opinion]], tuple[str, ...], tuple[str, ...]]:
        """Every agent's opinions per input, and the agents that timed out or failed (one call
        per agent carries every symbol, so they missed every symbol's vote alike)."""
        timeout = self.cfg.cycle.agent_timeout_s
        agents = self._agent_handles()
        refs = {r: a.opine_many.remote(inputs) for r, a in agents.items()}

        async def one(ref: Any) -> Any:
            return await ref

        tasks = {r: asyncio.ensure_future(one(ref)) for r, ref in refs.items()}
        done, pending = await asyncio.wait(tasks.values(), timeout=timeout)
        for t in pending:
            t.cancel()
        per_symbol: list[list[Opinion]] = [[] for _ in inputs]
        timed_out: set[str] = set()
        failed: set[str] = set()
        failed.update(r for r in ROLES if r not in agents)
        for role, task in tasks.items():
            if task not in done:
                timed_out.add(role)
                ray.cancel(refs[role], force=False)
                continue
            exc = task.exception()
            if exc is not None:
                failed.add(role)
                if isinstance(exc, ray.exceptions.ActorDiedError):
                    self._agents.pop(role, None)  # look it up again next round
                continue
            for i, op in enumerate(task.result()):
                per_symbol[i].append(op)
        return per_symbol, tuple(sorted(timed_out)), tuple(sorted(failed))

    async def _round(self) -> list[CycleSummary]:
        if self._clock is not None and isinstance(self._clock, SimulatedClock):
            self._clock.set(max(self._next_ns, self._clock.now_ns()))
        inputs = [c.prepare() for c in self.coords.values()]
        t_votes = time.perf_counter()
        opinions, timed_out, failed = await self._gather(inputs)
        votes_ms = (time.perf_counter() - t_votes) * 1e3
        out = []
        for c, inp, ops in zip(self.coords.values(), inputs, opinions, strict=True):
            summary = c.act(inp, ops, timed_out, failed)
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
        """Ask the strategy optimizer to re-tune the quoting parameters with Ray Tune on this
        actor's recent bars (of its first symbol) and quote with the result from now on."""
        self._start()
        agent = self._agent_handles().get("strategy_optimizer")
        if agent is None:
            raise RuntimeError("the strategy optimizer is not running")
        from swarm_ray.trading.quoting import QuotingParams

        first = next(iter(self.coords.values()))
        paper = self.cfg.exchange.paper
        maker = float(paper.maker_fee_bps) if paper is not None else 2.0
        bars = first.window.bars()
        result = await agent.retune.remote(bars, self.cfg.risk.max_position, maker, num_samples)
        params = QuotingParams.model_validate(result["params"])
        for c in self.coords.values():
            c.quoting = params
        self.retunes.append(result)
        return result

    async def history_since(self, index: int = 0) -> list[dict[str, Any]]:
        return self.history[index:]

    async def stop(self, emergency: bool = False, reason: str = "operator stop") -> dict[str, Any]:
        """Stop after the current cycle; ``emergency`` also trips the kill switch and cancels
        every open order now."""
        self.stopping = True
        if emergency:
            self._start()
            for c in self.coords.values():
                c.emergency_stop(reason)
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
            }
        return out

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


# ------------------------------------------------------------------ orchestration


def ensure_models_served(cfg: SwarmConfig, http_port: int | None = None) -> bool:
    """Deploy the model app from ``configs/serve.yaml`` (its tuned settings, with this run's
    registry and HTTP port) unless it is already running; False when inference is local."""
    if cfg.agents.inference != "serve":
        return False
    from ray import serve

    from serve.app import APP_NAME
    from serve.deploy import configure, deploy, load_deploy_config

    try:
        apps = serve.status().applications
    except Exception:  # Serve not started on this cluster yet
        apps = {}
    if APP_NAME in apps and apps[APP_NAME].status == "RUNNING":
        return True
    config = configure(
        load_deploy_config(), port=http_port, models_dir=str(resolve_path(cfg.models_dir))
    )
    deploy(config)
    return True


def start_agents(cfg: SwarmConfig, detached: bool = False) -> dict[str, Any]:
    """One agent actor per role (reused when already running in this namespace)."""
    data = cfg.agents.model_dump(mode="json")
    data["models_dir"] = str(resolve_path(cfg.models_dir))
    return {
        r: AgentActor.options(
            name=agent_actor_name(r),
            namespace=NAMESPACE,
            get_if_exists=True,
            lifetime="detached" if detached else None,
            # Serve's router on the actor's own event loop (see serve/client.py CALLER_ENV)
            runtime_env={"env_vars": {"RAY_SERVE_RUN_ROUTER_IN_SEPARATE_LOOP": "0"}},
        ).remote(r, data)
        for r in ROLES
    }


def start_swarm(cfg: SwarmConfig, detached: bool = False) -> dict[str, Any]:
    """Agent actors and one coordinator actor per symbol group; returns {name: handle} of all
    of them (keep it: non-detached actors die with their last handle)."""
    agents = start_agents(cfg, detached)
    handles = {agent_actor_name(r): h for r, h in agents.items()}
    try:  # connect every agent to its model before the first cycle counts
        ray.get([a.warm_up.remote() for a in agents.values()], timeout=60)
    except Exception as exc:  # the swarm still starts; those agents vote safe until it works
        log.warning("agent warm-up failed: %s", exc)
    data = cfg.model_dump(mode="json")
    per = cfg.cycle.symbols_per_coordinator
    groups = [list(cfg.symbols[i : i + per]) for i in range(0, len(cfg.symbols), per)]
    nodes = _alive_nodes()
    for i, g in enumerate(groups):
        name = coordinator_name(g)
        handles[name] = CoordinatorActor.options(
            name=name,
            namespace=NAMESPACE,
            get_if_exists=True,
            lifetime="detached" if detached else None,
            max_concurrency=16,
            # symbols round-robin over the cluster's nodes (soft: elsewhere if that node is gone)
            scheduling_strategy=NodeAffinitySchedulingStrategy(nodes[i % len(nodes)], soft=True)
            if nodes
            else "SPREAD",
        ).remote(g, data)
    return handles


def _alive_nodes() -> list[str]:
    """Ids of the alive nodes, head first (stable order for round-robin placement)."""
    nodes = [n for n in ray.nodes() if n.get("Alive")]
    nodes.sort(
        key=lambda n: (not n.get("Resources", {}).get("node:__internal_head__"), n["NodeID"])
    )
    return [n["NodeID"] for n in nodes]


def find_coordinators() -> dict[str, Any]:
    """Every coordinator actor alive in the namespace (for status/stop from another driver)."""
    from ray.util import list_named_actors

    out = {}
    for a in list_named_actors(all_namespaces=True):
        if a.get("namespace") == NAMESPACE and a["name"].startswith("coordinator:"):
            out[a["name"]] = ray.get_actor(a["name"], namespace=NAMESPACE)
    return out


def swarm_status(timeout_s: float = 10.0) -> dict[str, Any]:
    handles = find_coordinators()
    refs = {n: h.status.remote() for n, h in handles.items()}
    out = {}
    for n, ref in refs.items():
        try:
            out[n] = ray.get(ref, timeout=timeout_s)
        except Exception as exc:
            out[n] = {"name": n, "error": f"{type(exc).__name__}: {exc}"}
    return out


def resolve_journal_dir(cfg: SwarmConfig) -> SwarmConfig:
    """The config with ``journal_dir`` made absolute against the driver's working directory
    (actors on a local cluster share it)."""
    p = Path(cfg.journal_dir)
    if not p.is_absolute():
        p = Path.cwd() / p
    return cfg.model_copy(update={"journal_dir": str(p)})
