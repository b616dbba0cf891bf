"""Consensus: weighted votes, threshold, quorum, the risk manager's override (with properties)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from envs.actions import Action
from swarm_ray.core.config import ConfigError, parse_config
from swarm_ray.core.domain import Opinion
from swarm_ray.core.roles import ROLES
from swarm_ray.trading.consensus import ConsensusConfig, decide

CFG = ConsensusConfig()


def op(agent: str, action: Action, conf: float = 1.0) -> Opinion:
    return Opinion(agent, action, conf)


def test_default_weights_and_threshold_are_the_designs() -> None:
    assert CFG.weights == {
        "market_analyst": 0.25,
        "risk_manager": 0.30,
        "strategy_optimizer": 0.20,
        "execution_agent": 0.25,
    }
    assert CFG.threshold == 0.65 and CFG.safe_action is Action.STAND_ASIDE


def test_unanimous_vote_carries_with_full_share() -> None:
    c = decide([op(r, Action.QUOTE_TIGHT, 0.8) for r in ROLES], CFG)
    assert c.action is Action.QUOTE_TIGHT and c.reason == "consensus"
    assert c.share == pytest.approx(1.0) and c.confidence == pytest.approx(0.8)
    assert c.responding_weight == pytest.approx(1.0)


def test_share_below_threshold_falls_back_to_safe_action() -> None:
    # quote_tight: 0.25 + 0.20 = 0.45 of 1.0 -> 45% < 65%
    votes = [
        op("market_analyst", Action.QUOTE_TIGHT),
        op("strategy_optimizer", Action.QUOTE_TIGHT),
        op("risk_manager", Action.QUOTE_WIDE),
        op("execution_agent", Action.SKEW_BUY),
    ]
    c = decide(votes, CFG)
    assert c.winner is Action.QUOTE_TIGHT and c.share == pytest.approx(0.45)
    assert c.action is Action.STAND_ASIDE and c.reason == "below_threshold"


def test_confidence_weights_the_score() -> None:
    # tight: 0.25*1 + 0.30*1 + 0.20*1 = 0.75; wide: 0.25*0.4 = 0.1 -> share 0.882
    votes = [op(r, Action.QUOTE_TIGHT) for r in ROLES[:3]] + [
        op("execution_agent", Action.QUOTE_WIDE, 0.4)
    ]
    c = decide(votes, CFG)
    assert c.action is Action.QUOTE_TIGHT
    assert c.share == pytest.approx(0.75 / 0.85)
    assert c.scores == {"quote_tight": pytest.approx(0.75), "quote_wide": pytest.approx(0.1)}


def test_risk_manager_emergency_stop_overrides_a_unanimous_rest() -> None:
    votes = [op(r, Action.QUOTE_TIGHT) for r in ROLES if r != "risk_manager"]
    votes.append(op("risk_manager", Action.EMERGENCY_STOP, 0.05))
    c = decide(votes, CFG)
    assert c.action is Action.EMERGENCY_STOP and c.reason == "emergency_stop"


def test_emergency_stop_from_another_agent_is_only_a_vote() -> None:
    votes = [op(r, Action.QUOTE_TIGHT) for r in ROLES if r != "execution_agent"]
    votes.append(op("execution_agent", Action.EMERGENCY_STOP))
    c = decide(votes, CFG)
    assert c.action is Action.QUOTE_TIGHT


def test_missing_agents_decide_when_quorum_holds_and_not_otherwise() -> None:
    three = [op(r, Action.QUOTE_WIDE) for r in ROLES if r != "risk_manager"]  # 0.70 answered
    c = decide(three, CFG)
    assert c.action is Action.QUOTE_WIDE and c.responding_weight == pytest.approx(0.70)
    two = [op("market_analyst", Action.QUOTE_WIDE), op("strategy_optimizer", Action.QUOTE_WIDE)]
    c2 = decide(two, CFG)  # 0.45 < 0.5
    assert c2.action is Action.STAND_ASIDE and c2.reason == "no_quorum"


def test_no_votes_and_zero_confidence_are_safe() -> None:
    assert decide([], CFG).reason == "no_votes"
    c = decide([op(r, Action.QUOTE_TIGHT, 0.0) for r in ROLES], CFG)
    assert c.action is Action.STAND_ASIDE and c.reason == "below_threshold"


def test_unknown_agents_and_duplicate_votes_are_ignored() -> None:
    votes = [op(r, Action.QUOTE_TIGHT) for r in ROLES]
    votes += [op("intruder", Action.SKEW_BUY), op("risk_manager", Action.EMERGENCY_STOP)]
    assert decide(votes, CFG).action is Action.QUOTE_TIGHT


def test_equal_scores_break_toward_the_safer_action() -> None:
    cfg = ConsensusConfig(weights={"risk_manager": 1.0, "execution_agent": 1.0}, threshold=0.5)
    c = decide(
        [op("risk_manager", Action.QUOTE_TIGHT), op("execution_agent", Action.QUOTE_WIDE)], cfg
    )
    assert c.winner is Action.QUOTE_WIDE and c.action is Action.QUOTE_WIDE


def test_bad_config_names_the_field() -> None:
    with pytest.raises(ConfigError, match="threshold"):
        parse_config(ConsensusConfig, {"threshold": 1.5})
    with pytest.raises(ConfigError, match="weights"):
        parse_config(ConsensusConfig, {"weights": {"risk_manager": -1.0}})
    with pytest.raises(ConfigError, match=r"weights.*unknown agent roles \['risk_manger'\]"):
        parse_config(ConsensusConfig, {"weights": {"risk_manger": 1.0}})
    with pytest.raises(ConfigError, match="safe_action"):
        parse_config(ConsensusConfig, {"safe_action": "quote_tight"})
    assert parse_config(ConsensusConfig, {"safe_action": "emergency_stop"}).safe_action == 7


opinions = st.lists(
    st.builds(
        Opinion,
        st.sampled_from(ROLES),
        st.sampled_from(list(Action)),
        st.floats(0.0, 1.0, allow_subnormal=False),  # a denormal share is noise
    ),
    max_size=6,
)


@settings(max_examples=300, deadline=None)
@given(opinions, st.permutations(range(6)))
def test_property_outcome_is_invariant_to_vote_order_of_distinct_agents(votes, perm) -> None:
    first = {}
    for v in votes:
        first.setdefault(v.agent_id, v)
    distinct = list(first.values())
    shuffled = [distinct[i] for i in perm if i < len(distinct)]
    a, b = decide(distinct, CFG), decide(shuffled, CFG)
    assert (a.action, a.reason) == (b.action, b.reason)
    assert a.share == pytest.approx(b.share)


@settings(max_examples=300, deadline=None)
@given(opinions, st.floats(0.01, 100.0))
def test_property_scaling_all_weights_changes_nothing(votes, k) -> None:
    scaled = ConsensusConfig(weights={r: w * k for r, w in CFG.weights.items()})
    a, b = decide(votes, CFG), decide(votes, scaled)
    assert (a.action, a.reason) == (b.action, b.reason)


@settings(max_examples=500, deadline=None)
@given(opinions)
def test_property_result_is_safe_or_a_carried_majority(votes) -> None:
    c = decide(votes, CFG)
    assert 0.0 <= c.share <= 1.0 + 1e-9 and 0.0 <= c.responding_weight <= 1.0 + 1e-9
    risk_votes = [v for v in votes if v.agent_id == "risk_manager"]
    risk_stop = bool(risk_votes) and risk_votes[0].action is Action.EMERGENCY_STOP
    if risk_stop:
        assert c.action is Action.EMERGENCY_STOP
    elif c.reason == "consensus":
        assert c.action is c.winner and c.share >= CFG.threshold - 1e-9
        assert c.responding_weight >= CFG.quorum - 1e-9
    else:
        assert c.action is CFG.safe_action


def test_no_consensus_rule_decides_a_split_vote_only() -> None:
    split = [op("market_analyst", Action.QUOTE_TIGHT), op("risk_manager", Action.QUOTE_WIDE),
             op("strategy_optimizer", Action.STAND_ASIDE)]  # fmt: skip
    stand = decide(split, CFG, last_agreed=Action.SKEW_BUY)
    assert (stand.action, stand.reason) == (Action.STAND_ASIDE, "below_threshold")
    wide = ConsensusConfig(no_consensus="quote_wide")
    assert decide(split, wide).action is Action.QUOTE_WIDE
    keep = ConsensusConfig(no_consensus="keep_quotes")
    kept = decide(split, keep, last_agreed=Action.SKEW_BUY)
    assert (kept.action, kept.reason, kept.carried) == (Action.SKEW_BUY, "below_threshold", False)
    # before any vote has carried, keep_quotes has nothing to keep: the safe action
    assert decide(split, keep).action is Action.STAND_ASIDE
    # without a quorum or without votes the rule does not apply: the safe action
    lone = [op("market_analyst", Action.QUOTE_TIGHT)]
    for cfg in (wide, keep):
        assert decide(lone, cfg, Action.QUOTE_TIGHT).reason == "no_quorum"
        assert decide(lone, cfg, Action.QUOTE_TIGHT).action is Action.STAND_ASIDE
        assert decide([], cfg, Action.QUOTE_TIGHT).action is Action.STAND_ASIDE
    # an emergency stop still overrides
    stop = [op("market_analyst", Action.QUOTE_TIGHT), op("risk_manager", Action.EMERGENCY_STOP)]
    assert decide(stop, keep, Action.QUOTE_TIGHT).action is Action.EMERGENCY_STOP
    with pytest.raises(ValidationError, match="no_consensus"):
        ConsensusConfig(no_consensus="hold")
