"""Online checks against the real Binance testnet and Groq. Off unless keys are set:

BINANCE_API_KEY=... BINANCE_API_SECRET=... GROQ_API_KEY=... pytest -m online tests/online
"""

from __future__ import annotations

import os

import pytest

from swarm_ray.cli import main

pytestmark = pytest.mark.online

needs_binance = pytest.mark.skipif(
    not (os.environ.get("BINANCE_API_KEY") and os.environ.get("BINANCE_API_SECRET")),
    reason="BINANCE_API_KEY / BINANCE_API_SECRET not set (testnet keys)",
)
needs_groq = pytest.mark.skipif(not os.environ.get("GROQ_API_KEY"), reason="GROQ_API_KEY not set")


@needs_binance
@pytest.mark.parametrize(("kind", "symbol"), [("binance-spot", "BTCUSDT")])
def test_testnet_places_queries_and_cancels_one_far_order(kind: str, symbol: str) -> None:
    # testnet endpoints only: no --mainnet, no base-url override
    assert main(["check-exchange", "--exchange", kind, "--symbol", symbol, "--json"]) == 0


@needs_groq
def test_groq_answers_parseable_sentiment_once() -> None:
    # about the bundled latest BTCUSDT day (no exchange keys needed)
    assert main(["check-llm", "--symbol", "BTCUSDT", "--json"]) == 0
