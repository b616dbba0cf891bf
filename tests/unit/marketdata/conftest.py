"""The fake data site, and ``swarm-ray data download --json`` run against it."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.fakes.binance_data_site import FakeDataSite


@pytest.fixture
def site() -> Iterator[FakeDataSite]:
    with FakeDataSite() as s:
        yield s


@pytest.fixture
def out(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def cli(
    site: FakeDataSite, out: Path, capsys: pytest.CaptureFixture[str]
) -> Callable[..., tuple[int, dict]]:
    """``cli("--symbols", ...)``: the download command on the fake site, (exit code, JSON)."""
    from swarm_ray.cli import main

    def run(*args: str) -> tuple[int, dict]:
        argv = ["data", "download", "--base-url", site.url, "--out", str(out), "--backoff", "0"]
        code = main([*argv, "--json", *args])
        return code, json.loads(capsys.readouterr().out)

    return run
