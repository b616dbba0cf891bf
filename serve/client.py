"""How a caller (the swarm's coordinator, the HTTP API, a benchmark) reaches the served models.

    models = models_handle()
    answers = await models.predict_models.remote({"risk_manager": rows, ...})  # one request

    handle = model_handle("risk_manager")                 # one model
    answer = await handle.predict(observation)            # one observation
    answers = await handle.predict_many(rows)             # (n, dim), one forward pass

Every model lives in each replica of the ``models`` deployment, so a caller that needs several
models asks once. The two settings below are what made the difference in
``scripts/bench_serve.py`` on 2 cores (see the serving page of the docs): single requests at
~1.3 ms instead of ~2.2 ms (p50), and nearly twice the requests per second from many
concurrent callers.
"""

from __future__ import annotations

from typing import Any

from ray import serve
from ray.serve.handle import DeploymentHandle, DeploymentResponse

APP_NAME = "swarm_models"
"""The Serve application that hosts every registry model."""
MODELS_NAME = "models"
"""The deployment (in ``APP_NAME``) whose replicas hold every model."""

# Put in the runtime_env of an async actor that calls the models (``env_vars``): the Serve
# router then runs on the actor's own event loop instead of a second loop in another thread.
# Handles are then usable only from inside the event loop (``await``, not ``.result()``).
CALLER_ENV: dict[str, str] = {"RAY_SERVE_RUN_ROUTER_IN_SEPARATE_LOOP": "0"}


def models_handle(app_name: str = APP_NAME) -> DeploymentHandle:
    """A handle on the models deployment that sends requests by value over Serve's
    inter-deployment gRPC channel instead of as Ray actor tasks (``_by_reference=False``)."""
    return serve.get_deployment_handle(MODELS_NAME, app_name=app_name).options(_by_reference=False)


class ModelHandle:
    """One served model: the models deployment's methods with the model's name bound."""

    def __init__(self, name: str, handle: DeploymentHandle) -> None:
        self.name = name
        self.handle = handle

    def predict(self, observation: Any) -> DeploymentResponse:
        return self.handle.predict.remote(self.name, observation)

    def predict_many(self, observations: Any) -> DeploymentResponse:
        return self.handle.predict_many.remote(self.name, observations)

    def metadata(self) -> DeploymentResponse:
        return self.handle.metadata.remote(self.name)


def model_handle(name: str, app_name: str = APP_NAME, by_value: bool = True) -> ModelHandle:
    """Model ``name`` of the running application (by value, as ``models_handle``; or the
    default by-reference handle)."""
    handle = serve.get_deployment_handle(MODELS_NAME, app_name=app_name)
    return ModelHandle(name, handle.options(_by_reference=False) if by_value else handle)
