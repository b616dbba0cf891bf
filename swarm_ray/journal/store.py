"""The journal: a SQLite (WAL) record of every cycle, vote, decision, order and fill.

It is what lets an operator explain any order by the votes of its cycle, what keeps a tripped
kill switch tripped across restarts, and what a restarted coordinator reconciles against: an
order intent is committed here (status ``PENDING``) *before* it is sent, under a deterministic
client order id that is the table's primary key, so the same intent can never be recorded (and
therefore never sent) twice.

Threading: one ``Journal`` owns one SQLite connection and must be used from the thread that
created it (sqlite3's same-thread check enforces this). Other processes may open the same file
at the same time: readers (``read_only=True``, e.g. the CLI) never block the writer under WAL,
and a few writers serialise on SQLite's lock (``busy_timeout``).

Storage: prices, quantities and fees of orders and fills are exact ``Decimal`` text; market
prices, confidences and PnL are floats (REAL); times are integer ns (ours) or ms (the venue's).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import sqlite3
import string
import uuid
from array import array
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

from swarm_ray.core.clock import Clock, LiveClock
from swarm_ray.core.domain import (
    Action,
    Fill,
    Opinion,
    Order,
    OrderIntent,
    OrderStatus,
    OrderType,
    Side,
)

__all__ = [
    "NEVER_SENT",
    "SCHEMA_VERSION",
    "UNRESOLVED_STATUSES",
    "CycleRecord",
    "DecisionRecord",
    "DuplicateIntent",
    "Journal",
    "JournalError",
    "JournalSchemaError",
    "KillSwitch",
    "StopRequest",
    "deterministic_client_order_id",
    "explain_text",
]

SCHEMA_VERSION = 1
"""Kept in SQLite's ``user_version``; a journal of another version is refused, not guessed at."""

UNRESOLVED_STATUSES: tuple[OrderStatus, ...] = (
    OrderStatus.PENDING,
    OrderStatus.UNKNOWN,
    OrderStatus.NEW,
    OrderStatus.PARTIALLY_FILLED,
)
"""Orders whose state at the venue a restarted coordinator must check before quoting again."""

NEVER_SENT = "never sent"
"""Reason prefix of an intent that reconcile found the venue never received."""

_GLOBAL = "*"  # kill-switch / stop scope meaning "every symbol"
_B36 = string.digits + string.ascii_lowercase


class JournalError(RuntimeError):
    """A journal operation that cannot be carried out as asked."""


class JournalSchemaError(JournalError):
    """The file is not a journal this code can read (newer, older or foreign schema)."""


class DuplicateIntent(JournalError):
    """An intent with this client order id is already journaled: it must not be sent again."""

    def __init__(self, client_order_id: str) -> None:
        super().__init__(
            f"order intent {client_order_id!r} is already in the journal; it was (or may have "
            "been) sent before and must be reconciled, never sent again"
        )
        self.client_order_id = client_order_id


# ----------------------------------------------------------------------------- records


@dataclass(frozen=True, slots=True)
class DecisionRecord:
    """What consensus and the risk gate made of one cycle's votes."""

    action: Action
    """The action carried out (after the risk gate)."""
    voted_action: Action | None = None
    """The consensus winner before the risk gate; ``None`` when no action won (safe default)."""
    consensus_share: float = 0.0
    winning_score: float = 0.0
    responding_weight: float = 0.0
    reason: str = ""
    """Why consensus decided what it did (threshold, quorum, override)."""
    risk_allowed: bool = True
    risk_reasons: tuple[str, ...] = ()
    """The risk gate's reasons for changing or blocking the voted action."""
    scores: Mapping[Action | str, float] = field(default_factory=dict)
    """Weighted score per action (``Action`` or its label)."""


@dataclass(frozen=True, slots=True)
class CycleRecord:
    """Everything the journal keeps about one coordinator cycle."""

    symbol: str
    cycle: int
    time_ns: int
    mid: float | None = None
    best_bid: float | None = None
    best_ask: float | None = None
    data_problems: tuple[str, ...] = ()
    opinions: tuple[Opinion, ...] = ()
    timed_out: tuple[str, ...] = ()
    """Agents that did not answer within the cycle's timeout."""
    failed: tuple[str, ...] = ()
    """Agents whose call raised (dead actor, model error)."""
    weights: Mapping[str, float] = field(default_factory=dict)
    """Configured consensus weight per agent id (kept with each vote)."""
    decision: DecisionRecord | None = None
    latency_ms: float | None = None
    inventory: float | None = None
    pnl: float | None = None

    def __post_init__(self) -> None:
        if self.cycle < 0:
            raise ValueError(f"cycle must be >= 0, got {self.cycle}")
        agents = [o.agent_id for o in self.opinions] + [*self.timed_out, *self.failed]
        if len(agents) != len(set(agents)):
            raise ValueError(f"an agent appears more than once in cycle {self.cycle}: {agents}")


@dataclass(frozen=True, slots=True)
class KillSwitch:
    """A tripped kill switch; ``symbol`` is ``None`` when it stops every symbol."""

    symbol: str | None
    reason: str
    tripped_by: str
    tripped_ns: int


