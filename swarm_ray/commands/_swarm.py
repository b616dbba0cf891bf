"""Shared plumbing of the swarm commands: the config, Ray, and the live status view."""

from __future__ import annotations

import os
import socket
from typing import Any

from swarm_ray.core.config import load_config, resolve_path
from swarm_ray.runtime.config import SwarmConfig

DEFAULT_CONFIG = "configs/paper.yaml"


def load_swarm_config(path: str, **overrides: Any) -> SwarmConfig:
    cfg = load_config(resolve_path(path), SwarmConfig)
    return cfg.model_copy(update=overrides) if overrides else cfg


def init_ray(address: str | None, num_cpus: int | None = None) -> None:
    """Attach to the cluster at ``address`` (or ``RAY_ADDRESS``, as under ``ray job submit``),
    else start a local one. The swarm's own namespace keeps its actors findable."""
    import ray

    from swarm_ray.runtime.actors import NAMESPACE

    if ray.is_initialized():
        return
    address = address or os.environ.get("RAY_ADDRESS")
    kwargs: dict[str, Any] = {"namespace": NAMESPACE, "log_to_driver": False}
    if address:
        ray.init(address=address, **kwargs)
    else:
        ray.init(num_cpus=num_cpus, include_dashboard=False, **kwargs)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
