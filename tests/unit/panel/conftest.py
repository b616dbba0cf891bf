"""A run's journal folder written through the real journal: two symbols, cycles with votes
(one agent timing out), carried and refused votes, orders and fills."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from swarm_ray.core.clock import SimulatedClock
from swarm_ray.core.domain import Action, Fill, Opinion, OrderIntent, Side
from swarm_ray.core.ids import deterministic_client_order_id
from swarm_ray.journal import CycleRecord, DecisionRecord, Journal

WEIGHTS = {"market_analyst": 0.5, "risk_manager": 0.5}
T0 = 1_724_112_000_000_000_000  # 2024-08-20 00:00 UTC, ns
MINUTE = 60_000_000_000
TOKEN = "panel-test-token-0123456789"


def write_symbol(path: Path, symbol: str, cycles: int, run_id: str = "run-a") -> list[str]:
    """``cycles`` cycles of ``symbol``: even cycles carry ``quote_tight`` and place a bid and an
    ask; odd ones fall below the threshold. Every fourth cycle's bid fills. Returns the order
    ids."""
    ids = []
    clock = SimulatedClock(T0)
    with Journal(path, run_id=run_id, clock=clock) as j:
        for n in range(cycles):
            carried = n % 2 == 0
            mid = 60_000.0 + n
            ops = [Opinion("market_analyst", Action.QUOTE_TIGHT, 0.6 + n / 1000, "v1", "up")]
            timed_out = ()
            if n == 3:
                timed_out = ("risk_manager",)
            else:
                act = Action.QUOTE_TIGHT if carried else Action.STAND_ASIDE
                ops.append(Opinion("risk_manager", act, 0.4, "v2", "calm"))
            decision = DecisionRecord(
                action=Action.QUOTE_TIGHT if carried else Action.STAND_ASIDE,
                voted_action=Action.QUOTE_TIGHT,
                consensus_share=0.8 if carried else 0.55,
                reason="consensus" if carried else "below_threshold",
                scores={"quote_tight": 0.5},
            )
            intents = []
            if carried:
                for side, price in ((Side.BUY, mid - 5), (Side.SELL, mid + 5)):
                    cid = deterministic_client_order_id(run_id, symbol, n, side, 0)
                    intents.append(
                        OrderIntent(symbol, side, Decimal(f"{price:.2f}"), Decimal("0.001"), cid)
                    )
                    ids.append(cid)
            clock.set(T0 + n * MINUTE)
            j.record_cycle(
                CycleRecord(symbol, n, T0 + n * MINUTE, mid, mid - 0.01, mid + 0.01,
                            opinions=tuple(ops), timed_out=timed_out, weights=WEIGHTS,
                            decision=decision, latency_ms=3.0, inventory=0.001 * (n // 4),
                            pnl=0.5 * n),
                intents,
            )  # fmt: skip
            if n % 4 == 0:
                cid = intents[0].client_order_id
                j.record_fills(
                    [Fill(symbol, f"t{n}", cid, Side.BUY, intents[0].price, Decimal("0.001"),
                          Decimal("0.0000001"), "BTC", (T0 + n * MINUTE) // 1_000_000 + 30_000)]
                )  # fmt: skip
    return ids


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    d = tmp_path / "journal"
    d.mkdir()
    write_symbol(d / "coordinator_BTCUSDT.sqlite", "BTCUSDT", 12)
    write_symbol(d / "coordinator_ETHUSDT.sqlite", "ETHUSDT", 5)
    return d
