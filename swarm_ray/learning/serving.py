"""Switching a model's champion: the one step a promotion and a rollback both take.

:func:`switch_champion` makes a registry version the champion of its model
(``registry.champions``) and, when a Serve application serves that registry on the connected
Ray cluster, the version Serve answers with. In this order:

1. health check: the version is loaded as Serve loads it and probed with a neutral
   observation; a version that cannot load or answers NaN is refused and nothing changes;
2. Serve: the model's entry in the models deployment's ``user_config`` is rolled to the
   version (``serve.deploy.rollout``: a ``reconfigure``, no restart, no failed request). A
   rollout that fails is rolled back to the version served before (best effort) and raises;
   ``champions.json`` is left as it was;
3. the decision is recorded in ``champions.json`` (an atomic write).

A crash between any two steps therefore leaves Serve answering with the old version or the new
one, never with none, and ``champions.json`` naming a version that exists. After a crash
between 2 and 3, Serve answers with the new version while ``champions.json`` still names the
old one; ``swarm-ray models`` shows both, and the new version as unpromoted.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Literal

from serve.client import APP_NAME
from swarm_ray.core.errors import CommandError

__all__ = [
    "RolloutFailed",
    "SwitchError",
    "UnhealthyVersion",
    "check_version",
    "health_check",
    "served_versions",
    "switch_champion",
]

log = logging.getLogger(__name__)

ROLLOUT_TIMEOUT_S = 120.0


class SwitchError(CommandError):
    """The champion was not switched; the message says why and what is served."""


class UnhealthyVersion(SwitchError):
    """The version failed its health check (cannot load, or answers a probe wrongly)."""


class RolloutFailed(SwitchError):
    """Serve could not be rolled to the version; ``champions.json`` is unchanged."""


def check_version(models_dir: str | Path, role: str, version: str | None = None) -> None:
    """Raise ``RegistryError`` unless the registry has model ``role`` (and its ``version``, if
    given), naming what there is."""
    from swarm_ray.registry.files import RegistryError
    from swarm_ray.registry.policies import versions

    root = Path(models_dir)
    found = versions(root, role)
    if not found:
        known = sorted(p.name for p in root.iterdir() if p.is_dir() and versions(root, p.name))
        raise RegistryError(
            f"no model {role!r} in the registry at {root} (models: {', '.join(known) or 'none'})"
        )
    if version is not None and version not in found:
        raise RegistryError(
            f"{role} has no version {version!r} in the registry at {root} "
            f"(versions: {', '.join(found)})"
        )


def health_check(models_dir: str | Path, role: str, version: str, seed: int = 0) -> None:
    """Load ``role`` ``version`` as a Serve replica would, probe it, and ask it about 256 random
    observations within its bounds (``ServedModel.answer`` refuses a non-finite output or an
    invalid confidence); ``UnhealthyVersion`` naming the model and version if any of it fails."""
    import numpy as np

    from serve.models import load_served_model, probe

    try:
        model = load_served_model(models_dir, role, version)
        if model.name != role:
            raise ValueError(f"its model card names {model.name!r}")
        probe(model)
        dim = model.observation_dim
        low = np.clip(np.asarray(model.observation_low or [-3.0] * dim), -10, 10)
        high = np.clip(np.asarray(model.observation_high or [3.0] * dim), -10, 10)
        rows = np.random.default_rng(seed).uniform(low, high, (256, dim)).astype(np.float32)
        model.answer(rows)
    except Exception as exc:
        raise UnhealthyVersion(
            f"{role} {version} failed its health check, nothing was changed: {exc}"
        ) from exc


def _app_registry(config: Any, app_name: str) -> Path:
    from serve.app import registry_path
    from serve.deploy import app_args

    return registry_path(app_args(config, app_name).models_dir)


def served_versions(
    models_dir: str | Path, app_name: str = APP_NAME, timeout_s: float = 30.0
) -> dict[str, str] | None:
    """``{model: version}`` the Serve application ``app_name`` answers with, when it runs on
    the connected Ray cluster and serves the registry at ``models_dir``; ``None`` otherwise
    (Ray not initialised, no Serve, no such application, or one serving another registry)."""
    import ray

    if not ray.is_initialized():
        return None
    from serve.client import MODELS_NAME, model_handle
    from serve.deploy import deployed_config

    try:
        config = deployed_config()
    except Exception:  # no Serve instance on this cluster
        return None
    if all(a.name != app_name for a in config.applications):
        return None
    if _app_registry(config, app_name).resolve() != Path(models_dir).resolve():
        return None
    from ray import serve

    names = (
        serve.get_deployment_handle(MODELS_NAME, app_name=app_name)
        .names.remote()
        .result(timeout_s=timeout_s)
    )
    return {
        name: model_handle(name, app_name, by_value=False)
        .metadata()
        .result(timeout_s=timeout_s)["version"]
        for name in sorted(names)
    }


def _serve_target(
    models_dir: Path, role: str, serve_app: bool | Literal["auto"], app_name: str
) -> str | None:
    """The version Serve answers with for ``role`` now, if the switch must roll Serve too
    (``None``: the registry alone)."""
    if serve_app is False:
        return None
    served = served_versions(models_dir, app_name)
    if served is not None and role in served:
        return served[role]
    if serve_app == "auto":
        return None
    import ray

    where = (
        f"the Ray cluster at {ray.get_runtime_context().gcs_address}"
        if ray.is_initialized()
        else "no Ray cluster (Ray is not initialised)"
    )
    raise SwitchError(
        f"serve_app=True, but no Serve application {app_name!r} serving {role} from the "
        f"registry at {models_dir} runs on {where}; nothing was changed"
    )


def _roll_serve(role: str, version: str, before: str, app_name: str, timeout_s: float) -> None:
    """Roll Serve to ``version``; on failure, back to ``before`` (best effort), then raise."""
    from serve.deploy import rollout

    try:
        rollout({role: version}, app_name=app_name, timeout_s=timeout_s)
    except Exception as exc:
        try:
            rollout({role: before}, app_name=app_name, timeout_s=max(timeout_s, 60.0))
            restored = f"Serve was rolled back to {before}"
        except Exception as again:
            restored = f"rolling Serve back to {before} failed too ({again!r})"
            log.exception("rolling %s back to %s failed", role, before)
        raise RolloutFailed(
            f"rolling {role} out to {version} on Serve failed ({exc!r}); {restored}; the "
            "champion was not changed"
        ) from exc


def switch_champion(
    models_dir: str | Path,
    role: str,
    version: str,
    event: str,
    *,
    details: Mapping[str, Any] | None = None,
    serve_app: bool | Literal["auto"] = "auto",
    app_name: str = APP_NAME,
    before_record: Callable[[], None] | None = None,
    timeout_s: float = ROLLOUT_TIMEOUT_S,
) -> dict[str, Any]:
    """Make ``version`` the champion of ``role``: health check, Serve rollout, record.

    ``event``: ``promoted`` or ``rollback`` (``registry.champions.EVENTS``); ``details`` go to
    its history record (parent, evidence, reason, ...). ``serve_app``: ``"auto"`` rolls Serve
    when Ray is initialised and the application ``app_name`` serves this registry's ``role``
    there; ``True`` requires that (``SwitchError`` otherwise); ``False`` changes the registry
    only. ``before_record`` is called between the rollout and the record (tests use it to
    crash there). ``timeout_s``: how long the rollout may take.

    Returns ``{role, version, previous, event, served_by}`` (``served_by``: ``"serve"`` when
    Serve was rolled, ``"registry"`` when only ``champions.json`` changed). Raises
    ``RegistryError`` for an unknown model or version, ``UnhealthyVersion`` for a version that
    fails its health check, ``RolloutFailed`` for a failed rollout (Serve rolled back, nothing
    recorded).
    """
    from swarm_ray.registry.champions import EVENTS, record_champion, serving_version

    if event not in EVENTS:
        raise ValueError(f"event must be one of {EVENTS}, not {event!r}")
    root = Path(models_dir)
    check_version(root, role, version)
    previous = serving_version(root, role)
    health_check(root, role, version)
    served_before = _serve_target(root, role, serve_app, app_name)
    if served_before is not None:
        _roll_serve(role, version, served_before, app_name, timeout_s)
    if before_record is not None:
        before_record()
    record_champion(root, role, version, event, **dict(details or {}))
    return {
        "role": role,
        "version": version,
        "previous": previous,
        "event": event,
        "served_by": "serve" if served_before is not None else "registry",
    }
