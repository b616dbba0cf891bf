"""``swarm-ray check-llm``: ask the sentiment LLM once, about real recent market data, and print
the parsed answer.

The market data comes from the exchange when one is given (``--exchange``: its book and REST
klines, public endpoints, no keys needed), otherwise from the newest bundled kline file of the
symbol (``--data-dir``, default ``data/binance-spot-1m``).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from swarm_ray.agents.llm import GroqSentiment, LLMConfig
from swarm_ray.agents.llm.market_context import (
    MarketSummary,
    klines_from_frame,
    latest_kline_file,
    summarize_klines,
)
from swarm_ray.core.clock import LiveClock
from swarm_ray.core.config import PROJECT_ROOT, ConfigError, load_config, parse_config
from swarm_ray.core.domain import MarketSnapshot

DEFAULT_DATA_DIR = PROJECT_ROOT / "data" / "binance-spot-1m"
EXCHANGE_INTERVAL, EXCHANGE_LIMIT = "5m", 289  # 24 h of 5-minute bars and one more


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "check-llm", help="ask the sentiment LLM (Groq) once", description=__doc__
    )
    p.add_argument("--symbol", required=True, help="e.g. BTCUSDT")
    p.add_argument("--base-url", help="LLM API root override (fake, proxy)")
    p.add_argument("--config", help="YAML file with an 'llm' section")
    p.add_argument("--model", help="override the configured model")
    p.add_argument(
        "--exchange",
        choices=["binance-spot", "binance-futures"],
        help="take the market data from this venue (testnet) instead of the bundled files",
    )
    p.add_argument("--exchange-url", help="the venue's REST root override (fake, proxy)")
    p.add_argument(
        "--data-dir",
        default=str(DEFAULT_DATA_DIR),
        help="folder of <SYMBOL>-1m-YYYY-MM-DD.csv kline files (default: the bundled data)",
    )
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(func=run)


def _from_exchange(args: argparse.Namespace) -> tuple[MarketSnapshot, MarketSummary]:
    from swarm_ray.exchanges.binance import BinanceExchange
    from swarm_ray.exchanges.config import BinanceCredentials, ExchangeConfig

    cfg: dict[str, Any] = {"kind": args.exchange, "use_websocket": False}
    if args.exchange_url:
        cfg["base_url"] = args.exchange_url
    config = parse_config(ExchangeConfig, cfg, "check-llm")
    try:
        creds = BinanceCredentials.from_env()
    except ConfigError:
        creds = None  # the book and klines are public
    ex = BinanceExchange(config, creds)
    try:
        snap = ex.market_snapshot(args.symbol, depth=5)
        klines = ex.recent_klines(args.symbol, EXCHANGE_INTERVAL, EXCHANGE_LIMIT)
    finally:
        ex.close()
    source = f"{ex.name} {EXCHANGE_INTERVAL} klines at {config.rest_root()}"
    return snap, summarize_klines(args.symbol, klines, source)


def _from_files(args: argparse.Namespace) -> tuple[MarketSnapshot, MarketSummary]:
    from envs.data.klines import load_klines

    path = latest_kline_file(args.data_dir, args.symbol)
    if path is None:
        raise FileNotFoundError(
            f"no {args.symbol.upper()}-1m-*.csv in {args.data_dir}; "
            "pass --exchange to take the data from a venue, or --data-dir"
        )
    summary = summarize_klines(
        args.symbol, klines_from_frame(load_klines(path)), f"bundled file {Path(path).name}"
    )
    # no book in a kline file: the last close stands for both sides
    price = summary.last_price
    snap = MarketSnapshot(args.symbol, summary.end_time_ms * 1_000_000, price, price)
    return snap, summary


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
    try:
        snap, summary = _from_exchange(args) if args.exchange else _from_files(args)
    except Exception as exc:  # no data, no question: say why
        print(f"check-llm: no market data for {args.symbol}: {exc}", file=sys.stderr)
        return 2
    client = GroqSentiment(config, clock=LiveClock())
    result = client.sentiment(snap, context=summary.as_context())
    ok = not result.is_neutral
    out = result.as_dict() | {"model": config.model, "ok": ok, "market_data": summary.as_dict()}
    if args.json:
        print(json.dumps(out, indent=2, sort_keys=True))
    else:
        print(f"{config.model} on {args.symbol} ({summary.source}):")
        for line in summary.as_context().splitlines()[1:]:
            print(f"  {line}")
        print(
            f"  -> score {result.score:+.2f}  confidence {result.confidence:.2f}  "
            f"action {result.recommended_action}"
        )
        print(f"  reasoning: {result.reasoning}")
        print("check passed" if ok else "check FAILED (neutral fallback)")
    return 0 if ok else 1
