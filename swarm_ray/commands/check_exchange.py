"""``swarm-ray check-exchange``: can we talk to the venue, and trade on it, right now?

Server time and clock offset, the symbol's rules, balances, the book; then one small limit
order far from the market, queried and cancelled. Exits non-zero on any failure.

An endpoint that is not a Binance testnet host or a loopback address is mainnet (real money):
it needs allow_mainnet in the config, --mainnet and a typed confirmation.
"""

from __future__ import annotations

import argparse
import json
import sys
from decimal import ROUND_CEILING, Decimal
from typing import Any

from swarm_ray.core.clock import LiveClock
from swarm_ray.core.config import ConfigError, load_config, parse_config
from swarm_ray.core.domain import OrderIntent, OrderStatus, Side
from swarm_ray.core.errors import OrderDropped
from swarm_ray.core.instruments import SymbolRules, decimal_str
from swarm_ray.exchanges.binance import BinanceExchange
from swarm_ray.exchanges.config import BinanceCredentials, ExchangeConfig

MAINNET_CONFIRMATION = "I UNDERSTAND THIS IS REAL MONEY"
DEFAULT_BAND_MARGIN = Decimal("0.2")


def far_bid_price(
    rules: SymbolRules, best_bid: Decimal, reference: Decimal, margin: Decimal
) -> Decimal:
    """A buy price as far below the market as the price filters allow around ``reference``,
    keeping ``margin`` of the room unused (the venue's reference differs from ours a little)."""
    low, _ = rules.price_band(Side.BUY, reference)
    low = max(low, rules.tick_size)
    if low >= best_bid:
        raise RuntimeError(f"no room to bid below {best_bid}: lowest allowed price is {low}")
    target = low + (best_bid - low) * margin
    price = rules.quantize_price(target, Side.BUY)
    if price < low:  # rounding down crossed the limit: one tick up
        price += rules.tick_size
    return price


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "check-exchange",
        help="connectivity and order round-trip check against Binance (testnet by default)",
        description=__doc__,
    )
    p.add_argument("--exchange", required=True, choices=["binance-spot", "binance-futures"])
    p.add_argument("--symbol", required=True, help="e.g. BTCUSDT")
    p.add_argument(
        "--base-url",
        help="REST root override (fake, proxy, regional endpoint); anything but a Binance "
        "testnet host or loopback is mainnet",
    )
    p.add_argument("--config", help="YAML file with an 'exchange' section")
    p.add_argument(
        "--distance",
        type=Decimal,
        default=None,
        help="how far below the best bid to bid, as a fraction (default: as far as the symbol's "
        "price filters allow, keeping --margin of that room unused)",
    )
    p.add_argument(
        "--margin",
        type=Decimal,
        default=DEFAULT_BAND_MARGIN,
        help="share of the room between the best bid and the lowest allowed price left unused, "
        f"for the venue's own reference price (default {DEFAULT_BAND_MARGIN})",
    )
    p.add_argument(
        "--mainnet",
        action="store_true",
        help="real money: Binance's mainnet endpoints, or a config whose endpoints are mainnet; "
        "asks for a typed confirmation",
    )
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(func=run)


def _config(args: argparse.Namespace) -> ExchangeConfig:
    base: dict[str, Any] = {}
    if args.config:
        base = load_config(args.config, ExchangeConfig, section="exchange").model_dump()
    base["kind"] = args.exchange
    if args.base_url:
        base["base_url"] = args.base_url
    base["use_websocket"] = False
    if args.mainnet:
        base.update(testnet=False, allow_mainnet=True)
    return parse_config(ExchangeConfig, base, "check-exchange")


def _endpoints(config: ExchangeConfig) -> str:
    live = config.mainnet_endpoints() or config.endpoints()
    return ", ".join(f"{field} {url}" for field, url in live.items())


def _confirm_mainnet(config: ExchangeConfig) -> bool:
    print(
        f"Mainnet ({_endpoints(config)}): this places and cancels a real order. "
        f"Type '{MAINNET_CONFIRMATION}':"
    )
    try:
        return input().strip() == MAINNET_CONFIRMATION
    except EOFError:
        return False


