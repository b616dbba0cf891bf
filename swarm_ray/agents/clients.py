"""How the agents reach their models: on Ray Serve (the default) or loaded in this process.

One request carries every model a cycle needs: ``{model name: (n, dim) rows}`` in,
``{model name: answers}`` out, one answer dict per row in the Serve response contract
(``action``, ``action_name``, ``q_values`` or ``probabilities``, ``confidence`` and
``model_version``).
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np

from serve.client import APP_NAME as SERVE_APP

__all__ = ["SERVE_APP", "LocalModelsClient", "ModelsClient", "ServeModelsClient"]

Answers = dict[str, list[dict[str, Any]]]


class ModelsClient(Protocol):
    async def predict_models(self, requests: dict[str, np.ndarray]) -> Answers:
        """Answers of each named model to its rows, in order."""
        ...


class ServeModelsClient:
    """The models deployment on Ray Serve: one request per call, by value over gRPC."""

    def __init__(self, app: str = SERVE_APP) -> None:
        self.app = app
        self._handle: Any = None

    async def predict_models(self, requests: dict[str, np.ndarray]) -> Answers:
        if self._handle is None:
            from serve.client import models_handle

            self._handle = models_handle(self.app)
        return await self._handle.predict_models.remote(requests)


class LocalModelsClient:
    """The same models loaded in this process (for runs without Serve, backtests and tests);
    they answer exactly as the served models do (``calibrated=False``: with their raw
    confidences, as before any calibration map, which is how ``swarm-ray calibrate`` replays)."""

    def __init__(
        self, models_dir: str, names: tuple[str, ...] | list[str], calibrated: bool = True
    ) -> None:
        from dataclasses import replace

        from serve.models import load_served_model
        from swarm_ray.core.config import resolve_path

        root = resolve_path(models_dir)
        self._models = {n: load_served_model(root, n) for n in names}
        if not calibrated:
            self._models = {n: replace(m, calibration=None) for n, m in self._models.items()}
        self.versions = {n: m.version for n, m in self._models.items()}

    async def predict_models(self, requests: dict[str, np.ndarray]) -> Answers:
        from serve.models import answer_models, validate_batch

        def answer(name: str, rows: np.ndarray) -> list[dict[str, Any]]:
            model = self._models[name]
            return model.answer(validate_batch(rows, model.observation_dim))

        return answer_models(answer, requests)
