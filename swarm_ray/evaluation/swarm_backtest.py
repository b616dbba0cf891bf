"""The whole swarm on a replayed day, in this process and without Ray.

It runs the code that runs live: the swarm's ``Agents`` (each role's logic on models loaded in
this process, answering as the served models do), the ``SymbolCoordinator`` (features, consensus,
risk gate, quote ladder, order diff, journal) and the paper exchange with its fill model, on a
simulated clock advanced one step per cycle (a 1-minute bar, or ``step_ms`` for a tick replay).
Only the transport differs: the models answer in this process instead of on Ray Serve, and the
journal is kept in memory.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np

from swarm_ray.agents.clients import LocalModelsClient, ModelsClient
from swarm_ray.agents.roles import AgentConfig, Agents
from swarm_ray.core.clock import SimulatedClock
from swarm_ray.core.domain import Opinion, Side
from swarm_ray.core.roles import ROLES
from swarm_ray.evaluation.records import DayRecord, FillTable
from swarm_ray.exchanges import build_exchange
from swarm_ray.exchanges.config import ExchangeConfig
from swarm_ray.features.observation import ObservationSpec
from swarm_ray.journal import Journal
from swarm_ray.trading.config import TradingConfig
from swarm_ray.trading.coordinator import SymbolCoordinator
from swarm_ray.trading.cycle import CycleSummary

__all__ = ["SwarmDay", "model_clients", "run_swarm_day"]


@dataclass(frozen=True)
class SwarmDay:
    """One day to trade: the paper exchange that replays it and when trading starts/ends."""

    symbol: str
    exchange: ExchangeConfig
    """A paper exchange config whose symbol replays the day (and any warm-up bars before it)."""
    start_ns: int
    """First cycle (a bar boundary, UTC)."""
    n_bars: int
    """Steps traded; the run makes ``n_bars + 1`` cycles, the last only to settle fills."""
    step_ms: int = 60_000
    """Time between cycles: one bar of the kline replay, or e.g. 1000 on an L2 tick replay
    (the features still come from 1-minute bars; the quotes follow the book every cycle)."""


def model_clients(models_dir: str) -> ModelsClient:
    """Every role's model loaded in this process (once, reused across days)."""
    return LocalModelsClient(models_dir, ROLES)


def run_swarm_day(
    day: SwarmDay,
    trading: TradingConfig,
    agents_cfg: AgentConfig,
    spec: ObservationSpec,
    clients: ModelsClient | None = None,
    name: str = "swarm",
    keep_opinions: bool = False,
) -> DayRecord:
    """Trade one day with the whole swarm; what it did, as a ``DayRecord`` (with every cycle's
    opinions when ``keep_opinions``)."""
    clients = clients or model_clients(agents_cfg.models_dir)
    agents = Agents(agents_cfg, client=clients)
    return asyncio.run(_run(day, trading, agents_cfg, spec, agents, name, keep_opinions))


async def _run(
    day: SwarmDay,
    trading: TradingConfig,
    agents_cfg: AgentConfig,
    spec: ObservationSpec,
    agents: Agents,
    name: str,
    keep_opinions: bool,
) -> DayRecord:
    clock = SimulatedClock(day.start_ns)
    exchange = build_exchange(day.exchange, clock=clock)
    journal = Journal(":memory:", run_id="backtest", clock=clock)
    try:
        coord = SymbolCoordinator(
            day.symbol, trading, exchange, journal, clock, spec, None, agents_cfg.quoting
        )
        coord.reconcile()
        summaries: list[CycleSummary] = []
        kept: list[tuple[Opinion, ...]] = []
        # the last cycle only settles the day: at the last bar's close, where the replay ends
        end_ns = exchange.replay_end_ns(day.symbol)
        for k in range(day.n_bars + 1):
            clock.set(min(day.start_ns + k * day.step_ms * 1_000_000, end_ns))
            inp = coord.prepare()
            (opinions,), failed = await agents.opine([inp])
            summaries.append(coord.act(inp, opinions, no_model=failed))
            if keep_opinions and k < day.n_bars:
                kept.append(tuple(opinions))
        fills = journal.fills(day.symbol)
    finally:
        journal.close()
        close = getattr(exchange, "close", None)
        if close is not None:
            close()
    return _record(name, day, summaries, fills, tuple(kept))


def _record(
    name: str,
    day: SwarmDay,
    summaries: list[CycleSummary],
    fills: list,
    opinions: tuple[tuple[Opinion, ...], ...] = (),
) -> DayRecord:
    mid = np.array([s.mid for s in summaries], dtype=np.float64)
    equity = np.array([s.pnl for s in summaries], dtype=np.float64)
    position = np.array([s.position for s in summaries], dtype=np.float64)
    quoting = np.array([bool(s.bids or s.asks) for s in summaries[:-1]], dtype=bool)
    start_ms = day.start_ns // 1_000_000
    rows = []
    for f in fills:
        t = int((f.time_ms - start_ms - 1) // day.step_ms)  # a fill during step t: (t, t + 1]
        if 0 <= t < day.n_bars:
            side = 1 if f.side is Side.BUY else -1
            fee = float(f.fee) * (float(f.price) if f.fee_asset != "USDT" else 1.0)
            rows.append((t, side, float(f.price), float(f.quantity), fee, bool(f.is_maker)))
    body = summaries[:-1]
    return DayRecord(
        strategy=name,
        symbol=day.symbol,
        date=datetime.fromtimestamp(day.start_ns / 1e9, UTC).strftime("%Y-%m-%d"),
        mid=mid,
        equity=equity - equity[0],
        position=position,
        quoting=quoting,
        fills=FillTable.from_rows(rows),
        decisions=tuple(s.action for s in body),
        carried=tuple(s.carried for s in body),
        votes=tuple(dict(s.votes) for s in body),
        opinions=opinions,
        bid=np.array([max(s.bids) if s.bids else np.nan for s in body]),
        ask=np.array([min(s.asks) if s.asks else np.nan for s in body]),
    )
