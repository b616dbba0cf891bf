"""The operator's views: the status table at 80 columns and wider, its plain lines for pipes,
and the human layouts of ``explain`` and ``kill-switch`` (with ``--json`` as before)."""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import re
import shlex
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from swarm_ray.commands import explain, kill_switch, status
from swarm_ray.commands.views import (
    ACTION_CODES,
    ROLE_CODES,
    explain_view,
    kill_switch_view,
    status_lines,
    status_table,
)
from swarm_ray.core.clock import SimulatedClock
from swarm_ray.core.domain import Action, Fill, Opinion, Order, OrderIntent, OrderStatus, Side
from swarm_ray.core.ids import deterministic_client_order_id
from swarm_ray.core.roles import ROLES
from swarm_ray.core.storage import ENV_VAR
from swarm_ray.journal import CycleRecord, DecisionRecord, Journal
from swarm_ray.trading.cycle import CycleSummary

T0_NS = 1_724_117_280_000_000_000  # 2024-08-20 01:28 UTC, the demo's replayed day
VOTES = {
    "market_analyst": "quote_tight",
    "risk_manager": "quote_wide",
    "strategy_optimizer": "quote_wide",
    "execution_agent": "quote_wide",
}

# ----------------------------------------------------------------------------- status dicts


def _symbol(
    symbol: str = "BTCUSDT",
    *,
    cycle: int = 89,
    mid: float = 60684.11,
    action: str = "quote_wide",
    votes: dict[str, str] | None = None,
    position: float = -0.005,
    pnl: float = -1.03,
    fills: int = 6,
    risk_reasons: tuple[str, ...] = (),
    data_problems: tuple[str, ...] = (),
    timed_out: tuple[str, ...] = (),
    kill_switch: bool = False,
) -> dict[str, Any]:
    """One symbol of a coordinator's ``status()``, its ``last`` built from a real
    ``CycleSummary`` as the coordinator actor builds it (non-finite floats as ``None``)."""
    last = CycleSummary(
        symbol=symbol,
        cycle=cycle,
        time_ns=T0_NS,
        mid=mid,
        best_bid=mid - 0.01,
        best_ask=mid + 0.01,
        action=action,
        voted=action,
        share=0.683,
        reason="consensus",
        risk_reasons=risk_reasons,
        position=position,
        pnl=pnl,
        bids=(mid - 48.5,),
        asks=(mid + 48.5,),
        placed=2,
        canceled=2,
        new_fills=1,
        timed_out=timed_out,
        data_problems=data_problems,
        latency_ms=15.42,
        kill_switch=kill_switch,
        votes=dict(VOTES if votes is None else votes),
        carried=True,
    )
    d = dataclasses.asdict(last)
    d = {k: None if isinstance(v, float) and not math.isfinite(v) else v for k, v in d.items()}
    return {
        "cycle": cycle,
        "position": position,
        "fills": fills,
        "pnl": pnl,
        "last": d,
        "kill_switch": kill_switch,
        "reconciled": True,
        "quoting": {"tight_bps": 3.0, "wide_bps": 8.0, "skew": 0.5, "levels": 1},
    }


def _swarms(*symbols: dict[str, Any], names: list[str] | None = None) -> dict[str, Any]:
    """``swarm_status()``: one coordinator per symbol, keyed by its actor name."""
    out = {}
    for k, s in enumerate(symbols):
        sym = names[k] if names else s["last"]["symbol"]
        name = f"coordinator:{sym}"
        out[name] = {
            "name": name,
            "pid": 4242 + k,
            "node": "ab12",
            "running": True,
            "cycles": s["cycle"] + 1,
            "error": None,
            "symbols": {sym: s},
        }
    return out


def _render(renderable: Any, width: int = 80) -> list[str]:
    console = Console(width=width, record=True, color_system=None)
    console.print(renderable)
    return console.export_text().splitlines()


def _row(lines: list[str], symbol: str) -> str:
    return next(line for line in lines if line.startswith(symbol + " "))


# ----------------------------------------------------------------------------- status table


def test_action_and_role_codes_are_unique_and_cover_every_action_and_role():
    assert set(ACTION_CODES) == {a.label for a in Action}
    assert len(set(ACTION_CODES.values())) == len(ACTION_CODES)
    assert set(ROLE_CODES) == set(ROLES) and len(set(ROLE_CODES.values())) == len(ROLES)


