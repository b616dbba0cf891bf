"""Binance answers (spot and USD-M futures JSON) as typed domain objects."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

from swarm_ray.core.domain import BookLevel, Fill, Order, OrderStatus, OrderType, Side
from swarm_ray.core.instruments import Balance, Kline, Position, SymbolRules
from swarm_ray.exchanges.binance import constants as C
from swarm_ray.exchanges.errors import ExchangeError

__all__ = [
    "parse_balances",
    "parse_futures_balances",
    "parse_futures_position",
    "parse_klines",
    "parse_order",
    "parse_symbol_rules",
    "parse_trade",
]


def _dec(value: Any, default: str = "0") -> Decimal:
    return Decimal(str(value)) if value not in (None, "") else Decimal(default)


def parse_symbol_rules(info: Mapping[str, Any]) -> SymbolRules:
    """Turn one ``symbols[]`` entry of exchangeInfo (spot or futures) into ``SymbolRules``."""
    filters = {f["filterType"]: f for f in info.get("filters", [])}
    price_f = filters.get("PRICE_FILTER", {})
    lot_f = filters.get("LOT_SIZE", {})
    notional = Decimal(0)
    max_notional: Decimal | None = None
    if "NOTIONAL" in filters:  # spot, current
        notional = _dec(filters["NOTIONAL"].get("minNotional"))
        mx = filters["NOTIONAL"].get("maxNotional")
        max_notional = _dec(mx) if mx not in (None, "") else None
    elif "MIN_NOTIONAL" in filters:  # spot (legacy: minNotional) and futures (notional)
        f = filters["MIN_NOTIONAL"]
        notional = _dec(f.get("minNotional", f.get("notional")))
    if not price_f or not lot_f:
        raise ExchangeError(f"{info.get('symbol')}: exchangeInfo lacks PRICE_FILTER or LOT_SIZE")
    status = info.get("status", info.get("contractStatus", "TRADING"))
    pct = filters.get("PERCENT_PRICE")
    by_side = filters.get("PERCENT_PRICE_BY_SIDE")
    return SymbolRules(
        symbol=str(info["symbol"]),
        base_asset=str(info.get("baseAsset", "")),
        quote_asset=str(info.get("quoteAsset", "")),
        tick_size=_dec(price_f["tickSize"]),
        min_price=_dec(price_f.get("minPrice")),
        max_price=_dec(price_f.get("maxPrice")),
        step_size=_dec(lot_f["stepSize"]),
        min_qty=_dec(lot_f.get("minQty")),
        max_qty=_dec(lot_f.get("maxQty")),
        min_notional=notional,
        max_notional=max_notional,
        trading=status == "TRADING",
        percent_price=_multipliers(pct, "multiplier") if pct else None,
        percent_price_bid=_multipliers(by_side, "bidMultiplier") if by_side else None,
        percent_price_ask=_multipliers(by_side, "askMultiplier") if by_side else None,
    )


def _multipliers(f: Mapping[str, Any], prefix: str) -> tuple[Decimal, Decimal]:
    return _dec(f[prefix + "Down"]), _dec(f[prefix + "Up"])


def parse_order(d: Mapping[str, Any]) -> Order:
    """A spot or futures order answer (new, query, cancel) as an ``Order``."""
    # a spot cancel answer carries the order's id as origClientOrderId and a new id for the cancel
    cid = d.get("origClientOrderId") or d["clientOrderId"]
    raw_type = str(d.get("origType") or d.get("type") or "LIMIT")
    if raw_type == "LIMIT" and d.get("timeInForce") == "GTX":
        order_type = OrderType.LIMIT_MAKER
    else:
        order_type = OrderType(raw_type) if raw_type in OrderType.__members__ else OrderType.LIMIT
    status = C.STATUS_MAP.get(str(d.get("status")), OrderStatus.UNKNOWN)
    return Order(
        symbol=str(d["symbol"]),
        side=Side(d["side"]),
        price=_dec(d.get("price")),
        quantity=_dec(d.get("origQty")),
        client_order_id=str(cid),
        status=status,
        filled_quantity=_dec(d.get("executedQty")),
        exchange_order_id=str(d["orderId"]) if d.get("orderId") is not None else None,
        order_type=order_type,
        update_time_ms=int(d.get("updateTime") or d.get("transactTime") or d.get("time") or 0),
    )


def _levels(rows: Any, depth: int) -> tuple[BookLevel, ...]:
    return tuple(BookLevel(float(r[0]), float(r[1])) for r in list(rows)[:depth])


def parse_klines(rows: Iterable[Any]) -> list[Kline]:
    """Kline rows (spot /api/v3/klines, futures /fapi/v1/klines) as ``Kline``s."""
    return [
        Kline(
            int(r[0]),
            float(r[1]),
            float(r[2]),
            float(r[3]),
            float(r[4]),
            float(r[5]),
            int(r[6]),
            int(r[8]) if len(r) > 9 else 0,
            float(r[9]) if len(r) > 9 else None,
        )
        for r in rows
    ]


def parse_trade(t: Mapping[str, Any], symbol: str, client_order_id: str, futures: bool) -> Fill:
    """One of our trades (spot myTrades, futures userTrades) as a ``Fill``; the answer names the
    order by its venue id only, so the caller supplies the client id."""
    if futures:
        side = Side(t["side"])
        maker = bool(t.get("maker", False))
    else:
        side = Side.BUY if t.get("isBuyer") else Side.SELL
        maker = bool(t.get("isMaker", False))
    return Fill(
        symbol=symbol,
        trade_id=str(t["id"]),
        client_order_id=client_order_id,
        side=side,
        price=_dec(t["price"]),
        quantity=_dec(t["qty"]),
        fee=_dec(t.get("commission")),
        fee_asset=str(t.get("commissionAsset", "")),
        time_ms=int(t["time"]),
        is_maker=maker,
    )


def parse_balances(account: Mapping[str, Any]) -> dict[str, Balance]:
    """Spot account answer: free and locked per asset."""
    return {
        b["asset"]: Balance(b["asset"], _dec(b["free"]), _dec(b["locked"]))
        for b in account.get("balances", [])
    }


def parse_futures_balances(rows: Iterable[Mapping[str, Any]]) -> dict[str, Balance]:
    """Futures balance answer: free = available balance, locked = the rest of the wallet."""
    out = {}
    for r in rows:
        total, free = _dec(r.get("balance")), _dec(r.get("availableBalance"))
        out[r["asset"]] = Balance(r["asset"], free, max(Decimal(0), total - free))
    return out


def parse_futures_position(symbol: str, rows: Iterable[Mapping[str, Any]]) -> Position:
    """Futures positionRisk rows of one symbol (one per position side) as its net position."""
    qty, entry, upnl = Decimal(0), None, Decimal(0)
    for r in rows:
        amt = _dec(r.get("positionAmt"))
        qty += amt
        upnl += _dec(r.get("unRealizedProfit"))
        if amt != 0:
            entry = _dec(r.get("entryPrice"))
    return Position(symbol, qty, entry, upnl)
