"""Sentiment: the value, the client interface, strict parsing, and the neutral fallback."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any, Literal, Protocol, runtime_checkable
from urllib.parse import urlparse

from pydantic import Field, field_validator

from swarm_ray.core.config import StrictModel
from swarm_ray.core.domain import MarketSnapshot

__all__ = [
    "LLMConfig",
    "NeutralSentiment",
    "Sentiment",
    "SentimentClient",
    "SentimentParseError",
    "parse_sentiment",
]

ENV_GROQ_API_KEY = "GROQ_API_KEY"
ACTIONS = ("buy", "sell", "hold")


class LLMConfig(StrictModel):
    """The sentiment LLM. The key comes from GROQ_API_KEY only."""

    enabled: bool = True
    model: str = "meta-llama/llama-4-scout-17b-16e-instruct"
    temperature: float = Field(0.1, ge=0.0, le=2.0)
    timeout_s: float = Field(5.0, gt=0, le=60)
    """A slower answer counts as no answer: neutral sentiment for this cycle."""
    cache_seconds: float = Field(60.0, ge=0)
    """Ask at most this often per symbol; the cached answer is reused in between."""
    max_tokens: int = Field(300, ge=32, le=4096)
    max_backoff_s: float = Field(300.0, gt=0)
    """Cap on the pause after 429s and failures (doubling from 1 s, or Retry-After)."""
    base_url: str | None = None
    """API root override (fakes, proxies), e.g. http://127.0.0.1:8081."""
    calibration: tuple[float, float] | None = None
    """(a, b) of ``p = 1 / (1 + exp(-(a * confidence + b)))``: the LLM's confidence as the
    probability its direction is right, fitted on a recorded history of its answers. Without
    it the sentiment is fetched and shown in the analyst's rationale but counts for nothing in
    the vote: an uncalibrated confidence has no meaning beside the models' calibrated ones."""

    @field_validator("base_url")
    @classmethod
    def _url(cls, v: str | None) -> str | None:
        if v is not None:
            p = urlparse(v)
            if p.scheme not in ("http", "https") or not p.netloc:
                raise ValueError(f"not an absolute http(s) URL: {v!r}")
            return v.rstrip("/")
        return v


@dataclass(frozen=True, slots=True)
class Sentiment:
    """Score in [-1, 1] (bearish..bullish), confidence in [0, 1]; zero confidence = no view."""

    symbol: str
    score: float
    confidence: float
    reasoning: str = ""
    key_factors: tuple[str, ...] = ()
    recommended_action: Literal["buy", "sell", "hold"] = "hold"
    source: str = "neutral"
    time_ns: int = 0

    def __post_init__(self) -> None:
        if not (-1.0 <= self.score <= 1.0) or not (0.0 <= self.confidence <= 1.0):
            raise ValueError(f"sentiment out of range: score={self.score} conf={self.confidence}")

    @classmethod
    def neutral(cls, symbol: str, reason: str, time_ns: int = 0) -> Sentiment:
        return cls(symbol, 0.0, 0.0, reasoning=reason, source="neutral", time_ns=time_ns)

    @property
    def is_neutral(self) -> bool:
        return self.confidence == 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "symbol": self.symbol,
            "score": self.score,
            "confidence": self.confidence,
            "reasoning": self.reasoning,
            "key_factors": list(self.key_factors),
            "recommended_action": self.recommended_action,
            "source": self.source,
        }


@runtime_checkable
class SentimentClient(Protocol):
    def sentiment(self, snapshot: MarketSnapshot, context: str = "") -> Sentiment:
        """Never raises: any failure is neutral sentiment with the reason in ``reasoning``."""
        ...


class NeutralSentiment:
    """No LLM configured (or no key): always neutral, zero confidence."""

    def __init__(self, reason: str = "no LLM configured") -> None:
        self.reason = reason

    def sentiment(self, snapshot: MarketSnapshot, context: str = "") -> Sentiment:
        return Sentiment.neutral(snapshot.symbol, self.reason, snapshot.time_ns)


class SentimentParseError(ValueError):
    """The model's answer is not the JSON object we asked for."""


def _number(data: dict[str, Any], key: str, lo: float, hi: float) -> float:
    v = data.get(key)
    if isinstance(v, bool) or not isinstance(v, int | float):
        raise SentimentParseError(f"'{key}' must be a number, got {type(v).__name__}")
    if not math.isfinite(v) or not lo <= v <= hi:
        raise SentimentParseError(f"'{key}' must be in [{lo}, {hi}], got {v}")
    return float(v)


def parse_sentiment(text: str, symbol: str, time_ns: int = 0, source: str = "llm") -> Sentiment:
    """Strictly parse the model's JSON answer; ``SentimentParseError`` on anything else."""
    try:
        data = json.loads(text.strip())
    except (json.JSONDecodeError, AttributeError) as exc:
        raise SentimentParseError(f"not JSON: {str(text)[:80]!r}") from exc
    if not isinstance(data, dict):
        raise SentimentParseError(f"expected a JSON object, got {type(data).__name__}")
    score = _number(data, "score", -1.0, 1.0)
    confidence = _number(data, "confidence", 0.0, 1.0)
    reasoning = data.get("reasoning", "")
    if not isinstance(reasoning, str):
        raise SentimentParseError("'reasoning' must be a string")
    factors = data.get("key_factors", [])
    if not isinstance(factors, list) or not all(isinstance(f, str) for f in factors):
        raise SentimentParseError("'key_factors' must be a list of strings")
    action = str(data.get("recommended_action", "hold")).lower()
    if action not in ACTIONS:
        raise SentimentParseError(f"'recommended_action' must be one of {ACTIONS}, got {action!r}")
    return Sentiment(
        symbol=symbol,
        score=score,
        confidence=confidence,
        reasoning=reasoning[:500],
        key_factors=tuple(f[:100] for f in factors[:8]),
        recommended_action=action,  # type: ignore[arg-type]
        source=source,
        time_ns=time_ns,
    )
