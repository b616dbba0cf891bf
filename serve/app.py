"""The ``swarm_models`` Serve application: one deployment hosting every registry model, plus
HTTP.

    serve run configs/serve.yaml          # from the repository root
    serve deploy configs/serve.yaml       # to a running cluster (ray start --head)
    swarm-ray serve                       # the same from the project CLI

``build_app`` is a typed application builder (``import_path: serve.app:build_app`` with
``args:`` in the YAML). The models' deployment is named ``models``; each replica holds every
model, so the swarm's coordinator gets all four answers of a cycle in one request
(``serve.client.models_handle``; one model: ``serve.client.model_handle("risk_manager")``).

The defaults below were measured on a 2-core machine (``scripts/bench_serve.py``; the
measurements are on the serving page of the docs).
"""

# No ``from __future__ import annotations`` here: Serve converts a builder's ``args`` dict to
# the pydantic model only when the parameter annotation is a class, not a string.

from pathlib import Path

from pydantic import Field, field_validator
from ray import serve

from envs.config import StrictModel
from serve.client import APP_NAME, CALLER_ENV, MODELS_NAME

__all__ = [
    "APP_NAME",
    "INGRESS_NAME",
    "MODELS_NAME",
    "ModelAppArgs",
    "build_app",
    "served_model_names",
]

INGRESS_NAME = "ModelsAPI"


class ModelAppArgs(StrictModel):
    """Build arguments of the application (changing them restarts the replicas; a model
    version is rolled out through the deployment's ``user_config`` instead)."""

    models_dir: str = Field(
        "models", description="model registry (relative: under SWARM_RAY_STORAGE, else the repo)"
    )
    models: list[str] | None = Field(None, description="models to serve; null = every model")
    num_replicas: int = Field(1, ge=1, description="replicas of the models deployment")
    replica_cpus: float = Field(
        0.2, gt=0, le=16, description="CPUs Ray reserves per replica (scheduling only)"
    )
    torch_threads: int = Field(1, ge=1, le=64, description="torch intra-op threads per replica")
    max_batch_size: int = Field(64, ge=1, le=1024, description="observations per forward pass")
    batch_wait_timeout_s: float = Field(
        0.0, ge=0, le=1, description="wait for more callers before a pass (0: take what queued)"
    )
    max_ongoing_requests: int = Field(
        512,
        ge=1,
        description="requests a model replica holds at once; keep above the concurrent callers",
    )
    max_queued_requests: int = Field(
        256, ge=-1, description="requests queued per caller before BackPressureError (-1: no cap)"
    )
    request_timeout_s: float = Field(
        2.0, gt=0, description="how long the HTTP API waits for a model answer (then 504)"
    )
    health_check_period_s: float = Field(10.0, gt=0)
    health_check_timeout_s: float = Field(30.0, gt=0)

    @field_validator("models")
    @classmethod
    def _unique(cls, v: list[str] | None) -> list[str] | None:
        if v is not None:
            if not v:
                raise ValueError("list no model, or null for every registry model")
            if len(set(v)) != len(v):
                raise ValueError(f"a model is listed twice: {v}")
        return v


def registry_path(models_dir: str) -> Path:
    """The registry as an absolute path (replicas do not share the caller's working dir):
    relative to the storage root (``swarm_ray.core.storage``)."""
    from swarm_ray.core.storage import storage_root

    return storage_root().registry(models_dir, "models_dir").resolve()


def served_model_names(args: ModelAppArgs) -> list[str]:
    """The models the application serves; an unknown name is an error naming the known ones."""
    from swarm_ray.registry.policies import list_models

    root = registry_path(args.models_dir)
    known = [c["name"] for c in list_models(root)]
    if not known:
        raise ValueError(f"no model in the registry at {root}")
    if args.models is None:
        return known
    missing = [m for m in args.models if m not in known]
    if missing:
        raise ValueError(f"models {missing} are not in the registry at {root}; known: {known}")
    return list(args.models)


def build_app(args: ModelAppArgs) -> serve.Application:
    """The application: one ``ModelsDeployment`` (every model, named ``models``) and the HTTP
    API."""
    from serve.deployments import ModelsAPI, ModelsDeployment

    if isinstance(args, dict):  # called directly with a plain mapping
        args = ModelAppArgs.model_validate(args)
    root = str(registry_path(args.models_dir))
    names = served_model_names(args)
    models = ModelsDeployment.options(
        name=MODELS_NAME,
        num_replicas=args.num_replicas,
        ray_actor_options={"num_cpus": args.replica_cpus},
        max_ongoing_requests=args.max_ongoing_requests,
        max_queued_requests=args.max_queued_requests,
        user_config={n: {"version": None} for n in names},
        health_check_period_s=args.health_check_period_s,
        health_check_timeout_s=args.health_check_timeout_s,
        # measured: the access log line costs ~0.3 ms of replica CPU per request; the
        # HTTP API keeps its access log
        logging_config={"enable_access_log": False},
    ).bind(root, names, args.max_batch_size, args.batch_wait_timeout_s, args.torch_threads)
    return ModelsAPI.options(
        name=INGRESS_NAME,
        ray_actor_options={"num_cpus": 0.1, "runtime_env": {"env_vars": dict(CALLER_ENV)}},
        # the API only awaits the models
        max_ongoing_requests=args.max_ongoing_requests,
        max_queued_requests=args.max_queued_requests,
    ).bind(models, names, args.request_timeout_s)


def __getattr__(name: str) -> serve.Application:
    # ``serve build serve.app:app`` needs an Application attribute; built on access only, so
    # importing this module never reads the registry.
    if name == "app":
        return build_app(ModelAppArgs())
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
