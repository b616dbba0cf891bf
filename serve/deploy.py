"""Deploy the application from its YAML config, and roll a model to another version.

The YAML (``configs/serve.yaml``, made with ``serve build``) is the single description of the
deployment: ``swarm-ray serve``, ``serve run`` and ``serve deploy`` all apply it. Applying a
config is declarative: a change of a deployment's ``user_config`` only calls ``reconfigure``
on the running replicas, so a model version is rolled out without restarting anything.
(``serve.run`` with a Python application would restart every replica on each call.)

Ray 2.60 has no public Python call to apply a config; this module uses the controller client
exactly as ``serve run <config>`` does, in ``_client`` and ``deploy`` only.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import yaml
from ray import serve
from ray.serve.schema import ServeApplicationSchema, ServeDeploySchema

from serve.app import APP_NAME, INGRESS_NAME, MODELS_NAME, ModelAppArgs, served_model_names
from serve.client import model_handle
from swarm_ray.core.config import ConfigError, resolve_path

DEFAULT_CONFIG = "configs/serve.yaml"


def load_deploy_config(path: str | Path = DEFAULT_CONFIG) -> ServeDeploySchema:
    """The Serve config at ``path`` (relative: to the repo root), validated by Serve's schema."""
    p = resolve_path(path)
    if not p.is_file():
        raise ConfigError(f"{p}: Serve config file not found")
    try:
        data = yaml.safe_load(p.read_text())
        config = ServeDeploySchema.model_validate(data)
    except Exception as exc:  # YAML or schema error: one clear message naming the file
        raise ConfigError(f"{p}: not a valid Serve config: {exc}") from None
    app_config(config)  # it must hold our application
    return config


def app_config(config: ServeDeploySchema, app_name: str = APP_NAME) -> ServeApplicationSchema:
    for app in config.applications:
        if app.name == app_name:
            return app
    raise ConfigError(f"the Serve config has no application named {app_name!r}")


def app_args(config: ServeDeploySchema, app_name: str = APP_NAME) -> ModelAppArgs:
    """The typed build arguments of our application in ``config``."""
    from swarm_ray.core.config import parse_config

    return parse_config(ModelAppArgs, app_config(config, app_name).args, f"{app_name}.args")


def configure(
    config: ServeDeploySchema,
    *,
    host: str | None = None,
    port: int | None = None,
    models_dir: str | None = None,
    models: list[str] | None = None,
    versions: dict[str, str | None] | None = None,
    app_name: str = APP_NAME,
) -> ServeDeploySchema:
    """A copy of ``config`` with the HTTP address, build args or model versions overridden.

    ``versions`` maps model names to a registry version (``None``: the newest); it is written
    to the models deployment's ``user_config`` (one entry per model), the field a rollout
    changes.
    """
    data = config.model_dump(exclude_unset=True)
    if host is not None:
        data.setdefault("http_options", {})["host"] = host
    if port is not None:
        data.setdefault("http_options", {})["port"] = port
    app = next(a for a in data["applications"] if a["name"] == app_name)
    args = dict(app.get("args") or {})
    if models_dir is not None:
        args["models_dir"] = models_dir
    if models is not None:
        args["models"] = list(models)
    app["args"] = args
    typed = ModelAppArgs.model_validate(args)
    names = served_model_names(typed)
    # deployment overrides may only name deployments the built application has
    deployments = [
        d for d in app.get("deployments", []) if d["name"] in {MODELS_NAME, INGRESS_NAME}
    ]
    entry = next((d for d in deployments if d["name"] == MODELS_NAME), None)
    if entry is None:
        entry = {"name": MODELS_NAME}
        deployments.append(entry)
    # one user_config entry per served model (a model dropped from the app loses its entry)
    per_model = {n: c for n, c in (entry.get("user_config") or {}).items() if n in names}
    for name, version in (versions or {}).items():
        if name not in names:
            raise ConfigError(f"no served model {name!r} to set a version for; serving {names}")
        per_model[name] = {**(per_model.get(name) or {}), "version": version}
    entry["user_config"] = {n: per_model.get(n) or {"version": None} for n in names}
    app["deployments"] = deployments
    return ServeDeploySchema.model_validate(data)


def _client():
    from ray.serve._private import api as private_api
    from ray.serve.config import gRPCOptions

    return private_api, gRPCOptions


