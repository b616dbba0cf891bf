"""The journal: WAL, intents committed before sending, dedup, kill switch persistence,
explanations, a reader beside a writer, schema versions and deterministic client order ids."""

from __future__ import annotations

import json
import re
import sqlite3
import subprocess
import sys
import threading
import time
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from swarm_ray.commands.views import explain_view
from swarm_ray.core.clock import SimulatedClock
from swarm_ray.core.domain import Action, Fill, Opinion, Order, OrderIntent, OrderStatus, Side
from swarm_ray.core.ids import deterministic_client_order_id
from swarm_ray.journal import (
    SCHEMA_VERSION,
    CycleRecord,
    DecisionRecord,
    DuplicateIntent,
    Journal,
    JournalError,
    JournalSchemaError,
)
from tests.conftest import ROOT

SYMBOL = "BTCUSDT"
WEIGHTS = {"analyst": 0.25, "risk": 0.30, "strategy": 0.20, "execution": 0.25}
BINANCE_CLIENT_ID = re.compile(r"^[\.A-Z\:/a-z0-9_-]{1,36}$")


def _cycle(n: int, **overrides) -> CycleRecord:
    fields = dict(
        symbol=SYMBOL,
        cycle=n,
        time_ns=1_700_000_000_000_000_000 + n * 1_000_000,
        mid=60000.0,
        best_bid=59999.5,
        best_ask=60000.5,
        opinions=(
            Opinion("analyst", Action.SKEW_BUY, 0.8, "mlp-v3", "sentiment +0.4, momentum up"),
            Opinion(
                "risk",
                Action.QUOTE_WIDE,
                0.6,
                "dqn-risk-v1",
                "vol elevated",
                features=(0.1, -0.2, 3.5),
            ),
            Opinion("strategy", Action.SKEW_BUY, 0.9, "dqn-strat-v1", "inventory short"),
        ),
        timed_out=("execution",),
        weights=WEIGHTS,
        decision=DecisionRecord(
            action=Action.QUOTE_WIDE,
            voted_action=Action.SKEW_BUY,
            consensus_share=0.70,
            winning_score=0.38,
            responding_weight=0.75,
            reason="skew_buy won 0.70 >= 0.65",
            risk_allowed=False,
            risk_reasons=("volatility cut-off: widened",),
            scores={Action.SKEW_BUY: 0.38, "quote_wide": 0.18},
        ),
        latency_ms=4.2,
        inventory=-0.002,
        pnl=1.25,
    )
    fields.update(overrides)
    return CycleRecord(**fields)


def _intent(run_id: str, cycle: int, side: Side = Side.BUY, level: int = 0) -> OrderIntent:
    return OrderIntent(
        symbol=SYMBOL,
        side=side,
        price=Decimal("59990.10") if side is Side.BUY else Decimal("60010.20"),
        quantity=Decimal("0.00100000"),
        client_order_id=deterministic_client_order_id(run_id, SYMBOL, cycle, side, level),
    )


def _fill(trade_id: str, cid: str, time_ms: int = 1_000) -> Fill:
    return Fill(SYMBOL, trade_id, cid, Side.BUY, Decimal("59990.10"), Decimal("0.0004"),
                Decimal("0.00000040"), "BTC", time_ms)  # fmt: skip


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "journal.sqlite"


@pytest.fixture
def journal(path: Path):
    with Journal(path, run_id="run-1", clock=SimulatedClock(1_000)) as j:
        yield j


# ----------------------------------------------------------------------------- storage


def test_journal_file_opens_in_wal_with_foreign_keys_and_schema_version(journal, path):
    assert journal.journal_mode == "wal"
    raw = sqlite3.connect(path)
    assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert raw.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert journal._conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    assert journal._conn.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL
    raw.close()


def test_in_memory_journal_records_and_queries():
    with Journal(":memory:", run_id="mem") as j:
        cycle_id = j.record_cycle(_cycle(0))
        assert j.cycle(cycle_id)["decision"]["action"] == "quote_wide"


