"""``consensus.vote_on: ladder``: the votes to quote count as one side and, when it carries,
blend into one ladder (pure, then through the coordinator on a real paper venue)."""

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
from swarm_ray.trading.consensus import ConsensusConfig, decide
from swarm_ray.trading.coordinator import SymbolCoordinator
from swarm_ray.trading.quoting import QuotingParams
from tests.conftest import kline_day

LADDER = ConsensusConfig(vote_on="ladder")
TABLE = QuotingParams().table()  # tight 3, wide 8, skews 1.5 / 4.5 bps


def test_quoting_votes_carry_together_and_blend_by_weight_and_confidence() -> None:
    votes = [
        Opinion("market_analyst", Action.QUOTE_TIGHT, 0.6),  # 0.25 x 0.6 = 0.15
        Opinion("risk_manager", Action.STAND_ASIDE, 0.5),  # 0.30 x 0.5 = 0.15
        Opinion("strategy_optimizer", Action.QUOTE_WIDE, 0.75),  # 0.20 x 0.75 = 0.15
        Opinion("execution_agent", Action.SKEW_BUY, 1.0),  # 0.25 x 1.0 = 0.25
    ]
    # by action no vote carries: skew_buy has 0.25 of 0.70
    assert decide(votes, ConsensusConfig()).reason == "below_threshold"
    c = decide(votes, LADDER, table=TABLE)
    assert c.reason == "consensus" and c.share == pytest.approx(0.55 / 0.70)
    assert c.action is Action.SKEW_BUY  # the quoting side's top-scoring action names it
    bid = (0.15 * 3 + 0.15 * 8 + 0.25 * 1.5) / 0.55
    ask = (0.15 * 3 + 0.15 * 8 + 0.25 * 4.5) / 0.55
    assert c.ladder == pytest.approx((bid, ask))
    assert c.scores == decide(votes, ConsensusConfig()).scores  # the journal's scores as ever


def test_standing_aside_reducing_and_the_emergency_still_win_as_themselves() -> None:
    aside = [Opinion(r, Action.STAND_ASIDE, 0.9) for r in ("risk_manager", "execution_agent")]
    c = decide([*aside, Opinion("market_analyst", Action.QUOTE_TIGHT, 0.9)], LADDER, table=TABLE)
    assert c.action is Action.STAND_ASIDE and c.ladder is None
    stop = [Opinion("risk_manager", Action.EMERGENCY_STOP, 1.0)]
    quotes = [Opinion(r, Action.QUOTE_TIGHT, 1.0) for r in ("market_analyst", "execution_agent")]
    c = decide([*stop, *quotes], LADDER, table=TABLE)
    assert c.action is Action.EMERGENCY_STOP and c.ladder is None
    with pytest.raises(ValueError, match="quoting table"):
        decide(quotes, LADDER)


def test_the_coordinator_quotes_the_blended_ladder_and_journals_it() -> None:
    start = int(datetime(2024, 8, 20, 6, tzinfo=UTC).timestamp() * 1e9)
    clock = SimulatedClock(start)
    paper = PaperConfig(
        symbols={"BTCUSDT": PaperSymbolConfig(klines=(kline_day("19"), kline_day("20")))}
    )
    venue = build_exchange(ExchangeConfig(kind="paper", paper=paper), clock=clock)
    journal = Journal(":memory:", run_id="ladder", clock=clock)
    trading = TradingConfig.model_validate({"consensus": {"vote_on": "ladder"}})
    spec = ObservationSpec(1e-3, 50.0, None, 0.005, 0.05, 240)
    coord = SymbolCoordinator(
        "BTCUSDT", trading, venue, journal, clock, spec, None, QuotingParams(levels=1)
    )
    coord.reconcile()
    inp = coord.prepare()
    votes = [Opinion("market_analyst", Action.QUOTE_TIGHT, 1.0, "v1"),
             Opinion("risk_manager", Action.QUOTE_WIDE, 1.0, "v2"),
             Opinion("strategy_optimizer", Action.QUOTE_WIDE, 1.0, "v2"),
             Opinion("execution_agent", Action.QUOTE_TIGHT, 1.0, "v2")]  # fmt: skip
    s = coord.act(inp, votes)
    # tight 0.25 + 0.25, wide 0.30 + 0.20: 5.5 bps on each side, named after the safer of the
    # two equal scores
    assert s.action == "quote_wide" and s.carried
    (bid,), (ask,) = s.bids, s.asks
    assert (inp.mid - bid) / inp.mid * 1e4 == pytest.approx(5.5, abs=0.01)
    assert (ask - inp.mid) / inp.mid * 1e4 == pytest.approx(5.5, abs=0.01)
    (cycle,) = journal.cycles("BTCUSDT", limit=1)
    assert cycle["decision"]["ladder_bps"] == pytest.approx([5.5, 5.5])
    journal.close()
