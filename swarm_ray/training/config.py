"""Typed training configuration (``configs/train_dqn.yaml``): one frozen model per section.

The file names the kline days used for training, validation and evaluation; the loader rejects
a config that would train on a validation or evaluation day.
"""

from __future__ import annotations

import os
from datetime import date
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, model_validator

from swarm_ray.core.config import ConfigError, StrictModel, load_config
from swarm_ray.core.roles import POLICY_ROLES


class DataConfig(StrictModel):
    """Where the klines live and which days play which part."""

    kline_dir: str = Field("data/binance-spot-1m", description="folder of the kline CSV files")
    symbol: str = "BTCUSDT"
    train_days: tuple[date, ...] = Field(..., min_length=1)
    validation_days: tuple[date, ...] = Field(..., min_length=1)
    evaluation_days: tuple[date, ...] = ()
    pin_feature_scale: bool = Field(
        True,
        description=(
            "replay: pin the features' scale (midprice.ref_vol, mean_volume) to the training "
            "days', so validation, evaluation and live trading show a policy the training scale"
        ),
    )

    @model_validator(mode="after")
    def _disjoint(self) -> DataConfig:
        train = set(self.train_days)
        for name in ("validation_days", "evaluation_days"):
            overlap = train & set(getattr(self, name))
            if overlap:
                raise ValueError(f"{name} overlap train_days: {sorted(map(str, overlap))}")
        overlap = set(self.validation_days) & set(self.evaluation_days)
        if overlap:
            days = sorted(map(str, overlap))
            raise ValueError(f"validation_days overlap evaluation_days: {days}")
        return self

    def files(self, days: tuple[date, ...], root: str | Path | None = None) -> list[str]:
        """Absolute kline paths of ``days`` (relative ``kline_dir`` resolves against ``root``)."""
        base = Path(self.kline_dir)
        if not base.is_absolute():
            base = Path(root or os.getcwd()) / base
        return [str(base / f"{self.symbol}-1m-{day.isoformat()}.csv") for day in days]


class ExperimentConfig(StrictModel):
    """Tune experiment: where results go, when trials stop, how often they checkpoint."""

    name: str = "swarm_ray_dqn"
    storage_path: str | None = Field(
        None,
        description="Tune results: a path (relative: in the storage root) or a URI such as "
        "s3://bucket/results; None: runs/ray_results in the storage root",
    )
    stop_env_steps: int = Field(150_000, ge=1, description="env steps sampled per trial")
    checkpoint_every: int = Field(5, ge=1, description="training iterations per checkpoint")
    keep_checkpoints: int = Field(3, ge=1)
    seed: int = 0


class ResourceConfig(StrictModel):
    """How each trial samples; the levers of environment throughput (see bench_train.py)."""

    num_env_runners: int = Field(0, ge=0, description="0: sample in the trial's own process")
    num_envs_per_env_runner: int = Field(32, ge=1, description="gymnasium vector env width")
    rollout_fragment_length: int = Field(8, ge=1, description="steps per env per sample call")
    min_sample_timesteps_per_iteration: int = Field(4000, ge=1)
    num_cpus_per_trial: float = Field(1.0, gt=0, description="CPUs of the trial's main process")


class DQNParams(StrictModel):
    """RLlib DQN (new API stack) options."""

    lr: float = Field(5e-4, gt=0)
    gamma: float = Field(0.99, gt=0, le=1)
    train_batch_size: int = Field(256, ge=1)
    training_intensity: float | None = Field(
        None, gt=0, description="replayed / sampled steps; None: one update per sample call"
    )
    num_steps_sampled_before_learning_starts: int = Field(2000, ge=0)
    target_network_update_freq: int = Field(2000, ge=1)
    double_q: bool = True
    dueling: bool = True
    n_step: int = Field(3, ge=1)
    prioritized_replay: bool = True
    replay_capacity: int = Field(100_000, ge=1)
    epsilon: tuple[tuple[int, float], ...] = Field(
        ((0, 1.0), (30_000, 0.05)), description="(env step, epsilon) piecewise-linear schedule"
    )
    fcnet_hiddens: tuple[int, ...] = (64, 64)
    head_fcnet_hiddens: tuple[int, ...] = (64,)
    grad_clip: float = Field(40.0, gt=0)


class RoleConfig(StrictModel):
    """One trial of the experiment: a role and the env overrides (its reward) it trains with."""

    env: dict[str, Any] = Field(default_factory=dict, description="overrides of the base env")


