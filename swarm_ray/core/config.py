"""Typed configuration: frozen pydantic models that reject unknown keys, loaded from YAML.

A bad file fails at start with a ``ConfigError`` that names the file and the field.
Secrets never live here: they come from the environment (see ``secret_from_env``).
"""

from __future__ import annotations

import os
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


def parse_config(model: type[M], data: Any, source: str = "<config>") -> M:
    """Validate ``data`` against ``model``, turning pydantic errors into one clear ConfigError."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(
            f"{source}: expected a mapping at the top level, got {type(data).__name__}"
        )
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            field = _field_path(err.get("loc", ()))
            msg = err.get("msg", "invalid")
            if err.get("type") == "extra_forbidden":
                msg = "unknown key (not a field of this section)"
            lines.append(f"{source}: field '{field}': {msg}")
        raise ConfigError("\n".join(lines)) from None


def load_config(path: str | os.PathLike[str], model: type[M], section: str | None = None) -> M:
    """Load ``path`` (YAML) into ``model``; ``section`` picks one top-level key of the file."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"{p}: config file not found")
    try:
        data = yaml.safe_load(p.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"{p}: not valid YAML: {exc}") from None
    source = str(p)
    if section is not None:
        if not isinstance(data, dict) or section not in data:
            raise ConfigError(f"{p}: missing section '{section}'")
        data = data[section]
        source = f"{p} [{section}]"
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