def test_record_cycle_writes_votes_timeouts_and_decision_in_one_row_set(journal):
    cycle_id = journal.record_cycle(_cycle(7, data_problems=("stale snapshot (2.1s old)",)))
    opinions = {o["agent_id"]: o for o in journal.opinions(cycle_id)}
    assert set(opinions) == set(WEIGHTS)
    assert opinions["execution"]["outcome"] == "timeout"
    assert opinions["execution"]["action"] is None
    assert opinions["risk"] == {
        "agent_id": "risk", "outcome": "voted", "action": "quote_wide", "confidence": 0.6,
        "weight": 0.30, "model_version": "dqn-risk-v1", "rationale": "vol elevated",
        "features": [0.1, -0.2, 3.5],
    }  # fmt: skip
    cycle = journal.cycles(SYMBOL, limit=1)[0]
    assert cycle["cycle"] == 7 and cycle["data_problems"] == ["stale snapshot (2.1s old)"]
    assert cycle["decision"]["risk_reasons"] == ["volatility cut-off: widened"]
    assert cycle["decision"]["scores"] == {"skew_buy": 0.38, "quote_wide": 0.18}
    assert journal.last_cycle(SYMBOL) == 7


def test_record_cycle_same_cycle_number_twice_raises_and_keeps_first(journal):
    journal.record_cycle(_cycle(3))
    with pytest.raises(JournalError, match="last_cycle"):
        journal.record_cycle(_cycle(3, pnl=99.0))
    assert [c["pnl"] for c in journal.cycles(SYMBOL)] == [1.25]


def test_cycle_record_with_an_agent_both_voting_and_timed_out_is_rejected():
    with pytest.raises(ValueError, match="more than once"):
        _cycle(0, timed_out=("analyst",))


def test_cycle_without_decision_or_market_data_is_recorded(journal):
    cycle_id = journal.record_cycle(
        CycleRecord(SYMBOL, 0, 5, data_problems=("non-finite best bid/ask",))
    )
    assert journal.cycle(cycle_id)["decision"] is None
    assert journal.cycle(cycle_id)["mid"] is None


# ----------------------------------------------------------------------------- intents


def test_intent_is_committed_before_send_so_another_connection_sees_it(journal, path):
    intent = _intent(journal.run_id, 0)
    reader = Journal(path, read_only=True)
    seen_at_send: list[Order | None] = []

    def send(i: OrderIntent) -> None:  # the exchange call, after the journal write
        seen_at_send.append(reader.order(i.client_order_id))

    journal.record_intent(intent, cycle=0)
    send(intent)
    reader.close()
    assert seen_at_send[0] is not None
    assert seen_at_send[0].status is OrderStatus.PENDING
    assert seen_at_send[0].price == Decimal("59990.10")


def test_same_intent_twice_raises_duplicate_intent(journal):
    intent = _intent(journal.run_id, 1)
    journal.record_intent(intent, cycle=1)
    with pytest.raises(DuplicateIntent) as err:
        journal.record_intent(intent, cycle=1)
    assert err.value.client_order_id == intent.client_order_id
    assert len(journal.orders(SYMBOL)) == 1


def test_batch_with_one_duplicate_writes_nothing(journal):
    first = _intent(journal.run_id, 1)
    journal.record_intent(first, cycle=1)
    with pytest.raises(DuplicateIntent):
        journal.record_intents([_intent(journal.run_id, 1, Side.SELL), first], cycle=1)
    with pytest.raises(DuplicateIntent):
        journal.record_cycle(_cycle(1), intents=[first])
    assert [o.client_order_id for o in journal.orders()] == [first.client_order_id]
    assert journal.cycles(SYMBOL) == []


def test_intent_is_still_a_duplicate_after_restart(path):
    with Journal(path, run_id="run-1") as j:
        j.record_cycle(_cycle(0), intents=[_intent("run-1", 0)])
    with Journal(path, run_id="run-1") as restarted:
        assert restarted.last_cycle(SYMBOL) == 0
        with pytest.raises(DuplicateIntent):
            restarted.record_intent(_intent("run-1", 0), cycle=0)
        assert [o.status for o in restarted.unresolved_orders(SYMBOL)] == [OrderStatus.PENDING]


