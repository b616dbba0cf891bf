"""The panel's operator token: from the environment or generated, never shown by repr, compared
as a digest, and shown once on a terminal or kept in an owner-only file otherwise."""

from __future__ import annotations

import stat

import pytest

from swarm_ray.commands._swarm import panel_token, token_notice
from swarm_ray.core.errors import CommandError
from swarm_ray.panel.auth import TOKEN_ENV, PanelToken, check_bearer, digest


def test_token_from_the_environment_is_used_and_never_shown(monkeypatch):
    monkeypatch.setenv(TOKEN_ENV, "a-long-enough-operator-token")
    token = PanelToken.from_env()
    assert not token.generated and token.reveal() == "a-long-enough-operator-token"
    assert "operator-token" not in repr(token) + str(token) + f"{token}"
    assert token.digest == digest("a-long-enough-operator-token")
    assert token_notice(token, "/nowhere") == f"panel operator token: the one in {TOKEN_ENV}"


def test_a_short_token_is_refused_naming_the_variable(monkeypatch):
    monkeypatch.setenv(TOKEN_ENV, "short")
    with pytest.raises(CommandError, match=f"{TOKEN_ENV} is too short"):
        panel_token()


def test_generated_tokens_are_random_and_long(monkeypatch):
    monkeypatch.delenv(TOKEN_ENV, raising=False)
    a, b = PanelToken.from_env(), PanelToken.from_env()
    assert a.generated and a.reveal() != b.reveal() and len(a.reveal()) >= 32


def test_bearer_check_accepts_only_the_token():
    d = digest("the-right-token-123456")
    assert check_bearer("Bearer the-right-token-123456", d)
    for header in (None, "", "the-right-token-123456", "Bearer the-right-token-12345",
                   "Basic the-right-token-123456", "Bearer "):  # fmt: skip
        assert not check_bearer(header, d)


def test_a_generated_token_off_a_terminal_goes_to_an_owner_only_file(monkeypatch, tmp_path):
    monkeypatch.delenv(TOKEN_ENV, raising=False)
    token = PanelToken.from_env()
    line = token_notice(token, str(tmp_path))  # pytest captures stdout: not a terminal
    path = tmp_path / "panel_token"
    assert line == f"panel operator token: in {path} (readable by its owner only)"
    assert token.reveal() not in line
    assert path.read_text().strip() == token.reveal()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
