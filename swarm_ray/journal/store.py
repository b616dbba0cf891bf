"""The journal: a SQLite file that records every cycle, vote, decision, order and fill.

## Description

An operator explains any order from the journal by the votes of its cycle, a tripped kill
switch stays tripped in it across restarts, and a restarted coordinator reconciles against it.
A :class:`Journal` holds one connection to one file. This module is its write side; its reads
are :class:`~swarm_ray.journal.queries.JournalQueries` and its tables are in
:mod:`swarm_ray.journal.schema`.

## Durability

A writable journal runs in SQLite's WAL mode; a file that cannot switch to WAL is not opened.
Every write is one ``BEGIN IMMEDIATE`` transaction, committed whole or not at all. With
``synchronous="NORMAL"`` (the default) a commit survives a killed process, and the last commits
may be lost on power loss; with ``"FULL"`` every commit is synced to disk.

## Order intents

1. An intent is committed as ``PENDING`` before it is sent: together with its cycle's votes and
   decision (``record_cycle(record, intents)``), or alone (``record_intents``).
2. The client order id is the primary key of the orders. An id already journaled, by any run,
   writes nothing and raises :class:`DuplicateIntent`: no intent is sent twice.
3. An order update from the venue is ignored when its venue time is older than the stored one,
   or when it reopens an order the venue reported final.
4. An intent the venue never received is marked ``REJECTED`` (reason ``"never sent"``) and keeps
   its id, so the id is never sent again.

## Fills

A fill is keyed by its symbol and trade id. Recording it again changes nothing;
``record_fills`` returns only the fills that were new.

## Kill switch and stop requests

Trips and clears are appended and never changed. A switch covers one symbol, or every symbol
(``symbol=None``). It stays tripped, across restarts, until a named operator clears it; a
second trip keeps the first reason, and clearing a symbol's switch leaves the global one
tripped. A stop request stays pending for a symbol until that symbol's coordinator
acknowledges it; emergency requests come first.

## Schema version

The version (``SCHEMA_VERSION``) is kept in SQLite's ``user_version``. A new or empty file
opened for writing gets the current schema. An older version with a migration
(``schema.MIGRATIONS``) is migrated when opened for writing; opened read-only it is refused
until then. A newer version, an older one without a migration, or a file with tables and no
version raises :class:`JournalSchemaError`.

## Threading

A ``Journal`` must be used from the thread that created it. Other processes may open the same
file at once: a reader (``read_only=True``) never blocks the writer, and writers wait for each
other up to ``busy_timeout_ms``.

## Arguments

```python
Journal("runs/journal.sqlite", run_id="run-1")  # the swarm: read and write
Journal("runs/journal.sqlite", read_only=True)  # the CLI beside a running swarm
```
"""

from __future__ import annotations

import json
import sqlite3
import uuid
from array import array
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal

from swarm_ray.core.clock import Clock, LiveClock
from swarm_ray.core.domain import Fill, Order, OrderIntent, OrderStatus
from swarm_ray.journal.queries import JournalQueries
from swarm_ray.journal.records import (
    CycleRecord,
    DuplicateIntent,
    JournalError,
    JournalSchemaError,
    KillSwitch,
)
from swarm_ray.journal.schema import (
    FILL_COLUMNS,
    INSERT_CYCLE,
    INSERT_DECISION,
    INSERT_INTENT,
    INSERT_OPINION,
    MIGRATIONS,
    READ_AS_MIGRATED,
    SCHEMA,
    SCHEMA_VERSION,
    SCORE_OPINION,
    action_label,
    dec_text,
    scores_json,
    to_scope,
)

__all__ = ["NEVER_SENT", "Journal"]

NEVER_SENT = "never sent"
"""Reason prefix of an intent that reconcile found the venue never received."""


