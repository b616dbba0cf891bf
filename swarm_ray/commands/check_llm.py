"""``swarm-ray check-llm``: ask the sentiment LLM once and print the parsed answer."""

from __future__ import annotations

import argparse
import json
from typing import Any

from swarm_ray.clock import LiveClock
from swarm_ray.config import load_config, parse_config
from swarm_ray.domain import MarketSnapshot
from swarm_ray.llm import GroqSentiment, LLMConfig


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "check-llm", help="ask the sentiment LLM (Groq) once", description=__doc__
    )
    p.add_argument("--symbol", required=True, help="e.g. BTCUSDT")
    p.add_argument("--base-url", help="API root override (fake, proxy)")
    p.add_argument("--config", help="YAML file with an 'llm' section")
    p.add_argument("--model", help="override the configured model")
    p.add_argument("--mid", type=float, default=100.0, help="mid price to describe (default 100)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    data: dict[str, Any] = {}
    if args.config:
        data = load_config(args.config, LLMConfig, section="llm").model_dump()
    if args.base_url:
        data["base_url"] = args.base_url
    if args.model:
        data["model"] = args.model
    data["cache_seconds"] = 0
    config = parse_config(LLMConfig, data, "check-llm")
    clock = LiveClock()
    client = GroqSentiment(config, clock=clock)
    half = args.mid * 5e-5
    snap = MarketSnapshot(args.symbol, clock.now_ns(), args.mid - half, args.mid + half)
    result = client.sentiment(snap, context="connectivity check: no recent market data given")
    ok = not result.is_neutral
    out = result.as_dict() | {"model": config.model, "ok": ok}
    if args.json:
        print(json.dumps(out, indent=2, sort_keys=True))
    else:
        print(f"{config.model} on {args.symbol}:")
        print(
            f"  score {result.score:+.2f}  confidence {result.confidence:.2f}  "
            f"action {result.recommended_action}"
        )
        print(f"  reasoning: {result.reasoning}")
        print("check passed" if ok else "check FAILED (neutral fallback)")
    return 0 if ok else 1