@dataclass(frozen=True, slots=True)
class StopRequest:
    """An operator's request that a running swarm stop (``symbol`` ``None``: every symbol)."""

    id: int
    symbol: str | None
    emergency: bool
    reason: str
    requested_by: str
    requested_ns: int


# ----------------------------------------------------------------------------- client ids


def _b36(n: int) -> str:
    out = ""
    while True:
        n, r = divmod(n, 36)
        out = _B36[r] + out
        if n == 0:
            return out


def deterministic_client_order_id(
    run_id: str, symbol: str, cycle: int, side: Side | str, level: int, attempt: int = 0
) -> str:
    """The client order id of one ladder level of one cycle, the same in every process.

    ``sr<12 hex of sha256(run_id, symbol)>-<cycle>-<B|S><level>-<attempt>`` with the numbers
    in base 36: at most 32 characters of ``[a-z0-9-]``, inside Binance's
    ``^[.A-Z:/a-z0-9_-]{1,36}$``. Within one run and symbol it is injective; across runs and
    symbols it differs unless 48 bits of SHA-256 collide.
    """
    side = Side(side)
    if not isinstance(cycle, int) or not 0 <= cycle < 36**10:
        raise ValueError(f"cycle must be an int in [0, 36**10), got {cycle!r}")
    if not isinstance(level, int) or not 0 <= level < 36**2:
        raise ValueError(f"level must be an int in [0, 1296), got {level!r}")
    if not isinstance(attempt, int) or not 0 <= attempt < 36**2:
        raise ValueError(f"attempt must be an int in [0, 1296), got {attempt!r}")
    # Length-prefixed so that ("ab", "c") and ("a", "bc") hash differently.
    key = f"{len(run_id)}:{run_id}|{len(symbol)}:{symbol}".encode()
    digest = hashlib.sha256(key).hexdigest()[:12]
    side_char = "B" if side is Side.BUY else "S"
    return f"sr{digest}-{_b36(cycle)}-{side_char}{_b36(level)}-{_b36(attempt)}"


# ----------------------------------------------------------------------------- schema