def test_coordinator_killed_after_writing_intents_leaves_them_pending_and_unsendable(path):
    code = (
        "import os, signal, sys\n"
        "sys.path.insert(0, sys.argv[2])\n"
        "from tests.unit.journal.test_journal import _cycle, _intent\n"
        "from swarm_ray.journal import Journal\n"
        "j = Journal(sys.argv[1], run_id='run-k')\n"
        "j.record_cycle(_cycle(5), intents=[_intent('run-k', 5)])\n"
        "os.kill(os.getpid(), signal.SIGKILL)  # before the send, no close()\n"
    )
    root = str(ROOT)
    proc = subprocess.run([sys.executable, "-c", code, str(path), root], capture_output=True)
    assert proc.returncode == -9, proc.stderr.decode()
    with Journal(path, run_id="run-k") as restarted:
        assert restarted.last_cycle(SYMBOL) == 5
        (pending,) = restarted.unresolved_orders(SYMBOL)
        assert pending.client_order_id == _intent("run-k", 5).client_order_id
        assert pending.status is OrderStatus.PENDING
        with pytest.raises(DuplicateIntent):
            restarted.record_intent(_intent("run-k", 5), cycle=5)


def test_unresolved_orders_are_pending_unknown_new_and_partial(journal):
    statuses = [OrderStatus.PENDING, OrderStatus.UNKNOWN, OrderStatus.NEW,
                OrderStatus.PARTIALLY_FILLED, OrderStatus.FILLED, OrderStatus.CANCELED,
                OrderStatus.REJECTED]  # fmt: skip
    for n, status in enumerate(statuses):
        intent = _intent(journal.run_id, n)
        journal.record_intent(intent, cycle=n)
        if status is not OrderStatus.PENDING:
            journal.set_order_status(intent.client_order_id, status)
    assert [o.status for o in journal.unresolved_orders(SYMBOL)] == statuses[:4]
    assert journal.unresolved_orders("ETHUSDT") == []


def test_mark_never_sent_rejects_pending_intent_but_refuses_acknowledged_order(journal):
    pending, acked = _intent(journal.run_id, 0), _intent(journal.run_id, 0, Side.SELL)
    journal.record_intents([pending, acked], cycle=0)
    journal.update_order(_order(acked, OrderStatus.NEW, update_time_ms=10))
    journal.mark_never_sent(pending.client_order_id, "venue: order does not exist")
    explained = journal.explain_order(pending.client_order_id)["order"]
    assert explained["status"] == "REJECTED"
    assert explained["reason"] == "never sent: venue: order does not exist"
    with pytest.raises(JournalError, match="acknowledged"):
        journal.mark_never_sent(acked.client_order_id)
    with pytest.raises(KeyError):
        journal.mark_never_sent("no-such-id")


def _order(intent: OrderIntent, status: OrderStatus, filled: str = "0", update_time_ms=0):
    return Order(intent.symbol, intent.side, intent.price, intent.quantity, intent.client_order_id,
                 status, Decimal(filled), "8812", update_time_ms=update_time_ms)  # fmt: skip


def test_update_order_applies_venue_state_and_ignores_stale_or_regressing_updates(journal):
    intent = _intent(journal.run_id, 0)
    journal.record_intent(intent, cycle=0)
    assert journal.update_order(_order(intent, OrderStatus.NEW, update_time_ms=100))
    assert journal.update_order(_order(intent, OrderStatus.FILLED, "0.001", update_time_ms=300))
    assert not journal.update_order(_order(intent, OrderStatus.PARTIALLY_FILLED, "0.0004", 200))
    assert not journal.update_order(_order(intent, OrderStatus.NEW, update_time_ms=0))
    stored = journal.order(intent.client_order_id)
    assert stored.status is OrderStatus.FILLED
    assert stored.filled_quantity == Decimal("0.001")
    assert stored.exchange_order_id == "8812"


def test_update_order_for_unknown_id_adopts_the_venue_order(journal):
    foreign = Order(SYMBOL, Side.SELL, Decimal("61000"), Decimal("0.5"), "manual-1",
                    OrderStatus.NEW, exchange_order_id="1")  # fmt: skip
    assert journal.update_order(foreign)
    assert journal.order("manual-1") == foreign
    assert "not tied to a cycle" in journal.explain_order("manual-1")["note"]