def deploy(config: ServeDeploySchema, timeout_s: float = 300.0) -> str:
    """Start Serve (on the connected Ray cluster) and apply ``config``; wait until it runs.

    Returns the HTTP base URL. A failed deployment raises ``RuntimeError`` with Serve's message.
    """
    private_api, grpc_options = _client()
    client = private_api.serve_start(
        http_options=config.http_options.model_dump(),
        proxy_location=config.proxy_location,
        grpc_options=grpc_options(**config.grpc_options.model_dump()),
        global_logging_config=config.logging_config,
    )
    client.deploy_apps(config, _blocking=False)
    for app in config.applications:
        wait_running(app.name, timeout_s)
    http = config.http_options
    return f"http://{http.host}:{http.port}"


def wait_running(app_name: str = APP_NAME, timeout_s: float = 300.0) -> None:
    """Block until the application is RUNNING; raise with Serve's message if it fails."""
    deadline = time.monotonic() + timeout_s
    status = None
    while time.monotonic() < deadline:
        status = serve.status().applications.get(app_name)
        if status is not None:
            if status.status == "RUNNING":
                return
            if status.status == "DEPLOY_FAILED":
                raise RuntimeError(f"application {app_name!r} failed to deploy: {status.message}")
        time.sleep(0.2)
    raise TimeoutError(
        f"application {app_name!r} is not running after {timeout_s:g} s "
        f"(status {status.status if status else 'unknown'})"
    )


def deployed_config() -> ServeDeploySchema:
    """The config of every application deployed from a config (``serve deploy``/``run``)."""
    from ray.serve.context import _get_global_client
    from ray.serve.schema import ServeInstanceDetails

    details = ServeInstanceDetails(**_get_global_client().get_serve_details())
    apps = [
        a.deployed_app_config.model_dump(exclude_unset=True)
        for a in details.applications.values()
        if a.deployed_app_config is not None
    ]
    return ServeDeploySchema.model_validate({"applications": apps})


def rollout(
    versions: dict[str, str | None],
    app_name: str = APP_NAME,
    timeout_s: float = 120.0,
) -> dict[str, str]:
    """Roll the running models to ``versions`` (name -> ``vN``, or ``None``: the newest).

    Only the models deployment's ``user_config`` changes, so replicas keep running and answering;
    each loads the version next to the current one and swaps. ``None`` is resolved to the
    newest version now and pinned (re-applying an unchanged ``version: null`` would not call
    ``reconfigure``). Returns the served versions.
    """
    current = deployed_config()
    if all(a.name != app_name for a in current.applications):
        import ray

        raise RuntimeError(
            f"no application {app_name!r} deployed from a config on the Ray cluster at "
            f"{ray.get_runtime_context().gcs_address}; start it with `swarm-ray serve`, "
            "`serve run configs/serve.yaml` or `serve deploy`"
        )
    resolved: dict[str, str | None] = {}
    for name, version in versions.items():
        meta = model_handle(name, app_name, by_value=False).metadata().result()
        available = meta["available_versions"]
        if version is not None and version not in available:
            # refused here: a replica whose reconfigure fails is replaced, not kept
            raise ValueError(f"{name} has no version {version!r}; available: {available}")
        resolved[name] = version or available[-1]
    updated = configure(current, versions=resolved, app_name=app_name)
    from ray.serve.context import _get_global_client

    _get_global_client().deploy_apps(updated, _blocking=False)
    return wait_versions(resolved, app_name, timeout_s)


def wait_versions(
    versions: dict[str, str | None], app_name: str = APP_NAME, timeout_s: float = 120.0
) -> dict[str, str]:
    """Block until each named model is HEALTHY and answers with the wanted version.

    (A handle call reaches one replica: with several replicas, the HEALTHY status after the
    config update is what says that all of them reconfigured.)
    """
    deadline = time.monotonic() + timeout_s
    served: dict[str, str] = {}
    for name, version in versions.items():
        handle = model_handle(name, app_name, by_value=False)
        while True:
            meta: dict[str, Any] = handle.metadata().result(timeout_s=timeout_s)
            wanted = version or meta["available_versions"][-1]
            if meta["version"] == wanted and serve_settled(app_name, MODELS_NAME):
                served[name] = wanted
                break
            if time.monotonic() > deadline:
                raise TimeoutError(f"{name} still serves {meta['version']}, not {wanted}")
            time.sleep(0.2)
    return served


def serve_settled(app_name: str, deployment: str) -> bool:
    app = serve.status().applications.get(app_name)
    if app is None or app.status != "RUNNING":
        return False
    d = app.deployments.get(deployment)
    return d is not None and d.status == "HEALTHY"
