"""LLM sentiment for the market analyst: an interface, a Groq implementation, a neutral fallback."""

from swarm_ray.agents.llm.groq_sentiment import GroqSentiment
from swarm_ray.agents.llm.sentiment import (
    LLMConfig,
    NeutralSentiment,
    Sentiment,
    SentimentClient,
    SentimentParseError,
    parse_sentiment,
)

__all__ = [
    "GroqSentiment",
    "LLMConfig",
    "NeutralSentiment",
    "Sentiment",
    "SentimentClient",
    "SentimentParseError",
    "parse_sentiment",
]
