"""The container image, checked statically (no Docker needed): Ray's own image at the pinned
Ray, the pinned stack with torch's CPU build, a non-root user, no secrets, and a build context
that carries what the manifests run and none of the local clutter."""

from __future__ import annotations

import fnmatch
import re
import shlex

import pytest

from tests.conftest import ROOT
from tests.unit.deploy.test_kuberay_manifests import IMAGE_HOME, _pinned

SECRET_NAME = re.compile(r"KEY|SECRET|TOKEN|PASSWORD|CREDENTIAL", re.IGNORECASE)


def _instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the Dockerfile, continuation lines joined, comments dropped."""
    out: list[tuple[str, str]] = []
    pending = ""
    for line in (ROOT / "Dockerfile").read_text().splitlines():
        stripped = line.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if stripped.startswith("#"):  # a comment inside a continued instruction
            continue
        pending += " " + stripped.removesuffix("\\").strip()
        if not stripped.endswith("\\"):
            word, _, rest = pending.strip().partition(" ")
            out.append((word.upper(), rest.strip()))
            pending = ""
    return out


INSTRUCTIONS = _instructions()


def _args(word: str) -> list[str]:
    return [rest for w, rest in INSTRUCTIONS if w == word]


def _dockerignore() -> list[str]:
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    return [x.strip() for x in lines if x.strip() and not x.strip().startswith("#")]


def _ignored(path: str) -> bool:
    """Whether the build context leaves ``path`` out (Docker's rules, without ``!`` patterns:
    a pattern matches the path or a parent folder; ``**/`` matches at any depth)."""
    parts = path.split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    for pattern in _dockerignore():
        if pattern.startswith("**/"):
            tail = pattern.removeprefix("**/")
            suffixes = [
                "/".join(parts[i : j + 1]) for i in range(len(parts)) for j in range(i, len(parts))
            ]
            if any(fnmatch.fnmatch(s, tail) for s in suffixes):
                return True
        elif any(fnmatch.fnmatch(p, pattern) for p in prefixes):
            return True
    return False


def test_base_is_rays_own_cpu_image_at_the_pinned_ray_and_python_311() -> None:
    (base,) = _args("FROM")
    m = re.fullmatch(r"rayproject/ray:(\d+\.\d+\.\d+)-py(\d)(\d+)-cpu", base)
    assert m, f"not an official Ray CPU image tag: {base}"
    assert m.group(1) == _pinned("ray")
    assert f"{m.group(2)}.{m.group(3)}" == "3.11"


def test_project_installs_editable_through_the_constraints() -> None:
    runs = " ".join(_args("RUN"))
    assert re.search(r"pip install -c constraints\.txt -e \.(\s|$)", runs), runs
    # editable, so configs/, data/ and models/ resolve from the project root as in a clone
    assert _args("WORKDIR") == [IMAGE_HOME]


def test_torch_is_the_cpu_build_at_the_constraints_pin() -> None:
    (torch_run,) = [r for r in _args("RUN") if "torch==" in r and "pip install" in r]
    (index_arg,) = [a for a in _args("ARG") if a.startswith("TORCH_INDEX_URL=")]
    assert index_arg == "TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu"
    assert '--index-url "$TORCH_INDEX_URL"' in torch_run
    # the version is read from constraints.txt, never written twice
    assert "sed -n 's/^torch==//p' constraints.txt" in torch_run
    assert _pinned("torch") == "2.13.0"
    # and the build fails if anything replaced it with a CUDA build
    assert any("endswith('+cpu')" in r for r in _args("RUN"))


def test_image_runs_as_the_ray_images_non_root_user() -> None:
    users = _args("USER")
    assert users and users[-1] == "1000:100"  # the `ray` user and its group `users`
    for src in _args("COPY"):
        assert src.startswith("--chown=1000:100 "), src


def test_no_secret_is_baked_into_the_image() -> None:
    for word in ("ENV", "ARG", "LABEL"):
        for rest in _args(word):
            names = re.findall(r"([A-Za-z_][A-Za-z0-9_.-]*)=", rest) or rest.split()[:1]
            assert not [n for n in names if SECRET_NAME.search(n)], f"{word} {rest}"
    text = (ROOT / "Dockerfile").read_text()
    for name in ("BINANCE_API_KEY", "BINANCE_API_SECRET", "GROQ_API_KEY", "RAY_AUTH_TOKEN"):
        assert name not in text
    for secret_file in (".env", ".env.local", "configs/prod.env", "deploy/auth_token"):
        assert _ignored(secret_file), secret_file


@pytest.mark.parametrize(
    "path",
    [".venv/bin/python", ".git/HEAD", "runs/paper/journal", ".pytest_cache", ".ruff_cache",
     "swarm_ray/__pycache__/cli.cpython-311.pyc", "swarm_ray.egg-info/PKG-INFO"],
)  # fmt: skip
def test_dockerignore_keeps_local_state_and_caches_out(path: str) -> None:
    assert _ignored(path)


def test_copies_exist_are_not_ignored_and_carry_what_the_manifests_run() -> None:
    copied = []
    for rest in _args("COPY"):
        *sources, _dest = [a for a in shlex.split(rest) if not a.startswith("--")]
        copied += sources
    for src in copied:
        assert (ROOT / src).exists(), src
        assert not _ignored(src), src
    # the packages, the bundled configs, models and data, and the registry seeding script
    needed = {"swarm_ray", "envs", "serve", "configs", "models", "data", "deploy/seed_registry.sh"}
    assert needed <= set(copied)
    assert {"constraints.txt", "pyproject.toml", "README.md"} <= set(copied)
