"""Connecting a command to Ray: a local cluster, or the cluster at an address, with Ray's token
authentication and a fast, one-line failure when the cluster cannot be reached.

Ray 2.60 turns token authentication on for a new cluster. Ray's own ``ray.init("auto")`` uses
the token it finds (``RAY_AUTH_TOKEN``, ``RAY_AUTH_TOKEN_PATH`` or ``~/.ray/auth_token``), but
an explicit address or ``ray job submit`` does not unless ``RAY_AUTH_MODE=token`` is set. Every
swarm-ray entry point goes through :func:`connect`, which does what Ray's CLI does for ``auto``
for any address: when ``RAY_AUTH_MODE`` is unset and a token is available, token auth is on.
``RAY_AUTH_MODE`` set by the user is always respected.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import sys
from collections.abc import Iterator
from typing import Any

from swarm_ray.core.errors import CommandError
from swarm_ray.core.logs import ENV_LOG_LEVEL, JsonFormatter, log_format

__all__ = [
    "HIDDEN_NAMESPACE",
    "ClusterUnavailable",
    "check_dashboard",
    "connect",
    "enable_token_auth_if_available",
    "probe",
]

# Drivers in namespaces starting with ``_ray_internal_`` are left out of the Ray Jobs list, so a
# ``swarm-ray status`` or ``stop`` does not show up there as a job of its own.
HIDDEN_NAMESPACE = "_ray_internal_swarm_ray"

PROBE_TIMEOUT_S = 3.0

_NO_TOKEN = (
    "the Ray cluster at {address} requires an authentication token and none was found here: "
    "copy the head node's ~/.ray/auth_token to this machine (or set RAY_AUTH_TOKEN / "
    "RAY_AUTH_TOKEN_PATH); `ray get-auth-token` on the head node prints it"
)


class ClusterUnavailable(CommandError):
    """The cluster cannot be used: unreachable, or it refused our credentials. The message is
    one line that says what to do."""


def enable_token_auth_if_available() -> bool:
    """Token auth on when ``RAY_AUTH_MODE`` is unset and a token exists (as Ray's CLI does for
    a local cluster, without its warning); True when token auth is on for this process and
    its children."""
    from ray._private.authentication import authentication_token_setup as setup
    from ray._raylet import AuthenticationTokenLoader

    mode = os.environ.get(setup.AUTH_MODE_ENV_VAR)
    if mode is not None:
        return mode.lower() == "token"
    if not AuthenticationTokenLoader.instance().has_token(ignore_auth_mode=True):
        return False
    setup._enable_token_auth()
    return True


def _host_port(address: str) -> tuple[str, int] | None:
    """``host:port`` of a GCS address (``ray://`` and ``http(s)://`` prefixes allowed)."""
    a = address.split("://", 1)[-1].split("/", 1)[0]
    host, sep, port = a.rpartition(":")
    if not sep or not port.isdigit():
        return None
    return host.strip("[]") or "127.0.0.1", int(port)


def probe(address: str, timeout_s: float = PROBE_TIMEOUT_S) -> None:
    """Raise :class:`ClusterUnavailable` unless something listens at ``address`` (a TCP
    connect within ``timeout_s``); Ray's own client retries for minutes before giving up."""
    hp = _host_port(address)
    if hp is None:
        raise ClusterUnavailable(f"not a Ray cluster address: {address!r} (want HOST:PORT)")
    try:
        with socket.create_connection(hp, timeout=timeout_s):
            pass
    except OSError as exc:
        reason = "timed out" if isinstance(exc, TimeoutError) else (exc.strerror or str(exc))
        raise ClusterUnavailable(
            f"cannot reach the Ray cluster at {hp[0]}:{hp[1]} ({reason}); is `ray start --head` "
            "running there, and is the port open?"
        ) from None


def _resolve(address: str) -> str:
    """``auto`` -> the address of the cluster ``ray start`` left on this machine."""
    if address != "auto":
        return address
    from ray._private.services import canonicalize_bootstrap_address

    try:
        found = canonicalize_bootstrap_address("auto")
    except ConnectionError:
        found = None
    if not found:
        raise ClusterUnavailable(
            "no Ray cluster is running on this machine (`ray start --head` starts one; "
            "--address HOST:PORT names another)"
        )
    return found


@contextlib.contextmanager
def _native_stderr_silenced() -> Iterator[None]:
    """File descriptor 2 to /dev/null for the block (Python's own stderr is flushed first)."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _refused(what: str, address: str, has_token: bool) -> ClusterUnavailable:
    """The one line for a cluster that turned us away: our token refused, or none sent."""
    if has_token:
        return ClusterUnavailable(
            f"{what} refused this machine's authentication token: use the head node's token "
            "(`ray get-auth-token` there prints it)"
        )
    return ClusterUnavailable(_NO_TOKEN.format(address=address))


def _check_gcs(address: str, has_token: bool, timeout_s: float = PROBE_TIMEOUT_S) -> None:
    """One authenticated request to the cluster's GCS, so a refused token is one line now
    rather than a retry loop and a traceback later."""
    from ray._raylet import GcsClient
    from ray.exceptions import AuthenticationError

    try:
        with _native_stderr_silenced():  # Ray's C++ client logs each refusal on fd 2 itself
            GcsClient(address=address).internal_kv_get(
                b"session_name", b"session", timeout=timeout_s
            )
    except AuthenticationError:
        raise _refused(f"the Ray cluster at {address}", address, has_token) from None
    except Exception as exc:
        raise ClusterUnavailable(
            f"{address} does not answer as a Ray cluster ({type(exc).__name__}); is it the "
            "GCS address (HOST:6379 by default)?"
        ) from None


def connect(
    address: str | None = None,
    *,
    num_cpus: int | None = None,
    namespace: str | None = None,
    include_dashboard: bool | None = False,
    **kwargs: Any,
) -> None:
    """``ray.init`` for a command. ``address`` (else ``RAY_ADDRESS``, as under ``ray job
    submit``): attach to that cluster, with its token, failing within seconds when it is not
    there; none: start a local cluster of ``num_cpus``. A no-op when Ray is up already."""
    import ray

    if ray.is_initialized():
        return
    address = address or os.environ.get("RAY_ADDRESS") or None
    init = {"namespace": namespace, "log_to_driver": False, **kwargs}
    if log_format() == "json":  # the driver's and every actor's Python logs as JSON lines
        import ray.serve  # Serve sets up its driver-side logger on import

        for handler in logging.getLogger("ray.serve").handlers:
            handler.setFormatter(JsonFormatter())
        init.setdefault(
            "logging_config",
            ray.LoggingConfig(
                encoding="JSON",
                log_level=os.environ.get(ENV_LOG_LEVEL, "INFO"),
                additional_log_standard_attrs=["name"],
            ),
        )
    if address is None:
        if os.environ.get("RAY_AUTH_MODE") is None:
            # token auth on, as Ray 2.60 does for a new cluster, without its warning
            from ray._private.authentication import authentication_token_setup as setup

            setup._enable_token_auth()
        ray.init(num_cpus=num_cpus, include_dashboard=include_dashboard, **init)
        return
    if address.startswith(("http://", "https://")):
        raise ClusterUnavailable(
            f"{address} is a dashboard address (for `ray job submit`); a driver attaches to "
            "the cluster's GCS address, HOST:6379 by default, or `auto` on a cluster node"
        )
    has_token = enable_token_auth_if_available()
    if not address.startswith("ray://"):
        address = _resolve(address)
        probe(address)
        _check_gcs(address, has_token)
    try:
        ray.init(address=address, **init)
    except ConnectionError as exc:
        raise ClusterUnavailable(f"cannot attach to the Ray cluster at {address}: {exc}") from None


def check_dashboard(url: str, timeout_s: float = PROBE_TIMEOUT_S) -> None:
    """Raise :class:`ClusterUnavailable` unless the Ray dashboard at ``url`` (the address
    ``ray job submit`` uses) answers an authenticated request within ``timeout_s``."""
    import urllib.error
    import urllib.request

    from ray._private.authentication.http_token_authentication import (
        get_auth_headers_if_auth_enabled,
    )

    has_token = enable_token_auth_if_available()
    url = url if "://" in url else f"http://{url}"
    request = urllib.request.Request(
        url.rstrip("/") + "/api/version", headers=get_auth_headers_if_auth_enabled({})
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout_s):
            return
    except urllib.error.HTTPError as exc:
        if exc.code in (401, 403):
            raise _refused(f"the Ray dashboard at {url}", url, has_token) from None
        raise ClusterUnavailable(f"the Ray dashboard at {url} answered HTTP {exc.code}") from None
    except (OSError, urllib.error.URLError) as exc:
        reason = getattr(exc, "reason", exc)
        raise ClusterUnavailable(
            f"cannot reach the Ray dashboard at {url} ({reason}); is the cluster up, and is "
            "RAY_ADDRESS its dashboard (http://HEAD:8265)?"
        ) from None


def main(argv: list[str] | None = None) -> int:
    """``python -m swarm_ray.runtime.connect --dashboard URL``: the submit scripts' check
    before ``ray job submit``; prints one line and exits 1 when the cluster is not usable."""
    import argparse

    p = argparse.ArgumentParser(prog="python -m swarm_ray.runtime.connect")
    p.add_argument("--dashboard", required=True, help="the dashboard URL (RAY_ADDRESS)")
    args = p.parse_args(argv)
    try:
        check_dashboard(args.dashboard)
    except ClusterUnavailable as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