def test_status_table_at_80_columns_fits_and_cuts_no_symbol_action_or_mid():
    statuses = _swarms(
        _symbol("BTCUSDT"),
        _symbol(
            "ETHUSDT",
            mid=2650.5,
            action="stand_aside",
            pnl=12.5,
            position=0.25,
            risk_reasons=("volatility 42.1 bps > cut-off 30.0",),
        ),
    )
    lines = _render(status_table(statuses))
    assert max(map(len, lines)) <= 80
    assert not any("…" in line for line in lines)
    btc, eth = _row(lines, "BTCUSDT"), _row(lines, "ETHUSDT")
    for row, mid, action in ((btc, "60684.11", "quote_wide"), (eth, "2650.50", "stand_aside")):
        assert f" {mid} " in row and f" {action} " in row
        assert "QW:RSE QT:M" in row  # the votes on one line: quote_wide by R, S, E; tight by M
        assert "01:28" in row  # HH:MM, the day in the title
    assert "2024-08-20" in lines[0]
    header = next(line for line in lines if line.startswith("symbol"))
    assert " ".join(header.split()) == "symbol time mid action share votes pos PnL fills"
    legend = "\n".join(lines)
    assert "M=market_analyst" in legend and "E=execution_agent" in legend
    assert "QW=quote_wide" in legend and "SB=skew_buy" not in legend  # only the codes shown
    notes = [line for line in lines if line.startswith("ETHUSDT") and "volatility" in line]
    assert notes and "volatility" not in eth  # the notes go under the table at 80 columns


def test_status_table_shows_each_agents_hindsight_over_every_symbol():
    btc, eth = _symbol("BTCUSDT"), _symbol("ETHUSDT", mid=2650.5)
    btc["track"] = {
        "risk_manager": {"scored": 30, "hit_rate": 0.4, "scored_confidence": 0.55},
        "market_analyst": {"scored": 0, "hit_rate": None, "scored_confidence": None},
    }
    eth["track"] = {"risk_manager": {"scored": 10, "hit_rate": 0.8, "scored_confidence": 0.51}}
    lines = _render(status_table(_swarms(btc, eth)))
    (line,) = [x for x in lines if x.startswith("hindsight:")]
    # 40 votes scored: (30 * 0.4 + 10 * 0.8) / 40 = 0.5 won, stated (30 * .55 + 10 * .51) / 40
    assert line == "hindsight: risk_manager 0.50 at p 0.54 (n 40)"
    assert not [x for x in _render(status_table(_swarms(_symbol()))) if "hindsight" in x]


def test_status_table_on_a_wide_console_shows_every_column_full_votes_and_notes():
    statuses = _swarms(_symbol(risk_reasons=("volatility 42.1 bps > cut-off 30.0",)))
    lines = _render(status_table(statuses), width=250)
    header = next(line for line in lines if line.startswith("symbol"))
    columns = "symbol cycle time mid action share votes pos PnL fills ms notes"
    assert " ".join(header.split()) == columns
    row = _row(lines, "BTCUSDT")
    assert "market_analyst:quote_tight risk_manager:quote_wide" in row
    assert "volatility 42.1 bps > cut-off 30.0" in row
    assert not any(line.startswith("votes:") for line in lines)  # nothing to decode


@pytest.mark.parametrize(
    "case",
    ["long symbol", "many agents", "long note", "kill switch", "all of them"],
)
def test_status_table_keeps_80_columns_with_long_symbol_many_agents_or_long_note(case):
    symbol = "1000SHIBUSDT" if case in ("long symbol", "all of them") else "BTCUSDT"
    votes = dict(VOTES)
    if case in ("many agents", "all of them"):
        votes.update({f"momentum_{k}": "skew_buy" for k in range(4)})
        votes.update({"mean_reversion": "skew_sell", "news_reader": "stand_aside"})
    note = ("stale snapshot (2.1s old) " * 8).strip() if case != "many agents" else ""
    kill = case in ("kill switch", "all of them")
    s = _symbol(
        symbol,
        mid=0.01423 if symbol != "BTCUSDT" else 60684.11,
        votes=votes,
        data_problems=(note,) if note else (),
        kill_switch=kill,
        action="emergency_stop" if kill else "quote_wide",
    )
    lines = _render(status_table(_swarms(s, _symbol("ETHUSDT", mid=2650.5))))
    assert max(map(len, lines)) <= 80, "\n".join(lines)
    row = _row(lines, symbol)
    assert "…" not in row
    mid = "0.01423" if symbol != "BTCUSDT" else "60684.11"
    assert f" {mid} " in row and (" emergency_stop" in row if kill else " quote_wide " in row)
    if case == "many agents":
        votes_cell = re.search(r"(\b[A-Z]{2}:[A-Z0-9]+\b ?)+", row)
        assert votes_cell and len(re.findall(r"[A-Z]{2}:", votes_cell.group())) == 5
        legend = "\n".join(lines)
        assert "momentum_0" in legend and "news_reader" in legend
    if note:
        assert any(line.startswith(symbol) and "stale snapshot" in line for line in lines[1:])
    if kill:
        assert any("kill switch" in line for line in lines)


