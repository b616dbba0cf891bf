"""``swarm-ray backtest --l2`` or ``--trades``: strategies on tick data, queue-model fills.

The swarm trades through the paper exchange with ``fill_model: queue`` and its coordinator
deciding every ``interval_ms`` (its features still come from 1-minute bars: ``history_klines``
gives them the time before a short recording). ``fixed_spread`` and ``stand_aside`` step the
environment's tick replay on the same grid, whose fills are the paper exchange's matching (a
test checks equal fills on equal quotes). Every step is one period of the figures: markout
horizons are in steps.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from envs.data.l2 import L2DataError
from envs.data.l2.tape import load_tape, load_tick_tape
from envs.market_making import MarketMakingEnv
from swarm_ray.core.config import resolve_path
from swarm_ray.evaluation.backtest_config import BacktestConfig, FeeTier, SymbolSizes, symbol_sizes
from swarm_ray.evaluation.harness import SWARM, paper_venue, swarm_setup
from swarm_ray.evaluation.metrics import day_rows, strategy_metrics
from swarm_ray.evaluation.records import DayRecord, FillTable
from swarm_ray.evaluation.runner import BacktestResult

__all__ = ["TICK_STRATEGIES", "TickRun", "run_tick_backtest", "symbol_of_l2"]

TICK_STRATEGIES = (SWARM, "stand_aside", "fixed_spread")
_YEAR_MS = 365 * 86_400_000


@dataclass(frozen=True)
class TickRun:
    """What to replay and how: the recording, its history, the cadence and the queue."""

    symbol: str
    l2: tuple[str, ...] = ()
    history_klines: tuple[str, ...] = ()
    trades: tuple[str, ...] = ()
    """aggTrades CSVs, with ``book_ticker``, instead of ``l2``."""
    book_ticker: tuple[str, ...] = ()
    interval_ms: int = 1000
    queue_model: str = "risk_averse"
    queue_power: float = 2.0
    latency_ms: float = 10.0

    def fill_model(self) -> dict[str, Any]:
        """How this run filled orders, as reports and ``--json`` record it."""
        return {
            "kind": "queue",
            "queue_model": self.queue_model,
            "queue_power": self.queue_power,
            "latency_ms": self.latency_ms,
            "interval_ms": self.interval_ms,
            "data": "trades + bookTicker (the touch)" if self.trades else "L2 depth + trades",
        }

    def data(self) -> dict[str, tuple[str, ...]]:
        """The tick data, as ``PaperSymbolConfig`` keys."""
        if self.trades:
            return {"trades": self.trades, "book_ticker": self.book_ticker}
        return {"l2": self.l2}


def symbol_of_l2(path: str) -> str | None:
    """``btcusdt_20240808.gz`` (the recorder's) or ``BTCUSDT-aggTrades-2024-08-08.csv`` (the
    data site's file names) -> ``BTCUSDT``, else None."""
    name = Path(path).name
    m = re.match(r"([a-z0-9]+)_\d{8}", name.lower()) or re.match(r"([A-Z0-9]+)-[A-Za-z]", name)
    return m.group(1).upper() if m else None


def run_tick_backtest(
    cfg: BacktestConfig,
    run: TickRun,
    strategies: Sequence[str] | None = None,
    fees: str | None = None,
    progress: Callable[[str], None] | None = None,
) -> BacktestResult:
    """Each strategy once over the recording; the figures of ``evaluation.metrics``."""
    strategies = list(strategies or TICK_STRATEGIES)
    unknown = [s for s in strategies if s not in TICK_STRATEGIES]
    if unknown:
        raise ValueError(
            f"--strategies: {unknown} do not run on the tick replay; it runs {TICK_STRATEGIES}"
        )
    if run.interval_ms < 10:
        raise ValueError(f"--interval-ms: at least 10, got {run.interval_ms}")
    if bool(run.l2) == bool(run.trades) or bool(run.trades) != bool(run.book_ticker):
        raise ValueError("give L2 files, or aggTrades with bookTicker files")

    def paths(files: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(str(resolve_path(f)) for f in files)

    run = replace(
        run,
        l2=paths(run.l2),
        history_klines=paths(run.history_klines),
        trades=paths(run.trades),
        book_ticker=paths(run.book_ticker),
    )
    try:
        tape = load_tick_tape(run.trades, run.book_ticker) if run.trades else load_tape(run.l2)
    except L2DataError as exc:
        raise ValueError(str(exc)) from None
    files = run.l2 or run.trades + run.book_ticker
    step = run.interval_ms
    start_ms = (tape.book_ms[0] // step + 1) * step
    n = (tape.book_ms[-1] - start_ms) // step
    if n < 2:
        raise ValueError(f"{list(files)} hold fewer than 2 steps of {step} ms")
    i0 = int(np.searchsorted(tape.book_ms, start_ms, side="right")) - 1
    reference = (tape.best_bid[i0] + tape.best_ask[i0]) / 2.0
    sizes = symbol_sizes(cfg, run.symbol, reference)
    tier_name = fees or cfg.fees
    tier = cfg.tier(tier_name)
    cache: dict[str, Any] = {}
    records: dict[str, list[DayRecord]] = {}
    for s in strategies:
        if s == SWARM:
            rec = _swarm(cfg, run, sizes, tier, start_ms, n, cache)
        else:
            rec = _env(s, cfg, run, sizes, tier, n)
        records[s] = [rec]
        if progress is not None:
            progress(s)
    per_year = _YEAR_MS / step
    metrics = {
        s: strategy_metrics(r, periods_per_year=per_year, rng_seed=cfg.seed, n_boot=200)
        for s, r in records.items()
    }
    seconds = n * step / 1000
    notes = [
        f"tick replay: {n} steps of {step} ms ({seconds:.0f} s) from "
        f"{datetime.fromtimestamp(start_ms / 1000, UTC).isoformat()}; one recording: no "
        "day-block intervals; markout horizons are in steps"
    ]
    return BacktestResult(
        strategies=metrics,
        days=day_rows(records),
        fees=tier_name,
        data=list(files),
        records=records,
        notes=notes,
        sizes={
            run.symbol: {
                "reference_price": sizes.reference_price,
                "order_size": sizes.order_size,
                "max_position": sizes.max_position,
            }
        },
        fill_model=run.fill_model(),
    )


def _swarm(
    cfg: BacktestConfig,
    run: TickRun,
    sizes: SymbolSizes,
    tier: FeeTier,
    start_ms: int,
    n: int,
    cache: dict[str, Any],
) -> DayRecord:
    from swarm_ray.evaluation.swarm_backtest import SwarmDay, run_swarm_day

    trading, agents, spec, clients = swarm_setup(cfg, sizes, cache)
    exchange = paper_venue(
        sizes,
        tier,
        trading.capital,
        {"history_klines": run.history_klines, **run.data()},
        fill_model="queue",
        queue_model=run.queue_model,
        queue_power=run.queue_power,
        latency_ms=run.latency_ms,
    )
    day = SwarmDay(run.symbol, exchange, start_ms * 1_000_000, n, step_ms=run.interval_ms)
    return run_swarm_day(day, trading, agents, spec, clients)


def _env(
    name: str, cfg: BacktestConfig, run: TickRun, sizes: SymbolSizes, tier: FeeTier, n: int
) -> DayRecord:
    f = sizes.filters
    env = MarketMakingEnv(
        {
            "preset": "replay",
            "n_steps": n,
            "max_inventory": sizes.max_position,
            "midprice": {
                "kind": "tick",
                "files": list(run.l2),
                "trades": list(run.trades),
                "book_ticker": list(run.book_ticker),
                "interval_ms": run.interval_ms,
                "tick_size": float(f.tick_size),
                "lot_size": float(f.step_size),
                "random_start": False,
            },
            "fills": {
                "kind": "queue",
                "queue_model": run.queue_model,
                "queue_power": run.queue_power,
                "latency_ms": run.latency_ms,
            },
            "fees": {
                "maker_bps": tier.maker_bps,
                "taker_bps": tier.taker_bps,
                "market_half_spread": sizes.market_half_spread,
            },
            "actions": {"order_size": sizes.order_size, "reduce_size": sizes.reduce_size},
        }
    )
    env.reset(options={"start": 0})
    half_bps = cfg.fixed_spread.half_spread_bps
    mids, equity, position = [env.mid], [0.0], [0.0]
    bids, asks, rows = [], [], []
    maker = tier.maker_bps / 1e4
    for t in range(n):
        mid = env.mid
        if name == "fixed_spread":
            d = half_bps * mid * 1e-4
            assert env.tick is not None
            bids.append(env.tick.bid_price(mid - d))
            asks.append(env.tick.ask_price(mid + d))
            _, _, _, _, info = env.step_quotes(d, d)
        else:
            bids.append(np.nan)
            asks.append(np.nan)
            _, _, _, _, info = env.step_quotes(None, None)
        for side, qty, px in info.get("fills", ()):
            rows.append((t, side, px, qty, px * qty * maker, True))
        mids.append(info["mid"])
        equity.append(info["wealth"])
        position.append(info["inventory"])
    bid, ask = np.array(bids, dtype=np.float64), np.array(asks, dtype=np.float64)
    start_ms = int(env.midprice.time_ms[0])
    return DayRecord(
        strategy=name,
        symbol=run.symbol,
        date=datetime.fromtimestamp(start_ms / 1000, UTC).strftime("%Y-%m-%d"),
        mid=np.array(mids),
        equity=np.array(equity),
        position=np.array(position),
        quoting=~(np.isnan(bid) & np.isnan(ask)),
        fills=FillTable.from_rows(rows),
        bid=bid,
        ask=ask,
    )
