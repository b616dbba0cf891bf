"""The four agents: plain role logic on top of a model client.

Each cycle an agent receives the cycle's features (``CycleInput``), gets its model's answer
(on Ray Serve: one request carries every role's rows for every symbol of the call), applies
its role's rules and returns an immutable ``Opinion``. The agents run in the coordinator's
process (``Agents``); the logic classes are pure and testable without Ray. When the models
cannot answer (Serve overloaded, down, or too slow) every agent still answers in time:
``stand_aside`` with the reason, so the cycle falls back to the safe action instead of
hanging.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Sequence
from dataclasses import replace
from typing import Any, Literal

import numpy as np
from pydantic import Field, field_validator

from envs.actions import ACTION_NAMES, Action
from serve.models import MODEL_ERRORS
from swarm_ray.agents.clients import SERVE_APP, LocalModelsClient, ModelsClient, ServeModelsClient
from swarm_ray.agents.llm.sentiment import LLMConfig, Sentiment, SentimentClient
from swarm_ray.core.config import StrictModel
from swarm_ray.core.domain import Opinion
from swarm_ray.core.roles import MARKET_ANALYST, ROLES
from swarm_ray.features.outcomes import alternative
from swarm_ray.registry.calibration import platt
from swarm_ray.trading.cycle import CycleInput
from swarm_ray.trading.quoting import QuotingParams

__all__ = [
    "Agent",
    "AgentConfig",
    "Agents",
    "ExecutionAgentLogic",
    "LocalModelsClient",
    "MarketAnalystLogic",
    "ModelsClient",
    "RiskManagerLogic",
    "ServeModelsClient",
    "StrategyOptimizerLogic",
    "make_logic",
]

log = logging.getLogger(__name__)
# the analyst's five classes as a direction in [-1, 1]
_CLASS_DIRECTION = np.array([-1.0, -0.5, 0.0, 0.5, 1.0])


class AgentConfig(StrictModel):
    """How the agents reach their models and the role rules' thresholds."""

    inference: str = Field(
        "serve",
        pattern="^(serve|local|scripted)$",
        description="serve: Ray Serve; local: in the actor; scripted: every role votes "
        "scripted_action (no model; for fault drills and tests, never for trading)",
    )
    scripted_action: str = Field(
        "quote_tight", description="scripted inference: the action every role votes"
    )
    serve_app: str = SERVE_APP
    models_dir: str = "models"
    model_timeout_s: float = Field(0.25, gt=0, description="longest wait for a model answer")
    analyst_lean: float = Field(
        0.15, ge=0, le=1, description="fused direction beyond which the analyst votes a skew"
    )
    risk_emergency_drawdown: float = Field(
        0.12, gt=0, le=1, description="risk manager votes emergency_stop at this drawdown"
    )
    risk_reduce_inventory: float = Field(
        0.9, gt=0, le=1, description="risk manager votes to reduce beyond this share of max"
    )
    risk_max_volatility_bps: float = Field(
        40.0, gt=0, description="risk manager votes stand_aside above this 1-bar volatility"
    )
    unlikely_vote: Literal["alternative", "keep"] = Field(
        "alternative",
        description="a calibrated vote with p < 0.5 is cast for its alternative with 1 - p "
        "(alternative), or left as the model voted (keep)",
    )
    llm: LLMConfig = LLMConfig(enabled=False)
    quoting: QuotingParams = QuotingParams()

    @field_validator("scripted_action")
    @classmethod
    def _known_action(cls, v: str) -> str:
        if v.upper() not in Action.__members__:
            raise ValueError(f"{v!r} is not an action ({', '.join(ACTION_NAMES)})")
        return v


def _model_action(answer: dict[str, Any]) -> tuple[Action, float, str]:
    return Action(int(answer["action"])), float(answer["confidence"]), str(answer["model_version"])


_LLM_NOTE = re.compile(r"llm (?P<score>[+-]\d+\.\d+)@(?P<conf>\d+\.\d+)")


