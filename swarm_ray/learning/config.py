"""The learning loop's configuration (``configs/learn.yaml``): what data, how much training,
how a challenger must win, and what runs where."""

from __future__ import annotations

import os
import re
from typing import Any

from pydantic import Field, field_validator, model_validator

from swarm_ray.core.config import StrictModel, load_config
from swarm_ray.core.roles import POLICY_ROLES

__all__ = [
    "ANALYST",
    "BudgetConfig",
    "LearnConfig",
    "PromotionConfig",
    "WindowConfig",
    "load_learn_config",
    "parse_duration",
]

ANALYST = "market_analyst"
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$")
_UNIT_S = {"": 1.0, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_duration(value: Any) -> float:
    """Seconds of ``"24h"``, ``"30m"``, ``"1d"``, ``"90s"`` or a number of seconds."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value)
    else:
        m = _DURATION.match(str(value))
        if not m:
            raise ValueError(f"{value!r} is not a duration such as 24h, 30m, 1d or 90s")
        seconds = float(m.group(1)) * _UNIT_S[m.group(2)]
    if seconds <= 0:
        raise ValueError(f"a duration must be positive, got {value!r}")
    return seconds


class WindowConfig(StrictModel):
    """Which days play which part at each learning step, counted back from the step's day."""

    train_days: int = Field(
        12,
        ge=2,
        le=365,
        description="days the challengers train on (the last one picks the analysis network's "
        "best epoch)",
    )
    evaluation_days: int = Field(
        1,
        ge=1,
        le=60,
        description="the most recent days, seen by neither model, the challenger must win on; "
        "at most the schedule's period in days (a promoted champion's evaluation days count as "
        "seen, so a longer window skips the next step)",
    )


class BudgetConfig(StrictModel):
    """How much training a challenger gets."""

    env_steps: int = Field(30_000, ge=100, description="env steps per DQN challenger")
    epsilon: tuple[tuple[int, float], ...] = Field(
        ((0, 0.2), (10_000, 0.02)),
        description="(env step, epsilon) schedule of a warm-started challenger: it explores "
        "around what the champion does instead of from scratch",
    )
    lr: float | None = Field(None, gt=0, description="learning rate; None: the train config's")
    analysis_epochs: int = Field(10, ge=1, description="epochs of the analysis challenger")
    warm_start: bool = Field(True, description="start each challenger from its champion")


class SmokeBudget(StrictModel):
    """What ``--smoke`` shrinks the budget and the windows to."""

    env_steps: int = Field(600, ge=100)
    episode_steps: int = Field(60, ge=1)
    analysis_epochs: int = Field(1, ge=1)
    train_days: int = Field(2, ge=2)
    evaluation_days: int = Field(1, ge=1)


class PromotionConfig(StrictModel):
    """When a challenger replaces its champion."""

    margin_usdt: float = Field(
        0.0, ge=0, description="the challenger's PnL must beat the champion's by more than this"
    )
    confidence: float = Field(0.95, gt=0.5, lt=1, description="of the bootstrap interval")
    block_minutes: int = Field(
        60, ge=1, le=1440, description="block length of the paired block bootstrap"
    )
    bootstrap_samples: int = Field(2000, ge=100, le=100_000)
    seed: int = 0


class LearnConfig(StrictModel):
    """The whole of ``configs/learn.yaml``."""

    storage: str | None = Field(
        None,
        description="root of relative output paths (SWARM_RAY_STORAGE wins); see "
        "swarm_ray.core.storage",
    )
    train_config: str = Field(
        "configs/train_dqn_v3.yaml",
        description="the roles' training config (env, reward, network, DQN settings); its days "
        "are replaced by the learning window's",
    )
    backtest_config: str = Field(
        "configs/backtest.yaml",
        description="the whole-swarm backtest that judges challengers (swarm, fees, sizes)",
    )
    fees: str | None = Field(None, description="fee tier of the judgement; None: the backtest's")
    models_dir: str = Field("models", description="the registry (relative: in the storage root)")
    work_dir: str = Field(
        "runs/learning", description="challengers and Tune results (relative: in the root)"
    )
    data: tuple[str, ...] = Field(
        ("data/binance-spot-1m",),
        description="kline files or folders (Binance daily CSVs); the paper exchange's replay "
        "or `swarm-ray data download` output",
    )
    symbol: str = "BTCUSDT"
    roles: tuple[str, ...] = Field(
        (*POLICY_ROLES, ANALYST), description="the models retrained at each step"
    )
    window: WindowConfig = WindowConfig()
    budget: BudgetConfig = BudgetConfig()
    smoke: SmokeBudget = SmokeBudget()
    promotion: PromotionConfig = PromotionConfig()
    cpus: float = Field(
        1.0,
        gt=0,
        description="CPUs the retraining may take at once (one trial per CPU); the live "
        "swarm's actors keep theirs",
    )

    @field_validator("roles")
    @classmethod
    def _roles(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        known = (*POLICY_ROLES, ANALYST)
        unknown = [r for r in v if r not in known]
        if unknown:
            raise ValueError(f"unknown roles {unknown}; known: {list(known)}")
        if not v:
            raise ValueError("at least one role is needed")
        return v

    @model_validator(mode="after")
    def _smoke_fits(self) -> LearnConfig:
        if self.smoke.train_days > self.window.train_days:
            raise ValueError("smoke.train_days must not exceed window.train_days")
        return self


def load_learn_config(path: str | os.PathLike[str]) -> LearnConfig:
    """Load and validate a learning config; a bad file is a ``ConfigError`` naming the field."""
    return load_config(path, LearnConfig)
