"""The panel's JSON API over a real journal folder: every endpoint, with and without the
operator token, bad input, and the controls' effect on the journal (the audit trail)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from swarm_ray.journal import Journal
from swarm_ray.panel.app import PanelSettings, create_app
from swarm_ray.panel.auth import digest
from tests.fakes.panel_live import RecordingLive
from tests.unit.panel.conftest import TOKEN

AUTH = {"Authorization": f"Bearer {TOKEN}"}
WRONG = {"Authorization": "Bearer not-the-token-at-all-000"}


def client(folder: Path, live: Any = None, public_read: bool = False) -> TestClient:
    settings = PanelSettings(
        journal_dir=str(folder), token_digest=digest(TOKEN), public_read=public_read,
        threshold=0.65, refresh_s=1.5, title="swarm-ray test",
    )  # fmt: skip
    return TestClient(create_app(settings, live))


def control(c: TestClient, kind: str, headers: dict | None = None, **body: Any):
    data = {"symbol": "BTCUSDT", "operator": "ann", "reason": "drill", **body}
    return c.post(f"/api/controls/{kind}", headers=AUTH if headers is None else headers, json=data)


# ------------------------------------------------------------------ page and reads


def test_page_and_info_need_no_token_and_reveal_nothing(folder):
    c = client(folder)
    page = c.get("/")
    assert page.status_code == 200 and "swarm-ray" in page.text
    assert "uPlot.iife.min.js" in page.text  # the vendored chart library, no CDN
    assert "https://" not in page.text
    assert c.get("/static/vendor/uPlot.iife.min.js").status_code == 200
    info = c.get("/api/info").json()
    assert info == {
        "title": "swarm-ray test", "mode": "journal", "journal_dir": "journal",
        "public_read": False, "threshold": 0.65, "refresh_s": 1.5,
    }  # fmt: skip
    assert TOKEN not in page.text + json.dumps(info)


@pytest.mark.parametrize(
    "path",
    ["/api/overview", "/api/symbols/BTCUSDT/series", "/api/symbols/BTCUSDT/agents",
     "/api/orders", "/api/audit", "/api/auth"],
)  # fmt: skip
def test_reads_need_the_token_unless_configured_public(folder, path):
    c = client(folder)
    assert c.get(path).status_code == 401
    assert c.get(path, headers=WRONG).status_code == 401
    assert c.get(path, headers={"Authorization": TOKEN}).status_code == 401  # not "Bearer"
    assert c.get(path, headers=AUTH).status_code == 200
    public = client(folder, public_read=True)
    assert public.get(path).status_code == (401 if path == "/api/auth" else 200)


def test_overview_has_every_symbol_with_its_last_cycle_decision_and_agents(folder):
    rows = client(folder).get("/api/overview", headers=AUTH).json()
    assert rows["mode"] == "journal" and rows["threshold"] == 0.65
    btc, eth = rows["symbols"]
    assert (btc["symbol"], eth["symbol"]) == ("BTCUSDT", "ETHUSDT")
    assert btc["cycle"] == 11 and btc["pnl"] == 5.5 and btc["fills"] == 3
    assert btc["decision"] == {
        "action": "stand_aside", "voted": "quote_tight", "share": 0.55,
        "reason": "below_threshold", "carried": False, "risk_reasons": [],
    }  # fmt: skip
    assert eth["decision"]["carried"] is True  # cycle 4 is even
    assert {a["agent_id"]: a["model_version"] for a in btc["agents"]} == {
        "market_analyst": "v1", "risk_manager": "v2",
    }  # fmt: skip
    assert btc["kill_switch"] is None and btc["live"] is None


def test_series_are_aligned_columns_with_quotes_fills_and_votes(folder):
    c = client(folder)
    data = c.get("/api/symbols/BTCUSDT/series", headers=AUTH).json()
    cyc = data["cycles"]
    n = len(cyc["time_ms"])
    assert n == 12 and all(len(v) == n for v in cyc.values())
    assert cyc["carried"][:3] == [True, False, True]
    assert cyc["quote_bid"][0] == 59995.0 and cyc["quote_ask"][0] == 60005.0
    assert cyc["quote_bid"][1] is None  # nothing placed when the vote did not carry
    assert [i for i, f in enumerate(cyc["fill_buy"]) if f is not None] == [0, 4, 8]
    votes = data["votes"]
    assert set(votes["agents"]) == {"market_analyst", "risk_manager"}
    assert votes["agents"]["risk_manager"]["outcome"][3] == "timeout"
    assert votes["agents"]["risk_manager"]["confidence"][3] is None
    last = c.get("/api/symbols/BTCUSDT/series?limit=5", headers=AUTH).json()["cycles"]
    assert last["cycle"] == [7, 8, 9, 10, 11]  # the newest, oldest first


def test_agent_records_count_answers_timeouts_and_agreement(folder):
    recs = client(folder).get("/api/symbols/BTCUSDT/agents", headers=AUTH).json()["agents"]
    risk = next(r for r in recs if r["agent_id"] == "risk_manager")
    assert (risk["cycles"], risk["voted"], risk["timeouts"]) == (12, 11, 1)
    assert risk["carried_cycles"] == 6 and risk["agreement"] == 1.0
    assert risk["mean_confidence"] == pytest.approx(0.4)


@pytest.mark.parametrize(
    ("query", "status"),
    [("/api/symbols/btcusdt/series", 422), ("/api/symbols/XRPUSDT/series", 404),
     ("/api/symbols/XRPUSDT/agents", 404), ("/api/symbols/BTCUSDT/series?limit=0", 422),
     ("/api/symbols/BTCUSDT/series?limit=99999", 422), ("/api/orders?limit=501", 422),
     ("/api/orders?offset=-1", 422), ("/api/orders?symbol=bad;drop", 422),
     ("/api/orders/nope/explain", 404), (f"/api/orders/{'x' * 65}/explain", 422),
     ("/api/audit?limit=0", 422)],
)  # fmt: skip
def test_bad_input_is_refused_with_a_reason(folder, query, status):
    r = client(folder).get(query, headers=AUTH)
    assert r.status_code == status
    assert r.json()["detail"]
    if status == 404 and "XRPUSDT" in query:
        assert "XRPUSDT" in r.json()["detail"]


def test_orders_search_pages_and_explains(folder):
    c = client(folder)
    every = c.get("/api/orders?limit=500", headers=AUTH).json()
    assert every["total"] == 12 + 6  # BTC: 6 carried cycles x 2, ETH: 3 x 2
    sells = c.get("/api/orders?q=sell&symbol=BTCUSDT", headers=AUTH).json()
    assert sells["total"] == 6 and {o["side"] for o in sells["orders"]} == {"SELL"}
    page1 = c.get("/api/orders?limit=5", headers=AUTH).json()["orders"]
    page2 = c.get("/api/orders?limit=5&offset=5", headers=AUTH).json()["orders"]
    assert len(page1) == len(page2) == 5
    assert not {o["client_order_id"] for o in page1} & {o["client_order_id"] for o in page2}
    newest = page1[0]
    assert newest["created_ns"] == max(o["created_ns"] for o in every["orders"])
    why = c.get(f"/api/orders/{newest['client_order_id']}/explain", headers=AUTH).json()
    assert why["order"]["client_order_id"] == newest["client_order_id"]
    assert why["cycle"]["decision"]["reason"] == "consensus"
    assert {o["agent_id"] for o in why["opinions"]} == {"market_analyst", "risk_manager"}
    assert why["threshold"] == 0.65


# ------------------------------------------------------------------ controls


@pytest.mark.parametrize("kind", ["stop", "kill-switch", "emergency-stop", "clear"])
def test_controls_need_the_token_and_change_nothing_without_it(folder, kind):
    c = client(folder, public_read=True)
    for headers in ({}, WRONG, {"Authorization": f"Bearer {TOKEN}x"}):
        r = control(c, kind, headers=headers)
        assert r.status_code == 401
        assert r.headers["www-authenticate"] == "Bearer"
    assert c.get("/api/audit").json()["events"] == []


def test_kill_switch_and_clear_are_recorded_with_operator_and_reason(folder):
    c = client(folder)
    assert control(c, "kill-switch", reason="venue looks odd").json() == {"tripped": ["BTCUSDT"]}
    row = c.get("/api/overview", headers=AUTH).json()["symbols"][0]
    assert row["kill_switch"]["reason"] == "venue looks odd (panel)"
    assert row["kill_switch"]["tripped_by"] == "ann"
    with Journal(folder / "coordinator_BTCUSDT.sqlite", read_only=True) as j:
        assert j.kill_switch("BTCUSDT") is not None  # what a running coordinator reads
    out = control(c, "clear", operator="bob", reason="checked").json()
    assert out == {"cleared": ["BTCUSDT"], "still_tripped": {}}
    events = c.get("/api/audit", headers=AUTH).json()["events"]
    assert [(e["kind"], e["actor"], e["reason"]) for e in events] == [
        ("kill_switch_clear", "bob", "checked"),
        ("kill_switch_trip", "ann", "venue looks odd (panel)"),
    ]


def test_every_symbol_switch_and_its_clear(folder):
    c = client(folder)
    assert sorted(control(c, "kill-switch", symbol=None).json()["tripped"]) == ["*", "*"]
    rows = c.get("/api/overview", headers=AUTH).json()["symbols"]
    assert all(r["kill_switch"] and r["kill_switch"]["symbol"] is None for r in rows)
    control(c, "kill-switch", symbol="ETHUSDT")
    out = control(c, "clear", symbol=None).json()
    assert sorted(out["cleared"]) == ["*", "*", "ETHUSDT"] and out["still_tripped"] == {}


def test_stop_needs_a_running_swarm_and_emergency_stop_still_trips_the_switch(folder):
    c = client(folder)
    r = control(c, "stop")
    assert r.status_code == 409 and "finished run" in r.json()["detail"]
    out = control(c, "emergency-stop").json()
    assert out == {"stopped": [], "tripped": ["BTCUSDT"]}
    assert control(c, "kill-switch", symbol="XRPUSDT").status_code == 404


def test_live_stop_and_status_go_to_the_running_swarm(folder):
    live = RecordingLive({"BTCUSDT": {"running": True, "cycle": 40, "pnl": 2.5, "fills": 9}})
    c = client(folder, live=live)
    assert c.get("/api/info").json()["mode"] == "live"
    btc = c.get("/api/overview", headers=AUTH).json()["symbols"][0]
    assert (btc["cycle"], btc["pnl"], btc["fills"]) == (40, 2.5, 9)  # live beats the journal
    assert btc["live"]["running"] is True
    assert control(c, "stop", reason="maintenance").json() == {"stopped": ["BTCUSDT"]}
    assert live.calls == [("BTCUSDT", False, "maintenance (panel)", "ann")]
    assert control(c, "emergency-stop", symbol=None).json()["stopped"] == ["BTCUSDT"]
    assert live.calls[-1][:2] == (None, True)
    live.fail = True  # the cluster does not answer: the journal view still works
    assert c.get("/api/overview", headers=AUTH).json()["symbols"][0]["live"] is None


@pytest.mark.parametrize(
    "body",
    [{"operator": "", "reason": "x"}, {"operator": "ann", "reason": ""},
     {"operator": "<script>", "reason": "x"}, {"operator": "ann"},
     {"operator": "ann", "reason": "x", "symbol": "*"}, {"operator": "ann", "reason": "x" * 301}],
)  # fmt: skip
def test_control_bodies_are_validated(folder, body):
    r = client(folder).post("/api/controls/kill-switch", headers=AUTH, json=body)
    assert r.status_code == 422


def test_controls_refuse_another_origin_and_a_form_post(folder):
    c = client(folder)
    evil = {**AUTH, "Origin": "https://evil.example"}
    assert control(c, "kill-switch", headers=evil).status_code == 403
    same = {**AUTH, "Origin": "http://testserver"}
    assert control(c, "kill-switch", headers=same).status_code == 200
    form = c.post("/api/controls/clear", headers=AUTH,
                  data={"operator": "ann", "reason": "x", "symbol": "BTCUSDT"})  # fmt: skip
    assert form.status_code == 422  # only a JSON body, which a cross-site form cannot send
