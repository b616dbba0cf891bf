"""Typed configuration: frozen pydantic models that reject unknown keys, loaded from YAML.

A bad file fails at start with a ``ConfigError`` that names the file and the field: an
unknown key, a wrong type, a value out of range, a number that is not finite (``.inf`` or
``.nan`` would switch a limit off), an empty file or one that is not a mapping.
Secrets never live here: they come from the environment (see ``secret_from_env``).
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator, Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, SecretStr, ValidationError

from envs.config import StrictModel

__all__ = ["ConfigError", "StrictModel", "load_config", "parse_config", "secret_from_env"]

M = TypeVar("M", bound=BaseModel)


class ConfigError(ValueError):
    """A configuration file or mapping that cannot be used; the message names the field."""


def _field_path(loc: tuple[Any, ...]) -> str:
    return ".".join(str(p) for p in loc) or "<root>"


def _non_finite(value: Any) -> Iterator[tuple[tuple[Any, ...], float | Decimal]]:
    """(path, number) of every infinite or NaN number, or decimal beyond the float range, in a
    validated config, free-form mappings (``dict[str, Any]`` fields) included. Iterative, and
    shared sub-objects (YAML aliases) are visited once."""
    stack: list[tuple[tuple[Any, ...], Any]] = [((), value)]
    seen: set[int] = set()
    while stack:
        path, node = stack.pop()
        if isinstance(node, float):
            if not math.isfinite(node):
                yield path, node
            continue
        if isinstance(node, Decimal):  # also beyond the float range: inf once used as float
            if not node.is_finite() or not math.isfinite(float(node)):
                yield path, node
            continue
        if isinstance(node, BaseModel | Mapping | list | tuple | set | frozenset):
            if id(node) in seen:
                continue
            seen.add(id(node))
        if isinstance(node, BaseModel):
            items: Any = ((n, getattr(node, n)) for n in type(node).model_fields)
        elif isinstance(node, Mapping):
            items = node.items()
        elif isinstance(node, list | tuple):
            items = enumerate(node)
        elif isinstance(node, set | frozenset):
            items = ((i, v) for i, v in enumerate(sorted(node, key=repr)))
        else:
            continue
        stack.extend(((*path, k), v) for k, v in reversed(list(items)))


def parse_config(model: type[M], data: Any, source: str = "<config>") -> M:
    """Validate ``data`` against ``model``, turning pydantic errors into one clear ConfigError.

    ``None`` means the model's defaults (a deployment's absent ``user_config``); a file that
    is empty is refused by ``load_config`` before it gets here.
    """
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(
            f"{source}: expected a mapping at the top level, got {type(data).__name__}"
        )
    try:
        config = model.model_validate(data)
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            loc = err.get("loc", ())
            msg = err.get("msg", "invalid")
            if err.get("type") == "extra_forbidden":
                msg = "unknown key (not a field of this section)"
            if loc:
                lines.append(f"{source}: field '{_field_path(loc)}': {msg}")
            else:  # a check of the whole model: its message names the fields
                lines.append(f"{source}: {msg.removeprefix('Value error, ')}")
        raise ConfigError("\n".join(lines)) from None
    bad = list(_non_finite(config))
    if bad:
        raise ConfigError(
            "\n".join(
                f"{source}: field '{_field_path(path)}': must be a finite number "
                f"(within the float range), got {number:.6g}"
                for path, number in bad
            )
        )
    return config


def load_config(path: str | os.PathLike[str], model: type[M], section: str | None = None) -> M:
    """Load ``path`` (YAML) into ``model``; ``section`` picks one top-level key of the file."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"{p}: config file not found")
    try:
        data = yaml.safe_load(p.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"{p}: not valid YAML: {exc}") from None
    except RecursionError:
        raise ConfigError(f"{p}: not usable YAML: nested too deeply") from None
    if data is None:  # nothing, only comments, or a bare null
        raise ConfigError(f"{p}: the config file is empty; give its settings")
    if not isinstance(data, dict):
        raise ConfigError(
            f"{p}: expected a mapping (key: value lines) at the top level, "
            f"got {type(data).__name__}"
        )
    source = str(p)
    if section is not None:
        if section not in data:
            raise ConfigError(f"{p}: missing section '{section}'")
        data = data[section]
        source = f"{p} [{section}]"
        if data is None:
            raise ConfigError(f"{source}: section '{section}' is empty; give its settings")
    return parse_config(model, data, source)


def secret_from_env(name: str) -> SecretStr | None:
    """A secret read from the environment only; ``None`` when unset or empty."""
    value = os.environ.get(name, "")
    return SecretStr(value) if value else None


PROJECT_ROOT = Path(__file__).resolve().parents[2]


def resolve_path(path: str | os.PathLike[str]) -> Path:
    """A path as given if it exists, else relative to the project root (so the bundled
    configs and data work from any working directory)."""
    p = Path(path)
    if p.is_absolute() or p.exists():
        return p
    alt = PROJECT_ROOT / p
    return alt if alt.exists() else p
