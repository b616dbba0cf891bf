"""``swarm-ray serve``: host the swarm's models on Ray Serve, as ``serve run configs/serve.yaml``.

Also ``--rollout NAME=VERSION``: roll running models to other registry versions without
restarting anything (only the deployments' ``user_config`` changes).
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time

from swarm_ray.core.config import ConfigError

DEFAULT_CONFIG = "configs/serve.yaml"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "serve",
        help="host every model of the registry on Ray Serve (HTTP and handles)",
        description=(
            "Apply the Serve config (default configs/serve.yaml: one deployment per registry "
            "model and an HTTP API) on a local Ray cluster, or on --address; print the URL and "
            "block until Ctrl-C, which shuts Serve down. With --rollout: roll running models to "
            "other versions and exit."
        ),
    )
    p.add_argument("--config", default=DEFAULT_CONFIG, help="Serve config (serve build format)")
    p.add_argument(
        "--models-dir",
        metavar="DIR",
        help="model registry (default: the config's; relative: in the storage root)",
    )
    p.add_argument("--models", nargs="+", metavar="NAME", help="serve only these models")
    p.add_argument("--host", help="HTTP host (default: the config's, 127.0.0.1)")
    p.add_argument("--port", type=int, help="HTTP port (default: the config's, 8000)")
    p.add_argument(
        "--address",
        help="Ray cluster to use (e.g. auto); default: $RAY_ADDRESS, else a new local cluster",
    )
    p.add_argument("--num-cpus", type=int, help="CPUs of a new local cluster (default: all)")
    p.add_argument(
        "--detach",
        action="store_true",
        help="deploy and exit, leaving Serve running on the cluster (use with --address)",
    )
    p.add_argument(
        "--rollout",
        nargs="+",
        metavar="NAME=VERSION",
        help="roll running models to these registry versions (VERSION 'latest': the newest), "
        "then exit; connects to --address (default auto)",
    )
    p.set_defaults(func=run)


def parse_rollout(items: list[str]) -> dict[str, str | None]:
    """``["risk_manager=v2", "market_analyst=latest"]`` -> ``{"risk_manager": "v2", ...: None}``."""
    out: dict[str, str | None] = {}
    for item in items:
        name, sep, version = item.partition("=")
        if not sep or not name or not version:
            raise ConfigError(
                f"--rollout: expected NAME=VERSION (e.g. risk_manager=v2), got {item!r}"
            )
        out[name] = None if version == "latest" else version
    return out


def run(args: argparse.Namespace) -> int:
    import ray

    from serve.app import registry_path
    from serve.deploy import app_args, configure, load_deploy_config

    if args.rollout:
        versions = parse_rollout(args.rollout)
        return _rollout(versions, args.address or os.environ.get("RAY_ADDRESS") or "auto")
    if args.detach and not (args.address or os.environ.get("RAY_ADDRESS")):
        raise ConfigError("--detach needs --address: a local cluster ends with this command")
    if args.port is not None and not 0 < args.port < 65536:
        raise ConfigError(f"--port: {args.port} is not a TCP port")
    try:
        config = load_deploy_config(args.config)
        # resolved here, once: the replicas get the absolute path under the storage root
        models_dir = str(registry_path(args.models_dir or app_args(config).models_dir))
        config = configure(
            config, host=args.host, port=args.port, models_dir=models_dir, models=args.models
        )
    except ValueError as exc:  # unknown model names, empty registry
        raise ConfigError(str(exc)) from None
    connect(args.address, num_cpus=args.num_cpus)
    try:
        return _serve(config, args.detach)
    finally:
        ray.shutdown()


def connect(address: str | None, num_cpus: int | None = None) -> None:
    """``ray.init`` with the cluster's token (Ray 2.60 enables token auth by default)."""
    from swarm_ray.runtime.connect import connect as connect_ray

    connect_ray(address, num_cpus=num_cpus, include_dashboard=None)  # the dashboard: Ray's default


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # SIGTERM (ray job stop, a supervisor) shuts down like Ctrl-C


def _serve(config, detach: bool) -> int:
    import ray
    from ray import serve

    from serve.app import APP_NAME
    from serve.deploy import deploy

    url = deploy(config)
    interrupted = False
    try:
        _print_served(url, ray.get_runtime_context().gcs_address)
        if detach:
            print("detached: Serve keeps running on the cluster (`serve shutdown` stops it)")
            return 0
        print("Ctrl-C stops Serve.", flush=True)
        signal.signal(signal.SIGTERM, _interrupt)
        while True:
            # short sleeps: the OS may deliver Ctrl-C to one of Ray's threads, and Python runs
            # the handler only when the main thread wakes up
            time.sleep(0.5)
    except KeyboardInterrupt:
        interrupted = True
        raise
    finally:
        if not detach or interrupted:
            print(f"shutting down Serve ({APP_NAME})", file=sys.stderr, flush=True)
            serve.shutdown()


def _print_served(url: str, gcs_address: str) -> None:
    from ray import serve

    from serve.app import APP_NAME, MODELS_NAME
    from serve.client import model_handle

    models = serve.get_deployment_handle(MODELS_NAME, app_name=APP_NAME)
    print(f"{APP_NAME} is running on Ray Serve (Ray cluster {gcs_address})")
    print(f"  HTTP: {url}/models")
    for name in sorted(models.names.remote().result()):
        meta = model_handle(name, by_value=False).metadata().result()
        print(
            f"  {name:<20} {meta['version']:<4} {meta['kind']:<16} "
            f"{meta['observation_dim']} -> {len(meta['action_names'])} ({meta['output']})"
        )
    print("  handles: serve.client.models_handle(), serve.client.model_handle(NAME)", flush=True)


def _rollout(versions: dict[str, str | None], address: str) -> int:
    import ray

    from serve.deploy import rollout

    connect(address)
    try:
        served = rollout(versions)
    except ValueError as exc:
        raise ConfigError(f"--rollout: {exc}") from None
    finally:
        ray.shutdown()
    for name, version in served.items():
        print(f"{name}: now serving {version}")
    return 0
