"""How an agent reaches its model: on Ray Serve (the default) or loaded in its own process.

Both give the Serve response contract, one answer dict per observation row: ``action``,
``action_name``, ``q_values`` or ``probabilities``, ``confidence`` and ``model_version``.
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np

from serve.client import APP_NAME as SERVE_APP

__all__ = ["SERVE_APP", "LocalModelClient", "ModelClient", "ServeModelClient"]


class ModelClient(Protocol):
    async def predict_many(self, rows: np.ndarray) -> list[dict[str, Any]]:
        """One answer dict per row (the Serve response contract)."""
        ...


class ServeModelClient:
    """A model deployed on Ray Serve, called through its ``DeploymentHandle`` by value."""

    def __init__(self, name: str, app: str = SERVE_APP) -> None:
        self.name, self.app = name, app
        self._handle: Any = None

    async def predict_many(self, rows: np.ndarray) -> list[dict[str, Any]]:
        if self._handle is None:
            from serve.client import model_handle

            self._handle = model_handle(self.name, self.app)
        return await self._handle.predict_many.remote(rows)


class LocalModelClient:
    """The same model loaded in this process (for runs without Serve, and for tests); it
    answers exactly as the served model does."""

    def __init__(self, name: str, models_dir: str) -> None:
        from serve.models import load_served_model
        from swarm_ray.core.config import resolve_path

        self.name = name
        self._model = load_served_model(resolve_path(models_dir), name)
        self.version = self._model.version

    async def predict_many(self, rows: np.ndarray) -> list[dict[str, Any]]:
        return self._model.answer(np.asarray(rows, dtype=np.float32))