def test_status_table_lists_a_coordinator_that_did_not_answer_and_one_not_yet_cycling():
    waiting = _symbol("ETHUSDT")
    waiting["last"], waiting["cycle"], waiting["kill_switch"] = None, -1, None
    statuses = _swarms(_symbol("BTCUSDT"), waiting, names=["BTCUSDT", "ETHUSDT"])
    statuses["coordinator:SOLUSDT"] = {
        "name": "coordinator:SOLUSDT",
        "error": "GetTimeoutError: Get timed out",
    }
    lines = _render(status_table(statuses))
    assert max(map(len, lines)) <= 80
    assert any(line.startswith("ETHUSDT") and "no cycle yet" in line for line in lines)
    assert "coordinator:SOLUSDT: GetTimeoutError: Get timed out" in lines


# ----------------------------------------------------------------------------- plain lines


def _logfmt(line: str) -> dict[str, str]:
    return dict(field.split("=", 1) for field in shlex.split(line))


def test_status_lines_are_one_logfmt_line_per_symbol_with_the_same_keys():
    statuses = _swarms(
        _symbol("ETHUSDT", mid=2650.5, risk_reasons=("volatility 42.1 bps > cut-off 30.0",)),
        _symbol("BTCUSDT", timed_out=("execution_agent",)),
    )
    lines = status_lines(statuses)
    assert [line.split()[0] for line in lines] == ["symbol=BTCUSDT", "symbol=ETHUSDT"]
    btc, eth = map(_logfmt, lines)
    keys = (
        "symbol time cycle mid action share consensus position pnl fills ms kill_switch votes notes"
    )
    assert list(btc) == list(eth) == keys.split()
    assert btc["time"] == "2024-08-20T01:28:00Z" and btc["mid"] == "60684.11"
    assert btc["votes"].split(",")[0] == "market_analyst:quote_tight"
    assert btc["notes"] == "no model answer: execution_agent" and btc["kill_switch"] == "clear"
    assert eth["notes"] == "volatility 42.1 bps > cut-off 30.0"
    assert lines[1].endswith('notes="volatility 42.1 bps > cut-off 30.0"')


def test_status_lines_report_a_failed_coordinator_in_one_line():
    lines = status_lines({"coordinator:X": {"name": "coordinator:X", "error": "boom: it died"}})
    assert lines == ['swarm=coordinator:X error="boom: it died"']


@pytest.fixture
def fake_cluster(monkeypatch):
    """``swarm-ray status`` with ``swarm_status()`` answered by fabricated coordinators."""
    from swarm_ray.commands import _swarm
    from swarm_ray.runtime import swarm as runtime

    statuses = _swarms(_symbol("BTCUSDT"), _symbol("ETHUSDT", mid=2650.5))
    monkeypatch.setattr(_swarm, "init_ray", lambda *a, **k: None)
    monkeypatch.setattr(runtime, "swarm_status", lambda *a, **k: statuses)
    return statuses


def _status_args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    status.register(parser.add_subparsers())
    return parser.parse_args(["status", *argv])


def test_status_command_prints_plain_lines_when_stdout_is_not_a_terminal(fake_cluster, capsys):
    assert status.run(_status_args()) == 0
    out = capsys.readouterr().out
    assert out.splitlines() == status_lines(fake_cluster)


def test_status_command_json_is_the_coordinators_status_unchanged(fake_cluster, capsys):
    assert status.run(_status_args("--json")) == 0
    assert json.loads(capsys.readouterr().out) == json.loads(json.dumps(fake_cluster))


