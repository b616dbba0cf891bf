"""Starting, stopping and inspecting a swarm run on Ray.

``start_swarm`` starts the coordinator actors (one per symbol by default, each hosting the
swarm's agents), placed round-robin over the alive nodes; the actors themselves are in
``swarm_ray.runtime.actors``. The agents' models run on Ray Serve (``ensure_models_served``).
"""

from __future__ import annotations

import logging
from typing import Any

import ray
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from serve.client import CALLER_ENV
from swarm_ray.runtime.actors import NAMESPACE, CoordinatorActor, coordinator_name
from swarm_ray.runtime.config import SwarmConfig, resolve_storage

__all__ = [
    "CoordinatorActor",
    "coordinator_name",
    "coordinator_symbols",
    "ensure_models_served",
    "release_models",
    "start_swarm",
    "swarm_status",
]

log = logging.getLogger(__name__)


# ------------------------------------------------------------------ orchestration


def ensure_models_served(cfg: SwarmConfig, http_port: int | None = None) -> bool:
    """Deploy the model app from ``configs/serve.yaml`` (its tuned settings, with this run's
    registry and HTTP port) unless it is already running. True when this call deployed it: the
    caller then owns it and hands it back with :func:`release_models` when the run ends."""
    if cfg.agents.inference != "serve":
        return False
    from ray import serve

    from serve.app import APP_NAME
    from serve.deploy import configure, deploy, load_deploy_config

    try:
        apps = serve.status().applications
    except Exception:  # Serve not started on this cluster yet
        apps = {}
    if APP_NAME in apps and apps[APP_NAME].status == "RUNNING":
        return False
    cfg = resolve_storage(cfg)  # the registry's absolute path (no-op for a loaded config)
    config = configure(load_deploy_config(), port=http_port, models_dir=cfg.models_dir)
    deploy(config)
    return True


def release_models() -> None:
    """Delete the model app so that a finished run leaves the cluster's CPUs to the next job
    (a Serve app outlives the driver that deployed it). Serve itself (its controller and
    proxies, which hold no CPU) stays up for other apps."""
    from ray import serve

    from serve.app import APP_NAME

    try:
        serve.delete(APP_NAME)
    except Exception as exc:  # the run is over either way; say what was left behind
        log.warning("could not remove the model app %r: %s", APP_NAME, exc)


def start_swarm(cfg: SwarmConfig, detached: bool = False) -> dict[str, Any]:
    """One coordinator actor per symbol group; returns {name: handle} of each (keep it:
    non-detached actors die with their last handle). Relative paths of ``cfg`` resolve here,
    on the driver, so every actor gets the same absolute ones."""
    cfg = resolve_storage(cfg)
    handles: dict[str, Any] = {}
    data = cfg.model_dump(mode="json")
    per = cfg.cycle.symbols_per_coordinator
    groups = [list(cfg.symbols[i : i + per]) for i in range(0, len(cfg.symbols), per)]
    nodes = _alive_nodes()
    for i, g in enumerate(groups):
        name = coordinator_name(g)
        handles[name] = CoordinatorActor.options(
            name=name,
            namespace=NAMESPACE,
            get_if_exists=True,
            lifetime="detached" if detached else None,
            max_concurrency=16,
            # Serve's router on the actor's own event loop (see serve/client.py CALLER_ENV)
            runtime_env={"env_vars": dict(CALLER_ENV)},
            # symbols round-robin over the cluster's nodes (soft: elsewhere if that node is gone)
            scheduling_strategy=NodeAffinitySchedulingStrategy(nodes[i % len(nodes)], soft=True)
            if nodes
            else "SPREAD",
        ).remote(g, data)
    try:  # connect every coordinator to the models before the first cycle counts
        ray.get([h.warm_up.remote() for h in handles.values()], timeout=60)
    except Exception as exc:  # the swarm still starts; its agents vote safe until it works
        log.warning("model warm-up failed: %s", exc)
    return handles


def _alive_nodes() -> list[str]:
    """Ids of the alive nodes, head first (stable order for round-robin placement)."""
    nodes = [n for n in ray.nodes() if n.get("Alive")]
    nodes.sort(
        key=lambda n: (not n.get("Resources", {}).get("node:__internal_head__"), n["NodeID"])
    )
    return [n["NodeID"] for n in nodes]


def find_coordinators() -> dict[str, Any]:
    """Every coordinator actor alive in the namespace (for status/stop from another driver)."""
    from ray.util import list_named_actors

    out = {}
    for a in list_named_actors(all_namespaces=True):
        if a.get("namespace") == NAMESPACE and a["name"].startswith("coordinator:"):
            out[a["name"]] = ray.get_actor(a["name"], namespace=NAMESPACE)
    return out


def coordinator_symbols(handles: dict[str, Any], timeout_s: float = 10.0) -> dict[str, tuple]:
    """The symbols each coordinator trades, by coordinator name (those that answer)."""
    out = {}
    for name, h in handles.items():
        try:
            out[name] = tuple(ray.get(h.traded_symbols.remote(), timeout=timeout_s))
        except Exception as exc:  # a dead coordinator trades nothing now
            log.warning("%s did not answer: %s", name, exc)
    return out


def swarm_status(timeout_s: float = 10.0) -> dict[str, Any]:
    handles = find_coordinators()
    refs = {n: h.status.remote() for n, h in handles.items()}
    out = {}
    for n, ref in refs.items():
        try:
            out[n] = ray.get(ref, timeout=timeout_s)
        except Exception as exc:
            out[n] = {"name": n, "error": f"{type(exc).__name__}: {exc}"}
    return out


def resolve_journal_dir(cfg: SwarmConfig) -> SwarmConfig:
    """The config with every output path absolute under the storage root (journal, paper
    account) and its registry located: ``swarm_ray.runtime.config.resolve_storage``."""
    return resolve_storage(cfg)
