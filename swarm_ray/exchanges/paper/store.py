"""The paper account in SQLite: orders, fills, balances, positions and the venue's cursor.

WAL with synchronous=NORMAL: every ``write`` is one transaction, so a process crash loses
nothing written; an OS crash may lose the last transactions. One process at a time per file.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

from swarm_ray.core.domain import Fill, Order, OrderIntent, OrderStatus, OrderType, Side
from swarm_ray.exchanges.config import PaperConfig

__all__ = ["state_identity"]

_MS = 1_000_000
_ZERO = Decimal(0)


class _Order:
    """The venue's mutable record of one order; ``view()`` is its immutable ``Order``."""

    __slots__ = (
        "_view",
        "cid",
        "exchange_id",
        "filled",
        "live_ns",
        "order_type",
        "price",
        "price_f",
        "qty",
        "reserve",
        "reserve_asset",
        "seq",
        "side",
        "status",
        "symbol",
        "update_ms",
    )

    def __init__(
        self,
        seq: int,
        intent: OrderIntent,
        live_ns: int,
        reserve: Decimal,
        reserve_asset: str,
    ) -> None:
        self.seq = seq
        self.exchange_id = str(seq)
        self.symbol = intent.symbol
        self.side = intent.side
        self.order_type = intent.order_type
        # Binance reports a market order's price as 0
        self.price = _ZERO if intent.order_type is OrderType.MARKET else intent.price
        self.price_f = float(self.price)
        self.qty = intent.quantity
        self.filled = _ZERO
        self.cid = intent.client_order_id
        self.status = OrderStatus.NEW
        self.live_ns = live_ns
        self.update_ms = live_ns // _MS
        self.reserve = reserve  # funds (spot) or margin (futures) still held for the rest
        self.reserve_asset = reserve_asset
        self._view: Order | None = None

    def view(self) -> Order:
        if self._view is None:
            self._view = Order(
                symbol=self.symbol,
                side=self.side,
                price=self.price,
                quantity=self.qty,
                client_order_id=self.cid,
                status=self.status,
                filled_quantity=self.filled,
                exchange_order_id=self.exchange_id,
                order_type=self.order_type,
                update_time_ms=self.update_ms,
            )
        return self._view

    def row(self) -> tuple[Any, ...]:
        return (
            self.cid,
            self.seq,
            self.symbol,
            self.side.value,
            self.order_type.value,
            str(self.price),
            str(self.qty),
            str(self.filled),
            self.status.value,
            self.live_ns,
            self.update_ms,
            str(self.reserve),
            self.reserve_asset,
        )

    @classmethod
    def from_row(cls, r: Sequence[Any]) -> _Order:
        o = cls.__new__(cls)
        o.cid, o.seq, o.symbol = r[0], int(r[1]), r[2]
        o.exchange_id = str(o.seq)
        o.side, o.order_type = Side(r[3]), OrderType(r[4])
        o.price, o.qty, o.filled = Decimal(r[5]), Decimal(r[6]), Decimal(r[7])
        o.price_f = float(o.price)
        o.status = OrderStatus(r[8])
        o.live_ns, o.update_ms = int(r[9]), int(r[10])
        o.reserve, o.reserve_asset = Decimal(r[11]), r[12]
        o._view = None
        return o


