"""Groq sentiment through the real groq SDK against a fake server: answers and fallbacks."""

from __future__ import annotations

import logging

import pytest
from pydantic import SecretStr

from swarm_ray.agents.llm import GroqSentiment, LLMConfig, SentimentParseError, parse_sentiment
from swarm_ray.core.clock import SimulatedClock
from swarm_ray.core.domain import BookLevel, MarketSnapshot
from tests.fakes.groq_server import FAKE_GROQ_KEY, FakeGroq, good

SNAP = MarketSnapshot(
    "BTCUSDT", 1, 60000.0, 60000.5, bids=(BookLevel(60000.0, 2.0),), asks=(BookLevel(60000.5, 1.0),)
)


@pytest.fixture
def fake():
    with FakeGroq() as f:
        yield f


def _client(fake: FakeGroq, clock: SimulatedClock | None = None, **cfg) -> GroqSentiment:
    config = LLMConfig(base_url=fake.url, timeout_s=cfg.pop("timeout_s", 2.0), **cfg)
    return GroqSentiment(config, SecretStr(FAKE_GROQ_KEY), clock=clock or SimulatedClock(10**18))


def test_good_answer_is_parsed_and_request_uses_configured_model_and_json_mode(fake) -> None:
    fake.queue(good(-0.5, 0.8))
    s = _client(fake).sentiment(SNAP, context="1m returns: -0.2%")
    assert (s.score, s.confidence, s.recommended_action, s.source) == (-0.5, 0.8, "sell", "groq")
    req = fake.requests[0]
    assert req["model"] == "meta-llama/llama-4-scout-17b-16e-instruct"
    assert req["temperature"] == 0.1 and req["response_format"] == {"type": "json_object"}
    assert "BTCUSDT" in req["messages"][1]["content"] and "-0.2%" in req["messages"][1]["content"]


@pytest.mark.parametrize(
    "answer",
    [
        ("content", "I think the market is bullish!"),
        ("content", '{"score": 3, "confidence": 0.5}'),
        ("content", '{"score": 0.2}'),
        ("content", "[0.2, 0.5]"),
        ("500", None),
    ],
    ids=["prose", "score-out-of-range", "missing-confidence", "not-object", "server-error"],
)
def test_bad_answer_or_error_gives_neutral_with_reason(fake, answer, caplog) -> None:
    fake.queue(answer)
    with caplog.at_level(logging.WARNING):
        s = _client(fake).sentiment(SNAP)
    assert s.score == 0.0 and s.confidence == 0.0 and s.reasoning
    assert "neutral" in caplog.text


def test_slow_answer_times_out_to_neutral(fake) -> None:
    fake.queue(("slow", 1.5))
    s = _client(fake, timeout_s=0.3).sentiment(SNAP)
    assert s.is_neutral and "timeout" in s.reasoning


def test_no_key_is_neutral_without_any_request(fake, monkeypatch) -> None:
    monkeypatch.delenv("GROQ_API_KEY", raising=False)
    client = GroqSentiment(LLMConfig(base_url=fake.url))
    s = client.sentiment(SNAP)
    assert s.is_neutral and "GROQ_API_KEY" in s.reasoning and fake.requests == []


def test_wrong_key_is_neutral(fake) -> None:
    client = GroqSentiment(LLMConfig(base_url=fake.url), SecretStr("gsk_wrong"))
    assert client.sentiment(SNAP).reasoning == "API error 401"


def test_cache_asks_at_most_once_per_period_per_symbol(fake) -> None:
    clock = SimulatedClock(10**18)
    client = _client(fake, clock, cache_seconds=30)
    first = client.sentiment(SNAP)
    clock.advance(29 * 10**9)
    assert client.sentiment(SNAP) == first and len(fake.requests) == 1
    other = MarketSnapshot("ETHUSDT", 1, 3000.0, 3000.1)
    client.sentiment(other)
    assert len(fake.requests) == 2  # per symbol
    clock.advance(2 * 10**9)
    client.sentiment(SNAP)
    assert len(fake.requests) == 3


def test_429_backs_off_for_retry_after_then_asks_again(fake) -> None:
    clock = SimulatedClock(10**18)
    client = _client(fake, clock, cache_seconds=0)
    fake.queue(("429", 20))
    assert "rate limited" in client.sentiment(SNAP).reasoning
    clock.advance(10 * 10**9)
    assert "backing off" in client.sentiment(SNAP).reasoning
    assert len(fake.requests) == 1  # no request during the back-off
    clock.advance(11 * 10**9)
    assert client.sentiment(SNAP).confidence > 0 and len(fake.requests) == 2


def test_repeated_failures_back_off_exponentially(fake) -> None:
    clock = SimulatedClock(10**18)
    client = _client(fake, clock, cache_seconds=0)
    fake.queue(("500", None), ("500", None), ("500", None))
    client.sentiment(SNAP)  # 1 s
    clock.advance(1_100_000_000)
    client.sentiment(SNAP)  # 2 s
    clock.advance(1_100_000_000)
    assert "backing off" in client.sentiment(SNAP).reasoning
    assert len(fake.requests) == 2


def test_key_never_appears_in_repr_or_logs(fake, caplog) -> None:
    fake.queue(("500", None), good())
    with caplog.at_level(logging.DEBUG):
        client = _client(fake)
        client.sentiment(SNAP)
    assert FAKE_GROQ_KEY not in repr(client) + caplog.text
    assert FAKE_GROQ_KEY not in repr(LLMConfig()) and "api_key" not in LLMConfig.model_fields


@pytest.mark.parametrize(
    "text",
    [
        "",
        "null",
        '{"score": NaN, "confidence": 0.1}',
        '{"score": true, "confidence": 0.1}',
        '{"score": 0.1, "confidence": 0.1, "recommended_action": "moon"}',
    ],
)
def test_parse_sentiment_rejects_malformed_answers(text: str) -> None:
    with pytest.raises(SentimentParseError):
        parse_sentiment(text, "BTCUSDT")


def test_shipped_llm_config_loads_with_defaults() -> None:
    from swarm_ray.core.config import load_config

    cfg = load_config("configs/llm.yaml", LLMConfig, section="llm")
    assert cfg.model == "meta-llama/llama-4-scout-17b-16e-instruct" and cfg.temperature == 0.1
