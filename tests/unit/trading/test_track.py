"""The agents' track records: every model vote scored in hindsight on the bars that followed,
kept in the journal with the vote (no Ray; a real paper venue replaying a real day)."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest

from envs.actions import Action
from envs.data.klines import load_klines
from swarm_ray.core.clock import SimulatedClock
from swarm_ray.core.domain import Opinion
from swarm_ray.exchanges import build_exchange
from swarm_ray.exchanges.config import ExchangeConfig, PaperConfig, PaperSymbolConfig
from swarm_ray.features.observation import ObservationSpec
from swarm_ray.features.outcomes import OutcomeParams, action_edges
from swarm_ray.journal import Journal
from swarm_ray.trading.config import TradingConfig
from swarm_ray.trading.coordinator import SymbolCoordinator
from swarm_ray.trading.quoting import QuotingParams
from tests.conftest import kline_day

START = int(datetime(2024, 8, 20, 6, tzinfo=UTC).timestamp() * 1e9)
MIN = 60_000_000_000
VOTES = {"market_analyst": Action.QUOTE_TIGHT, "risk_manager": Action.STAND_ASIDE,
         "strategy_optimizer": Action.SKEW_BUY, "execution_agent": Action.QUOTE_WIDE}  # fmt: skip
N = 40
H = 5


def test_each_model_vote_is_scored_in_hindsight_and_kept_with_it() -> None:
    clock = SimulatedClock(START)
    paper = PaperConfig(
        symbols={"BTCUSDT": PaperSymbolConfig(klines=(kline_day("19"), kline_day("20")))}
    )
    venue = build_exchange(ExchangeConfig(kind="paper", paper=paper), clock=clock)
    journal = Journal(":memory:", run_id="track", clock=clock)
    trading = TradingConfig.model_validate({"track": {"horizon_bars": H, "maker_bps": 2.0}})
    spec = ObservationSpec(1e-3, 50.0, None, 0.005, 0.05, 240)
    quoting = QuotingParams(levels=1)
    coord = SymbolCoordinator("BTCUSDT", trading, venue, journal, clock, spec, None, quoting)
    coord.reconcile()
    for k in range(N):
        clock.set(START + k * MIN)
        inp = coord.prepare()
        ops = [Opinion(r, a, 0.6, "v2", "policy vote") for r, a in VOTES.items()]
        ops[0] = Opinion("market_analyst", Action.STAND_ASIDE, 1.0, "none", "model unavailable")
        coord.act(inp, ops)

    # the same outcomes from the day's bars, computed here without the coordinator
    bars = load_klines(kline_day("20"))
    t0 = START // 1_000_000
    mids = [c["mid"] for c in sorted(journal.cycles("BTCUSDT", limit=N), key=lambda c: c["cycle"])]
    scorable = N - H  # the last votes' bars have not closed yet
    params = OutcomeParams(H, 2.0, 5.0, tuple(quoting.table()))
    rest = bars.loc[bars["open_time_ms"].between(t0, t0 + (scorable - 1) * 60_000)]
    later = bars.loc[bars["open_time_ms"].between(t0 + (H - 1) * 60_000, t0 + (N - 2) * 60_000)]
    edges = action_edges(params, mids[:scorable], rest["high"], rest["low"], later["close"])

    records = {r["agent_id"]: r for r in journal.agent_records("BTCUSDT")}
    assert records["market_analyst"]["scored"] == 0  # a vote without its model is not judged
    for agent, action in list(VOTES.items())[1:]:
        r = records[agent]
        assert r["scored"] == scorable, agent
        alt = Action.QUOTE_TIGHT if action is Action.STAND_ASIDE else Action.STAND_ASIDE
        mine, other = edges[:, int(action)], edges[:, int(alt)]
        want = ((mine > other) + 0.5 * (mine == other)).mean()
        assert r["hit_rate"] == pytest.approx(want), agent
        assert r["mean_edge_bps"] == pytest.approx(mine.mean()), agent
        assert r["scored_confidence"] == pytest.approx(0.6)
    # something happened: the hindsight is not all ties
    assert 0 < records["strategy_optimizer"]["hit_rate"] < 1
    # the coordinator's running record (status) says the same
    track = coord.track.summary()
    assert track["strategy_optimizer"]["scored"] == scorable
    assert track["strategy_optimizer"]["hit_rate"] == pytest.approx(
        records["strategy_optimizer"]["hit_rate"]
    )
    # what each action would have earned, per cycle: the report's "why"
    per_action = coord.track.action_edges()
    assert per_action["cycles"] == scorable
    assert per_action["quote_tight"] == pytest.approx(edges[:, int(Action.QUOTE_TIGHT)].mean())
    assert per_action["stand_aside"] == 0.0
    journal.close()


def test_adapted_weights_follow_each_agents_hindsight_within_bounds() -> None:
    """consensus.adapt: every scored vote moves its agent's weight by exp(eta (label - 0.5)),
    bounded; the weights in force are journaled with each cycle's votes."""
    clock = SimulatedClock(START)
    paper = PaperConfig(
        symbols={"BTCUSDT": PaperSymbolConfig(klines=(kline_day("19"), kline_day("20")))}
    )
    venue = build_exchange(ExchangeConfig(kind="paper", paper=paper), clock=clock)
    journal = Journal(":memory:", run_id="adapt", clock=clock)
    adapt = {"enabled": True, "eta": 0.2, "min_factor": 0.5, "max_factor": 2.0}
    trading = TradingConfig.model_validate({"consensus": {"adapt": adapt}})
    spec = ObservationSpec(1e-3, 50.0, None, 0.005, 0.05, 240)
    coord = SymbolCoordinator(
        "BTCUSDT", trading, venue, journal, clock, spec, None, QuotingParams(levels=1)
    )
    coord.reconcile()
    for k in range(N):
        clock.set(START + k * MIN)
        inp = coord.prepare()
        coord.act(inp, [Opinion(r, a, 0.6, "v2", "policy vote") for r, a in VOTES.items()])
    base = trading.consensus.weights
    records = {r["agent_id"]: r for r in journal.agent_records("BTCUSDT")}
    for agent in VOTES:
        r = records[agent]
        net = (r["hit_rate"] - 0.5) * r["scored"]  # the sum of (label - 0.5)
        want = min(max(base[agent] * np.exp(0.2 * net), base[agent] * 0.5), base[agent] * 2.0)
        assert coord.weights[agent] == pytest.approx(want), agent
    assert coord.weights != base  # the votes were not all ties
    # each cycle's votes carry the weights in force when they were cast
    (last,) = journal.cycles("BTCUSDT", limit=1)
    used = {o["agent_id"]: o["weight"] for o in journal.opinions(last["id"])}
    assert used != base and all(0.5 * base[a] <= w <= 2.0 * base[a] for a, w in used.items())
    journal.close()
