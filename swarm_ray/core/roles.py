"""The swarm's roles: every agent that votes, and those whose model is a DQN policy."""

from __future__ import annotations

__all__ = ["MARKET_ANALYST", "POLICY_ROLES", "RISK_MANAGER", "ROLES"]

MARKET_ANALYST = "market_analyst"
RISK_MANAGER = "risk_manager"
ROLES: tuple[str, ...] = (MARKET_ANALYST, RISK_MANAGER, "strategy_optimizer", "execution_agent")
"""Every voting role, in the order the journal and reports list them."""
POLICY_ROLES: tuple[str, ...] = tuple(r for r in ROLES if r != MARKET_ANALYST)
"""The roles whose model is a DQN policy trained with RLlib."""