class MixtureConfig(StrictModel):
    """Train on a mixture: a share of the episodes in a simulated market instead of the replay."""

    weight: float = Field(
        0.25, ge=0, le=1, description="share of episodes drawn from the simulation env"
    )
    env: dict[str, Any] = Field(
        default_factory=lambda: {"preset": "as2008"},
        description=(
            "the simulation env (envs.config.MarketMakingConfig as a dict), every role's; its "
            "observation section is the role env's, so both components share one layout"
        ),
    )


class SmokeConfig(StrictModel):
    """What ``--smoke`` changes: a tiny budget that still exercises the whole pipeline."""

    stop_env_steps: int = 1500
    episode_steps: int = Field(60, ge=1, description="env n_steps, so episodes finish")
    checkpoint_every: int = 1
    min_sample_timesteps_per_iteration: int = 500
    num_steps_sampled_before_learning_starts: int = 256
    num_envs_per_env_runner: int = 8
    analysis_epochs: int = 2


class AnalysisConfig(StrictModel):
    """The market-analysis network: features of klines, labels from forward returns."""

    horizon: int = Field(15, ge=1, description="bars ahead of the forward return")
    thresholds_bps: tuple[float, float] = Field(
        (5.0, 20.0), description="|forward return| above the first is buy/sell, the second strong"
    )
    hidden: tuple[int, int] = (64, 64)
    dropout: float = Field(0.2, ge=0, lt=1)
    epochs: int = Field(60, ge=1)
    batch_size: int = Field(512, ge=1)
    lr: float = Field(1e-3, gt=0)
    weight_decay: float = Field(1e-4, ge=0)
    class_weighting: bool = Field(True, description="weight the loss by inverse class frequency")
    seed: int = 0


class RegistryConfig(StrictModel):
    """Where trained models are exported (``--smoke`` runs: a scratch registry instead)."""

    models_dir: str = Field("models", description="the serving registry (relative: in the root)")
    analysis_name: str = "market_analyst"
    eval_episodes_per_day: int = Field(
        5, ge=1, description="non-overlapping replay windows per validation day in the card"
    )
    evaluate_config: str | None = Field(
        "configs/evaluate.yaml",
        description=(
            "the card also holds `swarm-ray evaluate` on the validation days with this config "
            "(whole days, its fees and baselines); None: skip. Never run for --smoke"
        ),
    )


class TrainConfig(StrictModel):
    """The whole of ``configs/train_dqn.yaml``."""

    storage: str | None = Field(
        None,
        description="root of relative output paths (SWARM_RAY_STORAGE wins; none: the working "
        "directory); see swarm_ray.core.storage",
    )
    experiment: ExperimentConfig = ExperimentConfig()
    data: DataConfig
    env: dict[str, Any] = Field(default_factory=lambda: {"preset": "replay"})
    roles: dict[str, RoleConfig]
    dqn: DQNParams = DQNParams()
    resources: ResourceConfig = ResourceConfig()
    smoke: SmokeConfig = SmokeConfig()
    analysis: AnalysisConfig = AnalysisConfig()
    registry: RegistryConfig = RegistryConfig()
    mode: Literal["replay", "simulation"] = Field(
        "replay", description="replay: the env replays data.train_days; simulation: env as is"
    )
    mixture: MixtureConfig | None = Field(
        None, description="replay: draw a share of the training episodes from a simulated market"
    )

    @model_validator(mode="after")
    def _roles_known(self) -> TrainConfig:
        unknown = set(self.roles) - set(POLICY_ROLES)
        if unknown:
            raise ValueError(f"unknown roles {sorted(unknown)}; known: {list(POLICY_ROLES)}")
        if not self.roles:
            raise ValueError("at least one role is needed")
        if self.mixture is not None and self.mode != "replay":
            raise ValueError("mixture: mixes simulated episodes into a replay (mode: replay)")
        return self


def load_train_config(path: str | os.PathLike[str]) -> TrainConfig:
    """Load and validate a training config; a bad file is a ``ConfigError`` naming the field."""
    return load_config(path, TrainConfig)


__all__ = [
    "AnalysisConfig",
    "ConfigError",
    "DQNParams",
    "DataConfig",
    "ExperimentConfig",
    "MixtureConfig",
    "RegistryConfig",
    "ResourceConfig",
    "RoleConfig",
    "SmokeConfig",
    "TrainConfig",
    "load_train_config",
]