def run(args: argparse.Namespace) -> int:
    config = _config(args)
    if config.is_mainnet and not args.mainnet:
        print(
            f"{_endpoints(config)}: mainnet, real money; pass --mainnet to check it (a typed "
            "confirmation follows); nothing sent",
            file=sys.stderr,
        )
        return 2
    if (args.mainnet or config.is_mainnet) and not _confirm_mainnet(config):
        print("mainnet not confirmed; nothing sent", file=sys.stderr)
        return 2
    clock = LiveClock()
    report: dict[str, Any] = {
        "exchange": config.kind,
        "network": config.network,
        "base_url": config.rest_root(),
        "symbol": args.symbol,
        "steps": [],
        "ok": False,
    }
    try:
        ex = BinanceExchange(config, BinanceCredentials.from_env(), clock=clock)
    except ConfigError as exc:
        report["steps"].append({"step": "credentials", "ok": False, "detail": str(exc)})
        return _emit(report, args.json)
    placed_cid: str | None = None
    step = "start"
    try:
        step = "server time"
        offset = ex.sync_time()
        _ok(report, step, f"offset {offset:+d} ms", offset_ms=offset)
        step = "symbol rules"
        r = ex.symbol_rules(args.symbol)
        _ok(
            report,
            step,
            f"tick {r.tick_size} step {r.step_size} min notional {r.min_notional}"
            + "".join(
                f" {name} {m[0]}..{m[1]}"
                for name, m in (
                    ("percent price", r.percent_price),
                    ("bid band", r.percent_price_bid),
                    ("ask band", r.percent_price_ask),
                )
                if m is not None
            ),
            tick_size=str(r.tick_size),
            step_size=str(r.step_size),
            min_qty=str(r.min_qty),
            min_notional=str(r.min_notional),
            percent_price=_pair(r.percent_price),
            percent_price_bid=_pair(r.percent_price_bid),
            percent_price_ask=_pair(r.percent_price_ask),
        )
        step = "balances"
        bals = {a: decimal_str(b.total) for a, b in ex.balances().items() if b.total > 0}
        _ok(
            report,
            step,
            ", ".join(f"{a} {v}" for a, v in sorted(bals.items())) or "none",
            balances=bals,
        )
        step = "order book"
        snap = ex.market_snapshot(args.symbol, depth=5)
        _ok(
            report,
            step,
            f"bid {snap.best_bid} ask {snap.best_ask}",
            best_bid=snap.best_bid,
            best_ask=snap.best_ask,
        )
        step = "place order"
        best_bid = Decimal(str(snap.best_bid))
        reference = ex.reference_price(args.symbol)  # the mid just seen
        if args.distance is not None:
            price = r.quantize_price(best_bid * (1 - args.distance), Side.BUY)
        else:
            if not 0 <= args.margin < 1:
                raise ValueError(f"--margin must be in [0, 1), got {args.margin}")
            price = far_bid_price(r, best_bid, reference, args.margin)
        band_low, band_high = r.price_band(Side.BUY, reference)
        qty = max(r.min_qty, (r.min_notional * Decimal("1.1") / price))
        qty = (
            r.min_qty
            + ((qty - r.min_qty) / r.step_size).to_integral_value(rounding=ROUND_CEILING)
            * r.step_size
        )
        placed_cid = f"chk-{clock.now_ms():x}"
        try:
            order = ex.place_order(OrderIntent(args.symbol, Side.BUY, price, qty, placed_cid))
        except OrderDropped:
            placed_cid = None  # refused locally: nothing was sent, nothing to clean up
            raise
        if order.status is OrderStatus.UNKNOWN:
            raise RuntimeError(f"order {placed_cid} outcome still unknown; check it by hand")
        _ok(
            report,
            step,
            f"BUY {decimal_str(order.quantity)} @ {decimal_str(order.price)} "
            f"{order.status} (client id {placed_cid})",
            client_order_id=placed_cid,
            reference_price=decimal_str(reference),
            allowed_low=decimal_str(band_low),
            allowed_high=decimal_str(band_high) if band_high is not None else None,
            price=decimal_str(order.price),
            quantity=decimal_str(order.quantity),
            status=str(order.status),
        )
        step = "query order"
        seen = ex.get_order(args.symbol, placed_cid)
        if seen is None:
            raise RuntimeError("the venue does not know the order it accepted")
        _ok(
            report,
            step,
            f"{seen.status}, exchange id {seen.exchange_order_id}",
            status=str(seen.status),
        )
        step = "cancel order"
        cancelled = ex.cancel_order(args.symbol, placed_cid)
        if cancelled.status is not OrderStatus.CANCELED:
            raise RuntimeError(f"order ended {cancelled.status}, not CANCELED")
        placed_cid = None
        _ok(report, step, str(cancelled.status), status=str(cancelled.status))
        report["ok"] = True
    except Exception as exc:  # a check reports every failure, it does not crash
        report["steps"].append(
            {"step": step, "ok": False, "detail": f"{type(exc).__name__}: {exc}"}
        )
        if placed_cid is not None:
            try:
                ex.cancel_order(args.symbol, placed_cid)
                report["cleanup"] = f"cancelled {placed_cid}"
            except Exception as cleanup_exc:
                report["cleanup"] = f"could not cancel {placed_cid}: {cleanup_exc}"
    finally:
        ex.close()
    return _emit(report, args.json)


def _pair(m: tuple[Decimal, Decimal] | None) -> list[str] | None:
    return None if m is None else [decimal_str(m[0]), decimal_str(m[1])]


def _ok(report: dict[str, Any], step: str, detail: str, **data: Any) -> None:
    report["steps"].append({"step": step, "ok": True, "detail": detail, **data})


def _emit(report: dict[str, Any], as_json: bool) -> int:
    if as_json:
        print(json.dumps(report, indent=2, sort_keys=True))
    else:
        print(
            f"{report['exchange']} ({report['network']}) at {report['base_url']}, "
            f"{report['symbol']}"
        )
        for s in report["steps"]:
            print(f"  [{'ok' if s['ok'] else 'FAIL'}] {s['step']}: {s['detail']}")
        if "cleanup" in report:
            print(f"  cleanup: {report['cleanup']}")
        print("check passed" if report["ok"] else "check FAILED")
    return 0 if report["ok"] else 1
