"""``swarm-ray models``: the registry's versions and their status; ``models rollback``.

    swarm-ray models [--models DIR] [--json] [--address ADDR]
    swarm-ray models rollback ROLE [VERSION] [--models DIR] [--address ADDR] [--yes]

The listing reads the registry and ``champions.json`` (``swarm_ray.registry.listing``); when a
Serve application serving that registry is reachable (``--address``, ``RAY_ADDRESS``, or a
cluster running on this machine), the version it answers with is marked ``serving``. No
cluster is started to list.

``rollback`` makes VERSION (default: the previous champion) the champion again through
``swarm_ray.learning.serving.switch_champion``: health check, Serve rollout if Serve serves the
registry, then the record in ``champions.json``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path
from typing import Any

from swarm_ray.core.config import ConfigError

DEFAULT_REGISTRY = "models"


def _common(p: argparse.ArgumentParser, suppress: bool) -> None:
    default = argparse.SUPPRESS if suppress else None
    p.add_argument(
        "--models",
        metavar="DIR",
        default=default,
        help="model registry (default: models, in the storage root or the repository)",
    )
    p.add_argument(
        "--address",
        default=default,
        help="Ray cluster whose Serve app to use (default: $RAY_ADDRESS, else a cluster "
        "running on this machine, if any)",
    )


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "models",
        help="list the registry's model versions and their status; roll a model back",
        description=(
            "List every version of every model with its status (champion, smoke, unpromoted, "
            "retired, available; rejected challengers), and the version Serve answers with "
            "when a Serve app serving the registry is reachable. `models rollback ROLE "
            "[VERSION]` makes VERSION (default: the previous champion) the champion again."
        ),
    )
    _common(p, suppress=False)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run_list)
    actions = p.add_subparsers(dest="action", metavar="ACTION")
    r = actions.add_parser(
        "rollback",
        help="make an earlier version the champion again (Serve too, when it serves it)",
        description=(
            "Health-check VERSION (default: the previous champion), roll Serve to it when a "
            "Serve app serving the registry is reachable, then record it as the champion in "
            "champions.json (event rollback)."
        ),
    )
    r.add_argument("role", metavar="ROLE", help="model name, e.g. risk_manager")
    r.add_argument("version", metavar="VERSION", nargs="?", help="default: the previous champion")
    _common(r, suppress=True)
    r.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    r.set_defaults(func=run_rollback)


def registry_dir(value: str | None) -> Path:
    """The registry: ``--models`` (relative: in the storage root), else ``models`` where the
    other commands find it (the storage root's, else the repository's)."""
    from swarm_ray.core.storage import storage_root

    field = "--models" if value else "models_dir"
    root = storage_root().registry(value or DEFAULT_REGISTRY, field)
    if not root.is_dir():
        raise ConfigError(f"{field}: no model registry at {root}")
    return root.resolve()


def _connect(address: str | None) -> bool:
    """Attach to the cluster at ``address`` (else ``RAY_ADDRESS``, else one running on this
    machine); True if this call connected (and must disconnect). Never starts a cluster. An
    address given and not reachable is an error; none running here is not."""
    import ray

    from swarm_ray.runtime.connect import HIDDEN_NAMESPACE, ClusterUnavailable, connect

    if ray.is_initialized():
        return False
    given = address or os.environ.get("RAY_ADDRESS") or None
    try:
        connect(given or "auto", namespace=HIDDEN_NAMESPACE, logging_level=logging.WARNING)
    except ClusterUnavailable:
        if given:
            raise
        return False
    return True


def _served(models_dir: Path, address: str | None) -> dict[str, str] | None:
    import ray

    from swarm_ray.learning.serving import served_versions

    connected = _connect(address)
    try:
        return served_versions(models_dir)
    finally:
        if connected:
            ray.shutdown()


def run_list(args: argparse.Namespace) -> int:
    from swarm_ray.registry import RegistryError
    from swarm_ray.registry.listing import model_versions

    models_dir = registry_dir(args.models)
    try:
        listing = model_versions(models_dir)
    except RegistryError as exc:
        raise ConfigError(str(exc)) from None
    served = _served(models_dir, args.address)
    for name, rows in listing.items():
        for row in rows:
            row["serving"] = served is not None and served.get(name) == row["version"]
    if args.json:
        report = {"models_dir": str(models_dir), "served": served, "models": listing}
        print(json.dumps(report, default=str))
        return 0
    if not listing:
        print(f"no model in the registry at {models_dir}")
        return 0
    from rich.console import Console

    Console().print(_table(models_dir, listing, served))
    return 0


def _status(row: dict[str, Any]) -> str:
    status = row["status"]
    colour = {"champion": "bold green", "unpromoted": "yellow", "rejected": "red"}.get(status)
    text = f"[{colour}]{status}[/]" if colour else status
    return f"{text}, [bold]serving[/]" if row.get("serving") else text


def _window(days: Any) -> str:
    if isinstance(days, list | tuple) and days:
        return f"{days[0]}..{days[-1]}" if len(days) > 1 else str(days[0])
    return "" if days is None else str(days)


def _when(stamp: Any) -> str:
    """``2026-11-21T00:08:19Z`` -> ``2026-11-21 00:08``."""
    return "" if not stamp else str(stamp).replace("T", " ")[:16]


def _note(row: dict[str, Any]) -> str:
    if row["status"] == "rejected":
        return str(row.get("reason") or "")
    if row.get("error"):
        return str(row["error"])
    events = row.get("events") or []
    if events:
        last = events[-1]
        return f"{last.get('event')} {_when(last.get('time'))}".strip()
    return ""


def _table(models_dir: Path, listing: dict[str, list[dict[str, Any]]], served: Any):
    from rich.table import Table

    where = "served by the Serve app" if served is not None else "no Serve app reached serves it"
    table = Table(title=f"{models_dir} ({where})")
    for col in ("model", "version", "status", "created"):
        table.add_column(col, no_wrap=True)
    for col in ("parent", "train days", "last event"):
        table.add_column(col)
    for name, rows in listing.items():
        for i, row in enumerate(rows):
            table.add_row(
                name if i == 0 else "",
                str(row.get("version") or row.get("id") or ""),
                _status(row),
                _when(row.get("created") or row.get("time")),
                str(row.get("parent") or ""),
                _window(row.get("train_days")),
                _note(row),
            )
        table.add_section()
    return table


def _confirm(role: str, current: str | None, version: str) -> bool:
    print(f"Make {version} the champion of {role} again (now {current or 'none'})? [y/N] ", end="")
    sys.stdout.flush()
    try:
        return input().strip().lower() in ("y", "yes")
    except EOFError:
        return False


def run_rollback(args: argparse.Namespace) -> int:
    import ray

    from swarm_ray.learning.serving import check_version, switch_champion
    from swarm_ray.registry import RegistryError
    from swarm_ray.registry.champions import previous_champion, serving_version

    models_dir = registry_dir(getattr(args, "models", None))
    role = args.role
    try:
        check_version(models_dir, role)
        current = serving_version(models_dir, role)
        version = args.version or previous_champion(models_dir, role)
        if version is None:
            raise ConfigError(
                f"{role}: no previous champion to roll back to (now {current or 'none'}); "
                "name a VERSION"
            )
        check_version(models_dir, role, version)
    except RegistryError as exc:
        raise ConfigError(str(exc)) from None
    if not args.yes:
        if not sys.stdin.isatty():
            raise ConfigError(f"rolling {role} back to {version} needs a confirmation: pass --yes")
        if not _confirm(role, current, version):
            print("not confirmed; nothing changed", file=sys.stderr)
            return 2
    connected = _connect(getattr(args, "address", None))
    try:
        done = switch_champion(
            models_dir, role, version, "rollback", details={"reason": "swarm-ray models rollback"}
        )
    except RegistryError as exc:
        raise ConfigError(str(exc)) from None
    finally:
        if connected:
            ray.shutdown()
    if done["served_by"] == "serve":
        where = "Serve answers with it now"
    else:
        where = "no Serve app serving this registry was reached (registry only)"
    print(
        f"{role}: champion {done['previous'] or 'none'} -> {done['version']} (rollback); "
        f"{where}; recorded in {models_dir / 'champions.json'}"
    )
    return 0
