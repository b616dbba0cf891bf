"""Shared test fixtures and the `online` marker's skip rule."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
KLINES = ROOT / "data" / "binance-spot-1m"


def kline_day(day: str) -> str:
    return str(KLINES / f"BTCUSDT-1m-2024-08-{day}.csv")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    have_keys = bool(os.environ.get("BINANCE_API_KEY") or os.environ.get("GROQ_API_KEY"))
    skip = pytest.mark.skip(reason="online test: set exchange/LLM keys to run it")
    for item in items:
        if "online" in item.keywords and not have_keys:
            item.add_marker(skip)