def test_status_command_prints_the_table_on_a_terminal(fake_cluster, capsys, monkeypatch):
    monkeypatch.setattr("sys.stdout.isatty", lambda: True)
    monkeypatch.setenv("COLUMNS", "80")
    assert status.run(_status_args()) == 0
    lines = re.sub(r"\x1b\[[0-9;]*m", "", capsys.readouterr().out).splitlines()
    assert any(line.startswith("symbol") and "votes" in line for line in lines)
    assert max(map(len, lines)) <= 80


# ----------------------------------------------------------------------------- explain


def _cycle_record(n: int, **overrides: Any) -> CycleRecord:
    fields = dict(
        symbol="BTCUSDT",
        cycle=n,
        time_ns=T0_NS + n * 60 * 10**9,
        mid=60684.11,
        best_bid=60684.10,
        best_ask=60684.12,
        opinions=(
            Opinion(
                "market_analyst",
                Action.SKEW_BUY,
                0.81,
                "v1",
                "net strong_buy p=0.81, llm bullish -> dir +0.42, with a rationale long "
                "enough that it has to wrap at eighty columns in the explanation",
            ),
            Opinion("risk_manager", Action.QUOTE_WIDE, 0.6, "v2", "policy: quote_wide 0.60"),
            Opinion("strategy_optimizer", Action.SKEW_BUY, 0.9, "v2", "policy: skew_buy"),
        ),
        timed_out=("execution_agent",),
        weights={r: w for r, w in zip(ROLES, (0.25, 0.30, 0.20, 0.25), strict=True)},
        decision=DecisionRecord(
            action=Action.STAND_ASIDE,
            voted_action=Action.SKEW_BUY,
            consensus_share=0.70,
            winning_score=0.38,
            responding_weight=0.75,
            reason="consensus",
            risk_allowed=False,
            risk_reasons=("volatility 42.1 bps > cut-off 30.0",),
            scores={Action.SKEW_BUY: 0.38, "quote_wide": 0.18},
        ),
        latency_ms=15.4,
        inventory=-0.005,
        pnl=-1.03,
    )
    fields.update(overrides)
    return CycleRecord(**fields)


def _intent(run_id: str, cycle: int, side: Side) -> OrderIntent:
    price = Decimal("60635.56") if side is Side.BUY else Decimal("60732.66")
    cid = deterministic_client_order_id(run_id, "BTCUSDT", cycle, side, 0)
    return OrderIntent("BTCUSDT", side, price, Decimal("0.00500"), cid)


@pytest.fixture
def journal_dir(tmp_path: Path, monkeypatch) -> Path:
    """A journal with one cycle, its two orders (the buy half filled) and a fill."""
    monkeypatch.delenv(ENV_VAR, raising=False)
    folder = tmp_path / "journal"
    folder.mkdir()
    with Journal(
        folder / "coordinator_BTCUSDT.sqlite", run_id="demo", clock=SimulatedClock(T0_NS)
    ) as j:
        buy, sell = _intent("demo", 89, Side.BUY), _intent("demo", 89, Side.SELL)
        j.record_cycle(_cycle_record(89), intents=[buy, sell])
        j.update_order(
            Order(
                "BTCUSDT",
                Side.BUY,
                buy.price,
                buy.quantity,
                buy.client_order_id,
                OrderStatus.PARTIALLY_FILLED,
                Decimal("0.002"),
                "19",
                update_time_ms=T0_NS // 10**6 + 59_999,
            )
        )
        j.record_fills(
            [
                Fill(
                    "BTCUSDT",
                    "6",
                    buy.client_order_id,
                    Side.BUY,
                    buy.price,
                    Decimal("0.002"),
                    Decimal("0.02425"),
                    "USDT",
                    T0_NS // 10**6 + 59_999,
                    True,
                )
            ]
        )
    return folder


