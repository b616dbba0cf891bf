"""Configuration models of the environment (plain pydantic; no Ray, no swarm_ray)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class StrictModel(BaseModel):
    """Frozen, rejects unknown keys: a typo in a config is an error, not a silent default."""

    model_config = ConfigDict(frozen=True, extra="forbid")
