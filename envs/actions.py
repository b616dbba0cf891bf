"""The shared discrete action vocabulary spoken by every policy, vote and environment.

The environment's action space is the first ``N_ENV_ACTIONS`` members; ``EMERGENCY_STOP``
is reserved for the risk manager and never offered to a trained policy.
"""

from __future__ import annotations

from enum import IntEnum


class Action(IntEnum):
    STAND_ASIDE = 0
    QUOTE_TIGHT = 1
    QUOTE_WIDE = 2
    SKEW_BUY = 3
    SKEW_SELL = 4
    REDUCE_BUY = 5
    REDUCE_SELL = 6
    EMERGENCY_STOP = 7

    @property
    def label(self) -> str:
        return self.name.lower()


N_ENV_ACTIONS = 7
ENV_ACTIONS: tuple[Action, ...] = tuple(Action(i) for i in range(N_ENV_ACTIONS))
ACTION_NAMES: tuple[str, ...] = tuple(a.label for a in Action)