def llm_note(score: float, confidence: float) -> str:
    """How the analyst's rationale records the LLM's answer (``parse_llm_note`` reads it)."""
    return f"llm {score:+.2f}@{confidence:.2f}"


def parse_llm_note(rationale: str | None) -> tuple[float, float] | None:
    """(score, confidence) of the LLM answer an analyst's rationale recorded, if any: the
    recorded history its calibration is fitted on."""
    m = _LLM_NOTE.search(rationale or "")
    return (float(m["score"]), float(m["conf"])) if m else None


def _conf_text(answer: dict[str, Any]) -> str:
    """``p=0.43`` for a calibrated confidence, ``raw 0.17`` for one without a calibration map."""
    c = float(answer["confidence"])
    return f"p={c:.2f}" if answer.get("calibrated") else f"raw {c:.2f}"


def _likelier(
    cfg: AgentConfig, action: Action, conf: float, answer: dict[str, Any], rationale: str
) -> tuple[Action, float, str, Action | None]:
    """A calibrated vote more likely to lose than to beat its alternative (p < 0.5) is cast for
    the alternative with 1 - p: standing aside instead of a trade, or the model's best trade
    instead of standing aside (``unlikely_vote: alternative``). Raw confidences have no such
    meaning and pass unchanged. Also returns what the vote is judged against (``None`` for a
    raw confidence: the default)."""
    if not answer.get("calibrated"):
        return action, conf, rationale, None
    alt = alternative(action, answer.get("q_values"))
    if cfg.unlikely_vote == "keep" or conf >= 0.5:
        return action, conf, rationale, alt
    note = f"{rationale}; below 0.5, so it votes {alt.label} at {1 - conf:.2f}"
    return alt, 1.0 - conf, note, action


def _bad_data(agent: str, inp: CycleInput) -> Opinion:
    return Opinion(
        agent, Action.STAND_ASIDE, 1.0, "rules", "bad data: " + "; ".join(inp.data_problems)
    )


def _no_model(agent: str, reason: str) -> Opinion:
    return Opinion(agent, Action.STAND_ASIDE, 1.0, "none", f"model unavailable: {reason}")


class RoleLogic:
    """One role's rules on top of its model's answer."""

    role: str = ""
    model: str = ""

    def __init__(self, cfg: AgentConfig) -> None:
        self.cfg = cfg

    def model_input(self, inp: CycleInput) -> tuple[float, ...]:
        return inp.observation_for(self.model)

    def opinion(self, inp: CycleInput, answer: dict[str, Any] | None, note: str = "") -> Opinion:
        raise NotImplementedError

    def policy_opinion(
        self, inp: CycleInput, answer: dict[str, Any] | None, note: str, why: str = ""
    ) -> Opinion:
        """A DQN role's vote: stand aside on bad data or without a model, else the policy's
        greedy action with its q-weight (``why`` replaces the default rationale)."""
        if inp.data_problems:
            return _bad_data(self.role, inp)
        if answer is None:
            return _no_model(self.role, note)
        action, conf, version = _model_action(answer)
        rationale = why or f"policy: {action.label} {_conf_text(answer)}"
        action, conf, rationale, alt = _likelier(self.cfg, action, conf, answer, rationale)
        return Opinion(self.role, action, conf, version, rationale, alternative=alt)


