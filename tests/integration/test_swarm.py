"""The swarm on a real local Ray cluster with Ray Serve hosting the shipped models, trading on
the paper exchange over a real day: the cycle, orders explained by the journal, the kill switch,
and the faults (agent killed, coordinator killed around an order, bad data, Serve down)."""

from __future__ import annotations

import copy
import time
from collections import Counter
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
import yaml

ray = pytest.importorskip("ray")

from ray.exceptions import RayActorError  # noqa: E402

from swarm_ray.core.config import parse_config  # noqa: E402
from swarm_ray.core.domain import OrderStatus  # noqa: E402
from swarm_ray.core.roles import ROLES  # noqa: E402
from swarm_ray.exchanges.paper import PaperExchange  # noqa: E402
from swarm_ray.journal import Journal  # noqa: E402
from swarm_ray.runtime import swarm as runtime  # noqa: E402
from swarm_ray.runtime.actors import NAMESPACE  # noqa: E402
from swarm_ray.runtime.config import SwarmConfig  # noqa: E402
from tests.conftest import ROOT, kline_day  # noqa: E402

BASE = yaml.safe_load((ROOT / "configs" / "paper.yaml").read_text())
# the analyst alone carries the vote, so the order path runs whatever the DQN policies say
ANALYST_ONLY = {"market_analyst": 1.0, "risk_manager": 0.0, "strategy_optimizer": 0.0,
                "execution_agent": 0.0}  # fmt: skip


def swarm_config(tmp: Path, symbol: str, **sections: Any) -> SwarmConfig:
    data = copy.deepcopy(BASE)
    data.update(run_id=symbol.lower(), symbols=[symbol], journal_dir=str(tmp / "journal"))
    paper = data["exchange"]["paper"]
    paper["state_path"] = str(tmp / f"{symbol}.sqlite")
    paper["symbols"] = {symbol: {"klines": [kline_day("19"), kline_day("20")]}}
    data["consensus"]["weights"] = ANALYST_ONLY
    data["agents"]["unlikely_vote"] = "keep"  # the analyst's own votes: these test mechanics
    for key, value in sections.items():
        data[key] = {**data[key], **value} if isinstance(data.get(key), dict) else value
    return parse_config(SwarmConfig, data)


@pytest.fixture(scope="module")
def cluster():
    ray.init(num_cpus=2, include_dashboard=False, namespace=NAMESPACE, log_to_driver=False)
    cfg = parse_config(SwarmConfig, BASE)
    runtime.ensure_models_served(cfg)  # every swarm of the module shares the models
    yield
    from ray import serve

    serve.shutdown()
    ray.shutdown()


def start(cfg: SwarmConfig) -> tuple[Any, dict[str, Any]]:
    handles = runtime.start_swarm(cfg)
    return handles[runtime.coordinator_name(list(cfg.symbols))], handles


def run(coord: Any, n: int) -> list[dict[str, Any]]:
    """``n`` more cycles; the history is the actor's own (a restarted actor starts a new one)."""
    for _ in range(30):  # after a kill, the actor is unavailable until Ray has restarted it
        try:
            before = len(ray.get(coord.history_since.remote(0)))
            break
        except RayActorError:
            time.sleep(0.5)
    ray.get(coord.run.remote(n, keep_history=True), timeout=300)
    return ray.get(coord.history_since.remote(before))


