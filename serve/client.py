"""How a caller (a swarm agent, the HTTP API, a benchmark) reaches a served model fast.

    handle = model_handle("risk_manager")
    answer = await handle.predict.remote(observation)      # one observation
    answers = await handle.predict_many.remote(rows)       # (n, dim), one forward pass

``serve.get_deployment_handle(name, app_name="swarm_models")`` works the same; the two settings
below are what made the difference in ``scripts/bench_serve.py`` on 2 cores (see the serving
page of the docs): single requests at ~1.3 ms instead of ~2.2 ms (p50), and nearly
twice the requests per second from many concurrent callers.
"""

from __future__ import annotations

from ray import serve
from ray.serve.handle import DeploymentHandle

APP_NAME = "swarm_models"
"""The Serve application that hosts every registry model."""

# Put in the runtime_env of an async actor that calls the models (``env_vars``): the Serve
# router then runs on the actor's own event loop instead of a second loop in another thread.
# Handles are then usable only from inside the event loop (``await``, not ``.result()``).
CALLER_ENV: dict[str, str] = {"RAY_SERVE_RUN_ROUTER_IN_SEPARATE_LOOP": "0"}


def model_handle(name: str, app_name: str = APP_NAME) -> DeploymentHandle:
    """A handle on model ``name`` that sends requests by value over Serve's inter-deployment
    gRPC channel instead of as Ray actor tasks (``_by_reference=False`` in Ray 2.60)."""
    return serve.get_deployment_handle(name, app_name=app_name).options(_by_reference=False)