class RiskManagerLogic(RoleLogic):
    """A DQN policy trained with a risk-averse reward, under hard rules it cannot overrule."""

    role = model = "risk_manager"

    def opinion(self, inp: CycleInput, answer: dict[str, Any] | None, note: str = "") -> Opinion:
        c = self.cfg
        if inp.drawdown >= c.risk_emergency_drawdown:
            return Opinion(
                self.role, Action.EMERGENCY_STOP, 1.0, "rules",
                f"drawdown {inp.drawdown:.1%} >= {c.risk_emergency_drawdown:.0%}",
            )  # fmt: skip
        if inp.data_problems:
            return _bad_data(self.role, inp)
        if abs(inp.inventory_share) >= c.risk_reduce_inventory:
            act = Action.REDUCE_SELL if inp.inventory_share > 0 else Action.REDUCE_BUY
            return Opinion(
                self.role, act, 0.9, "rules", f"inventory at {inp.inventory_share:+.0%} of max"
            )
        if inp.volatility_bps > c.risk_max_volatility_bps:
            return Opinion(
                self.role, Action.STAND_ASIDE, 0.9, "rules",
                f"volatility {inp.volatility_bps:.1f} bps > {c.risk_max_volatility_bps:.0f}",
            )  # fmt: skip
        return self.policy_opinion(inp, answer, note)


class StrategyOptimizerLogic(RoleLogic):
    """A DQN quoting policy (PnL with an inventory penalty); owns the quoting parameters."""

    role = model = "strategy_optimizer"

    def opinion(self, inp: CycleInput, answer: dict[str, Any] | None, note: str = "") -> Opinion:
        why = ""
        if answer is not None:
            q = self.cfg.quoting
            label = Action(int(answer["action"])).label
            why = (
                f"policy: {label} {_conf_text(answer)} "
                f"({q.tight_bps:g}/{q.wide_bps:g} bps, {q.levels} lvl)"
            )
        return self.policy_opinion(inp, answer, note, why)


class ExecutionAgentLogic(RoleLogic):
    """A DQN policy trained for spread capture and fill quality: refresh or pull quotes."""

    role = model = "execution_agent"

    def opinion(self, inp: CycleInput, answer: dict[str, Any] | None, note: str = "") -> Opinion:
        return self.policy_opinion(inp, answer, note)


class MarketAnalystLogic(RoleLogic):
    """The market-analysis network fused with LLM sentiment by confidence weighting.

    direction = (c_net d_net + c_llm s_llm) / (c_net + c_llm), with d_net the network's expected
    class direction in [-1, 1] and s_llm the sentiment score; the fused confidence is the
    confidence-weighted mean of the two confidences. A direction beyond ``analyst_lean`` votes a
    skew toward it, otherwise a symmetric tight quote.
    """

    role = model = "market_analyst"

    def model_input(self, inp: CycleInput) -> tuple[float, ...]:
        return inp.analysis

    def llm_confidence(self, sentiment: Sentiment | None) -> float:
        """The LLM's calibrated confidence; 0 (no say) without a calibration map."""
        cal = self.cfg.llm.calibration
        if sentiment is None or sentiment.is_neutral or cal is None:
            return 0.0
        return platt(cal[0], cal[1], sentiment.confidence)

    def fuse(self, answer: dict[str, Any], sentiment: Sentiment | None) -> tuple[float, float]:
        """(direction, confidence) of the network's answer and the sentiment: the direction
        weighs the network's expected class direction and the sentiment score by their
        confidences, the confidence is the same weighting of the two calibrated confidences
        (the network's served ``confidence``, the LLM's through ``llm.calibration``)."""
        p = np.asarray(answer["probabilities"], dtype=np.float64)
        d_net, c_net = float(p @ _CLASS_DIRECTION), float(answer["confidence"])
        c_llm = self.llm_confidence(sentiment)
        s = sentiment.score if sentiment is not None else 0.0
        w = c_net + c_llm
        if w <= 0:
            return d_net, 0.0
        return (c_net * d_net + c_llm * s) / w, (c_net * c_net + c_llm * c_llm) / w

    def opinion(
        self,
        inp: CycleInput,
        answer: dict[str, Any] | None,
        note: str = "",
        sentiment: Sentiment | None = None,
    ) -> Opinion:
        if inp.data_problems:
            return _bad_data(self.role, inp)
        if answer is None:
            return _no_model(self.role, note)
        direction, conf = self.fuse(answer, sentiment)
        lean = self.cfg.analyst_lean
        action = (
            Action.SKEW_BUY if direction > lean
            else Action.SKEW_SELL if direction < -lean
            else Action.QUOTE_TIGHT
        )  # fmt: skip
        llm = ", llm neutral"
        if sentiment and not sentiment.is_neutral:
            say = "" if self.cfg.llm.calibration else " (uncalibrated: no say)"
            llm = f", {llm_note(sentiment.score, sentiment.confidence)}{say}"
        why = f"net {answer['action_name']} {_conf_text(answer)}{llm} -> dir {direction:+.2f}"
        conf = min(1.0, max(0.0, conf))
        action, conf, why, alt = _likelier(self.cfg, action, conf, answer, why)
        version, cls = str(answer["model_version"]), int(answer["action"])
        return Opinion(self.role, action, conf, version, why, alternative=alt, prediction=cls)