def test_decimals_round_trip_exactly(journal):
    intent = OrderIntent(SYMBOL, Side.SELL, Decimal("0.00000001"), Decimal("123456789.12345678"),
                         "exact-1")  # fmt: skip
    journal.record_intent(intent)
    stored = journal.order("exact-1")
    assert (stored.price, stored.quantity) == (intent.price, intent.quantity)


def test_read_only_journal_refuses_writes(journal, path):
    with Journal(path, read_only=True) as reader, pytest.raises(JournalError, match="read-only"):
        reader.record_intent(_intent("x", 0))


# ----------------------------------------------------------------------------- fills


def test_record_fills_returns_only_new_fills_and_survives_reopen(path):
    with Journal(path, run_id="r") as j:
        a, b = _fill("t1", "c1", 1_000), _fill("t2", "c1", 2_000)
        assert j.record_fills([a, b]) == [a, b]
        assert j.record_fills([b, _fill("t3", "c1", 3_000)]) == [_fill("t3", "c1", 3_000)]
        assert j.record_fills([]) == []
    with Journal(path, run_id="r") as j:
        assert j.record_fills([a]) == []
        assert j.last_fill_time_ms(SYMBOL) == 3_000
        assert j.last_fill_time_ms("ETHUSDT") is None
        assert [f.trade_id for f in j.fills(SYMBOL)] == ["t1", "t2", "t3"]
        same_id_other_symbol = Fill("ETHUSDT", "t1", "c9", Side.SELL, Decimal(1), Decimal(1),
                                    Decimal(0), "USDT", 5)  # fmt: skip
        assert j.record_fills([same_id_other_symbol]) == [same_id_other_symbol]


# ----------------------------------------------------------------------------- kill switch


def test_kill_switch_stays_tripped_across_reopen_until_an_operator_clears_it(path):
    with Journal(path, run_id="a") as j:
        assert j.kill_switch(SYMBOL) is None
        tripped = j.trip_kill_switch(SYMBOL, "drawdown 16% > 15%")
        assert j.trip_kill_switch(SYMBOL, "again").reason == "drawdown 16% > 15%"
    with Journal(path, run_id="b") as j:  # a restarted swarm
        assert j.kill_switch(SYMBOL) == tripped
        assert j.kill_switch("ETHUSDT") is None
        with pytest.raises(ValueError, match="operator"):
            j.clear_kill_switch(SYMBOL, operator="")
    with Journal(path, run_id="c") as j:
        assert j.kill_switch(SYMBOL) is not None
        assert j.clear_kill_switch(SYMBOL, operator="alice", reason="reviewed")
        assert not j.clear_kill_switch(SYMBOL, operator="alice")
    with Journal(path, run_id="d") as j:
        assert j.kill_switch(SYMBOL) is None
        events = [(e["event"], e["actor"]) for e in j.kill_switch_history(SYMBOL)]
        assert events == [("trip", "swarm"), ("clear", "alice")]


def test_global_kill_switch_stops_every_symbol_and_survives_a_symbol_clear(journal):
    journal.trip_kill_switch(None, "operator emergency stop", actor="bob")
    journal.clear_kill_switch(SYMBOL, operator="alice")
    assert journal.kill_switch(SYMBOL).symbol is None
    assert journal.kill_switch("ETHUSDT").reason == "operator emergency stop"
    assert journal.clear_kill_switch(None, operator="alice")
    assert journal.kill_switch(SYMBOL) is None
    with pytest.raises(ValueError):
        journal.trip_kill_switch("*", "star is not a symbol")


# ----------------------------------------------------------------------------- stop requests


def test_stop_request_is_pending_per_symbol_until_acknowledged(journal):
    global_id = journal.request_stop(None, reason="end of day")
    emergency_id = journal.request_stop(SYMBOL, emergency=True, requested_by="bob")
    assert journal.pending_stop(SYMBOL).id == emergency_id  # emergencies first
    journal.acknowledge_stop(emergency_id, SYMBOL)
    assert journal.pending_stop(SYMBOL).id == global_id
    journal.acknowledge_stop(global_id, SYMBOL)
    assert journal.pending_stop(SYMBOL) is None
    assert journal.pending_stop("ETHUSDT").id == global_id
    # stop requests are stamped with wall time: one older than a run's start does not stop it
    assert journal.pending_stop("ETHUSDT", since_ns=time.time_ns() + 60 * 10**9) is None


