"""The control panel on a real local Ray cluster: the panel's Serve app beside a paper swarm
trading a real day, read over HTTP, driven by the operator's controls, and opened in a real
headless Chromium (skipped, with the reason, where Chromium is not installed).

The browser test saves a screenshot of each view into ``$PANEL_SCREENSHOTS`` (default
``test-artifacts/panel``); the docs' pictures are made the same way.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml

ray = pytest.importorskip("ray")

from swarm_ray.commands._swarm import free_port, start_panel  # noqa: E402
from swarm_ray.core.config import parse_config  # noqa: E402
from swarm_ray.panel.auth import TOKEN_ENV  # noqa: E402
from swarm_ray.panel.deploy import APP_NAME  # noqa: E402
from swarm_ray.runtime import swarm as runtime  # noqa: E402
from swarm_ray.runtime.actors import NAMESPACE  # noqa: E402
from swarm_ray.runtime.config import SwarmConfig  # noqa: E402
from tests.conftest import ROOT, kline_day  # noqa: E402

TOKEN = "integration-panel-token-0123456789"
SYMBOL = "BTCUSDT"
SHOTS = Path(os.environ.get("PANEL_SCREENSHOTS", ROOT / "test-artifacts" / "panel"))


def swarm_config(tmp: Path) -> SwarmConfig:
    data = copy.deepcopy(yaml.safe_load((ROOT / "configs" / "paper.yaml").read_text()))
    data.update(run_id="panel", symbols=[SYMBOL], journal_dir=str(tmp / "journal"))
    paper = data["exchange"]["paper"]
    paper["state_path"] = str(tmp / "account.sqlite")
    paper["symbols"] = {SYMBOL: {"klines": [kline_day("19"), kline_day("20")]}}
    # every role votes quote_tight (no model), so the swarm quotes every cycle; a cycle of
    # simulated minute every 0.4 s of wall time, so the page has news at each refresh
    data["agents"] = {**data["agents"], "inference": "scripted", "scripted_action": "quote_tight"}
    data["cycle"] = {**data["cycle"], "replay_speed": 150}
    return parse_config(SwarmConfig, data)


@pytest.fixture(scope="module")
def swarm(tmp_path_factory):
    """A running paper swarm and its panel: ``(cfg, coordinator, panel URL)``."""
    os.environ[TOKEN_ENV] = TOKEN
    ray.init(num_cpus=2, include_dashboard=False, namespace=NAMESPACE, log_to_driver=False)
    cfg = swarm_config(tmp_path_factory.mktemp("panel"))
    handles = runtime.start_swarm(cfg)
    coord = handles[runtime.coordinator_name([SYMBOL])]
    ref = coord.run.remote(None)
    lines = start_panel(cfg, free_port())
    url = lines[0].removeprefix("panel: ")
    assert url.startswith("http://127.0.0.1:") and url.endswith("/panel/"), lines
    assert lines[1] == f"panel operator token: the one in {TOKEN_ENV}"
    yield cfg, coord, url
    coord.stop.remote(False, "test over", "pytest")
    ray.wait([ref], timeout=30)
    from ray import serve

    serve.shutdown()
    ray.shutdown()
    del os.environ[TOKEN_ENV]


def call(url: str, path: str, token: str | None = TOKEN, body: dict | None = None):
    """(status, JSON) of a GET, or of a POST with a JSON ``body``."""
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url + path, data=data, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=20) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"null")


def wait_for(predicate, timeout_s: float = 30.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


def symbol_status(coord: Any) -> dict[str, Any]:
    return ray.get(coord.status.remote())["symbols"][SYMBOL]


def btc(url: str) -> dict[str, Any]:
    status, body = call(url, "api/overview")
    assert status == 200, body
    return next(r for r in body["symbols"] if r["symbol"] == SYMBOL)


# ------------------------------------------------------------------ HTTP


def test_the_panel_is_a_serve_app_on_localhost_reading_the_live_swarm(swarm):
    _, _, url = swarm
    from ray import serve

    assert serve.status().applications[APP_NAME].status == "RUNNING"
    status, info = call(url, "api/info", token=None)
    assert status == 200 and info["mode"] == "live" and info["threshold"] == 0.65
    assert call(url, "api/overview", token=None)[0] == 401
    assert call(url, "api/overview", token="wrong-token-000000000000")[0] == 401
    first = wait_for(lambda: (r := btc(url)).get("cycle") and r, what="a first cycle")
    assert (
        first["live"]["running"] is True and first["live"]["coordinator"] == "coordinator:BTCUSDT"
    )
    later = wait_for(lambda: (r := btc(url))["cycle"] > first["cycle"] + 2 and r, what="news")
    assert later["decision"]["carried"] and later["decision"]["action"] == "quote_tight"
    assert {a["model_version"] for a in later["agents"]} == {"scripted"}
    status, series = call(url, f"api/symbols/{SYMBOL}/series")
    assert status == 200 and len(series["cycles"]["time_ms"]) >= 3
    orders = call(url, "api/orders?limit=5")[1]
    assert orders["total"] > 0
    why = call(url, f"api/orders/{orders['orders'][0]['client_order_id']}/explain")[1]
    assert len(why["opinions"]) == 4
    # a page URL without its trailing slash still finds its relative links
    with urllib.request.urlopen(url.rstrip("/"), timeout=20) as resp:
        assert resp.geturl().endswith("/panel/") and b"panel.js" in resp.read()


# ------------------------------------------------------------------ browser


def chromium():
    """A headless Chromium through Selenium, or skip naming what is missing."""
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed")
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    driver_path = shutil.which("chromedriver")
    if not binary or not driver_path:
        pytest.skip("no Chromium here (apt-get install chromium chromium-driver)")
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = binary
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--window-size=1400,1000",
                 "--disable-dev-shm-usage"):  # fmt: skip
        opts.add_argument(flag)
    return webdriver.Chrome(service=Service(driver_path), options=opts)


@pytest.mark.browser
def test_an_operator_watches_explains_trips_and_clears_in_a_real_browser(swarm):
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    _, coord, url = swarm
    SHOTS.mkdir(parents=True, exist_ok=True)
    browser = chromium()
    # the overview re-renders its rows as cycles arrive: an element found just before a
    # refresh goes stale, so look it up again rather than fail
    wait = WebDriverWait(browser, 30, ignored_exceptions=(StaleElementReferenceException,))
    find = browser.find_element

    def shot(name: str) -> None:
        time.sleep(0.3)  # let the charts draw
        browser.save_screenshot(str(SHOTS / f"panel-{name}.png"))

    def sign_in(token: str) -> None:
        find(By.ID, "operator").clear()
        find(By.ID, "operator").send_keys("ann")
        find(By.ID, "token").clear()
        find(By.ID, "token").send_keys(token)
        find(By.ID, "login-btn").click()

    def cycle_cell() -> int:
        return int(
            find(By.CSS_SELECTOR, f"tr[data-symbol={SYMBOL}] td.cycle").text.replace(",", "")
        )

    def use_control(kind: str, reason: str) -> str:
        find(By.CSS_SELECTOR, f"tr[data-symbol={SYMBOL}] button[data-ctl={kind}]").click()
        wait.until(ec.visibility_of_element_located((By.ID, "ctl-reason"))).send_keys(reason)
        find(By.ID, "ctl-confirm").click()
        return wait.until(lambda b: kind in (m := b.find_element(By.ID, "message").text) and m)

    try:
        browser.get(url)
        wait.until(ec.presence_of_element_located((By.ID, "signin-needed")))
        # a wrong token is refused and shows nothing
        sign_in("not-the-operator-token-000")
        wait.until(ec.text_to_be_present_in_element((By.ID, "message"), "sign-in refused"))
        assert browser.find_elements(By.ID, "overview") == []
        sign_in(TOKEN)
        wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, f"tr[data-symbol={SYMBOL}]")))
        # the overview updates by itself at the swarm's pace
        seen = wait.until(lambda b: cycle_cell() > 0 and cycle_cell())
        wait.until(lambda b: cycle_cell() > seen)
        shot("overview")
        # a symbol's charts: four uPlot canvases and the votes table
        browser.get(url + f"#/symbol/{SYMBOL}")
        wait.until(lambda b: len(b.find_elements(By.CSS_SELECTOR, ".uplot canvas")) >= 4)
        wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "#votes tbody tr")))
        shot("symbol")
        # the orders table; a click opens the order's explanation
        browser.get(url + "#/orders")
        row = wait.until(ec.element_to_be_clickable((By.CSS_SELECTOR, "#orders tbody tr")))
        order_id = row.get_attribute("data-order")
        shot("orders")
        row.click()
        wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "#opinions tbody tr")))
        assert order_id in find(By.ID, "explain").text
        assert len(browser.find_elements(By.CSS_SELECTOR, "#opinions tbody tr")) == 4
        shot("explain")
        # the kill switch, with the token: the swarm pulls its quotes and keeps watching
        browser.get(url + "#/")
        wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, f"tr[data-symbol={SYMBOL}]")))
        assert "tripped" in use_control("kill-switch", "browser drill")
        wait.until(ec.text_to_be_present_in_element(
            (By.CSS_SELECTOR, f"tr[data-symbol={SYMBOL}] td.ks"), "TRIPPED"))  # fmt: skip
        wait_for(lambda: symbol_status(coord)["kill_switch"], what="the coordinator to see it")
        stood = symbol_status(coord)["cycle"]
        wait_for(
            lambda: (s := symbol_status(coord))["cycle"] > stood and s["last"]["risk_reasons"],
            what="a cycle blocked by the switch",
        )
        shot("kill-switch")
        assert "cleared" in use_control("clear", "drill over")
        wait.until(ec.text_to_be_present_in_element(
            (By.CSS_SELECTOR, f"tr[data-symbol={SYMBOL}] td.ks"), "clear"))  # fmt: skip
        browser.get(url + "#/audit")
        wait.until(ec.text_to_be_present_in_element((By.ID, "audit"), "drill over"))
        shot("audit")
        # without the token (signed out, or a forged request from the page) nothing changes
        find(By.ID, "logout-btn").click()
        wait.until(ec.presence_of_element_located((By.ID, "signin-needed")))
        status = browser.execute_async_script(
            "const done = arguments[0];"
            "fetch('api/controls/kill-switch', {method: 'POST', headers: {'Content-Type':"
            " 'application/json'}, body: JSON.stringify({symbol: 'BTCUSDT', operator: 'eve',"
            " reason: 'forged'})}).then(r => done(r.status));"
        )
        assert status == 401
        assert btc(url)["kill_switch"] is None
    except Exception:
        shot("failure")
        raise
    finally:
        browser.quit()
    events = call(url, "api/audit")[1]["events"]
    assert [(e["kind"], e["actor"]) for e in events[:2]] == [
        ("kill_switch_clear", "ann"), ("kill_switch_trip", "ann"),
    ]  # fmt: skip
    assert all(e["actor"] != "eve" for e in events)


# ------------------------------------------------------------------ stopping (last: ends the run)


def test_stop_and_emergency_stop_reach_the_coordinator(swarm):
    _, coord, url = swarm
    status, out = call(url, "api/controls/stop", body={"symbol": SYMBOL, "operator": "ann",
                                                     "reason": "maintenance"})  # fmt: skip
    assert status == 200 and out == {"stopped": [SYMBOL]}
    wait_for(lambda: not ray.get(coord.status.remote())["running"], what="the run to stop")
    assert btc(url)["live"]["running"] is False
    ref = coord.run.remote(None)  # an operator starts it again
    wait_for(lambda: ray.get(coord.status.remote())["running"], what="the run to restart")
    incident = {"symbol": None, "operator": "ann", "reason": "venue incident"}
    status, out = call(url, "api/controls/emergency-stop", body=incident)
    assert status == 200 and out["stopped"] == [SYMBOL]
    ray.get(ref, timeout=30)
    row = btc(url)
    assert row["kill_switch"]["reason"] == "venue incident (panel)"
    assert row["live"]["running"] is False
    kinds = [e["kind"] for e in call(url, "api/audit")[1]["events"]]
    assert "emergency_stop" in kinds and "stop" in kinds
    assert call(url, "api/controls/clear", body={"symbol": None, "operator": "ann",
                                                 "reason": "after incident"})[0] == 200  # fmt: skip
    assert btc(url)["kill_switch"] is None