class Journal(JournalQueries):
    """The swarm's SQLite journal (the module docstring is its specification).

    ``run_id`` names this process's run in cycles and orders and seeds client order ids; pass
    the same one to a restarted coordinator so its numbering continues. ``read_only`` opens an
    existing journal for queries only (the CLI beside a running swarm). ``synchronous`` is
    ``"NORMAL"`` (a commit survives a killed process; the last commits may be lost on power
    loss) or ``"FULL"`` (fsync on every commit). The reads (orders, fills, kill-switch state,
    explanations, summaries) are those of :class:`~swarm_ray.journal.queries.JournalQueries`.
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
        # operator events (kill switch, stop requests) are stamped with wall time even when the
        # cycles run on a replay's clock: "when was it tripped" means now, not in the data
        self._wall: Clock = LiveClock()
        self._run_registered = False
        in_memory = self.path == ":memory:"
        if read_only:
            if in_memory:
                raise ValueError("an in-memory journal cannot be opened read-only")
            if not Path(self.path).exists():
                raise FileNotFoundError(f"no journal at {self.path}")
            uri = f"{Path(self.path).resolve().as_uri()}?mode=ro"
            conn = sqlite3.connect(uri, uri=True, isolation_level=None)
        else:
            # only a missing file starts a new journal: an existing file that is not one (empty,
            # truncated, another database) must not silently become one and lose a kill switch
            self._is_new = in_memory or not Path(self.path).exists()
            if not self._is_new and Path(self.path).stat().st_size == 0:
                raise JournalSchemaError(
                    f"{self.path}: an empty file, not a swarm-ray journal; only a missing file "
                    "starts a new journal"
                )
            if not in_memory:
                Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, isolation_level=None)
        super().__init__(conn)
        try:
            self._conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
            self._conn.execute("PRAGMA foreign_keys = ON")
            if not read_only:
                mode = self._conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
                if mode.lower() != "wal" and not in_memory:
                    raise JournalError(f"{self.path}: could not switch to WAL (got {mode})")
                self._conn.execute(f"PRAGMA synchronous = {synchronous}")
            self._check_or_create_schema()
        except sqlite3.DatabaseError as exc:
            self._conn.close()
            raise JournalError(f"{self.path}: not a readable swarm-ray journal ({exc})") from None
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
        if version != 0 and all(v in MIGRATIONS for v in range(version, SCHEMA_VERSION)):
            if self.read_only:  # read as it is: the columns it lacks read as null
                for v in range(version, SCHEMA_VERSION):
                    for statement in READ_AS_MIGRATED[v]:
                        self._conn.execute(statement)
                return
            with self._tx():
                # another writer may have migrated it since the version was read
                now = self._conn.execute("PRAGMA user_version").fetchone()[0]
                for v in range(now, SCHEMA_VERSION):
                    for statement in MIGRATIONS[v]:
                        self._conn.execute(statement)
                self._conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            return
        if version != 0:
            raise JournalSchemaError(
                f"{self.path}: journal schema version {version} is older than this code's "
                f"({SCHEMA_VERSION}) and there is no migration; start a new journal file"
            )
        tables = self._conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
        if tables:
            raise JournalSchemaError(f"{self.path}: not a swarm-ray journal (unversioned tables)")
        if self.read_only or not getattr(self, "_is_new", True):
            raise JournalSchemaError(
                f"{self.path}: an existing file that is not a swarm-ray journal (empty or "
                "unversioned); only a missing file starts a new journal"
            )
        with self._tx():
            for statement in SCHEMA.split(";"):
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
                    INSERT_CYCLE,
                    (self.run_id, record.symbol, record.cycle, record.time_ns, record.mid,
                     record.best_bid, record.best_ask, problems, record.latency_ms,
                     record.inventory, record.pnl),
                ).lastrowid  # fmt: skip
                conn.executemany(INSERT_OPINION, [(cycle_id, *row) for row in rows])
                d = record.decision
                if d is not None:
                    conn.execute(
                        INSERT_DECISION,
                        (cycle_id, d.action.label, action_label(d.voted_action), d.consensus_share,
                         d.winning_score, d.responding_weight,
                         scores_json(d.scores), d.reason,
                         int(d.risk_allowed), json.dumps(list(d.risk_reasons)),
                         json.dumps(list(d.ladder)) if d.ladder else None),
                    )  # fmt: skip
                if intents:
                    self._insert_intents(conn, intents, record.cycle)
                if record.hindsight:
                    conn.executemany(
                        SCORE_OPINION,
                        [(label, edge, agent, self.run_id, record.symbol, cycle)
                         for cycle, agent, label, edge in record.hindsight],
                    )  # fmt: skip
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
                    INSERT_INTENT,
                    (i.client_order_id, self.run_id, cycle, i.symbol, i.side.value,
                     i.order_type.value, i.time_in_force, dec_text(i.price), dec_text(i.quantity),
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
                     order.order_type.value, dec_text(order.price), dec_text(order.quantity),
                     order.status.value, dec_text(order.filled_quantity), order.exchange_order_id,
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
                (order.status.value, dec_text(order.filled_quantity), order.exchange_order_id,
                 dec_text(order.price), dec_text(order.quantity), reason, now, order.update_time_ms,
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
                    f"INSERT OR IGNORE INTO fills ({FILL_COLUMNS}, recorded_ns)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (f.symbol, f.trade_id, f.client_order_id, f.side.value, dec_text(f.price),
                     dec_text(f.quantity), dec_text(f.fee), f.fee_asset, f.time_ms,
                     int(f.is_maker), now),
                )  # fmt: skip
                if cur.rowcount == 1:
                    new.append(f)
        return new

    # -- kill switch

    def trip_kill_switch(
        self, symbol: str | None, reason: str, *, actor: str = "swarm"
    ) -> KillSwitch:
        """Trip the kill switch for ``symbol`` (``None``: every symbol). It stays tripped,
        across restarts, until :meth:`clear_kill_switch`; tripping it again changes nothing."""
        if not reason:
            raise ValueError("a kill switch needs a reason")
        scope = to_scope(symbol)
        with self._tx() as conn:
            current = self._kill_state(scope)
            if current is not None:
                return current
            conn.execute(
                "INSERT INTO kill_switch_events (scope, event, reason, actor, time_ns)"
                " VALUES (?, 'trip', ?, ?, ?)",
                (scope, reason, actor, self._wall.now_ns()),
            )
        state = self._kill_state(scope)
        assert state is not None
        return state

    def clear_kill_switch(self, symbol: str | None, operator: str, reason: str = "") -> bool:
        """An operator clears the switch of ``symbol`` (``None``: the global one). Returns
        whether it was tripped. Clearing a symbol's switch leaves a tripped global one."""
        if not operator:
            raise ValueError("clearing the kill switch needs the operator's name")
        scope = to_scope(symbol)
        with self._tx() as conn:
            if self._kill_state(scope) is None:
                return False
            conn.execute(
                "INSERT INTO kill_switch_events (scope, event, reason, actor, time_ns)"
                " VALUES (?, 'clear', ?, ?, ?)",
                (scope, reason or "cleared by operator", operator, self._wall.now_ns()),
            )
            return True

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
                (to_scope(symbol), int(emergency), reason, requested_by, self._wall.now_ns()),
            )
            assert cur.lastrowid is not None
            return cur.lastrowid

    def acknowledge_stop(self, request_id: int, symbol: str) -> None:
        """``symbol``'s coordinator has carried out the stop request; it is no longer pending
        for that symbol (a global request stays pending for the other symbols)."""
        with self._tx() as conn:
            conn.execute(
                "INSERT OR IGNORE INTO stop_acks (stop_id, symbol, acked_ns) VALUES (?, ?, ?)",
                (request_id, symbol, self._wall.now_ns()),
            )

    # -- the learning loop's decisions about model versions

    def record_model_decision(
        self,
        role: str,
        decision: str,
        *,
        champion: str | None,
        challenger: str | None,
        reason: str,
        evidence: Mapping[str, Any] | None = None,
        time_ns: int | None = None,
    ) -> int:
        """One decision of the learning loop about ``role``'s model (promoted, rejected), with
        its reason and figures; ``time_ns`` defaults to the journal's clock."""
        with self._tx() as conn:
            cur = conn.execute(
                "INSERT INTO model_decisions"
                " (time_ns, role, decision, champion, challenger, reason, evidence)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    self._clock.now_ns() if time_ns is None else int(time_ns),
                    role,
                    decision,
                    champion,
                    challenger,
                    reason,
                    json.dumps(dict(evidence or {}), default=str, allow_nan=False),
                ),
            )
            assert cur.lastrowid is not None
            return cur.lastrowid

    def model_decisions(self, role: str | None = None) -> list[dict[str, Any]]:
        """The decisions about model versions, oldest first (of ``role``, or of every role)."""
        sql = (
            "SELECT id, time_ns, role, decision, champion, challenger, reason, evidence"
            " FROM model_decisions"
        )
        rows = (
            self._conn.execute(sql + " WHERE role = ? ORDER BY id", (role,))
            if role is not None
            else self._conn.execute(sql + " ORDER BY id")
        ).fetchall()
        keys = ("id", "time_ns", "role", "decision", "champion", "challenger", "reason")
        return [{**dict(zip(keys, r[:7], strict=True)), "evidence": json.loads(r[7])} for r in rows]
