"""The panel on Ray Serve: one FastAPI ingress replica (no CPU reserved) beside the model app,
at ``/panel/`` on Serve's HTTP proxy (``127.0.0.1`` unless Serve was started otherwise).

Deployed imperatively as its own application (``swarm_ray_panel``), so a ``serve deploy`` of the
model app leaves it alone. Only the token's digest is passed to the replica.
"""

from __future__ import annotations

import logging
from typing import Any

from ray import serve

from swarm_ray.panel.app import PanelSettings, create_app
from swarm_ray.panel.live import RayLive

__all__ = ["APP_NAME", "ROUTE_PREFIX", "start_panel", "stop_panel"]

log = logging.getLogger(__name__)
APP_NAME = "swarm_ray_panel"
ROUTE_PREFIX = "/panel"


@serve.deployment(
    name="panel",
    num_replicas=1,
    ray_actor_options={"num_cpus": 0},
    health_check_period_s=10,
)
@serve.ingress()
class PanelDeployment:
    """The panel's server: reads the run's journals, asks the coordinators for live status."""

    def __init__(self, settings: PanelSettings) -> None:
        self._app = create_app(settings, live=RayLive())

    def __serve_build_asgi_app__(self) -> Any:
        return self._app


def start_panel(
    settings: PanelSettings, *, http_host: str = "127.0.0.1", http_port: int = 8000
) -> str:
    """Deploy the panel with ``settings`` (Serve starts on ``http_host:http_port`` if it is
    not running yet); returns its URL. Replaces a panel already deployed on this cluster."""
    serve.start(http_options={"host": http_host, "port": http_port})
    serve.run(
        PanelDeployment.bind(settings), name=APP_NAME, route_prefix=ROUTE_PREFIX, blocking=False
    )
    return panel_url()


def panel_url() -> str:
    """The panel's URL on this cluster's Serve proxy (the host and port Serve runs on)."""
    from ray.serve.context import _get_global_client

    http = _get_global_client().get_serve_details().get("http_options", {})
    host = http.get("host") or "127.0.0.1"
    host = "127.0.0.1" if host in ("0.0.0.0", "") else host
    return f"http://{host}:{http.get('port', 8000)}{ROUTE_PREFIX}/"


def stop_panel() -> None:
    try:
        serve.delete(APP_NAME)
    except Exception as exc:  # the run is over either way
        log.warning("could not remove the panel app %r: %s", APP_NAME, exc)