_SCHEMA = """
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
    risk_reasons      TEXT NOT NULL DEFAULT '[]'
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

_INSERT_CYCLE = (
    "INSERT INTO cycles (run_id, symbol, cycle, time_ns, mid, best_bid, best_ask, data_problems,"
    " latency_ms, inventory, pnl) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_INSERT_OPINION = (
    "INSERT INTO opinions (cycle_id, agent_id, outcome, action, confidence, weight, model_version,"
    " rationale, features) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_INSERT_DECISION = (
    "INSERT INTO decisions (cycle_id, action, voted_action, consensus_share, winning_score,"
    " responding_weight, scores, reason, risk_allowed, risk_reasons)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_INSERT_INTENT = (
    "INSERT INTO orders (client_order_id, run_id, cycle, symbol, side, order_type, time_in_force,"
    " price, quantity, status, created_ns, updated_ns) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_ORDER_COLUMNS = (
    "symbol, side, price, quantity, client_order_id, status, filled_quantity, exchange_order_id,"
    " order_type, update_time_ms"
)
_FILL_COLUMNS = (
    "symbol, trade_id, client_order_id, side, price, quantity, fee, fee_asset, time_ms, is_maker"
)


def _dec(value: Decimal) -> str:
    return format(value, "f")


def _label(action: Action | None) -> str | None:
    return None if action is None else action.label


def _scores_json(scores: Mapping[Any, float]) -> str:
    """Scores keyed by action label, whether the caller keyed them by ``Action`` or label."""
    if not scores:
        return "{}"
    return json.dumps({(k.label if isinstance(k, Action) else str(k)): float(v)
                       for k, v in scores.items()})  # fmt: skip


def _scope(symbol: str | None) -> str:
    if symbol == _GLOBAL:
        raise ValueError(f"{_GLOBAL!r} is not a symbol; pass None for every symbol")
    return _GLOBAL if symbol is None else symbol


def _unscope(scope: str) -> str | None:
    return None if scope == _GLOBAL else scope


def _order_from_row(row: tuple) -> Order:
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


def _fill_from_row(row: tuple) -> Fill:
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


def _fill_dict(fill: Fill) -> dict[str, Any]:
    return {
        "trade_id": fill.trade_id,
        "client_order_id": fill.client_order_id,
        "side": fill.side.value,
        "price": _dec(fill.price),
        "quantity": _dec(fill.quantity),
        "fee": _dec(fill.fee),
        "fee_asset": fill.fee_asset,
        "time_ms": fill.time_ms,
        "is_maker": fill.is_maker,
    }


# ----------------------------------------------------------------------------- journal


class Journal:
    """The swarm's SQLite journal (see the module docstring for threading and storage).

    ``run_id`` names this process's run in cycles and orders and seeds client order ids; pass
    the same one to a restarted coordinator so its numbering continues. ``read_only`` opens an
    existing journal for queries only (the CLI beside a running swarm). ``synchronous`` is
    ``"NORMAL"`` (a commit survives a killed process; the last commits may be lost on power
    loss) or ``"FULL"`` (fsync on every commit).
    """

    def __init__(
        self,
        path: str | Path,
        *,
        run_id: str | None = None,
        read_only: bool = False,
        clock: Clock | None = None,
        synchronous: Literal["NORMAL", "FULL"] = "NORMAL",
        busy_timeout_ms: int = 5000,
    ) -> None:
        if synchronous not in ("NORMAL", "FULL"):
            raise ValueError(f"synchronous must be NORMAL or FULL, got {synchronous!r}")
        self.path = str(path)
        self.read_only = read_only
        self.run_id = run_id or uuid.uuid4().hex[:12]
        self._clock: Clock = clock or LiveClock()
        self._run_registered = False
        in_memory = self.path == ":memory:"
        if read_only:
            if in_memory:
                raise ValueError("an in-memory journal cannot be opened read-only")
            if not Path(self.path).exists():
                raise FileNotFoundError(f"no journal at {self.path}")
            uri = f"{Path(self.path).resolve().as_uri()}?mode=ro"
            self._conn = sqlite3.connect(uri, uri=True, isolation_level=None)
        else:
            if not in_memory:
                Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            self._conn = sqlite3.connect(self.path, isolation_level=None)
        try:
            self._conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
            self._conn.execute("PRAGMA foreign_keys = ON")
            if not read_only:
                mode = self._conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
                if mode.lower() != "wal" and not in_memory:
                    raise JournalError(f"{self.path}: could not switch to WAL (got {mode})")
                self._conn.execute(f"PRAGMA synchronous = {synchronous}")
            self._check_or_create_schema()
        except BaseException:
            self._conn.close()
            raise

    # -- lifecycle

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        mode = "ro" if self.read_only else "rw"
        return f"Journal({self.path!r}, run_id={self.run_id!r}, {mode})"

    @property
    def journal_mode(self) -> str:
        return self._conn.execute("PRAGMA journal_mode").fetchone()[0].lower()

    def _check_or_create_schema(self) -> None:
        version = self._conn.execute("PRAGMA user_version").fetchone()[0]
        if version == SCHEMA_VERSION:
            return
        if version > SCHEMA_VERSION:
            raise JournalSchemaError(
                f"{self.path}: journal schema version {version} is newer than this code's "
                f"({SCHEMA_VERSION}); use the swarm-ray version that wrote it"
            )
        if version != 0:
            raise JournalSchemaError(
                f"{self.path}: journal schema version {version} is older than this code's "
                f"({SCHEMA_VERSION}) and there is no migration; start a new journal file"
            )
        tables = self._conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
        if tables:
            raise JournalSchemaError(f"{self.path}: not a swarm-ray journal (unversioned tables)")
        if self.read_only:
            raise JournalSchemaError(f"{self.path}: empty file, not a swarm-ray journal")
        with self._tx():
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    self._conn.execute(statement)
            self._conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        """One write transaction; IMMEDIATE so that a busy database waits here, not mid-way."""
        if self.read_only:
            raise JournalError(f"{self.path} is open read-only")
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            yield self._conn
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        self._conn.execute("COMMIT")

    @contextmanager
    def _snapshot(self) -> Iterator[sqlite3.Connection]:
        """A read transaction, so that a query of several statements sees one state."""
        if self._conn.in_transaction:
            yield self._conn
            return
        self._conn.execute("BEGIN")
        try:
            yield self._conn
        finally:
            self._conn.execute("COMMIT")

    def _register_run(self, conn: sqlite3.Connection) -> None:
        if not self._run_registered:
            conn.execute(
                "INSERT OR IGNORE INTO runs (run_id, started_ns) VALUES (?, ?)",
                (self.run_id, self._clock.now_ns()),
            )
            self._run_registered = True

    # -- cycles

    def record_cycle(self, record: CycleRecord, intents: Iterable[OrderIntent] = ()) -> int:
        """Write one cycle (its votes, decision and optionally its order intents) in one
        transaction and return the cycle's row id.

        Passing the cycle's ``intents`` here commits them (``PENDING``) together with the votes
        that caused them, before they are sent; :meth:`record_intents` is the alternative
        when the cycle is recorded after sending. Raises :class:`DuplicateIntent` (and writes
        nothing) if an intent's id is already journaled.
        """
        weights = record.weights
        rows: list[tuple] = [
            (
                o.agent_id,
                "voted",
                o.action.label,
                o.confidence,
                weights.get(o.agent_id),
                o.model_version,
                o.rationale,
                array("d", o.features).tobytes() if o.features else None,
            )
            for o in record.opinions
        ]
        rows += [
            (a, "timeout", None, None, weights.get(a), None, None, None) for a in record.timed_out
        ]
        rows += [(a, "failed", None, None, weights.get(a), None, None, None) for a in record.failed]
        problems = json.dumps(list(record.data_problems)) if record.data_problems else "[]"
        intents = tuple(intents)
        try:
            with self._tx() as conn:
                self._register_run(conn)
                cycle_id = conn.execute(
                    _INSERT_CYCLE,
                    (self.run_id, record.symbol, record.cycle, record.time_ns, record.mid,
                     record.best_bid, record.best_ask, problems, record.latency_ms,
                     record.inventory, record.pnl),
                ).lastrowid  # fmt: skip
                conn.executemany(_INSERT_OPINION, [(cycle_id, *row) for row in rows])
                d = record.decision
                if d is not None:
                    conn.execute(
                        _INSERT_DECISION,
                        (cycle_id, d.action.label, _label(d.voted_action), d.consensus_share,
                         d.winning_score, d.responding_weight,
                         _scores_json(d.scores), d.reason,
                         int(d.risk_allowed), json.dumps(list(d.risk_reasons))),
                    )  # fmt: skip
                if intents:
                    self._insert_intents(conn, intents, record.cycle)
        except sqlite3.IntegrityError as exc:
            if "cycles.run_id, cycles.symbol, cycles.cycle" in str(exc):
                raise JournalError(
                    f"cycle {record.cycle} of {record.symbol} is already journaled for run "
                    f"{self.run_id!r}; continue from last_cycle() + 1"
                ) from exc
            raise
        assert cycle_id is not None
        return cycle_id

    def last_cycle(self, symbol: str) -> int | None:
        """The highest cycle number journaled for ``symbol`` in this run (resume after it)."""
        row = self._conn.execute(
            "SELECT max(cycle) FROM cycles WHERE run_id = ? AND symbol = ?", (self.run_id, symbol)
        ).fetchone()
        return row[0]

    def symbols(self) -> list[str]:
        """Every symbol with a cycle, an order or a kill-switch event in this journal."""
        rows = self._conn.execute(
            "SELECT symbol FROM cycles UNION SELECT symbol FROM orders"
            " UNION SELECT scope FROM kill_switch_events WHERE scope != ?",
            (_GLOBAL,),
        ).fetchall()
        return sorted(r[0] for r in rows)

    # -- orders

    def record_intent(self, intent: OrderIntent, *, cycle: int | None = None) -> None:
        """Commit one intent as ``PENDING`` before it is sent (see :meth:`record_intents`)."""
        self.record_intents((intent,), cycle=cycle)

    def record_intents(self, intents: Iterable[OrderIntent], *, cycle: int | None = None) -> None:
        """Commit intents as ``PENDING`` in one transaction; call this *before* sending them.

        ``cycle`` is the cycle number (in this run) that decided them. If any client order id
        is already journaled, nothing is written and :class:`DuplicateIntent` is raised.
        """
        intents = tuple(intents)
        if intents:
            with self._tx() as conn:
                self._register_run(conn)
                self._insert_intents(conn, intents, cycle)

    def _insert_intents(
        self, conn: sqlite3.Connection, intents: tuple[OrderIntent, ...], cycle: int | None
    ) -> None:
        now = self._clock.now_ns()
        for i in intents:
            try:
                conn.execute(
                    _INSERT_INTENT,
                    (i.client_order_id, self.run_id, cycle, i.symbol, i.side.value,
                     i.order_type.value, i.time_in_force, _dec(i.price), _dec(i.quantity),
                     OrderStatus.PENDING.value, now, now),
                )  # fmt: skip
            except sqlite3.IntegrityError as exc:
                if "orders.client_order_id" in str(exc):
                    raise DuplicateIntent(i.client_order_id) from exc
                raise

    def update_order(self, order: Order, *, reason: str | None = None) -> bool:
        """Store the venue's view of an order (insert it if the journal never saw it).

        Returns ``False`` and keeps the stored row when the update is stale: older than the
        stored venue time, or an open status arriving after a final one the venue reported.
        """
        now = self._clock.now_ns()
        with self._tx() as conn:
            row = conn.execute(
                "SELECT status, update_time_ms, reason FROM orders WHERE client_order_id = ?",
                (order.client_order_id,),
            ).fetchone()
            if row is None:
                conn.execute(
                    "INSERT INTO orders (client_order_id, symbol, side, order_type, price,"
                    " quantity, status, filled_quantity, exchange_order_id, reason, created_ns,"
                    " updated_ns, update_time_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (order.client_order_id, order.symbol, order.side.value,
                     order.order_type.value, _dec(order.price), _dec(order.quantity),
                     order.status.value, _dec(order.filled_quantity), order.exchange_order_id,
                     reason, now, now, order.update_time_ms),
                )  # fmt: skip
                return True
            stored, stored_ms, stored_reason = OrderStatus(row[0]), row[1], row[2] or ""
            if order.update_time_ms and stored_ms and order.update_time_ms < stored_ms:
                return False
            venue_final = stored.is_final and not stored_reason.startswith(NEVER_SENT)
            if venue_final and not order.status.is_final:
                return False
            conn.execute(
                "UPDATE orders SET status = ?, filled_quantity = ?,"
                " exchange_order_id = coalesce(?, exchange_order_id), price = ?, quantity = ?,"
                " reason = coalesce(?, reason), updated_ns = ?,"
                " update_time_ms = max(update_time_ms, ?) WHERE client_order_id = ?",
                (order.status.value, _dec(order.filled_quantity), order.exchange_order_id,
                 _dec(order.price), _dec(order.quantity), reason, now, order.update_time_ms,
                 order.client_order_id),
            )  # fmt: skip
            return True

    def set_order_status(
        self, client_order_id: str, status: OrderStatus, *, reason: str | None = None
    ) -> None:
        """Set a journaled order's status locally (e.g. ``UNKNOWN`` after a send timed out)."""
        with self._tx() as conn:
            cur = conn.execute(
                "UPDATE orders SET status = ?, reason = coalesce(?, reason), updated_ns = ?"
                " WHERE client_order_id = ?",
                (OrderStatus(status).value, reason, self._clock.now_ns(), client_order_id),
            )
            if cur.rowcount == 0:
                raise KeyError(f"no order {client_order_id!r} in the journal")

    def mark_never_sent(self, client_order_id: str, reason: str = "") -> None:
        """Reconcile found the venue never had this ``PENDING``/``UNKNOWN`` intent: ``REJECTED``.

        The intent stays in the journal, so its client order id can never be sent again.
        """
        with self._tx() as conn:
            row = conn.execute(
                "SELECT status FROM orders WHERE client_order_id = ?", (client_order_id,)
            ).fetchone()
            if row is None:
                raise KeyError(f"no order {client_order_id!r} in the journal")
            if row[0] not in (OrderStatus.PENDING.value, OrderStatus.UNKNOWN.value):
                raise JournalError(
                    f"order {client_order_id!r} is {row[0]}: the venue acknowledged it, so it "
                    "cannot be marked never sent"
                )
            conn.execute(
                "UPDATE orders SET status = ?, reason = ?, updated_ns = ?"
                " WHERE client_order_id = ?",
                (OrderStatus.REJECTED.value, f"{NEVER_SENT}: {reason}" if reason else NEVER_SENT,
                 self._clock.now_ns(), client_order_id),
            )  # fmt: skip

    def order(self, client_order_id: str) -> Order | None:
        row = self._conn.execute(
            f"SELECT {_ORDER_COLUMNS} FROM orders WHERE client_order_id = ?", (client_order_id,)
        ).fetchone()
        return None if row is None else _order_from_row(row)

    def orders(
        self,
        symbol: str | None = None,
        statuses: Iterable[OrderStatus] | None = None,
        *,
        limit: int | None = None,
    ) -> list[Order]:
        """Journaled orders (every run), oldest first, optionally by symbol and status."""
        sql = f"SELECT {_ORDER_COLUMNS} FROM orders WHERE 1"
        args: list[Any] = []
        if symbol is not None:
            sql += " AND symbol = ?"
            args.append(symbol)
        if statuses is not None:
            values = [OrderStatus(s).value for s in statuses]
            sql += f" AND status IN ({', '.join('?' * len(values))})"
            args += values
        sql += " ORDER BY created_ns, rowid"
        if limit is not None:
            sql += " LIMIT ?"
            args.append(int(limit))
        return [_order_from_row(r) for r in self._conn.execute(sql, args)]

    def unresolved_orders(self, symbol: str) -> list[Order]:
        """Orders of ``symbol`` (any run) that reconcile must check at the venue."""
        return self.orders(symbol, UNRESOLVED_STATUSES)

    # -- fills

    def record_fills(self, fills: Iterable[Fill]) -> list[Fill]:
        """Store fills, ignoring ones already journaled (same symbol and trade id); return
        only the new ones, in the order given."""
        fills = tuple(fills)
        if not fills:
            return []
        new: list[Fill] = []
        now = self._clock.now_ns()
        with self._tx() as conn:
            for f in fills:
                cur = conn.execute(
                    f"INSERT OR IGNORE INTO fills ({_FILL_COLUMNS}, recorded_ns)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (f.symbol, f.trade_id, f.client_order_id, f.side.value, _dec(f.price),
                     _dec(f.quantity), _dec(f.fee), f.fee_asset, f.time_ms, int(f.is_maker), now),
                )  # fmt: skip
                if cur.rowcount == 1:
                    new.append(f)
        return new

    def fills(
        self,
        symbol: str | None = None,
        *,
        client_order_id: str | None = None,
        since_ms: int | None = None,
    ) -> list[Fill]:
        sql = f"SELECT {_FILL_COLUMNS} FROM fills WHERE 1"
        args: list[Any] = []
        for column, value, op in (
            ("symbol", symbol, "="),
            ("client_order_id", client_order_id, "="),
            ("time_ms", since_ms, ">="),
        ):
            if value is not None:
                sql += f" AND {column} {op} ?"
                args.append(value)
        sql += " ORDER BY time_ms, rowid"
        return [_fill_from_row(r) for r in self._conn.execute(sql, args)]

    def last_fill_time_ms(self, symbol: str) -> int | None:
        """Venue time of the newest journaled fill of ``symbol`` (ask the venue from here)."""
        return self._conn.execute(
            "SELECT max(time_ms) FROM fills WHERE symbol = ?", (symbol,)
        ).fetchone()[0]

    # -- kill switch

    def _kill_state(self, scope: str) -> KillSwitch | None:
        last = self._conn.execute(
            "SELECT event FROM kill_switch_events WHERE scope = ? ORDER BY id DESC LIMIT 1",
            (scope,),
        ).fetchone()
        if last is None or last[0] != "trip":
            return None
        # The first trip since the last clear: the original cause, not a later repetition.
        row = self._conn.execute(
            "SELECT reason, actor, time_ns FROM kill_switch_events WHERE scope = ?"
            " AND event = 'trip' AND id > coalesce((SELECT max(id) FROM kill_switch_events"
            " WHERE scope = ? AND event = 'clear'), 0) ORDER BY id LIMIT 1",
            (scope, scope),
        ).fetchone()
        return KillSwitch(_unscope(scope), row[0], row[1], row[2])

    def trip_kill_switch(
        self, symbol: str | None, reason: str, *, actor: str = "swarm"
    ) -> KillSwitch:
        """Trip the kill switch for ``symbol`` (``None``: every symbol). It stays tripped,
        across restarts, until :meth:`clear_kill_switch`; tripping it again changes nothing."""
        if not reason:
            raise ValueError("a kill switch needs a reason")
        scope = _scope(symbol)
        with self._tx() as conn:
            current = self._kill_state(scope)
            if current is not None:
                return current
            conn.execute(
                "INSERT INTO kill_switch_events (scope, event, reason, actor, time_ns)"
                " VALUES (?, 'trip', ?, ?, ?)",
                (scope, reason, actor, self._clock.now_ns()),
            )
        state = self._kill_state(scope)
        assert state is not None
        return state

    def kill_switch(self, symbol: str | None) -> KillSwitch | None:
        """The tripped switch that stops ``symbol`` (the global one first), or ``None``.
        With ``symbol`` ``None``, only the global switch is looked at."""
        state = self._kill_state(_GLOBAL)
        if state is None and symbol is not None:
            state = self._kill_state(_scope(symbol))
        return state

    def clear_kill_switch(self, symbol: str | None, operator: str, reason: str = "") -> bool:
        """An operator clears the switch of ``symbol`` (``None``: the global one). Returns
        whether it was tripped. Clearing a symbol's switch leaves a tripped global one."""
        if not operator:
            raise ValueError("clearing the kill switch needs the operator's name")
        scope = _scope(symbol)
        with self._tx() as conn:
            if self._kill_state(scope) is None:
                return False
            conn.execute(
                "INSERT INTO kill_switch_events (scope, event, reason, actor, time_ns)"
                " VALUES (?, 'clear', ?, ?, ?)",
                (scope, reason or "cleared by operator", operator, self._clock.now_ns()),
            )
            return True

    def kill_switch_history(self, symbol: str | None = None) -> list[dict[str, Any]]:
        """Every trip and clear, oldest first (of ``symbol`` and the global switch)."""
        scopes = [_GLOBAL] if symbol is None else [_GLOBAL, _scope(symbol)]
        rows = self._conn.execute(
            "SELECT scope, event, reason, actor, time_ns FROM kill_switch_events"
            f" WHERE scope IN ({', '.join('?' * len(scopes))}) ORDER BY id",
            scopes,
        )
        return [
            {"symbol": _unscope(s), "event": e, "reason": r, "actor": a, "time_ns": t}
            for s, e, r, a, t in rows
        ]

    # -- operator stop requests

    def request_stop(
        self,
        symbol: str | None,
        *,
        emergency: bool = False,
        reason: str = "",
        requested_by: str = "operator",
    ) -> int:
        """Ask the running swarm of ``symbol`` (``None``: every symbol) to stop; an emergency
        stop also cancels every order. Returns the request id."""
        with self._tx() as conn:
            cur = conn.execute(
                "INSERT INTO stop_requests (scope, emergency, reason, requested_by, requested_ns)"
                " VALUES (?, ?, ?, ?, ?)",
                (_scope(symbol), int(emergency), reason, requested_by, self._clock.now_ns()),
            )
            assert cur.lastrowid is not None
            return cur.lastrowid

    def pending_stop(self, symbol: str, *, since_ns: int = 0) -> StopRequest | None:
        """The oldest stop request for ``symbol`` (or every symbol) made at or after
        ``since_ns`` that this symbol has not acknowledged. A coordinator passes its run's
        start so that a request left over from an earlier run does not stop it."""
        row = self._conn.execute(
            "SELECT id, scope, emergency, reason, requested_by, requested_ns FROM stop_requests r"
            " WHERE scope IN (?, ?) AND requested_ns >= ? AND NOT EXISTS"
            " (SELECT 1 FROM stop_acks a WHERE a.stop_id = r.id AND a.symbol = ?)"
            " ORDER BY emergency DESC, id LIMIT 1",
            (_scope(symbol), _GLOBAL, since_ns, symbol),
        ).fetchone()
        if row is None:
            return None
        return StopRequest(row[0], _unscope(row[1]), bool(row[2]), row[3], row[4], row[5])

    def acknowledge_stop(self, request_id: int, symbol: str) -> None:
        """``symbol``'s coordinator has carried out the stop request; it is no longer pending
        for that symbol (a global request stays pending for the other symbols)."""
        with self._tx() as conn:
            conn.execute(
                "INSERT OR IGNORE INTO stop_acks (stop_id, symbol, acked_ns) VALUES (?, ?, ?)",
                (request_id, symbol, self._clock.now_ns()),
            )

    # -- queries

    def opinions(self, cycle_id: int) -> list[dict[str, Any]]:
        """Every agent's vote (or timeout/failure) in one cycle, by agent id."""
        rows = self._conn.execute(
            "SELECT agent_id, outcome, action, confidence, weight, model_version, rationale,"
            " features FROM opinions WHERE cycle_id = ? ORDER BY agent_id",
            (cycle_id,),
        )
        out = []
        for agent, outcome, action, conf, weight, version, rationale, features in rows:
            out.append(
                {
                    "agent_id": agent,
                    "outcome": outcome,
                    "action": action,
                    "confidence": conf,
                    "weight": weight,
                    "model_version": version,
                    "rationale": rationale,
                    "features": list(array("d", features)) if features else [],
                }
            )
        return out

    _CYCLE_SELECT = (
        "SELECT c.id, c.run_id, c.symbol, c.cycle, c.time_ns, c.mid, c.best_bid, c.best_ask,"
        " c.data_problems, c.latency_ms, c.inventory, c.pnl, d.action, d.voted_action,"
        " d.consensus_share, d.winning_score, d.responding_weight, d.scores, d.reason,"
        " d.risk_allowed, d.risk_reasons FROM cycles c LEFT JOIN decisions d ON d.cycle_id = c.id"
    )

    @staticmethod
    def _cycle_dict(r: tuple) -> dict[str, Any]:
        decision = None
        if r[12] is not None:
            decision = {
                "action": r[12],
                "voted_action": r[13],
                "consensus_share": r[14],
                "winning_score": r[15],
                "responding_weight": r[16],
                "scores": json.loads(r[17]),
                "reason": r[18],
                "risk_allowed": bool(r[19]),
                "risk_reasons": json.loads(r[20]),
            }
        return {
            "id": r[0],
            "run_id": r[1],
            "symbol": r[2],
            "cycle": r[3],
            "time_ns": r[4],
            "mid": r[5],
            "best_bid": r[6],
            "best_ask": r[7],
            "data_problems": json.loads(r[8]),
            "latency_ms": r[9],
            "inventory": r[10],
            "pnl": r[11],
            "decision": decision,
        }

    def cycle(self, cycle_id: int) -> dict[str, Any] | None:
        row = self._conn.execute(f"{self._CYCLE_SELECT} WHERE c.id = ?", (cycle_id,)).fetchone()
        return None if row is None else self._cycle_dict(row)

    def cycles(self, symbol: str | None = None, limit: int = 20) -> list[dict[str, Any]]:
        """The newest ``limit`` cycles (with their decisions), newest first."""
        sql, args = self._CYCLE_SELECT, []
        if symbol is not None:
            sql += " WHERE c.symbol = ?"
            args.append(symbol)
        sql += " ORDER BY c.time_ns DESC, c.id DESC LIMIT ?"
        return [self._cycle_dict(r) for r in self._conn.execute(sql, [*args, int(limit)])]

    def explain_order(self, client_order_id: str) -> dict[str, Any]:
        """Why an order exists: the order, its fills, and its cycle's market view, every
        agent's vote, the consensus and the risk gate. Raises ``KeyError`` if unknown."""
        with self._snapshot():
            return self._explain_order(client_order_id)

    def _explain_order(self, client_order_id: str) -> dict[str, Any]:
        row = self._conn.execute(
            f"SELECT {_ORDER_COLUMNS}, run_id, cycle, time_in_force, reason, created_ns,"
            " updated_ns FROM orders WHERE client_order_id = ?",
            (client_order_id,),
        ).fetchone()
        if row is None:
            raise KeyError(f"no order {client_order_id!r} in the journal")
        order = _order_from_row(row[:10])
        run_id, cycle_no = row[10], row[11]
        out: dict[str, Any] = {
            "order": {
                "client_order_id": order.client_order_id,
                "symbol": order.symbol,
                "side": order.side.value,
                "type": order.order_type.value,
                "time_in_force": row[12],
                "price": _dec(order.price),
                "quantity": _dec(order.quantity),
                "status": order.status.value,
                "filled_quantity": _dec(order.filled_quantity),
                "exchange_order_id": order.exchange_order_id,
                "reason": row[13],
                "run_id": run_id,
                "cycle": cycle_no,
                "created_ns": row[14],
                "updated_ns": row[15],
                "update_time_ms": order.update_time_ms,
            },
            "fills": [_fill_dict(f) for f in self.fills(client_order_id=client_order_id)],
            "cycle": None,
            "opinions": [],
            "cycle_orders": [],
        }
        if cycle_no is None:
            out["note"] = "not tied to a cycle (placed outside one, or adopted from the venue)"
            return out
        cycle_row = self._conn.execute(
            f"{self._CYCLE_SELECT} WHERE c.run_id = ? AND c.symbol = ? AND c.cycle = ?",
            (run_id, order.symbol, cycle_no),
        ).fetchone()
        if cycle_row is None:
            out["note"] = f"cycle {cycle_no} was not recorded (the coordinator stopped first)"
        else:
            out["cycle"] = self._cycle_dict(cycle_row)
            out["opinions"] = self.opinions(cycle_row[0])
        out["cycle_orders"] = [
            {"client_order_id": c, "side": s, "price": p, "quantity": q, "status": st}
            for c, s, p, q, st in self._conn.execute(
                "SELECT client_order_id, side, price, quantity, status FROM orders"
                " WHERE run_id = ? AND symbol = ? AND cycle = ? ORDER BY rowid",
                (run_id, order.symbol, cycle_no),
            )
        ]
        return out

    def summary(self, symbol: str | None = None) -> dict[str, Any]:
        """Counts and totals for the CLI's status view (``symbol`` ``None``: all symbols)."""
        with self._snapshot():
            return self._summary(symbol)

    def _summary(self, symbol: str | None) -> dict[str, Any]:
        where, args = ("WHERE symbol = ?", [symbol]) if symbol is not None else ("", [])
        where_c = "WHERE c.symbol = ?" if symbol is not None else ""
        conn = self._conn
        n_cycles, first_ns, last_ns = conn.execute(
            f"SELECT count(*), min(time_ns), max(time_ns) FROM cycles {where}", args
        ).fetchone()
        decisions = dict(
            conn.execute(
                f"SELECT d.action, count(*) FROM decisions d JOIN cycles c ON c.id = d.cycle_id"
                f" {where_c} GROUP BY d.action ORDER BY d.action",
                args,
            ).fetchall()
        )
        timeouts = dict(
            conn.execute(
                f"SELECT o.agent_id, count(*) FROM opinions o JOIN cycles c ON c.id = o.cycle_id"
                f" {where_c} {'AND' if where_c else 'WHERE'} o.outcome != 'voted'"
                " GROUP BY o.agent_id ORDER BY o.agent_id",
                args,
            ).fetchall()
        )
        orders = dict(
            conn.execute(
                f"SELECT status, count(*) FROM orders {where} GROUP BY status ORDER BY status",
                args,
            ).fetchall()
        )
        fees: dict[str, Decimal] = {}
        filled: dict[str, Decimal] = {"BUY": Decimal(0), "SELL": Decimal(0)}
        n_fills = 0
        for side, qty, fee, asset in conn.execute(
            f"SELECT side, quantity, fee, fee_asset FROM fills {where}", args
        ):
            n_fills += 1
            filled[side] += Decimal(qty)
            fees[asset] = fees.get(asset, Decimal(0)) + Decimal(fee)
        last = self.cycles(symbol, limit=1)
        ks = self.kill_switch(symbol)
        return {
            "symbol": symbol,
            "cycles": n_cycles,
            "first_time_ns": first_ns,
            "last_time_ns": last_ns,
            "decisions": decisions,
            "agents_missing": timeouts,
            "orders": orders,
            "fills": n_fills,
            "filled_quantity": {k: _dec(v) for k, v in filled.items()},
            "fees": {k: _dec(v) for k, v in sorted(fees.items())},
            "last_cycle": last[0] if last else None,
            "kill_switch": None if ks is None else dataclasses.asdict(ks),
        }