def test_operator_events_carry_wall_time_while_cycles_carry_the_replay_clock(tmp_path):
    from swarm_ray.core.clock import SimulatedClock

    clock = SimulatedClock(1_724_133_600 * 10**9)  # 2024-08-20 06:00 UTC, a replayed day
    with Journal(tmp_path / "j.sqlite", run_id="replay", clock=clock) as j:
        before = time.time_ns()
        j.trip_kill_switch(SYMBOL, "operator emergency stop", actor="alice")
        stop = j.request_stop(SYMBOL, reason="end of day", requested_by="bob")
        after = time.time_ns()
        assert before <= j.kill_switch(SYMBOL).tripped_ns <= after
        assert j.kill_switch(SYMBOL).tripped_by == "alice"
        assert before <= j.pending_stop(SYMBOL).requested_ns <= after
        assert j.pending_stop(SYMBOL).id == stop


# ----------------------------------------------------------------------------- explanations


def test_explain_order_gives_the_cycles_votes_decision_risk_and_fills(journal):
    buy, sell = _intent(journal.run_id, 12), _intent(journal.run_id, 12, Side.SELL)
    journal.record_cycle(_cycle(12, data_problems=("wide spread",)), intents=[buy, sell])
    journal.update_order(_order(buy, OrderStatus.PARTIALLY_FILLED, "0.0004", 10))
    journal.record_fills([_fill("t1", buy.client_order_id)])
    why = journal.explain_order(buy.client_order_id)
    json.dumps(why)  # plain JSON
    assert why["order"]["status"] == "PARTIALLY_FILLED"
    assert why["order"]["price"] == "59990.10"
    assert why["cycle"]["cycle"] == 12 and why["cycle"]["data_problems"] == ["wide spread"]
    votes = {v["agent_id"]: (v["outcome"], v["action"], v["confidence"], v["model_version"])
             for v in why["opinions"]}  # fmt: skip
    assert votes == {
        "analyst": ("voted", "skew_buy", 0.8, "mlp-v3"),
        "risk": ("voted", "quote_wide", 0.6, "dqn-risk-v1"),
        "strategy": ("voted", "skew_buy", 0.9, "dqn-strat-v1"),
        "execution": ("timeout", None, None, None),
    }
    decision = why["cycle"]["decision"]
    assert (decision["voted_action"], decision["action"]) == ("skew_buy", "quote_wide")
    assert decision["risk_reasons"] == ["volatility cut-off: widened"]
    assert [f["trade_id"] for f in why["fills"]] == ["t1"]
    assert {o["client_order_id"] for o in why["cycle_orders"]} == {
        buy.client_order_id,
        sell.client_order_id,
    }
    text = explain_view(why, width=200)  # what `swarm-ray explain` prints
    for expected in (
        "sentiment +0.4, momentum up",
        "no vote (timeout)",
        "volatility cut-off: widened",
        "wide spread",
        sell.client_order_id,
    ):
        assert expected in text


def test_explain_order_intent_whose_cycle_was_never_recorded_says_so(journal):
    intent = _intent(journal.run_id, 4)
    journal.record_intent(intent, cycle=4)  # killed before record_cycle
    why = journal.explain_order(intent.client_order_id)
    assert why["cycle"] is None and "not recorded" in why["note"]
    assert "not recorded" in explain_view(why)
    with pytest.raises(KeyError):
        journal.explain_order("never-heard-of-it")


def test_summary_counts_decisions_orders_fills_and_fees(journal):
    journal.record_cycle(_cycle(0), intents=[_intent(journal.run_id, 0)])
    journal.record_cycle(_cycle(1, decision=DecisionRecord(Action.STAND_ASIDE)))
    journal.record_fills([_fill("t1", "c"), _fill("t2", "c")])
    journal.trip_kill_switch(SYMBOL, "daily loss")
    s = journal.summary(SYMBOL)
    json.dumps(s)
    assert s["cycles"] == 2
    assert s["decisions"] == {"quote_wide": 1, "stand_aside": 1}
    assert s["agents_missing"] == {"execution": 2}
    assert s["orders"] == {"PENDING": 1}
    assert (s["fills"], s["filled_quantity"]["BUY"]) == (2, "0.0008")
    assert s["fees"] == {"BTC": "0.00000080"}
    assert s["last_cycle"]["cycle"] == 1
    assert s["kill_switch"]["reason"] == "daily loss"
    assert journal.summary("ETHUSDT")["cycles"] == 0


