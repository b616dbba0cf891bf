"""Every version of every model in a registry, with what the champion decisions made of it.

``model_versions(models_dir)`` is what ``swarm-ray models`` shows. Each version gets one
status:

- ``champion``: the version served by default (``champions.serving_version``: the champion
  ``champions.json`` names, else the newest);
- ``smoke``: a smoke-test version (``"smoke": true`` in its card), never served;
- ``unpromoted``: newer than the champion, and no champion decision names it: a challenger
  whose promotion was interrupted after its folder was written (it is never served by default);
- ``retired``: was the champion once (``champions.json`` history), is not any more;
- ``available``: any other version (an older one, or one pinned by hand).

Challengers the learning loop judged and did not promote (``champions.json``'s ``rejected``)
are listed after the versions with status ``rejected``, their id, reason and evidence; one
whose folder is in the registry is that version's entry, with status ``rejected``.

Plain Python: reads JSON only, loads no weights.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from swarm_ray.registry.champions import read_champions, serving_version, version_number
from swarm_ray.registry.files import RegistryError, read_card
from swarm_ray.registry.policies import versions

__all__ = ["STATUSES", "model_versions"]

STATUSES = ("champion", "smoke", "unpromoted", "retired", "available", "rejected")
LINEAGE_KEYS = ("parent", "train_days", "evaluation_days", "evidence")


def _model_names(root: Path, state: dict[str, Any]) -> list[str]:
    names = {p.name for p in root.iterdir() if p.is_dir() and versions(root, p.name)}
    names |= {n for n, entries in state["rejected"].items() if entries}
    return sorted(names)


def _version_entry(
    root: Path,
    name: str,
    version: str,
    serving: str | None,
    decided: bool,
    history: list[dict[str, Any]],
) -> dict[str, Any]:
    vdir = root / name / version
    card: dict[str, Any] = {}
    error = None
    try:
        card = read_card(vdir)
    except RegistryError as exc:  # listed anyway, with the reason it cannot be loaded
        error = str(exc)
    events = [e for e in history if e.get("version") == version]
    smoke = card.get("smoke") is True
    if version == serving:
        status = "champion"
    elif smoke:
        status = "smoke"
    elif events:
        status = "retired"
    elif decided and serving is not None and version_number(version) > version_number(serving):
        status = "unpromoted"
    else:
        status = "available"
    lineage = card.get("lineage")
    lineage = lineage if isinstance(lineage, dict) else {}
    entry: dict[str, Any] = {
        "version": version,
        "status": status,
        "created": card.get("created"),
        "smoke": smoke,
        **{key: lineage.get(key) for key in LINEAGE_KEYS},
        "events": events,
    }
    if error is not None:
        entry["error"] = error
    return entry


def _rejected(record: dict[str, Any]) -> dict[str, Any]:
    return {
        "version": record.get("version"),
        **{k: v for k, v in record.items() if k != "status"},
        "status": "rejected",
        "id": record.get("id"),
        "reason": record.get("reason"),
        "evidence": record.get("evidence"),
    }


def model_versions(models_dir: str | Path) -> dict[str, list[dict[str, Any]]]:
    """``{model: [entry, ...]}``: each version, oldest first, then the rejected challengers.

    A version's entry: ``version``, ``status`` (see the module docstring), ``created`` (card),
    ``smoke``, ``parent``/``train_days``/``evaluation_days``/``evidence`` (the card's
    ``lineage``, ``None`` without one), ``events`` (its ``champions.json`` history records) and
    ``error`` if its card cannot be read. A rejected challenger's entry: ``status``
    ``rejected`` with the record's fields (``id``, ``reason``, ``evidence``, ``time``, ...) and
    ``version`` (``None`` unless the record names one; a rejected challenger whose folder is
    in the registry is that version's entry, with status ``rejected``).

    Raises ``RegistryError`` (naming the file) for a ``champions.json`` that cannot be read or
    names a version the registry does not hold.
    """
    root = Path(models_dir)
    if not root.is_dir():
        return {}
    state = read_champions(root)
    out: dict[str, list[dict[str, Any]]] = {}
    for name in _model_names(root, state):
        entry = state["models"].get(name) or {}
        history = [e for e in entry.get("history") or [] if isinstance(e, dict)]
        decided = entry.get("champion") is not None
        serving = serving_version(root, name)
        rows = {
            v: _version_entry(root, name, v, serving, decided, history)
            for v in versions(root, name)
        }
        extra = []
        for record in state["rejected"].get(name) or []:
            if not isinstance(record, dict):
                continue
            found = rows.get(str(record.get("version")))
            if found is not None and found["status"] in ("unpromoted", "available"):
                # a challenger whose folder was written, then judged: not an interrupted
                # promotion
                found.update(_rejected(record), version=found["version"])
            elif found is None:
                extra.append(_rejected(record))
        out[name] = [*rows.values(), *extra]
    return out
