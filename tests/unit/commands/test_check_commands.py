"""``check-exchange`` and ``check-llm`` end to end: the real CLI, real clients, fake servers."""

from __future__ import annotations

import json

import pytest

from swarm_ray.cli import main
from tests.conftest import run_check_exchange
from tests.fakes.binance_server import DOC_API_KEY, DOC_API_SECRET, FakeBinance, Fault
from tests.fakes.groq_server import FAKE_GROQ_KEY, FakeGroq, good


@pytest.fixture
def binance(binance_keys):
    with FakeBinance() as fake:
        yield fake


def _check(fake: FakeBinance, kind: str, capsys, *extra: str) -> tuple[int, dict]:
    return run_check_exchange(fake.url, kind, capsys, *extra)


@pytest.mark.parametrize("kind", ["binance-spot", "binance-futures"])
def test_check_exchange_passes_and_leaves_nothing_open(binance, capsys, kind) -> None:
    code, report = _check(binance, kind, capsys)
    assert code == 0 and report["ok"]
    steps = [s["step"] for s in report["steps"]]
    assert steps == [
        "server time",
        "symbol rules",
        "balances",
        "order book",
        "place order",
        "query order",
        "cancel order",
    ]
    cid = report["steps"][4]["client_order_id"]
    assert binance.accepted[cid] == 1 and binance.open_order_count() == 0
    price = float(report["steps"][4]["price"])
    assert price < 0.97 * report["steps"][3]["best_bid"]  # far from the market


def test_check_exchange_survives_a_lost_placement_answer(binance, capsys) -> None:
    binance.inject(Fault("lost"))
    code, report = _check(binance, "binance-spot", capsys)
    assert code == 0 and report["ok"]
    cid = report["steps"][4]["client_order_id"]
    assert binance.accepted[cid] == 1  # found by its client id, not sent twice
    assert binance.open_order_count() == 0


def test_check_exchange_fails_nonzero_on_bad_keys(binance, capsys, monkeypatch) -> None:
    monkeypatch.setenv("BINANCE_API_SECRET", "not-the-secret")
    code, report = _check(binance, "binance-spot", capsys)
    assert code == 1 and not report["ok"]
    failed = report["steps"][-1]
    assert failed["step"] == "balances" and "-1022" in failed["detail"]
    assert "not-the-secret" not in json.dumps(report)


def test_check_exchange_without_keys_fails_and_sends_nothing(binance, capsys, monkeypatch) -> None:
    monkeypatch.delenv("BINANCE_API_KEY")
    code, report = _check(binance, "binance-spot", capsys)
    assert code == 1 and "BINANCE_API_KEY" in report["steps"][0]["detail"]
    assert binance.requests == []


def test_check_exchange_mainnet_needs_typed_confirmation(binance, capsys, monkeypatch) -> None:
    monkeypatch.setattr("builtins.input", lambda: "yes")
    code = main(
        [
            "check-exchange",
            "--exchange",
            "binance-spot",
            "--symbol",
            "BTCUSDT",
            "--base-url",
            binance.url,
            "--mainnet",
        ]
    )
    assert code == 2 and binance.requests == []
    assert "not confirmed" in capsys.readouterr().err


def test_check_exchange_text_output_names_each_step(binance, capsys) -> None:
    code = main(
        [
            "check-exchange",
            "--exchange",
            "binance-spot",
            "--symbol",
            "BTCUSDT",
            "--base-url",
            binance.url,
        ]
    )
    out = capsys.readouterr().out
    assert code == 0 and "[ok] cancel order: CANCELED" in out and "check passed" in out
    assert DOC_API_SECRET not in out and DOC_API_KEY not in out


@pytest.fixture
def groq(monkeypatch):
    monkeypatch.setenv("GROQ_API_KEY", FAKE_GROQ_KEY)
    with FakeGroq() as fake:
        yield fake


def test_check_llm_prints_parsed_result(groq, capsys) -> None:
    groq.queue(good(0.3, 0.6))
    code = main(["check-llm", "--symbol", "BTCUSDT", "--base-url", groq.url, "--json"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0 and (out["score"], out["confidence"]) == (0.3, 0.6) and out["reasoning"]
    assert len(groq.requests) == 1


def test_check_llm_garbage_answer_exits_nonzero(groq, capsys) -> None:
    groq.queue(("content", "sure! bullish"))
    code = main(["check-llm", "--symbol", "BTCUSDT", "--base-url", groq.url])
    out = capsys.readouterr().out
    assert code == 1 and "FAILED" in out and "score +0.00" in out