def wait_restarted(actor: Any, old_pid: int, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if ray.get(actor.status.remote(), timeout=5)["pid"] != old_pid:
                return
        except RayActorError:
            pass
        time.sleep(0.3)
    raise AssertionError("the actor did not come back")


def journal(cfg: SwarmConfig) -> Journal:
    return Journal(next(Path(cfg.journal_dir).glob("*.sqlite")), read_only=True)


def venue(cfg: SwarmConfig) -> PaperExchange:
    return PaperExchange(cfg.exchange)  # the same account file, read after the run


def test_swarm_quotes_fills_and_every_order_is_explained_by_its_votes(cluster, tmp_path) -> None:
    cfg = swarm_config(tmp_path, "AAAUSDT")
    coord, _ = start(cfg)
    hist = run(coord, 120)
    assert len(hist) == 120
    assert all(h["votes"].keys() == {"market_analyst", "risk_manager", "strategy_optimizer",
                                     "execution_agent"} for h in hist[5:])  # fmt: skip
    quoted = [h for h in hist if h["bids"] or h["asks"]]
    assert quoted, Counter(h["action"] for h in hist)
    # quotes straddle the mid and stay passive
    for h in quoted:
        assert all(b < h["best_ask"] for b in h["bids"]) and all(
            a > h["best_bid"] for a in h["asks"]
        )
    st = ray.get(coord.status.remote())["symbols"]["AAAUSDT"]
    with journal(cfg) as j:
        orders = j.orders(symbol="AAAUSDT")
        assert len(orders) >= len(quoted)
        assert len({o.client_order_id for o in orders}) == len(orders)
        fills = j.fills("AAAUSDT")
        assert len(fills) == st["fills"] > 0
        why = j.explain_order(orders[-1].client_order_id)
        agents = {v["agent_id"] for v in why["opinions"]}
        assert agents == {"market_analyst", "risk_manager", "strategy_optimizer", "execution_agent"}
        assert why["cycle"]["decision"]["action"] != "stand_aside"
        # every served vote is scored in hindsight once its 5 bars have closed, and the
        # coordinator's running record (status) agrees with the journal's
        records = {r["agent_id"]: r for r in j.agent_records("AAAUSDT")}
    for agent, t in st["track"].items():
        assert 0 < t["scored"] == records[agent]["scored"] <= 115, agent
        assert t["hit_rate"] == pytest.approx(records[agent]["hit_rate"]), agent
    # the venue agrees with the journal about every order it has
    ex = venue(cfg)
    for o in orders:
        at_venue = ex.get_order("AAAUSDT", o.client_order_id)
        if o.status is OrderStatus.REJECTED:
            continue
        assert at_venue is not None and at_venue.status == o.status
    assert float(ex.position("AAAUSDT").quantity) == pytest.approx(st["position"])
    ex.close()


def models_replica() -> Any:
    """The Ray actor of the models deployment's (only) replica."""
    from ray.util import list_named_actors

    from serve.app import APP_NAME, MODELS_NAME

    names = [a for a in list_named_actors(all_namespaces=True)
             if a["name"].startswith(f"SERVE_REPLICA::{APP_NAME}#{MODELS_NAME}#")]  # fmt: skip
    assert len(names) == 1, names
    return ray.get_actor(names[0]["name"], namespace=names[0]["namespace"])


def test_models_replica_killed_mid_run_votes_safe_in_time_and_the_models_come_back(
    cluster, tmp_path
) -> None:
    cfg = swarm_config(tmp_path, "BBBUSDT", consensus={"weights": {
        "market_analyst": 0.25, "risk_manager": 0.30, "strategy_optimizer": 0.20,
        "execution_agent": 0.25}})  # fmt: skip
    coord, _ = start(cfg)
    run(coord, 3)
    ray.kill(models_replica(), no_restart=True)  # Serve's controller replaces it
    hist: list[dict[str, Any]] = []
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        hist += run(coord, 5)
        missing = [h for h in hist if h["timed_out"]]
        if missing and not hist[-1]["timed_out"]:
            break
    assert missing, "the killed replica should have cost at least one vote"
    limit_ms = 1000 * cfg.agents.model_timeout_s + 500
    for h in missing:
        # every model role without its model: it voted stand_aside, in time, no crash
        assert set(h["timed_out"]) >= {"market_analyst", "strategy_optimizer", "execution_agent"}
        assert h["action"] in ("stand_aside", "emergency_stop") and h["latency_ms"] < limit_ms
    assert not hist[-1]["timed_out"], "Serve replaced the replica and the models answer again"
    assert set(hist[-1]["votes"]) == set(ROLES)


@pytest.mark.parametrize("fault", ["crash_before_send", "crash_after_accept"])
def test_coordinator_killed_around_an_order_reconciles_and_never_sends_twice(
    cluster, tmp_path, fault
) -> None:
    symbol = "CCCUSDT" if fault == "crash_before_send" else "DDDUSDT"
    cfg = swarm_config(tmp_path, symbol)
    coord, _ = start(cfg)
    run(coord, 70)  # warm and quoting
    ray.get(coord.inject_fault.remote(fault))
    with pytest.raises(RayActorError):
        ray.get(coord.run.remote(50), timeout=120)
    with journal(cfg) as j:
        pending = [o for o in j.orders(symbol=symbol) if o.status is OrderStatus.PENDING]
    assert pending, "the crash left journaled intents whose fate was unknown"
    hist = run(coord, 20)  # restarted by Ray: reconcile, then quote again
    st = ray.get(coord.status.remote())["symbols"][symbol]
    assert st["reconciled"]["checked"] >= len(pending)
    ex = venue(cfg)
    with journal(cfg) as j:
        for p in pending:
            now = j.order(p.client_order_id)
            at_venue = ex.get_order(symbol, p.client_order_id)
            if at_venue is None:  # never reached the venue: recorded so, not resent
                assert now.status is OrderStatus.REJECTED
            else:  # reached the venue before the crash: journal took the venue's word
                assert now.status == at_venue.status
        if fault == "crash_before_send":
            assert all(ex.get_order(symbol, p.client_order_id) is None for p in pending)
        else:
            assert any(ex.get_order(symbol, p.client_order_id) is not None for p in pending)
        ids = [o.client_order_id for o in j.orders(symbol=symbol)]
        assert len(ids) == len(set(ids))
    assert len(hist) == 20 and hist[-1]["cycle"] > pending[0].client_order_id.count("-")
    ex.close()


def test_bad_market_data_stops_quoting_and_sane_data_resumes_it(cluster, tmp_path) -> None:
    cfg = swarm_config(tmp_path, "EEEUSDT")
    coord, _ = start(cfg)
    run(coord, 65)
    for kind in ("nan", "crossed", "stale"):
        ray.get(coord.inject_fault.remote(kind))
        bad = run(coord, 3)
        assert all(h["action"] == "stand_aside" and h["data_problems"] for h in bad), kind
        assert all(not h["bids"] and not h["asks"] for h in bad)
        ray.get(coord.inject_fault.remote("clear"))
    good = run(coord, 30)
    assert not any(h["data_problems"] for h in good)
    assert any(h["bids"] or h["asks"] for h in good), "quoting resumed on sane data"


def test_emergency_stop_trips_a_kill_switch_that_survives_restart_until_cleared(
    cluster, tmp_path
) -> None:
    cfg = swarm_config(tmp_path, "FFFUSDT")
    coord, _ = start(cfg)
    run(coord, 70)
    before = time.time_ns()
    ray.get(coord.stop.remote(True, "test emergency", "alice"))
    with journal(cfg) as j:  # who, why and when (wall time, not the replay's) are recorded
        ks = j.kill_switch("FFFUSDT")
        assert (ks.reason, ks.tripped_by) == ("test emergency", "alice")
        assert before <= ks.tripped_ns <= time.time_ns()
        (stop,) = j.stop_requests("FFFUSDT")
        assert (stop.emergency, stop.reason, stop.requested_by) == (True, "test emergency", "alice")
    ex = venue(cfg)
    assert ex.open_orders("FFFUSDT") == []
    ex.close()
    after = run(coord, 5)
    assert all(h["action"] == "emergency_stop" and h["kill_switch"] for h in after)
    old_pid = ray.get(coord.status.remote())["pid"]
    ray.kill(coord, no_restart=False)  # a restart does not clear it
    wait_restarted(coord, old_pid)
    after_restart = run(coord, 3)
    assert all(h["kill_switch"] for h in after_restart)
    assert ray.get(coord.clear_kill_switch.remote("ops-test")) == ["FFFUSDT"]
    resumed = run(coord, 20)
    assert not resumed[-1]["kill_switch"]
    assert any(h["action"] != "emergency_stop" for h in resumed)


def test_serve_down_falls_back_to_the_safe_action_within_the_timeout(cluster, tmp_path) -> None:
    from ray import serve

    from serve.app import APP_NAME

    cfg = swarm_config(tmp_path, "GGGUSDT")
    coord, _ = start(cfg)
    run(coord, 62)
    serve.delete(APP_NAME)
    try:
        down = run(coord, 5)
        assert all(h["action"] == "stand_aside" for h in down)
        assert all(h["latency_ms"] < 1000 * cfg.agents.model_timeout_s + 500 for h in down)
        with journal(cfg) as j:
            ops = j.opinions(j.cycles("GGGUSDT", limit=1)[0]["id"])
        assert any("model unavailable" in (o["rationale"] or "") for o in ops)
    finally:
        runtime.ensure_models_served(cfg)
    back = run(coord, 10)
    assert any(h["bids"] or h["asks"] for h in back)


def test_strategy_optimizer_retunes_quoting_with_ray_tune_on_demand(cluster, tmp_path) -> None:
    cfg = swarm_config(tmp_path, "HHHUSDT")
    coord, _ = start(cfg)
    run(coord, 65)
    result = ray.get(coord.retune.remote(4), timeout=300)
    tight = result["params"]["tight_bps"]
    assert 1.0 <= tight <= 25.0 and result["metrics"]["fills"] >= 0
    st = ray.get(coord.status.remote())["symbols"]["HHHUSDT"]
    assert st["quoting"]["tight_bps"] == tight
    hist = run(coord, 20)
    tight_cycles = [h for h in hist if h["action"] == "quote_tight" and h["bids"]]
    for h in tight_cycles:  # the new half-spread is what gets quoted (to the tick)
        assert h["bids"][0] == pytest.approx(h["mid"] * (1 - tight * 1e-4), abs=0.02)


def test_backtest_swarm_path_makes_the_coordinators_decisions_cycle_for_cycle(
    cluster, tmp_path
) -> None:
    """``swarm-ray backtest`` runs the swarm in-process; on the same day it must decide what the
    coordinator actor decided with agents on Ray and models on Serve, cycle for cycle."""
    from swarm_ray.core.config import resolve_path
    from swarm_ray.evaluation.swarm_backtest import SwarmDay, run_swarm_day
    from swarm_ray.registry.observation import observation_spec

    cfg = swarm_config(tmp_path, "EQVUSDT")
    coord, _ = start(cfg)
    hist = run(coord, 120)
    ray.get(coord.stop.remote())
    n = next((i for i, h in enumerate(hist) if h["timed_out"]), len(hist))
    assert n >= 100, f"agents timed out at cycle {n}; the comparison needs a calm run"
    paper = cfg.exchange.paper.model_copy(update={"state_path": None})
    exchange = cfg.exchange.model_copy(update={"paper": paper})
    agents = cfg.agents.model_copy(update={"inference": "local"})
    spec = observation_spec(resolve_path(cfg.models_dir))
    rec = run_swarm_day(SwarmDay("EQVUSDT", exchange, hist[0]["time_ns"], n - 1), cfg, agents, spec)
    live_bids = [max(h["bids"]) if h["bids"] else None for h in hist[: n - 1]]
    got_bids = [None if b != b else b for b in rec.bid.tolist()]
    assert list(rec.decisions) == [h["action"] for h in hist[: n - 1]]
    assert list(rec.votes) == [h["votes"] for h in hist[: n - 1]]
    assert got_bids == live_bids  # prices on the tick grid: equal, not close
    assert rec.position.tolist() == pytest.approx([h["position"] for h in hist[:n]])
    assert sum(h["bids"] != [] or h["asks"] != [] for h in hist[:n]) > 0


def test_the_swarm_decides_every_second_on_the_tick_replay(cluster, tmp_path) -> None:
    """configs/paper_tick.yaml's venue: L2 depth and trades with the queue fill model, a cycle
    every second; the analyst alone carries the vote so that quotes rest in the queue."""
    tick = yaml.safe_load((ROOT / "configs" / "paper_tick.yaml").read_text())
    cfg = swarm_config(tmp_path, "BTCUSDT", cycle={**tick["cycle"]})
    paper = tick["exchange"]["paper"] | {"state_path": str(tmp_path / "tick.sqlite")}
    cfg = cfg.model_copy(update={"exchange": cfg.exchange.model_copy(update={
        "paper": type(cfg.exchange.paper).model_validate(paper)})})  # fmt: skip
    coord, _ = start(cfg)
    hist = run(coord, 240)
    ray.get(coord.stop.remote())
    times = [h["time_ns"] for h in hist]
    assert len(hist) == 240 and {b - a for a, b in pairwise(times)} == {10**9}
    assert sum(bool(h["bids"] or h["asks"]) for h in hist) > 100
    assert not any(h["data_problems"] for h in hist[5:])  # the history warmed the features
    fills = venue(cfg).fills_since("BTCUSDT", 0)
    assert fills and all(f.is_maker for f in fills)
    with journal(cfg) as j:
        assert len(j.fills("BTCUSDT")) == len(fills)


def test_python_api_starts_watches_and_stops_a_swarm(cluster, tmp_path) -> None:
    from swarm_ray import Swarm

    cfg = swarm_config(tmp_path, "APIUSDT")
    with Swarm(cfg) as swarm:
        assert "not started" in repr(swarm)
        swarm.start()  # until stopped
        assert swarm.running and "running" in repr(swarm)
        deadline = time.monotonic() + 60
        st: dict[str, Any] = {}
        while time.monotonic() < deadline:  # the actor opens its venue and journal first
            st = swarm.status()["coordinator:APIUSDT"]["symbols"].get("APIUSDT") or {}
            if st.get("cycle", 0) >= 3:
                break
            time.sleep(0.2)
        assert st["cycle"] >= 3 and st["last"]["action"]
        swarm.stop(reason="api test", operator="carol")
        assert not swarm.running
        assert swarm.finished["coordinator:APIUSDT"]["cycles"] >= 3
    with journal(cfg) as j:
        (stop,) = j.stop_requests("APIUSDT")
        assert (stop.emergency, stop.reason, stop.requested_by) == (False, "api test", "carol")


def test_python_api_checks_the_config_before_connecting() -> None:
    from swarm_ray import Swarm
    from swarm_ray.core.config import ConfigError

    with pytest.raises(ConfigError, match=r"symbols: the paper exchange has no data"):
        Swarm({"symbols": ["ZZZUSDT"]})
    with pytest.raises(ConfigError, match="mainnet"):
        Swarm({"symbols": ["BTCUSDT"], "exchange": {"kind": "binance-spot", "testnet": False,
                                                    "allow_mainnet": True}})  # fmt: skip
