"""The served models as plain Python: loading from the registry, input validation, answers.

Nothing here imports Ray Serve; ``serve.deployments`` wraps ``ModelServer`` in a deployment.
Every model of the registry is served through one interface:

- ``observation_dim`` floats in, one answer per observation out::

      {"action": int, "action_name": str,
       "q_values": [...] (DQN policies) | "probabilities": [...] (market analysis),
       "confidence": float in [0, 1], "raw_confidence": float, "calibrated": bool,
       "model_version": str}

- policies: the greedy action; the analyst: the most probable class (strong_sell ..
  strong_buy).
- ``confidence``: with a calibration map in the model card (``swarm-ray calibrate``), the
  calibrated probability that the vote beats its alternative (``swarm_ray.registry.calibration``)
  and ``calibrated`` is true; without one, the raw value. ``raw_confidence``: the softmax weight
  of the chosen Q-value (policies, as ``DQNPolicy.act_with_confidence``) or the class
  probability (the analyst).
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from pydantic import Field

from envs.config import StrictModel

if TYPE_CHECKING:
    from swarm_ray.registry.calibration import Calibration

POLICY_OUTPUT = "q_values"
ANALYSIS_OUTPUT = "probabilities"
# The part of a model card an operator needs to know what is being served.
CARD_SUMMARY_KEYS = (
    "role", "reward", "created", "commit", "smoke", "ray", "torch", "calibration"
)  # fmt: skip


class InvalidObservation(ValueError):
    """An observation the model cannot answer; the message names the problem."""


MODEL_ERRORS = "_errors"
"""The key of a multi-model answer that holds, by model name, why a model gave no answers."""


def answer_models(
    answer: Callable[[str, Any], list[dict[str, Any]]], requests: dict[str, Any]
) -> dict[str, Any]:
    """``{name: answers}`` for every model of ``requests`` that could answer its rows; a model
    that cannot (``InvalidObservation``: a wrong observation layout, NaN; ``ModelUnavailable``:
    a non-finite output) is left out, its message under ``MODEL_ERRORS``, so it fails its own
    agent only."""
    out: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for name, rows in requests.items():
        try:
            out[name] = answer(name, rows)
        except (InvalidObservation, ModelUnavailable) as exc:
            errors[name] = str(exc)
    if errors:
        out[MODEL_ERRORS] = errors
    return out


class ModelUnavailable(RuntimeError):
    """The model cannot answer (not loaded, or its probe answer is wrong)."""


class ModelUserConfig(StrictModel):
    """What can change on a running model deployment (``user_config`` -> ``reconfigure``).

    Changing it does not restart the replica: the new version is loaded next to the old one,
    then swapped in; requests in flight finish on the model they started with.
    """

    version: str | None = Field(None, description="registry version, e.g. v2; null = newest")
    max_batch_size: int | None = Field(
        None, ge=1, le=1024, description="observations per forward pass; null = app default"
    )
    batch_wait_timeout_s: float | None = Field(
        None, ge=0, le=1, description="wait for more callers before a pass; null = app default"
    )
    drill_latency_ms: float = Field(
        0.0,
        ge=0,
        le=10_000,
        description="added to every forward pass, for overload drills and tests; keep 0",
    )


@dataclass(frozen=True)
class ServedModel:
    """One loaded model version behind the uniform interface."""

    name: str
    kind: str
    version: str
    observation_names: tuple[str, ...]
    action_names: tuple[str, ...]
    output: str  # POLICY_OUTPUT or ANALYSIS_OUTPUT
    forward: Callable[[np.ndarray], np.ndarray]  # (n, dim) float32 -> (n, n_actions) float
    card: dict[str, Any] = field(default_factory=dict, repr=False)
    observation_low: tuple[float, ...] | None = None
    observation_high: tuple[float, ...] | None = None
    calibration: Calibration | None = field(default=None, repr=False)

    @property
    def observation_dim(self) -> int:
        return len(self.observation_names)

    def answer(self, observations: np.ndarray) -> list[dict[str, Any]]:
        """One answer per row of validated observations (n, observation_dim)."""
        return build_answers(self.forward(observations), self)

    def metadata(self) -> dict[str, Any]:
        meta: dict[str, Any] = {
            "name": self.name,
            "kind": self.kind,
            "version": self.version,
            "observation_dim": self.observation_dim,
            "observation_names": list(self.observation_names),
            "action_names": list(self.action_names),
            "output": self.output,
            "card": {k: self.card[k] for k in CARD_SUMMARY_KEYS if k in self.card},
        }
        if self.observation_low is not None and self.observation_high is not None:
            meta["observation_low"] = list(self.observation_low)
            meta["observation_high"] = list(self.observation_high)
        return meta


def _softmax(x: np.ndarray) -> np.ndarray:
    z = x - x.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def build_answers(outputs: np.ndarray, model: ServedModel) -> list[dict[str, Any]]:
    """Answers of model outputs (n, n_actions): Q-values for policies, probabilities else."""
    out = np.asarray(outputs, dtype=np.float64)
    n_actions = len(model.action_names)
    if out.ndim != 2 or out.shape[1] != n_actions:
        raise ModelUnavailable(
            f"{model.name} {model.version}: output shape {out.shape}, expected (n, {n_actions})"
        )
    if not np.isfinite(out).all():
        raise ModelUnavailable(f"{model.name} {model.version}: output is not finite")
    weights = _softmax(out) if model.output == POLICY_OUTPUT else out
    actions = out.argmax(axis=-1)
    raw = np.clip(weights[np.arange(len(actions)), actions], 0.0, 1.0)
    cal = model.calibration
    confidence = np.clip(cal.confidence(out, actions), 0.0, 1.0) if cal is not None else raw
    return [
        {
            "action": int(a),
            "action_name": model.action_names[a],
            model.output: row,
            "confidence": float(c),
            "raw_confidence": float(r),
            "calibrated": cal is not None,
            "model_version": model.version,
        }
        for a, row, c, r in zip(
            actions.tolist(), out.tolist(), confidence.tolist(), raw.tolist(), strict=True
        )
    ]


def _is_number(x: Any) -> bool:
    return isinstance(x, int | float | np.integer | np.floating) and not isinstance(
        x, bool | np.bool_
    )


def _check_finite(row: np.ndarray, where: str) -> None:
    bad = np.flatnonzero(~np.isfinite(row))
    if bad.size:
        i = int(bad[0])
        raise InvalidObservation(
            f"{where}[{i}] is {float(row[i])}: values must be finite (no NaN or infinity)"
        )


def validate_observation(observation: Any, dim: int, where: str = "observation") -> np.ndarray:
    """One observation (a flat list or 1-D array of ``dim`` numbers) as float32 (dim,).

    Raises ``InvalidObservation`` for a wrong length, a nested or non-numeric value (strings,
    booleans, null) and NaN or infinity.
    """
    if isinstance(observation, np.ndarray):
        if observation.ndim != 1:
            raise InvalidObservation(
                f"{where} must be a flat list of {dim} numbers, got an array of shape "
                f"{observation.shape}"
            )
        if observation.dtype.kind not in "iuf":
            raise InvalidObservation(
                f"{where} must hold numbers, got an array of dtype {observation.dtype}"
            )
        values = observation
    elif isinstance(observation, list | tuple):
        for i, x in enumerate(observation):
            if not _is_number(x):
                raise InvalidObservation(
                    f"{where}[{i}] is {type(x).__name__} {x!r}: values must be numbers"
                )
        values = observation
    else:
        raise InvalidObservation(
            f"{where} must be a list of {dim} numbers, got {type(observation).__name__}"
        )
    if len(values) != dim:
        raise InvalidObservation(f"{where} has {len(values)} values, the model expects {dim}")
    try:
        row = np.asarray(values, dtype=np.float64)
    except OverflowError:
        raise InvalidObservation(f"{where} has an integer beyond the float range") from None
    _check_finite(row, where)
    if np.abs(row).max(initial=0.0) > np.finfo(np.float32).max:
        raise InvalidObservation(f"{where} has a value beyond the float32 range")
    return row.astype(np.float32)


def validate_batch(observations: Any, dim: int) -> np.ndarray:
    """Many observations (a list of rows, or a 2-D array (n, dim)) as float32 (n, dim)."""
    if isinstance(observations, np.ndarray):
        if observations.ndim != 2 or observations.shape[1] != dim:
            raise InvalidObservation(
                f"observations must be 2-D (n, {dim}), got an array of shape {observations.shape}"
            )
        if observations.dtype.kind not in "iuf":
            raise InvalidObservation(
                f"observations must hold numbers, got an array of dtype {observations.dtype}"
            )
        x = observations.astype(np.float64)
        for i in np.flatnonzero(~np.isfinite(x).all(axis=1))[:1]:
            _check_finite(x[i], f"observations[{i}]")
        if np.abs(x).max(initial=0.0) > np.finfo(np.float32).max:
            raise InvalidObservation("observations have a value beyond the float32 range")
        return x.astype(np.float32)
    if not isinstance(observations, list | tuple):
        raise InvalidObservation(
            f"observations must be a list of rows of {dim} numbers, "
            f"got {type(observations).__name__}"
        )
    out = np.empty((len(observations), dim), dtype=np.float32)
    for i, row in enumerate(observations):
        out[i] = validate_observation(row, dim, where=f"observations[{i}]")
    return out


def load_served_model(models_dir: str | Path, name: str, version: str | None = None) -> ServedModel:
    """Load ``name`` from the registry at ``models_dir``: ``version``, or the one served by
    default (its champion, else its newest version: ``registry.champions``)."""
    from swarm_ray.registry.champions import serving_dir
    from swarm_ray.registry.files import check_servable
    from swarm_ray.registry.policies import (
        ANALYSIS_KIND,
        POLICY_KIND,
        read_card,
        versions,
    )

    if version is None:
        vdir = serving_dir(models_dir, name)
    else:
        if version not in versions(models_dir, name):
            raise FileNotFoundError(
                f"model {name!r} has no version {version!r} under {models_dir} "
                f"(found: {versions(models_dir, name) or 'none'})"
            )
        vdir = Path(models_dir) / name / version
    card = read_card(vdir)
    check_servable(vdir, card)  # a smoke-test version is never served from a serving registry
    kind = card.get("kind")
    if kind == POLICY_KIND:
        return _served_policy(vdir, card)
    if kind == ANALYSIS_KIND:
        return _served_analysis(models_dir, name, vdir.name, card)
    raise ValueError(f"{vdir}: model kind {kind!r} cannot be served")


def _served_policy(vdir: Path, card: dict[str, Any]) -> ServedModel:
    from swarm_ray.registry.calibration import Calibration
    from swarm_ray.registry.policies import load_policy

    policy = load_policy(vdir)
    layout = policy.layout
    return ServedModel(
        name=policy.name,
        kind=card["kind"],
        version=policy.version or vdir.name,
        observation_names=tuple(layout["columns"]),
        action_names=tuple(layout["actions"]),
        output=POLICY_OUTPUT,
        forward=policy.q_values,
        card=card,
        observation_low=tuple(float(x) for x in layout["low"]),
        observation_high=tuple(float(x) for x in layout["high"]),
        calibration=Calibration.from_card(card),
    )


def _served_analysis(
    models_dir: str | Path, name: str, version: str, card: dict[str, Any]
) -> ServedModel:
    from swarm_ray.registry.analysis_model import load_analysis_model
    from swarm_ray.registry.calibration import Calibration

    model = load_analysis_model(models_dir, name, version)
    return ServedModel(
        name=model.name,
        kind=card["kind"],
        version=model.version or version,
        observation_names=model.feature_names,
        action_names=model.classes,
        output=ANALYSIS_OUTPUT,
        forward=model.predict_proba,
        card=card,
        calibration=Calibration.from_card(card),
    )


Loader = Callable[[str | Path, str, str | None], ServedModel]


class ModelServer:
    """One model deployment's logic: the current version, swaps, answers and health.

    Thread-safety comes from swapping one reference: a forward pass reads ``self.model`` once,
    so a swap never mixes two versions in one answer.
    """

    def __init__(
        self,
        models_dir: str | Path,
        name: str,
        max_batch_size: int,
        batch_wait_timeout_s: float,
        loader: Loader = load_served_model,
    ) -> None:
        self.models_dir = models_dir
        self.name = name
        self.default_max_batch_size = max_batch_size
        self.default_batch_wait_timeout_s = batch_wait_timeout_s
        self._loader = loader
        self._model: ServedModel | None = None
        self.config = ModelUserConfig()
        self.loaded_at: float | None = None
        self.swaps = 0
        self.forward_passes = 0  # with rows_answered: how well callers share passes
        self.rows_answered = 0

    @property
    def model(self) -> ServedModel:
        model = self._model
        if model is None:
            raise ModelUnavailable(f"{self.name}: no model version is loaded")
        return model

    @property
    def loaded(self) -> bool:
        return self._model is not None

    @property
    def max_batch_size(self) -> int:
        return self.config.max_batch_size or self.default_max_batch_size

    @property
    def batch_wait_timeout_s(self) -> float:
        t = self.config.batch_wait_timeout_s
        return self.default_batch_wait_timeout_s if t is None else t

    def parse_config(self, user_config: Any) -> ModelUserConfig:
        from swarm_ray.core.config import parse_config

        return parse_config(ModelUserConfig, user_config, f"user_config of {self.name}")

    def newest_version(self) -> str | None:
        """The version served by default now: the champion, else the newest (``None`` if the
        registry lists none)."""
        from swarm_ray.registry.champions import serving_version

        return serving_version(self.models_dir, self.name)

    def needs_load(self, config: ModelUserConfig) -> bool:
        """Whether ``config`` asks for another version than the one loaded (``version: null``
        asks for the champion, else the newest, so re-applying it picks up a change since)."""
        if self._model is None:
            return True
        wanted = config.version or self.newest_version()
        return wanted is not None and wanted != self._model.version

    def load(self, version: str | None) -> ServedModel:
        """Load and probe a version without serving it yet (slow: call off the event loop)."""
        model = self._loader(self.models_dir, self.name, version)
        if model.name != self.name:
            raise ModelUnavailable(f"{self.name}: the registry card names {model.name!r}")
        probe(model)
        return model

    def install(self, config: ModelUserConfig, model: ServedModel | None = None) -> None:
        """Serve ``model`` (if given) from now on, with ``config``'s batching settings."""
        if model is not None:
            self.swaps += self._model is not None
            self._model = model
            self.loaded_at = time.time()
        self.config = config

    def configure(self, user_config: Any) -> ModelUserConfig:
        """Apply a ``user_config`` synchronously (load the version it names if needed)."""
        config = self.parse_config(user_config)
        model = self.load(config.version) if self.needs_load(config) else None
        self.install(config, model)
        return config

    def ensure_loaded(self) -> None:
        if self._model is None:
            self.install(self.config, self.load(self.config.version))

    async def drill_delay(self) -> None:
        if self.config.drill_latency_ms > 0:
            await asyncio.sleep(self.config.drill_latency_ms / 1000.0)

    def answer_rows(self, rows: Sequence[np.ndarray]) -> list[dict[str, Any] | Exception]:
        """Answers of validated observations (1-D), one forward pass for all of them.

        A row validated against another version's dimension (a swap between validation and
        the pass) gets an ``InvalidObservation`` in its place; the other rows are answered.
        """
        model = self.model
        dim = model.observation_dim
        ok = [i for i, r in enumerate(rows) if r.shape == (dim,)]
        out: list[dict[str, Any] | Exception] = [
            InvalidObservation(f"observation has {r.size} values, the model expects {dim}")
            for r in rows
        ]
        if ok:
            for i, answer in zip(ok, model.answer(np.stack([rows[i] for i in ok])), strict=True):
                out[i] = answer
            self._count(len(ok))
        return out

    def _count(self, rows: int) -> None:
        self.forward_passes += 1
        self.rows_answered += rows

    def answer_batch(self, observations: Any) -> list[dict[str, Any]]:
        model = self.model
        x = validate_batch(observations, model.observation_dim)
        if not len(x):
            return []
        answers = model.answer(x)
        self._count(len(x))
        return answers

    def validate(self, observation: Any) -> np.ndarray:
        return validate_observation(observation, self.model.observation_dim)

    def check_health(self) -> None:
        """Raise ``ModelUnavailable`` unless the loaded model answers a probe correctly."""
        probe(self.model)

    def metadata(self) -> dict[str, Any]:
        from swarm_ray.registry.policies import versions

        meta = self.model.metadata()
        meta["available_versions"] = versions(self.models_dir, self.name)
        meta["pinned_version"] = self.config.version
        meta["max_batch_size"] = self.max_batch_size
        meta["batch_wait_timeout_s"] = self.batch_wait_timeout_s
        meta["loaded_at"] = self.loaded_at
        meta["swaps"] = self.swaps
        meta["forward_passes"] = self.forward_passes
        meta["rows_answered"] = self.rows_answered
        return meta


def probe(model: ServedModel) -> None:
    """Ask ``model`` about a neutral observation; raise ``ModelUnavailable`` on a bad answer."""
    x = np.zeros((2, model.observation_dim), dtype=np.float32)
    try:
        answers = model.answer(x)
    except ModelUnavailable:
        raise
    except Exception as exc:
        raise ModelUnavailable(f"{model.name} {model.version}: probe failed: {exc!r}") from exc
    if len(answers) != 2 or not all(
        0.0 <= a["confidence"] <= 1.0 and math.isfinite(a["confidence"]) for a in answers
    ):
        raise ModelUnavailable(f"{model.name} {model.version}: probe answer is malformed")
