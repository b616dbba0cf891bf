"""How the journal is laid out in SQLite: the tables, the statements that fill them, and the
conversions between rows and objects.

Prices, quantities and fees of orders and fills are stored as exact ``Decimal`` text; market
prices, confidences and PnL as REAL; times as integer ns (ours) or ms (the venue's). A
kill-switch event or stop request for every symbol has the scope ``"*"``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from swarm_ray.core.domain import Action, Fill, Order, OrderStatus, OrderType, Side

SCHEMA_VERSION = 3
"""Kept in SQLite's ``user_version``; a journal of another version is refused, not guessed at
(one written by an older version is migrated when opened for writing: ``MIGRATIONS``)."""

GLOBAL_SCOPE = "*"
"""The ``scope`` of a kill-switch event or stop request that covers every symbol."""

SCHEMA = """
CREATE TABLE runs (
    run_id      TEXT PRIMARY KEY,
    started_ns  INTEGER NOT NULL
);
CREATE TABLE cycles (
    id            INTEGER PRIMARY KEY,
    run_id        TEXT NOT NULL REFERENCES runs(run_id),
    symbol        TEXT NOT NULL,
    cycle         INTEGER NOT NULL,
    time_ns       INTEGER NOT NULL,
    mid           REAL,
    best_bid      REAL,
    best_ask      REAL,
    data_problems TEXT NOT NULL DEFAULT '[]',
    latency_ms    REAL,
    inventory     REAL,
    pnl           REAL,
    UNIQUE (run_id, symbol, cycle)
);
CREATE INDEX cycles_symbol_time ON cycles(symbol, time_ns);
CREATE TABLE opinions (
    cycle_id      INTEGER NOT NULL REFERENCES cycles(id) ON DELETE CASCADE,
    agent_id      TEXT NOT NULL,
    outcome       TEXT NOT NULL CHECK (outcome IN ('voted', 'timeout', 'failed')),
    action        TEXT,
    confidence    REAL,
    weight        REAL,
    model_version TEXT,
    rationale     TEXT,
    features      BLOB,
    hindsight     REAL,
    edge_bps      REAL,
    PRIMARY KEY (cycle_id, agent_id)
) WITHOUT ROWID;
CREATE TABLE decisions (
    cycle_id          INTEGER PRIMARY KEY REFERENCES cycles(id) ON DELETE CASCADE,
    action            TEXT NOT NULL,
    voted_action      TEXT,
    consensus_share   REAL,
    winning_score     REAL,
    responding_weight REAL,
    scores            TEXT NOT NULL DEFAULT '{}',
    reason            TEXT NOT NULL DEFAULT '',
    risk_allowed      INTEGER NOT NULL,
    risk_reasons      TEXT NOT NULL DEFAULT '[]',
    ladder            TEXT
);
CREATE TABLE orders (
    client_order_id   TEXT PRIMARY KEY,
    run_id            TEXT,
    cycle             INTEGER,
    symbol            TEXT NOT NULL,
    side              TEXT NOT NULL CHECK (side IN ('BUY', 'SELL')),
    order_type        TEXT NOT NULL,
    time_in_force     TEXT,
    price             TEXT NOT NULL,
    quantity          TEXT NOT NULL,
    status            TEXT NOT NULL,
    filled_quantity   TEXT NOT NULL DEFAULT '0',
    exchange_order_id TEXT,
    reason            TEXT,
    created_ns        INTEGER NOT NULL,
    updated_ns        INTEGER NOT NULL,
    update_time_ms    INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX orders_symbol_status ON orders(symbol, status);
CREATE INDEX orders_cycle ON orders(run_id, symbol, cycle);
CREATE TABLE fills (
    symbol          TEXT NOT NULL,
    trade_id        TEXT NOT NULL,
    client_order_id TEXT NOT NULL,
    side            TEXT NOT NULL,
    price           TEXT NOT NULL,
    quantity        TEXT NOT NULL,
    fee             TEXT NOT NULL,
    fee_asset       TEXT NOT NULL,
    time_ms         INTEGER NOT NULL,
    is_maker        INTEGER NOT NULL,
    recorded_ns     INTEGER NOT NULL,
    PRIMARY KEY (symbol, trade_id)
);
CREATE INDEX fills_order ON fills(client_order_id);
CREATE INDEX fills_symbol_time ON fills(symbol, time_ms);
CREATE TABLE kill_switch_events (
    id      INTEGER PRIMARY KEY,
    scope   TEXT NOT NULL,
    event   TEXT NOT NULL CHECK (event IN ('trip', 'clear')),
    reason  TEXT NOT NULL,
    actor   TEXT NOT NULL,
    time_ns INTEGER NOT NULL
);
CREATE INDEX kill_switch_scope ON kill_switch_events(scope, id);
CREATE TABLE stop_requests (
    id           INTEGER PRIMARY KEY,
    scope        TEXT NOT NULL,
    emergency    INTEGER NOT NULL,
    reason       TEXT NOT NULL,
    requested_by TEXT NOT NULL,
    requested_ns INTEGER NOT NULL
);
CREATE TABLE stop_acks (
    stop_id  INTEGER NOT NULL REFERENCES stop_requests(id),
    symbol   TEXT NOT NULL,
    acked_ns INTEGER NOT NULL,
    PRIMARY KEY (stop_id, symbol)
) WITHOUT ROWID;
"""

MODEL_DECISIONS = """
CREATE TABLE model_decisions (
    id         INTEGER PRIMARY KEY,
    time_ns    INTEGER NOT NULL,
    role       TEXT NOT NULL,
    decision   TEXT NOT NULL,
    champion   TEXT,
    challenger TEXT,
    reason     TEXT NOT NULL DEFAULT '',
    evidence   TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX model_decisions_role ON model_decisions(role, id);
"""
"""The learning loop's decisions about model versions (promoted, rejected); an operator's
rollback is in the registry's ``champions.json`` history."""

SCHEMA += MODEL_DECISIONS

MIGRATIONS: dict[int, tuple[str, ...]] = {
    # 1 -> 2: the votes' outcome in hindsight (the agents' track records), a ladder vote's
    # distances
    1: (
        "ALTER TABLE opinions ADD COLUMN hindsight REAL",
        "ALTER TABLE opinions ADD COLUMN edge_bps REAL",
        "ALTER TABLE decisions ADD COLUMN ladder TEXT",
    ),
    # 2 -> 3: the learning loop's decisions about model versions
    2: tuple(x.strip() for x in MODEL_DECISIONS.split(";") if x.strip()),
}
"""Statements that bring a journal of version ``k`` to ``k + 1``."""

READ_AS_MIGRATED: dict[int, tuple[str, ...]] = {
    # temporary views shadow the file's tables on a read-only connection (SQLite looks in
    # ``temp`` first), adding the columns version k + 1 has as nulls
    1: (
        "CREATE TEMP VIEW opinions AS SELECT *, NULL AS hindsight, NULL AS edge_bps"
        " FROM main.opinions",
        "CREATE TEMP VIEW decisions AS SELECT *, NULL AS ladder FROM main.decisions",
    ),
    2: (
        "CREATE TEMP VIEW model_decisions AS SELECT NULL AS id, NULL AS time_ns, NULL AS role,"
        " NULL AS decision, NULL AS champion, NULL AS challenger, NULL AS reason,"
        " NULL AS evidence WHERE 0",
    ),
}
"""How a reader sees a journal of version ``k`` as version ``k + 1`` without writing to it."""

SCORE_OPINION = (
    "UPDATE opinions SET hindsight = ?, edge_bps = ? WHERE agent_id = ? AND cycle_id = "
    "(SELECT id FROM cycles WHERE run_id = ? AND symbol = ? AND cycle = ?)"
)

INSERT_CYCLE = (
    "INSERT INTO cycles (run_id, symbol, cycle, time_ns, mid, best_bid, best_ask, data_problems,"
    " latency_ms, inventory, pnl) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
INSERT_OPINION = (
    "INSERT INTO opinions (cycle_id, agent_id, outcome, action, confidence, weight, model_version,"
    " rationale, features) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
INSERT_DECISION = (
    "INSERT INTO decisions (cycle_id, action, voted_action, consensus_share, winning_score,"
    " responding_weight, scores, reason, risk_allowed, risk_reasons, ladder)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
INSERT_INTENT = (
    "INSERT INTO orders (client_order_id, run_id, cycle, symbol, side, order_type, time_in_force,"
    " price, quantity, status, created_ns, updated_ns) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
ORDER_COLUMNS = (
    "symbol, side, price, quantity, client_order_id, status, filled_quantity, exchange_order_id,"
    " order_type, update_time_ms"
)
FILL_COLUMNS = (
    "symbol, trade_id, client_order_id, side, price, quantity, fee, fee_asset, time_ms, is_maker"
)


def dec_text(value: Decimal) -> str:
    """Exact decimal text, never an exponent (``1E-8`` is stored as ``0.00000001``)."""
    return format(value, "f")


def action_label(action: Action | None) -> str | None:
    return None if action is None else action.label


def scores_json(scores: Mapping[Any, float]) -> str:
    """Scores keyed by action label, whether the caller keyed them by ``Action`` or label."""
    if not scores:
        return "{}"
    return json.dumps({(k.label if isinstance(k, Action) else str(k)): float(v)
                       for k, v in scores.items()})  # fmt: skip


def to_scope(symbol: str | None) -> str:
    """The stored scope of a symbol's switch or stop (``None``: every symbol)."""
    if symbol == GLOBAL_SCOPE:
        raise ValueError(f"{GLOBAL_SCOPE!r} is not a symbol; pass None for every symbol")
    return GLOBAL_SCOPE if symbol is None else symbol


def from_scope(scope: str) -> str | None:
    return None if scope == GLOBAL_SCOPE else scope


def order_from_row(row: tuple) -> Order:
    """An :class:`Order` from a row of :data:`ORDER_COLUMNS`."""
    return Order(
        symbol=row[0],
        side=Side(row[1]),
        price=Decimal(row[2]),
        quantity=Decimal(row[3]),
        client_order_id=row[4],
        status=OrderStatus(row[5]),
        filled_quantity=Decimal(row[6]),
        exchange_order_id=row[7],
        order_type=OrderType(row[8]),
        update_time_ms=row[9],
    )


def fill_from_row(row: tuple) -> Fill:
    """A :class:`Fill` from a row of :data:`FILL_COLUMNS`."""
    return Fill(
        symbol=row[0],
        trade_id=row[1],
        client_order_id=row[2],
        side=Side(row[3]),
        price=Decimal(row[4]),
        quantity=Decimal(row[5]),
        fee=Decimal(row[6]),
        fee_asset=row[7],
        time_ms=row[8],
        is_maker=bool(row[9]),
    )


def fill_dict(fill: Fill) -> dict[str, Any]:
    """A fill as plain JSON-ready values (decimals as exact text), as explanations show it."""
    return {
        "trade_id": fill.trade_id,
        "client_order_id": fill.client_order_id,
        "side": fill.side.value,
        "price": dec_text(fill.price),
        "quantity": dec_text(fill.quantity),
        "fee": dec_text(fill.fee),
        "fee_asset": fill.fee_asset,
        "time_ms": fill.time_ms,
        "is_maker": fill.is_maker,
    }