_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS orders(
    cid TEXT PRIMARY KEY, seq INTEGER NOT NULL, symbol TEXT NOT NULL, side TEXT NOT NULL,
    type TEXT NOT NULL, price TEXT NOT NULL, qty TEXT NOT NULL, filled TEXT NOT NULL,
    status TEXT NOT NULL, live_ns INTEGER NOT NULL, update_ms INTEGER NOT NULL,
    reserve TEXT NOT NULL, reserve_asset TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS fills(
    trade_id INTEGER PRIMARY KEY, symbol TEXT NOT NULL, cid TEXT NOT NULL, side TEXT NOT NULL,
    price TEXT NOT NULL, qty TEXT NOT NULL, fee TEXT NOT NULL, fee_asset TEXT NOT NULL,
    time_ms INTEGER NOT NULL, is_maker INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS balances(
    asset TEXT PRIMARY KEY, free TEXT NOT NULL, locked TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS positions(symbol TEXT PRIMARY KEY, qty TEXT NOT NULL, entry TEXT);
"""


class _Store:
    """The account in SQLite: one small transaction per changing call."""

    def __init__(self, path: str) -> None:
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        self.conn = sqlite3.connect(p, isolation_level=None, check_same_thread=False)
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA synchronous=NORMAL")
        self.conn.executescript(_SCHEMA)

    def meta(self) -> dict[str, str]:
        return dict(self.conn.execute("SELECT key, value FROM meta"))

    def orders(self) -> Iterator[_Order]:
        """Every order, in placement order."""
        for row in self.conn.execute("SELECT * FROM orders ORDER BY seq"):
            yield _Order.from_row(row)

    def fills(self) -> Iterator[Fill]:
        """Every fill, in trade order."""
        for r in self.conn.execute("SELECT * FROM fills ORDER BY trade_id"):
            yield Fill(
                symbol=r[1],
                trade_id=str(r[0]),
                client_order_id=r[2],
                side=Side(r[3]),
                price=Decimal(r[4]),
                quantity=Decimal(r[5]),
                fee=Decimal(r[6]),
                fee_asset=r[7],
                time_ms=int(r[8]),
                is_maker=bool(r[9]),
            )

    def balances(self) -> list[tuple[str, Decimal, Decimal]]:
        """(asset, free, locked) of every asset."""
        rows = self.conn.execute("SELECT * FROM balances")
        return [(asset, Decimal(free), Decimal(locked)) for asset, free, locked in rows]

    def positions(self) -> list[tuple[str, Decimal, Decimal | None]]:
        """(symbol, quantity, entry price) of every futures position."""
        rows = self.conn.execute("SELECT * FROM positions")
        return [(s, Decimal(q), Decimal(e) if e is not None else None) for s, q, e in rows]

    def write(
        self,
        meta: dict[str, str],
        orders: Iterable[_Order],
        fills: list[Fill],
        balances: list[tuple[str, Decimal, Decimal]],
        positions: list[tuple[str, Decimal, Decimal | None]],
    ) -> None:
        """Store what changed, in one transaction."""
        orders_rows = [o.row() for o in orders]
        balance_rows = [(a, str(free), str(locked)) for a, free, locked in balances]
        position_rows = [(s, str(q), None if e is None else str(e)) for s, q, e in positions]
        c = self.conn
        c.execute("BEGIN")
        try:
            c.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)", meta.items())
            if orders_rows:
                c.executemany(
                    "INSERT OR REPLACE INTO orders VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)", orders_rows
                )
            if fills:
                c.executemany(
                    "INSERT INTO fills VALUES (?,?,?,?,?,?,?,?,?,?)",
                    [
                        (
                            int(f.trade_id),
                            f.symbol,
                            f.client_order_id,
                            f.side.value,
                            str(f.price),
                            str(f.quantity),
                            str(f.fee),
                            f.fee_asset,
                            f.time_ms,
                            int(f.is_maker),
                        )
                        for f in fills
                    ],
                )
            if balance_rows:
                c.executemany("INSERT OR REPLACE INTO balances VALUES (?, ?, ?)", balance_rows)
            if position_rows:
                c.executemany("INSERT OR REPLACE INTO positions VALUES (?, ?, ?)", position_rows)
        except BaseException:
            c.execute("ROLLBACK")
            raise
        c.execute("COMMIT")

    def close(self) -> None:
        self.conn.close()


def state_identity(config: PaperConfig) -> str:
    """What a state file was written for (market, symbols and their data, alignment): a state
    file is only resumed by an exchange with the same identity."""
    data = {
        "market": config.market,
        "symbols": {
            n: s.model_dump(
                mode="json",
                include={
                    "klines",
                    "l2",
                    "trades",
                    "book_ticker",
                    "history_klines",
                    "source_symbol",
                },
            )
            | {"time_offset_ms": s.time_offset_ms}
            for n, s in config.symbols.items()
        },
        "align_to_clock": config.align_to_clock,
    }
    return json.dumps(data, sort_keys=True)
