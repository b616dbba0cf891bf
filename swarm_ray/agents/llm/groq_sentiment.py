"""Groq sentiment through the ``groq`` SDK: cached per symbol, backs off, never raises."""

from __future__ import annotations

import logging
import threading

import groq
from pydantic import SecretStr

from swarm_ray.agents.llm.sentiment import (
    ENV_GROQ_API_KEY,
    LLMConfig,
    Sentiment,
    SentimentParseError,
    parse_sentiment,
)
from swarm_ray.core.clock import Clock, LiveClock
from swarm_ray.core.config import secret_from_env
from swarm_ray.core.domain import MarketSnapshot

__all__ = ["GroqSentiment", "build_prompt"]

log = logging.getLogger(__name__)
_NS = 1_000_000_000

SYSTEM_PROMPT = (
    "You are a crypto market analyst. Judge the short-term sentiment for the symbol from the "
    "market data given. Answer with one JSON object and nothing else, with keys: "
    '"score" (number from -1 bearish to 1 bullish), "confidence" (number from 0 to 1), '
    '"reasoning" (one or two sentences), "key_factors" (list of short strings), '
    '"recommended_action" ("buy", "sell" or "hold").'
)


def build_prompt(snapshot: MarketSnapshot, context: str = "") -> str:
    lines = [f"Symbol: {snapshot.symbol}"]
    if snapshot.spread > 0:
        lines.append(
            f"Best bid: {snapshot.best_bid:.8g}  best ask: {snapshot.best_ask:.8g}  "
            f"mid: {snapshot.mid:.8g}  spread: {snapshot.spread:.8g}"
        )
    else:  # no order book (e.g. a price taken from klines)
        lines.append(f"Price: {snapshot.mid:.8g}")
    if snapshot.last_price is not None:
        lines.append(f"Last price: {snapshot.last_price:.8g}")
    if snapshot.bids and snapshot.asks:
        bid_qty = sum(level.qty for level in snapshot.bids)
        ask_qty = sum(level.qty for level in snapshot.asks)
        lines.append(f"Book depth (qty, top levels): bids {bid_qty:.6g} asks {ask_qty:.6g}")
    if context:
        lines.append(f"Recent market data:\n{context}")
    return "\n".join(lines)


class GroqSentiment:
    """``SentimentClient`` over Groq's chat completions (OpenAI-compatible, JSON mode)."""

    def __init__(
        self,
        config: LLMConfig,
        api_key: SecretStr | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.config = config
        self._clock = clock or LiveClock()
        key = api_key if api_key is not None else secret_from_env(ENV_GROQ_API_KEY)
        self._client: groq.Groq | None = None
        if key is not None and config.enabled:
            # the SDK's own retries would block the cycle; back-off is ours (see _fail)
            self._client = groq.Groq(
                api_key=key.get_secret_value(),
                base_url=config.base_url,
                timeout=config.timeout_s,
                max_retries=0,
            )
        self._lock = threading.Lock()
        self._cache: dict[str, tuple[int, Sentiment]] = {}
        self._blocked_until_ns = 0
        self._failures = 0
        self.calls = 0

    def __repr__(self) -> str:
        return (
            f"GroqSentiment(model={self.config.model!r}, key={'set' if self._client else 'unset'})"
        )

    def _neutral(self, snapshot: MarketSnapshot, reason: str) -> Sentiment:
        log.info("sentiment %s neutral: %s", snapshot.symbol, reason)
        return Sentiment.neutral(snapshot.symbol, reason, self._clock.now_ns())

    def sentiment(self, snapshot: MarketSnapshot, context: str = "") -> Sentiment:
        if self._client is None:
            reason = "LLM disabled" if not self.config.enabled else f"{ENV_GROQ_API_KEY} not set"
            return self._neutral(snapshot, reason)
        now = self._clock.monotonic_ns()
        with self._lock:
            cached = self._cache.get(snapshot.symbol)
            if cached is not None and now - cached[0] < self.config.cache_seconds * _NS:
                return cached[1]
            if now < self._blocked_until_ns:
                left = (self._blocked_until_ns - now) / _NS
                return self._neutral(snapshot, f"backing off for {left:.1f}s after failures")
        try:
            self.calls += 1
            completion = self._client.chat.completions.create(
                model=self.config.model,
                temperature=self.config.temperature,
                max_tokens=self.config.max_tokens,
                response_format={"type": "json_object"},
                messages=[
                    {"role": "system", "content": SYSTEM_PROMPT},
                    {"role": "user", "content": build_prompt(snapshot, context)},
                ],
            )
            text = completion.choices[0].message.content or ""
            result = parse_sentiment(text, snapshot.symbol, self._clock.now_ns(), source="groq")
        except groq.RateLimitError as exc:
            return self._fail(snapshot, "rate limited (429)", _retry_after(exc))
        except groq.APITimeoutError:
            return self._fail(snapshot, f"timeout after {self.config.timeout_s}s")
        except groq.APIStatusError as exc:
            return self._fail(snapshot, f"API error {exc.status_code}")
        except groq.APIConnectionError as exc:
            return self._fail(snapshot, f"connection error: {type(exc).__name__}")
        except (SentimentParseError, IndexError, AttributeError) as exc:
            return self._fail(snapshot, f"unparseable answer: {exc}")
        except Exception as exc:  # the cycle must never see an LLM exception
            return self._fail(snapshot, f"unexpected {type(exc).__name__}")
        with self._lock:
            self._failures = 0
            self._cache[snapshot.symbol] = (self._clock.monotonic_ns(), result)
        return result

    def _fail(
        self, snapshot: MarketSnapshot, reason: str, retry_after: float | None = None
    ) -> Sentiment:
        with self._lock:
            self._failures += 1
            backoff = min(self.config.max_backoff_s, 2.0 ** (self._failures - 1))
            if retry_after is not None:
                backoff = min(self.config.max_backoff_s, max(backoff, retry_after))
            self._blocked_until_ns = self._clock.monotonic_ns() + int(backoff * _NS)
        log.warning(
            "sentiment %s: %s; neutral, next try in %.1fs", snapshot.symbol, reason, backoff
        )
        return Sentiment.neutral(snapshot.symbol, reason, self._clock.now_ns())


def _retry_after(exc: groq.APIStatusError) -> float | None:
    raw = exc.response.headers.get("retry-after") if exc.response is not None else None
    try:
        return float(raw) if raw is not None else None
    except ValueError:
        return None