# ----------------------------------------------------------------------------- concurrency


def test_reader_reads_consistently_while_another_connection_writes(path):
    Journal(path, run_id="w").close()  # create the schema
    n_cycles, errors = 300, []

    def write() -> None:
        try:
            with Journal(path, run_id="w") as writer:
                for n in range(n_cycles):
                    writer.record_cycle(_cycle(n), intents=[_intent("w", n)])
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    thread = threading.Thread(target=write)
    with Journal(path, read_only=True) as reader:
        thread.start()
        seen = []
        while True:
            done = not thread.is_alive()
            s = reader.summary(SYMBOL)
            # A cycle and its intent commit together: a reader never sees one without the other.
            assert s["orders"].get("PENDING", 0) == s["cycles"]
            seen.append(s["cycles"])
            if done:
                break
        thread.join()
    assert not errors
    assert seen == sorted(seen) and seen[-1] == n_cycles
    assert len(set(seen)) > 2  # the reader did see the writer's progress


def test_open_read_transaction_does_not_block_the_writer(journal, path):
    reader = sqlite3.connect(path, isolation_level=None)
    reader.execute("BEGIN")
    before = reader.execute("SELECT count(*) FROM cycles").fetchone()[0]
    journal.record_cycle(_cycle(0))  # would raise "database is locked" without WAL
    assert reader.execute("SELECT count(*) FROM cycles").fetchone()[0] == before  # snapshot
    reader.execute("COMMIT")
    assert reader.execute("SELECT count(*) FROM cycles").fetchone()[0] == before + 1
    reader.close()


# ----------------------------------------------------------------------------- schema


def test_newer_schema_version_is_refused_with_a_clear_error(path):
    Journal(path).close()
    raw = sqlite3.connect(path)
    raw.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    raw.close()
    with pytest.raises(JournalSchemaError, match=f"version {SCHEMA_VERSION + 1} is newer"):
        Journal(path)
    with pytest.raises(JournalSchemaError):
        Journal(path, read_only=True)


def test_a_version_1_journal_is_read_as_it_is_and_migrated_when_opened_for_writing(path):
    with Journal(path, run_id="run-1", clock=SimulatedClock(1_000)) as j:
        j.record_cycle(_cycle(0))
    raw = sqlite3.connect(path)  # back to version 1: without the columns version 2 added
    for table, column in (("opinions", "hindsight"), ("opinions", "edge_bps"),
                          ("decisions", "ladder")):  # fmt: skip
        raw.execute(f"ALTER TABLE {table} DROP COLUMN {column}")
    raw.execute("DROP TABLE model_decisions")  # and without the table version 3 added
    raw.execute("PRAGMA user_version = 1")
    raw.commit()
    raw.close()
    # a reader (the CLI, the panel) reads it without writing: the new columns read as null
    with Journal(path, read_only=True) as r:
        (c,) = r.cycles(SYMBOL)
        assert c["decision"]["ladder_bps"] is None
        records = {a["agent_id"]: a for a in r.agent_records(SYMBOL)}
        assert records["strategy"]["scored"] == 0 and records["strategy"]["hit_rate"] is None
        assert r.model_decisions() == []
    raw = sqlite3.connect(path)
    assert raw.execute("PRAGMA user_version").fetchone()[0] == 1  # untouched
    raw.close()
    # the writer migrates it, and what it held is still there
    with Journal(path, run_id="run-2", clock=SimulatedClock(2_000)) as w:
        w.record_cycle(_cycle(1))
        w.record_cycle(_cycle(2, hindsight=((1, "strategy", 1.0, 2.5),)))
        assert len(w.cycles(SYMBOL)) == 3
        records = {a["agent_id"]: a for a in w.agent_records(SYMBOL)}
        assert records["strategy"]["scored"] == 1 and records["strategy"]["hit_rate"] == 1.0
        w.record_model_decision(
            "risk_manager", "rejected", champion="v3", challenger="c1", reason="lost",
            evidence={"interval": [-1.0, 0.5]},
        )  # fmt: skip
        (d,) = w.model_decisions("risk_manager")
        assert (d["decision"], d["time_ns"], d["evidence"]) == (
            "rejected", 2_000, {"interval": [-1.0, 0.5]}
        )  # fmt: skip
    raw = sqlite3.connect(path)
    assert raw.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    raw.close()