def explain_text(explanation: Mapping[str, Any]) -> str:
    """A human-readable rendering of :meth:`Journal.explain_order`'s result."""
    o = explanation["order"]
    lines = [
        f"order {o['client_order_id']}: {o['side']} {o['quantity']} {o['symbol']} @ {o['price']}"
        f" ({o['type']}) status {o['status']}, filled {o['filled_quantity']}"
        + (f", {o['reason']}" if o.get("reason") else "")
    ]
    for f in explanation.get("fills", []):
        lines.append(
            f"  fill {f['trade_id']}: {f['quantity']} @ {f['price']}"
            f" fee {f['fee']} {f['fee_asset']}"
        )
    if explanation.get("note"):
        lines.append(f"  note: {explanation['note']}")
    c = explanation.get("cycle")
    if c is not None:
        lines.append(
            f"cycle {c['cycle']} (run {c['run_id']}, t={c['time_ns']} ns): mid {c['mid']}, "
            f"bid {c['best_bid']}, ask {c['best_ask']}, inventory {c['inventory']}, "
            f"pnl {c['pnl']}, latency {c['latency_ms']} ms"
        )
        if c["data_problems"]:
            lines.append(f"  data problems: {'; '.join(c['data_problems'])}")
        lines.append("votes:")
        for v in explanation.get("opinions", []):
            weight = "" if v["weight"] is None else f" w={v['weight']:g}"
            if v["outcome"] == "voted":
                lines.append(
                    f"  {v['agent_id']}{weight}: {v['action']} conf {v['confidence']:.2f}"
                    f" [{v['model_version']}] {v['rationale']}"
                )
            else:
                lines.append(f"  {v['agent_id']}{weight}: no vote ({v['outcome']})")
        d = c.get("decision")
        if d is not None:
            lines.append(
                f"decision: {d['action']} (voted {d['voted_action']}, share "
                f"{d['consensus_share']:.2f}, score {d['winning_score']:.3f}, responding weight "
                f"{d['responding_weight']:.2f}) {d['reason']}"
            )
            verdict = "allowed" if d["risk_allowed"] else "blocked"
            reasons = "; ".join(d["risk_reasons"])
            lines.append(f"risk gate: {verdict}" + (f": {reasons}" if reasons else ""))
    siblings = [
        x
        for x in explanation.get("cycle_orders", [])
        if x["client_order_id"] != o["client_order_id"]
    ]
    if siblings:
        lines.append("other orders of this cycle:")
        lines += [
            f"  {x['client_order_id']}: {x['side']} {x['quantity']} @ {x['price']} {x['status']}"
            for x in siblings
        ]
    return "\n".join(lines)