LOGIC: dict[str, type[RoleLogic]] = {
    "market_analyst": MarketAnalystLogic,
    "risk_manager": RiskManagerLogic,
    "strategy_optimizer": StrategyOptimizerLogic,
    "execution_agent": ExecutionAgentLogic,
}
assert set(LOGIC) == set(ROLES)


def make_logic(role: str, cfg: AgentConfig) -> RoleLogic:
    if role not in LOGIC:
        raise ValueError(f"unknown agent role {role!r}; known: {sorted(LOGIC)}")
    return LOGIC[role](cfg)


class Agent:
    """One role's logic and (for the analyst) the LLM; it asks its model through ``Agents``."""

    def __init__(
        self, role: str, cfg: AgentConfig, sentiment: SentimentClient | None = None
    ) -> None:
        self.role = role
        self.cfg = cfg
        self.logic = make_logic(role, cfg)
        self.sentiment_client = sentiment
        self._sentiment: dict[str, Sentiment] = {}
        self._pending: set[str] = set()
        self._tasks: set[asyncio.Future[None]] = set()
        self.calls = 0
        self.model_failures = 0
        self.model_version: str | None = None  # of the last answer

    def set_quoting(self, quoting: QuotingParams) -> None:
        self.cfg = self.cfg.model_copy(update={"quoting": quoting})
        self.logic.cfg = self.cfg

    def _refresh_sentiment(self, inp: CycleInput) -> None:
        """Ask the LLM in a worker thread; the cycle uses the newest answer it already has."""
        if self.sentiment_client is None or inp.snapshot is None or inp.symbol in self._pending:
            return
        self._pending.add(inp.symbol)
        client, snap = self.sentiment_client, inp.snapshot

        async def ask() -> None:
            try:
                s = await asyncio.to_thread(client.sentiment, snap)
                self._sentiment[inp.symbol] = s
            finally:
                self._pending.discard(inp.symbol)

        task = asyncio.ensure_future(ask())
        self._tasks.add(task)  # keep a reference until done (the loop holds only weak ones)
        task.add_done_callback(self._tasks.discard)

    def model_rows(self, inputs: Sequence[CycleInput]) -> tuple[list[int], np.ndarray]:
        """Which inputs the model is asked about (those with good data) and its rows."""
        idx = [i for i, inp in enumerate(inputs) if not inp.data_problems]
        rows = np.array([self.logic.model_input(inputs[i]) for i in idx], dtype=np.float32)
        return idx, rows

    def opinions(
        self,
        inputs: Sequence[CycleInput],
        idx: list[int],
        rows: np.ndarray,
        got: list[dict[str, Any]] | None,
        note: str = "",
    ) -> list[Opinion]:
        """One opinion per input from the model's answers ``got`` to ``rows`` (``None``: the
        model did not answer, for the reason ``note``)."""
        self.calls += 1
        if got is None and idx:
            self.model_failures += 1
        elif got:
            self.model_version = str(got[0]["model_version"])
        answers: list[dict[str, Any] | None] = [None] * len(inputs)
        for i, a in zip(idx, got or [None] * len(idx), strict=True):
            answers[i] = a
        out = []
        for inp, ans in zip(inputs, answers, strict=True):
            if isinstance(self.logic, MarketAnalystLogic):
                self._refresh_sentiment(inp)
                op = self.logic.opinion(inp, ans, note, self._sentiment.get(inp.symbol))
            else:
                op = self.logic.opinion(inp, ans, note)
            out.append(op)
        for k, i in enumerate(idx):  # what the model saw goes into the journal with the vote
            out[i] = replace(out[i], features=tuple(rows[k].tolist()))
        return out

    def scripted(self, inputs: Sequence[CycleInput]) -> list[Opinion]:
        self.calls += 1
        action = Action[self.cfg.scripted_action.upper()]
        return [Opinion(self.role, action, 1.0, "scripted", "scripted vote") for _ in inputs]


