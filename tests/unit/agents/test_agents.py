"""The agents' role logic (no Ray): rules before policies, the analyst's fusion, safe votes."""

from __future__ import annotations

import asyncio
import time

import pytest

from envs.actions import Action
from envs.features import layout_columns
from swarm_ray.agents.clients import LocalModelsClient
from swarm_ray.agents.llm.sentiment import Sentiment
from swarm_ray.agents.roles import AgentConfig, Agents, MarketAnalystLogic, make_logic
from swarm_ray.core.roles import POLICY_ROLES, ROLES
from swarm_ray.registry.observation import observation_spec
from swarm_ray.trading.cycle import CycleInput
from tests.conftest import ROOT

CFG = AgentConfig()
ANSWER = {"action": 1, "action_name": "quote_tight", "confidence": 0.6, "model_version": "v2"}
SPEC = observation_spec(ROOT / "models")
# a zero observation of each shipped policy's own layout
SHIPPED_ROWS = {
    m: (0.0,) * len(layout_columns(SPEC.layout(m))) for m in POLICY_ROLES if SPEC.layout(m) != "v2"
}


def cycle(**kw) -> CycleInput:
    base = dict(symbol="BTCUSDT", cycle=1, time_ns=0, mid=60_000.0, analysis=(0.0,) * 20,
                observation=(0.0,) * 15, inventory_share=0.0, drawdown=0.0,
                volatility_bps=5.0, observations=SHIPPED_ROWS)  # fmt: skip
    base.update(kw)
    return CycleInput(**base)


@pytest.mark.parametrize("role", ["risk_manager", "strategy_optimizer", "execution_agent"])
def test_policy_roles_vote_the_model_or_stand_aside_safely(role) -> None:
    logic = make_logic(role, CFG)
    op = logic.opinion(cycle(), ANSWER)
    assert (op.agent_id, op.action, op.confidence, op.model_version) == (
        role, Action.QUOTE_TIGHT, 0.6, "v2")  # fmt: skip
    down = logic.opinion(cycle(), None, "BackPressureError")
    assert down.action is Action.STAND_ASIDE and "model unavailable" in down.rationale
    bad = logic.opinion(cycle(data_problems=("crossed book",)), ANSWER)
    assert bad.action is Action.STAND_ASIDE and "crossed book" in bad.rationale


def test_risk_manager_rules_come_before_its_policy() -> None:
    risk = make_logic("risk_manager", CFG)
    assert risk.opinion(cycle(drawdown=0.12), ANSWER).action is Action.EMERGENCY_STOP
    # an emergency outranks bad data; bad data outranks the inventory rule
    assert risk.opinion(cycle(drawdown=0.2, data_problems=("nan",)), None).action is (
        Action.EMERGENCY_STOP)  # fmt: skip
    assert risk.opinion(cycle(inventory_share=0.95), ANSWER).action is Action.REDUCE_SELL
    assert risk.opinion(cycle(inventory_share=-0.95), ANSWER).action is Action.REDUCE_BUY
    assert risk.opinion(cycle(volatility_bps=50.0), ANSWER).action is Action.STAND_ASIDE


def test_analyst_fuses_network_and_calibrated_sentiment_by_confidence() -> None:
    probs = [0.0, 0.0, 0.2, 0.3, 0.5]  # d_net = 0.15 + 0.5 = 0.65
    answer = {"probabilities": probs, "action": 4, "action_name": "strong_buy",
              "confidence": 0.5, "calibrated": True, "model_version": "v1"}  # fmt: skip
    bear = Sentiment("BTCUSDT", -1.0, 0.5)
    # without a calibration map the LLM has no say: the network's direction and confidence
    analyst = make_logic("market_analyst", CFG)
    assert isinstance(analyst, MarketAnalystLogic)
    assert analyst.fuse(answer, None) == pytest.approx((0.65, 0.5))
    assert analyst.fuse(answer, bear) == pytest.approx((0.65, 0.5))
    op = analyst.opinion(cycle(), answer, sentiment=bear)
    assert op.action is Action.SKEW_BUY and "uncalibrated: no say" in op.rationale
    assert "p=0.50" in op.rationale
    # calibrated (a=0, b=0: p = 0.5): it weighs in like the network
    cal = CFG.model_copy(update={"llm": CFG.llm.model_copy(update={"calibration": (0.0, 0.0)})})
    analyst = make_logic("market_analyst", cal)
    d, c = analyst.fuse(answer, bear)  # (0.5*0.65 - 0.5*1) / 1 ; (0.25 + 0.25) / 1
    assert (d, c) == pytest.approx((-0.175, 0.5))
    assert analyst.opinion(cycle(), answer, sentiment=bear).action is Action.SKEW_SELL
    flat = {**answer, "probabilities": [0.1, 0.2, 0.4, 0.2, 0.1]}
    assert analyst.opinion(cycle(), flat).action is Action.QUOTE_TIGHT
    # an uncalibrated answer says so in the rationale
    raw = {k: v for k, v in answer.items() if k != "calibrated"}
    assert "raw 0.50" in analyst.opinion(cycle(), raw).rationale


