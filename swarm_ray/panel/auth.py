"""The panel's operator token: where it comes from, and how a request proves it holds it.

The token comes from ``SWARM_RAY_PANEL_TOKEN``, else it is generated for the run and shown once
to whoever started it. Only its SHA-256 digest travels to the panel's server (a Serve replica);
a request proves the token with ``Authorization: Bearer <token>``, compared in constant time.
A header, not a cookie: a browser never attaches it to a request another site makes, so the
controls cannot be driven cross-site (CSRF); the POSTs also require a JSON body and, when the
browser names one, an ``Origin`` of the panel's own host.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass

__all__ = ["TOKEN_ENV", "PanelToken", "digest"]

TOKEN_ENV = "SWARM_RAY_PANEL_TOKEN"
MIN_TOKEN_CHARS = 16


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class PanelToken:
    """The operator token of one panel. ``repr`` and ``str`` never show it."""

    _value: str
    generated: bool

    @classmethod
    def from_env(cls) -> PanelToken:
        """``SWARM_RAY_PANEL_TOKEN`` (at least 16 characters), else a new random token."""
        value = os.environ.get(TOKEN_ENV, "")
        if value:
            if len(value) < MIN_TOKEN_CHARS:
                raise ValueError(
                    f"{TOKEN_ENV} is too short ({len(value)} characters; at least "
                    f"{MIN_TOKEN_CHARS}): an operator token guards the kill switch"
                )
            return cls(value, generated=False)
        return cls(secrets.token_urlsafe(24), generated=True)

    def reveal(self) -> str:
        """The token itself: for showing it once to the operator who started the panel."""
        return self._value

    @property
    def digest(self) -> str:
        return digest(self._value)

    def __repr__(self) -> str:
        return f"PanelToken(generated={self.generated})"

    __str__ = __repr__


def check_bearer(header: str | None, token_digest: str) -> bool:
    """Whether ``Authorization: Bearer <token>`` carries the token of ``token_digest``."""
    if not header or not header.startswith("Bearer "):
        return False
    presented = digest(header[len("Bearer ") :].strip())
    return hmac.compare_digest(presented, token_digest)