class Agents:
    """The swarm's agents, one per role, run in the caller's process (the coordinator's).

    Each cycle they ask their models in one request (every role, every symbol of the call),
    then each applies its role's rules. When the models cannot answer in time (Serve
    overloaded, down, or too slow) every agent still answers: ``stand_aside`` with the
    reason, so the cycle falls back to the safe action instead of hanging.
    """

    def __init__(
        self,
        cfg: AgentConfig,
        client: ModelsClient | None = None,
        sentiment: SentimentClient | None = None,
        roles: Sequence[str] = ROLES,
    ) -> None:
        self.cfg = cfg
        self.agents = {r: Agent(r, cfg, sentiment if r == MARKET_ANALYST else None) for r in roles}
        if client is None and cfg.inference == "serve":
            client = ServeModelsClient(cfg.serve_app)
        elif client is None and cfg.inference == "local":
            client = LocalModelsClient(
                cfg.models_dir, [a.logic.model for a in self.agents.values()]
            )
        self.client = client

    async def opine(
        self, inputs: Sequence[CycleInput]
    ) -> tuple[list[list[Opinion]], tuple[str, ...]]:
        """Every agent's opinion on each input (in role order), and the roles whose model did
        not answer this time."""
        if self.cfg.inference == "scripted" or self.client is None:
            per_role = [a.scripted(inputs) for a in self.agents.values()]
            return [list(ops) for ops in zip(*per_role, strict=True)], ()
        asks = {r: a.model_rows(inputs) for r, a in self.agents.items()}
        requests = {self.agents[r].logic.model: rows for r, (idx, rows) in asks.items() if idx}
        got: dict[str, list[dict[str, Any]]] | None = {}
        note = ""
        if requests:
            try:
                got = await asyncio.wait_for(
                    self.client.predict_models(requests), timeout=self.cfg.model_timeout_s
                )
            except TimeoutError:
                got, note = None, f"no answer within {self.cfg.model_timeout_s}s"
            except Exception as exc:  # overload, Serve down, replica dying: vote safe
                got, note = None, f"{type(exc).__name__}: {str(exc)[:120]}"
        per_role = []
        failed = []
        errors = {} if got is None else got.get(MODEL_ERRORS, {})
        for r, a in self.agents.items():
            idx, rows = asks[r]
            answers = None if got is None else got.get(a.logic.model)
            if answers is None and idx:
                failed.append(r)
            why = errors.get(a.logic.model, note)
            per_role.append(a.opinions(inputs, idx, rows, answers, why))
        return [list(ops) for ops in zip(*per_role, strict=True)], tuple(failed)

    def set_quoting(self, quoting: QuotingParams) -> None:
        """The strategy optimizer's quoting parameters (it owns them; the others read them)."""
        self.cfg = self.cfg.model_copy(update={"quoting": quoting})
        for a in self.agents.values():
            a.set_quoting(quoting)

    def info(self) -> dict[str, dict[str, Any]]:
        return {
            r: {
                "calls": a.calls,
                "model_failures": a.model_failures,
                "model": a.logic.model,
                "model_version": a.model_version,
            }
            for r, a in self.agents.items()
        }