def test_an_agents_votes_carry_the_features_its_model_saw() -> None:
    """With the shipped registry in process: each vote on good data carries the model's input
    (the journal keeps it for ``explain``); a vote on bad data carries none."""
    cfg = AgentConfig(inference="local", models_dir=str(ROOT / "models"))
    v2 = tuple(0.01 * i for i in range(15))
    v3 = tuple(0.02 * i for i in range(22))  # the shipped policies' newest layout: 22 columns
    per_model = dict.fromkeys(("risk_manager", "strategy_optimizer", "execution_agent"), v3)
    good = cycle(observation=v2, observations=per_model)
    bad = cycle(observation=v2, observations=per_model, data_problems=("stale book",))
    (ops_good, ops_bad), failed = asyncio.run(Agents(cfg).opine([good, bad]))
    risk = ROLES.index("risk_manager")
    assert ops_good[risk].features == pytest.approx(v3, abs=1e-6)
    assert ops_bad[risk].features == ()
    assert failed == ()
    # a model asked with another layout's row fails its own vote (it stands aside), not the cycle
    (only_v2,), failed = asyncio.run(Agents(cfg).opine([cycle(observation=v2, observations={})]))
    assert set(failed) == {"risk_manager", "strategy_optimizer", "execution_agent"}
    assert only_v2[risk].model_version == "none" and "(n, 22)" in only_v2[risk].rationale
    assert only_v2[ROLES.index("market_analyst")].model_version != "none"


class CountingClient:
    """The shipped models in this process, counting the requests made to them."""

    def __init__(self, delay_s: float = 0.0) -> None:
        self.models = LocalModelsClient(str(ROOT / "models"), ROLES)
        self.requests: list[dict] = []
        self.delay_s = delay_s

    async def predict_models(self, requests):
        self.requests.append({n: len(r) for n, r in requests.items()})
        await asyncio.sleep(self.delay_s)
        return await self.models.predict_models(requests)


def test_the_agents_ask_every_model_in_one_request_per_cycle() -> None:
    client = CountingClient()
    agents = Agents(AgentConfig(), client=client)
    inputs = [cycle(symbol=s) for s in ("AAAUSDT", "BBBUSDT", "CCCUSDT")]
    per_symbol, failed = asyncio.run(agents.opine(inputs))
    assert client.requests == [dict.fromkeys(ROLES, 3)]  # one request: 4 models x 3 symbols
    assert failed == ()
    assert [[o.agent_id for o in ops] for ops in per_symbol] == [list(ROLES)] * 3
    assert all(o.model_version.startswith("v") for ops in per_symbol for o in ops)
    info = agents.info()["risk_manager"]
    assert info == {"calls": 1, "model_failures": 0, "model": "risk_manager", "model_version": "v3"}


def test_models_too_slow_every_agent_votes_stand_aside_in_time() -> None:
    cfg = AgentConfig(model_timeout_s=0.05)
    agents = Agents(cfg, client=CountingClient(delay_s=1.0))
    t0 = time.perf_counter()
    (ops,), failed = asyncio.run(agents.opine([cycle()]))
    assert time.perf_counter() - t0 < 0.5
    assert failed == ROLES
    assert all(o.action is Action.STAND_ASIDE and "no answer within" in o.rationale for o in ops)
    # the risk manager's hard rules still speak without a model
    (ops,), _ = asyncio.run(agents.opine([cycle(drawdown=0.2)]))
    assert ops[ROLES.index("risk_manager")].action is Action.EMERGENCY_STOP


def test_a_calibrated_vote_below_even_odds_is_cast_for_its_alternative() -> None:
    """p < 0.5 says the vote more likely loses to its alternative: the agent votes that."""
    execution = make_logic("execution_agent", CFG)
    trade = {"action": 1, "action_name": "quote_tight", "q_values": [0.0, 1.0, 0.5, 0, 0, 0, 0],
             "confidence": 0.4, "calibrated": True, "model_version": "v2"}  # fmt: skip
    op = execution.opinion(cycle(), trade)
    assert op.action is Action.STAND_ASIDE and op.confidence == pytest.approx(0.6)
    assert "policy: quote_tight p=0.40; below 0.5, so it votes stand_aside" in op.rationale
    aside = {**trade, "action": 0, "q_values": [2.0, 0.1, 0.5, 0, 0, 0, 0], "confidence": 0.3}
    op = execution.opinion(cycle(), aside)
    assert op.action is Action.QUOTE_WIDE and op.confidence == pytest.approx(0.7)  # its best
    assert execution.opinion(cycle(), {**trade, "confidence": 0.7}).action is Action.QUOTE_TIGHT
    # a raw confidence means nothing of the kind: the model's vote stands
    raw = {**trade, "confidence": 0.2, "calibrated": False}
    assert execution.opinion(cycle(), raw).action is Action.QUOTE_TIGHT
    # the analyst's alternative to a trade is standing aside
    analyst = make_logic("market_analyst", CFG)
    unsure = {"probabilities": [0.1, 0.2, 0.4, 0.2, 0.1], "action": 2, "action_name": "hold",
              "confidence": 0.45, "calibrated": True, "model_version": "v1"}  # fmt: skip
    op = analyst.opinion(cycle(), unsure)
    assert op.action is Action.STAND_ASIDE and op.confidence == pytest.approx(0.55)
