"""What the coordinator does when the vote splits (no Ray): the ``no_consensus`` rule on a real
paper venue and journal."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from envs.actions import Action
from swarm_ray.core.clock import SimulatedClock
from swarm_ray.core.domain import Opinion
from swarm_ray.exchanges import build_exchange
from swarm_ray.exchanges.config import ExchangeConfig, PaperConfig, PaperSymbolConfig
from swarm_ray.features.observation import ObservationSpec
from swarm_ray.journal import Journal
from swarm_ray.trading.config import TradingConfig
from swarm_ray.trading.coordinator import SymbolCoordinator
from swarm_ray.trading.quoting import QuotingParams
from tests.conftest import kline_day

START = int(datetime(2024, 8, 20, 6, tzinfo=UTC).timestamp() * 1e9)
MIN = 60_000_000_000
AGREE = {"market_analyst": Action.SKEW_BUY, "risk_manager": Action.SKEW_BUY,
         "strategy_optimizer": Action.SKEW_BUY, "execution_agent": Action.SKEW_BUY}  # fmt: skip
SPLIT = {"market_analyst": Action.QUOTE_TIGHT, "risk_manager": Action.STAND_ASIDE,
         "strategy_optimizer": Action.QUOTE_WIDE, "execution_agent": Action.SKEW_SELL}  # fmt: skip


def run(rule: str, votes: list[dict[str, Action]], clear_after: int | None = None) -> list:
    """The cycles' summaries under ``rule``; ``clear_after``: an operator clears the kill
    switch after that many cycles."""
    clock = SimulatedClock(START)
    paper = PaperConfig(
        symbols={"BTCUSDT": PaperSymbolConfig(klines=(kline_day("19"), kline_day("20")))}
    )
    venue = build_exchange(ExchangeConfig(kind="paper", paper=paper), clock=clock)
    journal = Journal(":memory:", run_id="no-consensus", clock=clock)
    trading = TradingConfig.model_validate({"consensus": {"no_consensus": rule}})
    spec = ObservationSpec(1e-3, 50.0, None, 0.005, 0.05, 240)
    coord = SymbolCoordinator(
        "BTCUSDT", trading, venue, journal, clock, spec, None, QuotingParams(levels=1)
    )
    coord.reconcile()
    out = []
    for k, vote in enumerate(votes):
        clock.set(START + k * MIN)
        inp = coord.prepare()
        ops = [Opinion(r, a, 1.0, "script", "scripted vote") for r, a in vote.items()]
        out.append(coord.act(inp, ops))
        if clear_after is not None and k + 1 == clear_after:
            journal.clear_kill_switch("BTCUSDT", "ops-test")
    journal.close()
    return out


@pytest.mark.parametrize(
    ("rule", "action"),
    [("stand_aside", "stand_aside"), ("quote_wide", "quote_wide"), ("keep_quotes", "skew_buy")],
)
def test_a_split_vote_follows_the_configured_rule(rule: str, action: str) -> None:
    first, *split = run(rule, [AGREE, SPLIT, SPLIT])
    assert first.action == "skew_buy" and first.carried and first.bids and first.asks
    for s in split:
        assert (s.action, s.reason, s.carried) == (action, "below_threshold", False)
        quoting = bool(s.bids or s.asks)
        assert quoting is (action != "stand_aside"), s


def test_keep_quotes_keeps_nothing_before_a_vote_carried_and_stops_after_an_emergency() -> None:
    stop = dict(AGREE, risk_manager=Action.EMERGENCY_STOP)
    early, agreed, stopped, after = run("keep_quotes", [SPLIT, AGREE, stop, SPLIT], clear_after=3)
    assert early.action == "stand_aside" and not (early.bids or early.asks)
    assert agreed.action == "skew_buy"
    assert stopped.action == "emergency_stop" and stopped.kill_switch
    # the switch cleared, a split vote does not bring back the ladder agreed before the stop
    assert not after.kill_switch
    assert after.action == "stand_aside" and not (after.bids or after.asks)
