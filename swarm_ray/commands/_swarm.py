"""Shared plumbing of the swarm commands: the config, Ray, and the live status view."""

from __future__ import annotations

import logging
import socket
from typing import Any

from swarm_ray.core.config import load_config, resolve_path
from swarm_ray.runtime.config import SwarmConfig, resolve_storage

DEFAULT_CONFIG = "configs/paper.yaml"


def load_swarm_config(path: str, **overrides: Any) -> SwarmConfig:
    """The swarm config at ``path`` with its output paths absolute under the storage root
    (``SWARM_RAY_STORAGE``, else its ``storage:``, else the working directory)."""
    cfg = load_config(resolve_path(path), SwarmConfig)
    return resolve_storage(cfg.model_copy(update=overrides) if overrides else cfg)


def init_ray(address: str | None, num_cpus: int | None = None, *, hidden: bool = False) -> None:
    """Attach to the cluster at ``address`` (or ``RAY_ADDRESS``, as under ``ray job submit``),
    with its token, else start a local one. The swarm's own namespace keeps its actors
    findable; ``hidden`` drivers (status, stop) stay out of the Ray Jobs list."""
    from swarm_ray.runtime.actors import NAMESPACE
    from swarm_ray.runtime.connect import HIDDEN_NAMESPACE, connect

    if hidden:  # a quick look: no job in the Jobs list, no "connecting" lines
        connect(address, namespace=HIDDEN_NAMESPACE, logging_level=logging.WARNING)
    else:
        connect(address, num_cpus=num_cpus, namespace=NAMESPACE)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
