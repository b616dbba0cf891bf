"""Shared plumbing of the swarm commands: the config, Ray, and the live status view."""

from __future__ import annotations

import logging
import socket
from typing import Any

from swarm_ray.core.config import load_config, resolve_path
from swarm_ray.core.storage import storage_root
from swarm_ray.panel.auth import PanelToken
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


def start_panel(cfg: SwarmConfig, http_port: int | None, token_dir: str | None = None) -> list[str]:
    """Deploy the control panel for ``cfg``'s run unless its config turns it off; returns the
    lines that tell the operator where it is and where its token comes from (a generated
    token off a terminal: a file in ``token_dir``, default the storage root)."""
    if not cfg.panel.enabled:
        return []
    from swarm_ray.panel.app import PanelSettings
    from swarm_ray.panel.deploy import start_panel as deploy_panel

    token = panel_token()
    settings = PanelSettings(
        journal_dir=cfg.journal_dir,
        token_digest=token.digest,
        public_read=cfg.panel.public_read,
        threshold=cfg.consensus.threshold,
        refresh_s=cfg.panel_refresh_s,
        title=f"swarm-ray {cfg.run_id}",
    )
    try:
        url = deploy_panel(settings, http_port=http_port or 8000)
    except Exception as exc:  # the swarm trades without its panel; say why there is none
        first = (str(exc).strip().splitlines() or [""])[0]
        return [f"panel: not started ({type(exc).__name__}: {first})"]
    folder = token_dir or storage_root(cfg.storage).local_path(".", "storage root")
    return [f"panel: {url}", token_notice(token, folder)]


def token_notice(token: PanelToken, folder: str) -> str:
    """Where the panel's operator token comes from, in one line: the environment; else, on a
    terminal, the generated token itself (shown this once); else (a job's log, a pipe) the
    file ``panel_token`` in ``folder``, readable by its owner only."""
    import os
    import sys
    from pathlib import Path

    from swarm_ray.panel.auth import TOKEN_ENV

    if not token.generated:
        return f"panel operator token: the one in {TOKEN_ENV}"
    if sys.stdout.isatty():
        return (f"panel operator token (shown once; set {TOKEN_ENV} to choose it): "
                f"{token.reveal()}")  # fmt: skip
    path = Path(folder) / "panel_token"
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(token.reveal() + "\n")
    os.chmod(path, 0o600)
    return f"panel operator token: in {path} (readable by its owner only)"


def panel_token() -> PanelToken:
    """The operator token from the environment (or a new one); a bad one stops the command."""
    from swarm_ray.core.errors import CommandError

    try:
        return PanelToken.from_env()
    except ValueError as exc:
        raise CommandError(str(exc)) from None