def test_foreign_or_empty_database_is_not_taken_for_a_journal(tmp_path):
    foreign = tmp_path / "other.sqlite"
    raw = sqlite3.connect(foreign)
    raw.execute("CREATE TABLE t (x)")
    raw.close()
    with pytest.raises(JournalSchemaError, match="not a swarm-ray journal"):
        Journal(foreign)
    empty = tmp_path / "empty.sqlite"
    sqlite3.connect(empty).close()
    with pytest.raises(JournalSchemaError, match="empty"):
        Journal(empty, read_only=True)
    with pytest.raises(FileNotFoundError):
        Journal(tmp_path / "missing.sqlite", read_only=True)


# ----------------------------------------------------------------------------- client ids

_ids = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=0, max_size=40)
_args = st.tuples(
    _ids,
    st.sampled_from(["BTCUSDT", "ETHUSDT", "SOLUSDT"]) | _ids,
    st.integers(0, 36**10 - 1),
    st.sampled_from(list(Side)),
    st.integers(0, 36**2 - 1),
    st.integers(0, 36**2 - 1),
)


@given(_args)
def test_client_order_id_is_stable_short_and_in_binances_charset(args):
    cid = deterministic_client_order_id(*args)
    assert cid == deterministic_client_order_id(*args)
    assert len(cid) <= 36
    assert BINANCE_CLIENT_ID.fullmatch(cid)
    OrderIntent(SYMBOL, Side.BUY, Decimal(1), Decimal(1), cid)  # accepted by the domain type


@settings(max_examples=50)
@given(st.lists(_args, min_size=2, max_size=200, unique=True))
def test_client_order_ids_of_distinct_inputs_are_distinct(sample):
    ids = [deterministic_client_order_id(*a) for a in sample]
    assert len(set(ids)) == len(ids)


def test_client_order_id_is_the_same_in_another_process():
    code = ("from swarm_ray.core.ids import deterministic_client_order_id as f; "
            "print(f('run-1', 'BTCUSDT', 123456, 'SELL', 2, 1))")  # fmt: skip
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    here = deterministic_client_order_id("run-1", SYMBOL, 123456, Side.SELL, 2, 1)
    assert out.stdout.strip() == here
    assert here.endswith("-2n9c-S2-1")  # cycle, side, level and attempt stay readable


def test_client_order_id_rejects_out_of_range_numbers():
    for bad in ({"cycle": -1}, {"cycle": 36**10}, {"level": 36**2}, {"attempt": -1}):
        args = {"run_id": "r", "symbol": SYMBOL, "cycle": 0, "side": Side.BUY, "level": 0}
        with pytest.raises(ValueError):
            deterministic_client_order_id(**{**args, **bad})


def test_an_empty_existing_file_is_refused_not_opened_as_a_new_journal(tmp_path) -> None:
    path = tmp_path / "j.sqlite"
    path.write_bytes(b"")
    with pytest.raises(JournalSchemaError, match=str(path)):
        Journal(path, run_id="r")
    assert path.read_bytes() == b""  # nothing written into it


def test_a_corrupted_journal_is_an_error_naming_the_file(tmp_path) -> None:
    path = tmp_path / "j.sqlite"
    j = Journal(path, run_id="r")
    j.trip_kill_switch(SYMBOL, "test", actor="operator")
    j.close()
    data = bytearray(path.read_bytes())
    data[0:16] = b"this is garbage!"  # the SQLite header
    path.write_bytes(bytes(data))
    with pytest.raises(JournalError, match=str(path)):
        Journal(path, run_id="r")


def test_a_missing_file_starts_a_new_journal(tmp_path) -> None:
    j = Journal(tmp_path / "new" / "j.sqlite", run_id="r")
    assert j.kill_switch(SYMBOL) is None
    j.close()
