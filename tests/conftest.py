"""Shared test fixtures and the `online` marker's skip rule."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import pytest

ROOT = Path(__file__).resolve().parent.parent
KLINES = ROOT / "data" / "binance-spot-1m"


def kline_day(day: str) -> str:
    return str(KLINES / f"BTCUSDT-1m-2024-08-{day}.csv")


T = TypeVar("T")


@contextmanager
def model_app(models_dir: Path, **settings: Any) -> Iterator[tuple[str, Any]]:
    """configs/serve.yaml on a new local 2-CPU Ray cluster serving ``models_dir`` (``settings``:
    more ``serve.deploy.configure`` arguments, e.g. ``versions``): (its URL, its config). Serve
    and the cluster are shut down after."""
    import ray
    from ray import serve

    from serve.deploy import configure, deploy, load_deploy_config
    from swarm_ray.commands._swarm import free_port

    ray.init(address="local", num_cpus=2, include_dashboard=False)
    try:
        config = configure(
            load_deploy_config(ROOT / "configs" / "serve.yaml"),
            host="127.0.0.1",
            port=free_port(),
            models_dir=str(models_dir),
            **settings,
        )
        yield deploy(config, timeout_s=180), config
    finally:
        serve.shutdown()
        ray.shutdown()


def under_load(
    handle: Any,
    rows: Sequence[Any],
    action: Callable[[], T],
    callers: int = 8,
    settle_s: float = 0.3,
) -> tuple[T, list[dict], list[Exception]]:
    """Run ``action`` in a thread while ``callers`` coroutines keep asking ``handle.predict``
    about ``rows``, from ``settle_s`` before it to ``settle_s`` after it: (its result, every
    answer in order, every failure)."""
    stop = threading.Event()
    answers: list[dict] = []
    errors: list[Exception] = []

    async def caller(i: int) -> None:
        k = i
        while not stop.is_set():
            try:
                answers.append(await handle.predict(rows[k % len(rows)]))
            except Exception as exc:  # every failure counts
                errors.append(exc)
            k += 1

    async def run() -> T:
        tasks = [asyncio.ensure_future(caller(i)) for i in range(callers)]
        try:
            await asyncio.sleep(settle_s)
            result = await asyncio.to_thread(action)
            await asyncio.sleep(settle_s)
        finally:
            stop.set()
            await asyncio.gather(*tasks)
        return result

    return asyncio.run(run()), answers, errors


def quoting_registry(dest: Path, newest: str = "v2") -> Path:
    """The shipped registry up to version ``newest`` of each DQN role (links in ``dest``): the
    v2 policies, trained with a bonus for quoting, quote when the swarm trusts their own votes
    (``agents.unlikely_vote: keep``); the newest (v3) mostly stand aside. For tests of what
    quoting does, not of a figure."""
    models = ROOT / "models"
    for role in sorted(p.name for p in models.iterdir() if p.is_dir()):
        (dest / role).mkdir(parents=True, exist_ok=True)
        for version in sorted((models / role).iterdir()):
            if role == "market_analyst" or int(version.name[1:]) <= int(newest[1:]):
                os.symlink(version, dest / role / version.name)
    return dest


def run_check_exchange(url: str, kind: str, capsys, *extra: str) -> tuple[int, dict]:
    """``swarm-ray check-exchange --json`` against the venue at ``url``: (exit code, report)."""
    from swarm_ray.cli import main

    argv = ["check-exchange", "--exchange", kind, "--symbol", "BTCUSDT", "--base-url", url]
    code = main([*argv, "--json", *extra])
    return code, json.loads(capsys.readouterr().out)


@pytest.fixture
def binance_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    """The API key and secret of Binance's documented signing example, in the environment."""
    from tests.fakes.binance_server import DOC_API_KEY, DOC_API_SECRET

    monkeypatch.setenv("BINANCE_API_KEY", DOC_API_KEY)
    monkeypatch.setenv("BINANCE_API_SECRET", DOC_API_SECRET)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    have_keys = bool(os.environ.get("BINANCE_API_KEY") or os.environ.get("GROQ_API_KEY"))
    skip = pytest.mark.skip(reason="online test: set exchange/LLM keys to run it")
    for item in items:
        if "online" in item.keywords and not have_keys:
            item.add_marker(skip)


_EXIT_STATUS = pytest.StashKey[int]()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    session.config.stash[_EXIT_STATUS] = int(exitstatus)


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    """End the test process once its result is final, without interpreter finalization.

    After a whole run, tearing down the native threads Ray, gRPC and torch leave in this
    process has crashed the interpreter now and then (a segmentation fault after the summary),
    turning a passing run into a failing exit status. The results are written by then, so this
    stops any Ray this process still runs, flushes, and exits with pytest's own status.
    """
    status = config.stash.get(_EXIT_STATUS, None)
    if status is None:
        return
    ray = sys.modules.get("ray")
    if ray is not None and ray.is_initialized():
        ray.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)