def _explain_args(order_id: str, folder: Path, *argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    explain.register(parser.add_subparsers())
    return parser.parse_args(["explain", order_id, "--journal-dir", str(folder), *argv])


def test_explain_prints_a_human_layout_that_fits_80_columns(journal_dir, capsys):
    buy = _intent("demo", 89, Side.BUY).client_order_id
    sell = _intent("demo", 89, Side.SELL).client_order_id
    assert explain.run(_explain_args(buy, journal_dir)) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert max(map(len, lines)) <= 80, out
    assert lines[0] == f"order {buy}"
    for expected in (
        "  order     BUY 0.00500 BTCUSDT @ 60635.56 LIMIT GTC",
        "  status    PARTIALLY_FILLED, filled 0.002, venue id 19",
        "cycle 89 at 2024-08-20 02:57:00 UTC",
        "  market    mid 60684.11, bid 60684.10, ask 60684.12",
        "  consensus skew_buy, 0.70 of the score: carried",
        "  risk gate blocked; volatility 42.1 bps > cut-off 30.0",
        "  decision  stand_aside",
        "  01:28:59  BUY 0.002 @ 60635.56  maker  fee 0.02425 USDT  trade 6",
        f"  {sell}  SELL 0.00500 @ 60732.66  PENDING",
    ):
        assert expected in lines, (expected, out)
    vote = re.compile(r"  [a-z_]+ +(no vote \(|[a-z_]+ +\d\.\d\d +\d\.\d\d  )")
    votes = [line.split()[0] for line in lines if vote.match(line)]
    assert votes == list(ROLES)  # in role order, the timed-out agent included
    assert re.search(r"  market_analyst +skew_buy +0\.81 +0\.25  v1", out)
    assert re.search(r"  execution_agent +no vote \(timeout\) +0\.25", out)
    assert "      net strong_buy p=0.81" in out and "      enough that it" in out  # wrapped


def test_explain_json_is_the_journals_explanation_unchanged(journal_dir, capsys):
    buy = _intent("demo", 89, Side.BUY).client_order_id
    assert explain.run(_explain_args(buy, journal_dir, "--json")) == 0
    out = capsys.readouterr().out
    with Journal(journal_dir / "coordinator_BTCUSDT.sqlite", read_only=True) as j:
        assert out == json.dumps(j.explain_order(buy), indent=2, default=str) + "\n"


def test_explain_view_shows_the_threshold_when_known_and_an_order_without_a_cycle():
    why = {
        "order": {
            "client_order_id": "adopted-1",
            "symbol": "BTCUSDT",
            "side": "SELL",
            "type": "LIMIT",
            "time_in_force": "GTC",
            "price": "61000",
            "quantity": "0.01",
            "status": "CANCELED",
            "filled_quantity": "0",
            "exchange_order_id": None,
            "reason": "unknown to the journal: canceled at reconcile",
            "run_id": None,
            "cycle": None,
            "created_ns": T0_NS,
            "updated_ns": T0_NS,
            "update_time_ms": 0,
        },
        "fills": [],
        "cycle": None,
        "opinions": [],
        "cycle_orders": [],
        "note": "not tied to a cycle (placed outside one, or adopted from the venue)",
    }
    text = explain_view(why)
    assert "  reason    unknown to the journal: canceled at reconcile" in text
    assert "  note      not tied to a cycle" in text and "fills: none" in text
    assert "  run       -, cycle -" in text
    cycle = {
        "id": 1,
        "run_id": "r",
        "symbol": "BTCUSDT",
        "cycle": 3,
        "time_ns": T0_NS,
        "mid": 60000.0,
        "best_bid": None,
        "best_ask": None,
        "data_problems": [],
        "latency_ms": 5.0,
        "inventory": 0.0,
        "pnl": 0.0,
        "decision": {
            "action": "stand_aside",
            "voted_action": "quote_tight",
            "consensus_share": 0.52,
            "winning_score": 0.3,
            "responding_weight": 1.0,
            "scores": {},
            "reason": "below_threshold",
            "risk_allowed": True,
            "risk_reasons": [],
        },
    }
    text = explain_view({**why, "cycle": cycle, "note": None}, threshold=0.65)
    assert max(map(len, text.splitlines())) <= 80
    assert (
        "consensus quote_tight, 0.52 of the score (threshold 0.65): not carried: below the "
        "threshold" in " ".join(text.split())
    )
    assert "  market    mid 60000.00, bid -, ask -" in text


# ----------------------------------------------------------------------------- kill switch


@pytest.fixture
def switches(journal_dir: Path) -> Path:
    """BTCUSDT tripped by the risk gate, ETHUSDT tripped then cleared by alice, SOLUSDT never."""
    with Journal(journal_dir / "coordinator_BTCUSDT.sqlite", run_id="demo") as j:
        j.trip_kill_switch("BTCUSDT", "drawdown 5.1% >= limit 5.0%", actor="risk_gate")
        j.trip_kill_switch("ETHUSDT", "operator emergency stop", actor="bob")
        j.clear_kill_switch("ETHUSDT", "alice")
        j.record_cycle(_cycle_record(1, symbol="SOLUSDT"))
    return journal_dir


def _kill_args(folder: Path, *argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    kill_switch.register(parser.add_subparsers())
    return parser.parse_args(["kill-switch", "--journal-dir", str(folder), *argv])


def test_kill_switch_prints_one_line_per_symbol_with_state_reason_who_and_when(switches, capsys):
    assert kill_switch.run(_kill_args(switches)) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["symbol", "state", "since", "(UTC)", "by", "reason"]
    rows = {line.split()[0]: line for line in lines[1:]}
    assert list(rows) == ["BTCUSDT", "ETHUSDT", "SOLUSDT"]
    assert re.fullmatch(
        r"BTCUSDT +TRIPPED +\d{4}-\d\d-\d\d \d\d:\d\d +risk_gate +drawdown 5\.1%"
        r" >= limit 5\.0%",
        rows["BTCUSDT"],
    )
    assert re.fullmatch(
        r"ETHUSDT +clear +\d{4}-\d\d-\d\d \d\d:\d\d +alice +was: operator"
        r" emergency stop",
        rows["ETHUSDT"],
    )
    assert re.fullmatch(r"SOLUSDT +clear +never tripped", rows["SOLUSDT"])
    assert max(map(len, lines)) <= 80


def test_kill_switch_json_is_unchanged(switches, capsys):
    assert kill_switch.run(_kill_args(switches, "--json")) == 0
    assert json.loads(capsys.readouterr().out) == {
        "BTCUSDT": "tripped: drawdown 5.1% >= limit 5.0%",
        "ETHUSDT": "clear",
        "SOLUSDT": "clear",
    }


def test_kill_switch_clear_says_who_cleared_it_and_what_it_was(switches, capsys):
    args = _kill_args(switches, "--symbol", "BTCUSDT", "--clear", "--operator", "carol")
    assert kill_switch.run(args) == 0
    line = capsys.readouterr().out.splitlines()[1]
    assert re.fullmatch(
        r"BTCUSDT +cleared +\S+ \S+ +carol +was: drawdown 5\.1% >= limit 5\.0%", line
    )
    args = _kill_args(switches, "--symbol", "BTCUSDT", "--json")
    assert kill_switch.run(args) == 0
    assert json.loads(capsys.readouterr().out) == {"BTCUSDT": "clear"}


def test_kill_switch_view_names_a_switch_that_stops_every_symbol():
    rows = [
        {
            "symbol": "BTCUSDT",
            "state": "tripped",
            "history": [],
            "switch": {
                "symbol": None,
                "reason": "operator emergency stop",
                "tripped_by": "alice",
                "tripped_ns": T0_NS,
            },
        }
    ]
    text = kill_switch_view(rows)
    assert text.splitlines()[1].endswith("alice  operator emergency stop (every symbol)")
    assert "2024-08-20 01:28" in text
    assert kill_switch_view([]) == "no symbol in the journal"


def test_a_symbol_under_the_switch_for_every_symbol_is_not_reported_cleared(tmp_path, capsys):
    from swarm_ray.commands import kill_switch
    from swarm_ray.journal import Journal

    path = tmp_path / "j.sqlite"
    with Journal(path, run_id="r") as j:
        j.record_cycle(_cycle_record(1, symbol="BTCUSDT"))
        j.trip_kill_switch(None, "venue incident", actor="bob")
    args = _kill_args(path, "--symbol", "BTCUSDT", "--clear", "--operator", "carol", "--json")
    assert kill_switch.run(args) == 0
    assert (
        "tripped for every symbol: venue incident" in json.loads(capsys.readouterr().out)["BTCUSDT"]
    )
    with Journal(path, read_only=True) as j:
        assert j.kill_switch("BTCUSDT") is not None  # nothing was cleared
    args = _kill_args(path, "--clear", "--operator", "carol", "--reason", "venue back", "--json")
    kill_switch.run(args)
    capsys.readouterr()
    with Journal(path, read_only=True) as j:
        assert j.kill_switch("BTCUSDT") is None
