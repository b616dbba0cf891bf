"""The risk gate: hard limits that no vote can pass. A pure function, no Ray, no I/O.

Given the consensus and the account's state it returns the action the swarm may take and how
much it may still buy and sell. Order of checks (the first that fires decides the action):

1. kill switch already tripped          -> emergency_stop (cancel everything, quote nothing)
2. emergency_stop carried by the vote   -> trip the kill switch, emergency_stop
3. drawdown from peak >= max_drawdown   -> trip, emergency_stop
4. today's loss >= daily_loss_limit     -> trip, emergency_stop
5. bad market data                      -> stand_aside (resumes when the data is sane)
6. stop-loss on the open position       -> reduce toward flat with a market order
7. volatility above the cut-off         -> stand_aside
8. confidence below the minimum         -> stand_aside
Position and notional caps then bound each side: an action may never leave the account beyond
``max_position`` or ``max_notional`` even if every quote fills.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from pydantic import Field

from envs.actions import Action
from swarm_ray.core.config import StrictModel
from swarm_ray.trading.consensus import Consensus

__all__ = ["RiskLimits", "RiskState", "RiskVerdict", "check"]

_TRADING = frozenset(
    {
        Action.QUOTE_TIGHT,
        Action.QUOTE_WIDE,
        Action.SKEW_BUY,
        Action.SKEW_SELL,
        Action.REDUCE_BUY,
        Action.REDUCE_SELL,
    }
)


class RiskLimits(StrictModel):
    """Hard limits per symbol. Quantities in the base asset, money in the quote asset."""

    max_position: float = Field(0.05, gt=0, description="largest |position| (base asset)")
    max_notional: float = Field(5000.0, gt=0, description="largest |position| x mid (quote)")
    max_drawdown: float = Field(
        0.15, gt=0, le=1, description="trip the kill switch at this drawdown from peak equity"
    )
    daily_loss_limit: float = Field(
        250.0, gt=0, description="trip the kill switch when today's loss reaches this (quote)"
    )
    stop_loss: float = Field(
        0.02, gt=0, le=1, description="reduce a position whose loss from entry reaches this"
    )
    min_confidence: float = Field(
        0.0, ge=0, le=1, description="stand aside when the vote's weighted confidence is lower"
    )
    max_volatility_bps: float = Field(
        60.0, gt=0, description="stand aside when 1-bar volatility exceeds this (bps)"
    )


@dataclass(frozen=True, slots=True)
class RiskState:
    """What the gate needs to know about the account and the market this cycle."""

    position: float
    mid: float
    equity: float
    peak_equity: float
    day_start_equity: float
    entry_price: float | None = None
    volatility_bps: float = 0.0
    kill_switch: bool = False
    data_problems: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class RiskVerdict:
    action: Action
    """The action the swarm takes."""
    reasons: tuple[str, ...]
    """Why the gate changed or bounded the vote (empty: passed untouched)."""
    trip_kill_switch: bool
    """The gate has just tripped the kill switch (persist it, cancel everything)."""
    max_buy: float
    """Most the swarm may still buy this cycle, all quotes filled (base asset, >= 0)."""
    max_sell: float
    """Most it may still sell (base asset, >= 0)."""

    @property
    def cancel_all(self) -> bool:
        return self.action in (Action.EMERGENCY_STOP, Action.STAND_ASIDE)


def _stop(reason: str, trip: bool) -> RiskVerdict:
    return RiskVerdict(Action.EMERGENCY_STOP, (reason,), trip, 0.0, 0.0)


def check(consensus: Consensus, state: RiskState, limits: RiskLimits) -> RiskVerdict:
    """The action allowed after the hard limits, with the per-side capacity left."""
    if state.kill_switch:
        return _stop("kill switch is tripped (an operator must clear it)", False)
    if consensus.action is Action.EMERGENCY_STOP:
        return _stop(f"emergency stop voted ({consensus.reason})", True)
    if state.peak_equity > 0:
        dd = (state.peak_equity - state.equity) / state.peak_equity
        if dd >= limits.max_drawdown:
            return _stop(f"drawdown {dd:.1%} >= limit {limits.max_drawdown:.1%}", True)
    day_loss = state.day_start_equity - state.equity
    if day_loss >= limits.daily_loss_limit:
        return _stop(f"daily loss {day_loss:.2f} >= limit {limits.daily_loss_limit:.2f}", True)

    action = consensus.action
    reasons: list[str] = []
    pos, mid = state.position, state.mid
    bad_mid = not (math.isfinite(mid) and mid > 0)
    if state.data_problems or bad_mid:
        problems = state.data_problems or ("no valid mid price",)
        return RiskVerdict(
            Action.STAND_ASIDE, ("bad market data: " + "; ".join(problems),), False, 0.0, 0.0
        )

    if pos != 0 and state.entry_price and state.entry_price > 0:
        loss = (mid - state.entry_price) / state.entry_price * (1 if pos > 0 else -1)
        if -loss >= limits.stop_loss:
            action = Action.REDUCE_SELL if pos > 0 else Action.REDUCE_BUY
            reasons.append(f"stop-loss: position down {-loss:.2%} >= {limits.stop_loss:.2%}")
    if not reasons:
        if action in _TRADING and state.volatility_bps > limits.max_volatility_bps:
            reasons.append(
                f"volatility {state.volatility_bps:.1f} bps > cut-off "
                f"{limits.max_volatility_bps:.1f}"
            )
            action = Action.STAND_ASIDE
        elif action in _TRADING and consensus.confidence < limits.min_confidence:
            reasons.append(
                f"confidence {consensus.confidence:.2f} < minimum {limits.min_confidence:.2f}"
            )
            action = Action.STAND_ASIDE

    cap = min(limits.max_position, limits.max_notional / mid)
    max_buy = max(0.0, cap - pos)
    max_sell = max(0.0, cap + pos)
    # reductions never flip the position
    if action is Action.REDUCE_BUY:
        max_buy, max_sell = min(max_buy, max(0.0, -pos)), 0.0
    elif action is Action.REDUCE_SELL:
        max_buy, max_sell = 0.0, min(max_sell, max(0.0, pos))
    if action in (Action.REDUCE_BUY, Action.REDUCE_SELL) and max(max_buy, max_sell) <= 0:
        reasons.append(f"{action.label} with nothing to reduce")
        action = Action.STAND_ASIDE
    if action in _TRADING and pos >= cap:
        reasons.append(f"position {pos:g} at cap {cap:g}: no more buying")
    if action in _TRADING and -pos >= cap:
        reasons.append(f"position {pos:g} at cap -{cap:g}: no more selling")
    if action is Action.STAND_ASIDE:
        max_buy = max_sell = 0.0
    return RiskVerdict(action, tuple(reasons), False, max_buy, max_sell)
