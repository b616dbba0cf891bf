"""consensus.mute: an agent whose model's votes stopped earning loses its say until its model
changes; floors from the model cards (no Ray; a real paper venue replaying a real day)."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

import pytest

from envs.actions import Action
from envs.data.klines import load_klines
from swarm_ray.core.clock import SimulatedClock
from swarm_ray.core.config import ConfigError, parse_config
from swarm_ray.core.domain import Opinion
from swarm_ray.core.instruments import Kline
from swarm_ray.core.roles import ROLES
from swarm_ray.exchanges import build_exchange
from swarm_ray.exchanges.config import ExchangeConfig, PaperConfig, PaperSymbolConfig
from swarm_ray.features.observation import ObservationSpec
from swarm_ray.features.outcomes import COIN_FLIP, OutcomeParams, VoteFloor, action_edges
from swarm_ray.journal import Journal
from swarm_ray.registry.floors import card_floor, vote_floors
from swarm_ray.registry.observation import observation_spec
from swarm_ray.trading.config import TradingConfig
from swarm_ray.trading.consensus import ConsensusConfig, MuteConfig, decide
from swarm_ray.trading.coordinator import SymbolCoordinator
from swarm_ray.trading.mute import MuteGuard
from swarm_ray.trading.quoting import QuotingParams
from swarm_ray.trading.track import ScoredPrediction, ScoredVote, TrackConfig, TrackRecords
from tests.conftest import ROOT, kline_day

START = int(datetime(2024, 8, 20, 6, tzinfo=UTC).timestamp() * 1e9)
MIN = 60_000_000_000
H = 5
WEIGHTS = {"execution_agent": 0.4, "strategy_optimizer": 0.6}
MUTE = {"enabled": True, "window": 20, "min_votes": 10, "margin": 0.02, "factor": 0.0}
MODELS = ROOT / "models"


def _card(role: str, version: str) -> dict:
    return json.loads((MODELS / role / version / "model_card.json").read_text())


def _run(mute: dict | None, n: int, retrain_at: int | None = None):
    """``n`` cycles in which the execution agent's model always votes the reduce order that
    loses in hindsight (its votes keep losing) at 0.9, carrying the vote (0.36 of 0.42 of the
    score) over the strategy optimizer's rule (not scored) to stand aside at 0.1; from cycle
    index ``retrain_at`` its model is v3 instead of v2."""
    clock = SimulatedClock(START)
    paper = PaperConfig(
        symbols={"BTCUSDT": PaperSymbolConfig(klines=(kline_day("19"), kline_day("20")))}
    )
    venue = build_exchange(ExchangeConfig(kind="paper", paper=paper), clock=clock)
    journal = Journal(":memory:", run_id="mute", clock=clock)
    consensus: dict = {"weights": WEIGHTS} | ({"mute": mute} if mute else {})
    trading = TradingConfig.model_validate({"consensus": consensus, "track": {"horizon_bars": H}})
    spec = ObservationSpec(1e-3, 50.0, None, 0.005, 0.05, 240)  # no floors: coin flips
    quoting = QuotingParams(levels=1)
    coord = SymbolCoordinator("BTCUSDT", trading, venue, journal, clock, spec, None, quoting)
    coord.reconcile()
    bars = load_klines(kline_day("20")).set_index("open_time_ms")
    params = OutcomeParams(H, 2.0, 5.0, tuple(quoting.table()))
    summaries, losing = [], []
    for k in range(n):
        t = START + k * MIN
        clock.set(t)
        inp = coord.prepare()
        rest, later = bars.loc[t // 1_000_000], bars.loc[t // 1_000_000 + (H - 1) * 60_000]
        (edges,) = action_edges(params, [inp.mid], [rest.high], [rest.low], [later.close])
        lose = min((Action.REDUCE_BUY, Action.REDUCE_SELL), key=lambda a: edges[int(a)])
        assert edges[int(lose)] < 0  # one of the two pays the taker fee and the move
        version = "v3" if retrain_at is not None and k >= retrain_at else "v2"
        ops = [
            Opinion("execution_agent", lose, 0.9, version, "policy vote"),
            Opinion("strategy_optimizer", Action.STAND_ASIDE, 0.1, "rules", "a rule"),
        ]
        summaries.append(coord.act(inp, ops))
        losing.append(lose)
    return coord, journal, summaries, losing


def _weights(journal: Journal, n: int) -> list[dict[str, float]]:
    cycles = sorted(journal.cycles("BTCUSDT", limit=n), key=lambda c: c["cycle"])
    return [{o["agent_id"]: o["weight"] for o in journal.opinions(c["id"])} for c in cycles]


def test_losing_agent_is_muted_after_min_votes_and_unmuted_by_a_new_model(caplog) -> None:
    caplog.set_level(logging.WARNING, logger="swarm_ray.trading.coordinator")
    n, retrain = 36, 20
    coord, journal, summaries, losing = _run(MUTE, n, retrain_at=retrain)
    # a vote cast at cycle index k is scored H cycles later: min_votes are in at 10 - 1 + H;
    # the v3 votes (from index 20) are judged afresh: 10 of them are in at 20 + 10 - 1 + H
    first, again = MUTE["min_votes"] - 1 + H, retrain + MUTE["min_votes"] - 1 + H
    muted = [k for k, s in enumerate(summaries) if s.muted]
    assert muted == [*range(first, retrain), *range(again, n)]
    assert all(s.muted == ("execution_agent",) for s in summaries if s.muted)
    for k, s in enumerate(summaries):
        if s.muted:  # no say: the strategy optimizer's stand aside carries, with a quorum
            assert (s.voted, s.carried, s.share) == ("stand_aside", True, 1.0), k
        else:  # its losing vote carries
            assert (s.voted, s.carried) == (losing[k].label, True), k
    # the weights in force are journaled with the votes
    for k, w in enumerate(_weights(journal, n)):
        assert w["execution_agent"] == (0.0 if k in muted else 0.4), k
        assert w["strategy_optimizer"] == 0.6
    # why: each change is in the cycle's summary, and logged once
    (mute,) = summaries[first].mute_events
    assert mute.muted and mute.agent_id == "execution_agent" and mute.model_version == "v2"
    assert (mute.rate, mute.votes, mute.floor) == (0.0, 10, COIN_FLIP)
    assert "coin flip" in mute.reason
    (back,) = summaries[retrain].mute_events
    assert not back.muted and "from v2 to v3" in back.reason
    assert [e.muted for e in coord.mute.events] == [True, False, True]
    assert sum(1 for s in summaries for _ in s.mute_events) == 3
    logged = [r.getMessage() for r in caplog.records if "muted" in r.getMessage()]
    assert logged == [f"BTCUSDT: {e.reason}" for e in coord.mute.events]
    state = coord.mute.summary()["execution_agent"]
    assert state["muted"] and state["model_version"] == "v3" and state["rolling_rate"] == 0.0
    assert coord.agents_summary()["execution_agent"]["muted"] is True
    journal.close()


def test_disabled_by_default_leaves_the_weights_and_votes_untouched() -> None:
    assert ConsensusConfig().mute.enabled is False
    n = 20
    coord, journal, summaries, losing = _run(None, n)
    assert all(not s.muted and not s.mute_events for s in summaries)
    assert [s.voted for s in summaries] == [a.label for a in losing]
    assert all(w == WEIGHTS for w in _weights(journal, n))
    assert coord.track.summary()["execution_agent"]["hit_rate"] == 0.0  # it did keep losing
    assert coord.mute.summary() == {} and coord.mute.events == []
    assert coord.agents_summary()["execution_agent"]["muted"] is False
    journal.close()


@pytest.mark.parametrize(
    ("mute", "field"),
    [
        ({"window": 5}, "consensus.mute.window"),
        ({"min_votes": 0}, "consensus.mute.min_votes"),
        ({"margin": -0.1}, "consensus.mute.margin"),
        ({"factor": 1.5}, "consensus.mute.factor"),
        ({"enable": True}, "consensus.mute.enable"),
        ({"window": 100, "min_votes": 150}, "min_votes (150) must not exceed window (100)"),
    ],
)
def test_bad_mute_settings_fail_at_load_naming_the_field(mute: dict, field: str) -> None:
    with pytest.raises(ConfigError, match=r"x\.yaml") as err:
        parse_config(TradingConfig, {"consensus": {"mute": mute}}, "x.yaml")
    assert field in str(err.value)


def test_floors_come_from_the_cards() -> None:
    floors = {(f.model, f.version): f for f in vote_floors(MODELS)}
    for role in ("risk_manager", "strategy_optimizer", "execution_agent"):
        cal = _card(role, "v3")["calibration"]
        f = floors[(role, "v3")]
        # its beat rate on the validation days (where its calibration was fitted), at the
        # horizon votes are scored at
        assert f.measure == "hit_rate" and f.horizon_bars == cal["horizon_bars"] == 5
        assert f.value == cal["reliability"]["fit"]["calibrated"]["mean_y"]
        assert cal["fitted_on"] == _card(role, "v3")["validation_backtest"]["days"]
        assert "validation" in f.source and cal["fitted_on"][0] in f.source
        assert "calibration" not in _card(role, "v1")  # an older card without the figure
        assert floors[(role, "v1")].value == COIN_FLIP
    ma = _card("market_analyst", "v1")
    f = floors[("market_analyst", "v1")]
    assert f.measure == "accuracy"
    assert f.value == ma["metrics"]["validation"]["majority_class"]["accuracy"]
    assert f.value < ma["metrics"]["validation"]["model"]["accuracy"]
    assert (f.horizon_bars, f.thresholds_bps) == (15, (5.0, 20.0))
    # they reach the coordinator with the observation spec
    assert observation_spec(MODELS).floors == vote_floors(MODELS)


def test_card_floor_fallbacks() -> None:
    check_only = {"calibration": {"reliability": {"check": {"calibrated": {"mean_y": 0.55}}}}}
    assert card_floor("risk_manager", "v9", check_only).value == 0.55
    assert card_floor("risk_manager", "v9", {}).value == COIN_FLIP
    counts = {
        "kind": "market_analysis",
        "config": {"horizon": 15, "thresholds_bps": [5, 20]},
        "metrics": {"validation": {"class_counts": [10, 30, 60]}},
    }
    assert card_floor("market_analyst", "v9", counts).value == 0.6
    live = card_floor("market_analyst", "v9", counts | {"metrics": {}})
    assert live.measure == "accuracy" and live.value is None
    # without the classes' horizon it cannot be scored as a classifier: a coin flip
    assert card_floor("market_analyst", "v9", {"kind": "market_analysis"}).measure == "hit_rate"


def _prediction(k: int, predicted: int, realized: int, version: str = "v1") -> ScoredPrediction:
    return ScoredPrediction(k, "market_analyst", version, predicted, realized)


def test_the_analyst_is_muted_below_the_majority_class_baseline_of_its_card() -> None:
    cfg = MuteConfig(enabled=True, window=40, min_votes=20, margin=0.02, factor=0.5)
    guard = MuteGuard.of(cfg, vote_floors(MODELS))
    floor = _card("market_analyst", "v1")["metrics"]["validation"]["majority_class"]["accuracy"]
    guard.observe([Opinion("market_analyst", Action.SKEW_BUY, 0.6, "v1", prediction=4)], 1, 0)
    preds = [_prediction(k, 4, 4 if k < 3 else 0) for k in range(20)]  # 3 of 20 right: 0.15
    guard.score([], preds[:19])
    assert guard.judge(2, 0) == []  # 19 < min_votes
    guard.score([], preds[19:])
    (ev,) = guard.judge(3, 0)
    assert ev.muted and ev.measure == "accuracy" and ev.rate == pytest.approx(0.15)
    assert ev.floor == floor and "majority-class baseline" in ev.reason
    weights = {"market_analyst": 0.25, "risk_manager": 0.3}
    model = [Opinion("market_analyst", Action.SKEW_BUY, 0.6, "v1", prediction=4)]
    assert guard.apply(weights, model) == {"market_analyst": 0.125, "risk_manager": 0.3}
    # only its model is muted: a vote without it (bad data, no answer) keeps its weight
    safe = [Opinion("market_analyst", Action.STAND_ASIDE, 1.0, "none", "model unavailable")]
    assert guard.apply(weights, safe) == weights
    # its votes beating their alternative are not its yardstick: still muted
    guard.score([ScoredVote(4, "market_analyst", 1.0, 3.0, 0.6, "v1")] * 40)
    assert guard.judge(4, 0) == [] and guard.muted == ("market_analyst",)
    # an older version's predictions still pending at a change are left out
    guard.score([], [_prediction(5, 2, 2, "v0")] * 40)
    assert guard.judge(5, 0) == []
    guard.score([], [_prediction(6, 2, 2)] * 6)  # 9 right of 26 = 0.346, back above 0.202
    (ev,) = guard.judge(6, 0)
    assert not ev.muted and guard.muted == ()


def test_without_a_figure_the_analyst_is_held_to_the_majority_class_of_its_window() -> None:
    live = VoteFloor("market_analyst", "v7", "accuracy", None, "its window", 15, (5.0, 20.0))
    guard = MuteGuard.of(MuteConfig(enabled=True, window=10, min_votes=10), [live])
    guard.observe([Opinion("market_analyst", Action.SKEW_BUY, 0.6, "v7", prediction=3)], 1, 0)
    # the market went up 6 times in 10 (class 3); always predicting it would score 0.6
    realized = [3] * 6 + [2] * 4
    guard.score(
        [], [ScoredPrediction(k, "market_analyst", "v7", 2, r) for k, r in enumerate(realized)]
    )
    (ev,) = guard.judge(2, 0)  # 0.4 right, below 0.6 - 0.02
    assert ev.muted and ev.floor == pytest.approx(0.6) and ev.rate == pytest.approx(0.4)


def _bar(i: int, close: float) -> Kline:
    t = START // 1_000_000 + i * 60_000
    return Kline(t, close, close, close, close, 1.0, t + 59_999)


def test_predictions_are_scored_on_the_close_horizon_bars_later_once_per_bar() -> None:
    track = TrackRecords(TrackConfig(), QuotingParams().table())
    bars = [_bar(0, 100.0), _bar(1, 100.0), _bar(2, 100.1), _bar(3, 100.5)]
    horizons = {("market_analyst", "v1"): (3, (5.0, 20.0))}
    ops = [Opinion("market_analyst", Action.SKEW_BUY, 0.6, "v1", prediction=4)]
    track.add_predictions(1, bars[0], ops, horizons)
    track.add_predictions(2, bars[0], ops, horizons)  # the same bar: once
    unknown = [Opinion("market_analyst", Action.SKEW_BUY, 0.6, "v2", prediction=4)]
    track.add_predictions(3, bars[1], unknown, horizons)  # a version without its horizon
    track.add_predictions(4, bars[1], [Opinion("risk_manager", Action.QUOTE_WIDE, 0.6)], horizons)
    assert track.resolve_predictions(bars[:3]) == []  # its bar has not closed
    (p,) = track.resolve_predictions(bars)
    assert (p.predicted, p.realized, p.hit, p.cycle) == (4, 4, 1.0, 1)  # +50 bps: strong buy
    track.add_predictions(5, bars[1], [Opinion("market_analyst", Action.SKEW_SELL, 0.6, "v1",
                                               prediction=0)], horizons)  # fmt: skip
    later = [*bars, _bar(4, 99.85)]  # -15 bps from 100.0: sell (class 1), not strong
    (q,) = track.resolve_predictions(later)
    assert (q.predicted, q.realized, q.hit) == (0, 1, 0.0)
    track.add_predictions(6, bars[2], ops, horizons)
    assert track.resolve_predictions([*later[:4], _bar(6, 99.0)]) == []  # a gap: dropped
    assert track.resolve_predictions([*later, _bar(5, 100.0)]) == []


def test_a_muted_majority_leaves_no_quorum() -> None:
    """A muted agent's weight counts toward the quorum at its muted value: with most of the
    weight muted the rest cannot carry a vote alone, and the safe action applies."""
    base = ConsensusConfig()
    votes = [Opinion(r, Action.QUOTE_TIGHT, 0.9) for r in ROLES]
    muted = {"risk_manager": 0.0, "execution_agent": 0.0, "strategy_optimizer": 0.0}
    cfg = base.model_copy(update={"weights": base.weights | muted})
    assert decide(votes, cfg).reason == "consensus"  # the analyst's weight alone: 100 %
    c = decide(votes, cfg, quorum_of=base.total_weight)
    assert (c.action, c.reason) == (Action.STAND_ASIDE, "no_quorum")
    assert c.responding_weight == pytest.approx(0.25)
    one = base.model_copy(update={"weights": base.weights | {"risk_manager": 0.0}})
    assert decide(votes, one, quorum_of=base.total_weight).reason == "consensus"  # 70 % answer
    nobody = base.model_copy(update={"weights": dict.fromkeys(ROLES, 0.0)})
    c = decide(votes, nobody)  # every weight 0: no quorum, no division by zero
    assert (c.action, c.reason, c.responding_weight) == (Action.STAND_ASIDE, "no_quorum", 0.0)
