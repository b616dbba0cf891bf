"""Which version of each model is the champion: the one the swarm and Serve use by default.

A registry without ``champions.json`` serves each model's newest version, as before. Once the
learning loop (or ``swarm-ray models rollback``) has decided, ``<models_dir>/champions.json``
names each model's champion and keeps its history::

    {"models": {"risk_manager": {"champion": "v4",
                                 "history": [{"version": "v3", "event": "initial", ...},
                                             {"version": "v4", "event": "promoted",
                                              "parent": "v3", "evidence": {...}, ...}]}},
     "rejected": {"risk_manager": [{"id": "...", "reason": "...", "evidence": {...}}]}}

``version: null`` in Serve's ``user_config``, the in-process model clients and the observation
spec all resolve to :func:`serving_dir`: the champion if the file names one, else the newest
version. A version folder that exists but that no decision names (a promotion interrupted after
the folder was written) is therefore never served by default.

Writes are atomic (a temporary file renamed over the old one) and serialised by an advisory
lock on ``champions.lock``, so a reader sees the old state or the new one, never half of one.
"""

from __future__ import annotations

import fcntl
import json
import os
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from swarm_ray.registry.files import RegistryError, servable_dir

__all__ = [
    "CHAMPIONS_FILE",
    "champion",
    "champion_history",
    "ensure_recorded",
    "previous_champion",
    "read_champions",
    "record_champion",
    "record_rejected",
    "rejected",
    "serving_dir",
    "serving_version",
]

CHAMPIONS_FILE = "champions.json"
LOCK_FILE = "champions.lock"
EVENTS = ("initial", "promoted", "rollback")


def _path(models_dir: str | Path) -> Path:
    return Path(models_dir) / CHAMPIONS_FILE


def read_champions(models_dir: str | Path) -> dict[str, Any]:
    """The champion state (empty sections when the registry has no ``champions.json``)."""
    path = _path(models_dir)
    if not path.is_file():
        return {"models": {}, "rejected": {}}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RegistryError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(data, dict) or not isinstance(data.get("models", {}), dict):
        raise RegistryError(f"{path}: must be an object with a 'models' object")
    data.setdefault("models", {})
    data.setdefault("rejected", {})
    return data


def champion(models_dir: str | Path, name: str) -> str | None:
    """The version ``champions.json`` names for ``name`` (``None``: no decision recorded)."""
    entry = read_champions(models_dir)["models"].get(name) or {}
    version = entry.get("champion")
    if version is not None and not isinstance(version, str):
        raise RegistryError(f"{_path(models_dir)}: {name}.champion must be a version name")
    return version


def serving_version(models_dir: str | Path, name: str) -> str | None:
    """The version served by default: the champion, else the newest (``None``: no version)."""
    from swarm_ray.registry.policies import versions

    found = versions(models_dir, name)
    chosen = champion(models_dir, name)
    if chosen is not None:
        if chosen not in found:
            raise RegistryError(
                f"{_path(models_dir)}: the champion of {name} is {chosen}, which is not in "
                f"{Path(models_dir) / name} (found: {found or 'none'})"
            )
        return chosen
    return found[-1] if found else None


def serving_dir(models_dir: str | Path, name: str) -> Path:
    """The version folder served by default (see :func:`serving_version`); ``SmokeModel`` if it
    is a smoke-test model in a serving registry."""
    return servable_dir(models_dir, name, serving_version(models_dir, name))


def champion_history(models_dir: str | Path, name: str) -> list[dict[str, Any]]:
    entry = read_champions(models_dir)["models"].get(name) or {}
    return list(entry.get("history") or [])


def previous_champion(models_dir: str | Path, name: str) -> str | None:
    """The champion before the current one (``None`` if there was none)."""
    current = serving_version(models_dir, name)
    for event in reversed(champion_history(models_dir, name)):
        if event.get("version") != current:
            return str(event["version"])
    from swarm_ray.registry.policies import versions

    older = [
        v
        for v in versions(models_dir, name)
        if current and version_number(v) < version_number(current)
    ]
    return older[-1] if older else None


def version_number(version: str) -> int:
    """4 of ``v4``."""
    return int(version[1:])


def rejected(models_dir: str | Path, name: str) -> list[dict[str, Any]]:
    return list(read_champions(models_dir)["rejected"].get(name) or [])


@contextmanager
def _locked(models_dir: str | Path) -> Iterator[dict[str, Any]]:
    root = Path(models_dir)
    root.mkdir(parents=True, exist_ok=True)
    with open(root / LOCK_FILE, "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            state = read_champions(root)
            yield state
            _write_atomic(_path(root), state)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _write_atomic(path: Path, state: Mapping[str, Any]) -> None:
    fd, tmp = tempfile.mkstemp(prefix=".champions.", suffix=".json", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(state, f, indent=2, default=str)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def record_champion(
    models_dir: str | Path,
    name: str,
    version: str,
    event: str,
    **details: Any,
) -> dict[str, Any]:
    """Make ``version`` the champion of ``name`` (``event``: promoted, rollback or initial),
    appending the event (and ``details``: parent, evidence, reason, ...) to its history. The
    first decision about a model also records the version it replaces as ``initial``."""
    from swarm_ray.registry.policies import versions

    if event not in EVENTS:
        raise ValueError(f"event must be one of {EVENTS}, not {event!r}")
    if version not in versions(models_dir, name):
        raise RegistryError(f"{Path(models_dir) / name}: no version {version!r} to make champion")
    before = serving_version(models_dir, name)
    with _locked(models_dir) as state:
        entry = state["models"].setdefault(name, {"champion": None, "history": []})
        if not entry["history"] and before is not None and before != version:
            entry["history"].append({"version": before, "event": "initial", "time": _now()})
        record = {"version": version, "event": event, "time": _now(), **details}
        entry["history"].append(record)
        entry["champion"] = version
    return record


def ensure_recorded(models_dir: str | Path, name: str) -> str | None:
    """Record the version served by default now as the champion of ``name`` if no decision
    names one yet (before a new version folder appears, which would otherwise be the newest and
    so served by default). Returns the champion."""
    if champion(models_dir, name) is not None:
        return champion(models_dir, name)
    current = serving_version(models_dir, name)
    if current is None:
        return None
    with _locked(models_dir) as state:
        entry = state["models"].setdefault(name, {"champion": None, "history": []})
        if entry.get("champion") is None:
            entry["history"].append({"version": current, "event": "initial", "time": _now()})
            entry["champion"] = current
        return str(entry["champion"])


def record_rejected(models_dir: str | Path, name: str, **details: Any) -> dict[str, Any]:
    """Remember a challenger of ``name`` that was not promoted (its id, reason, evidence)."""
    record = {"time": _now(), **details}
    with _locked(models_dir) as state:
        state["rejected"].setdefault(name, []).append(record)
    return record
