"""The swarm_models Serve application on a real local Ray cluster (2 CPUs), deployed from
configs/serve.yaml as ``swarm-ray serve`` does: the HTTP contract, bad input, handles and
batching, a version roll-out under load, and overload."""

from __future__ import annotations

import asyncio
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

ray = pytest.importorskip("ray")

import requests  # noqa: E402
from ray import serve  # noqa: E402
from ray.serve.exceptions import BackPressureError  # noqa: E402

from envs.actions import ACTION_NAMES, N_ENV_ACTIONS  # noqa: E402
from serve.app import APP_NAME, MODELS_NAME  # noqa: E402
from serve.client import model_handle, models_handle  # noqa: E402
from serve.deploy import deployed_config, rollout  # noqa: E402
from serve.models import InvalidObservation  # noqa: E402
from swarm_ray.commands._swarm import free_port  # noqa: E402
from swarm_ray.registry import load_analysis_model, load_policy  # noqa: E402
from swarm_ray.registry.policies import save_policy  # noqa: E402
from tests.conftest import ROOT, model_app, under_load  # noqa: E402

POLICIES = ["execution_agent", "risk_manager", "strategy_optimizer"]
DRILL_APP = "overload_drill"
V2_ACTION = 0  # v2 of risk_manager is v1 with a large bias on this action's advantage


def make_v2(registry: Path, name: str = "risk_manager") -> None:
    """``name``/v2: v1's Q-network with +50 on one advantage bias, so its answers differ."""
    import torch

    policy = load_policy(registry / name / "v1")
    with torch.no_grad():
        dict(policy.network.named_parameters())["af.net.mlp.2.bias"][V2_ACTION] += 50.0
    save_policy(policy, registry / name / "v2")


@pytest.fixture(scope="module")
def registry(tmp_path_factory) -> Path:
    """v1 of every shipped model (whatever else the shared registry holds), plus our v2."""
    root = tmp_path_factory.mktemp("serve") / "models"
    for model in sorted((ROOT / "models").iterdir()):
        shutil.copytree(model / "v1", root / model.name / "v1")
    make_v2(root)
    return root


@pytest.fixture(scope="module")
def app(registry: Path):
    """configs/serve.yaml on a local 2-CPU cluster, risk_manager pinned to v1."""
    with model_app(registry, versions={"risk_manager": "v1"}) as (url, config):
        yield SimpleNamespace(url=url, config=config, registry=registry)


def handle(name: str, app_name: str = APP_NAME):
    """Model ``name`` through Serve's default (by-reference) handle."""
    return model_handle(name, app_name, by_value=False)


def observations(n: int, dim: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, dim)).astype(np.float32)


# --- the CLI (first: it starts its own local cluster, before the module's) -------------


def test_cli_serve_prints_the_url_answers_rolls_out_and_stops_on_ctrl_c(tmp_path) -> None:
    port = free_port()
    registry = tmp_path / "models"
    shutil.copytree(ROOT / "models" / "market_analyst", registry / "market_analyst")
    cmd = [sys.executable, "-m", "swarm_ray", "serve", "--models", "market_analyst",
           "--models-dir", str(registry), "--port", str(port), "--num-cpus", "1"]  # fmt: skip
    env = {**os.environ, "RAY_ADDRESS": ""}
    proc = subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True)  # fmt: skip
    try:
        lines = []
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            lines.append(proc.stdout.readline())
            if "Ctrl-C stops Serve" in lines[-1]:
                break
        out = "".join(lines)
        assert f"http://127.0.0.1:{port}/models" in out, out
        assert "market_analyst" in out and "v1" in out
        models = requests.get(f"http://127.0.0.1:{port}/models", timeout=10).json()["models"]
        assert [m["name"] for m in models] == ["market_analyst"]
        address = out.split("Ray cluster ")[1].split(")")[0]
        roll = subprocess.run(
            [sys.executable, "-m", "swarm_ray", "serve", "--rollout", "market_analyst=latest",
             "--address", address], env=env, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert roll.returncode == 0, roll.stderr[-2000:]
        assert "market_analyst: now serving v1" in roll.stdout
    finally:
        proc.send_signal(signal.SIGINT)
        code = proc.wait(timeout=60)
    assert code == 130
    with pytest.raises(requests.ConnectionError):
        requests.get(f"http://127.0.0.1:{port}/models", timeout=5)


# --- HTTP contract --------------------------------------------------------------------


def test_get_models_lists_every_served_model_with_its_version(app) -> None:
    r = requests.get(f"{app.url}/models", timeout=10)
    assert r.status_code == 200
    models = {m["name"]: m for m in r.json()["models"]}
    assert set(models) == {*POLICIES, "market_analyst"}
    assert models["risk_manager"]["version"] == "v1"
    assert models["risk_manager"]["available_versions"] == ["v1", "v2"]
    assert models["market_analyst"]["version"] == "v1"


def test_get_model_returns_dimension_action_names_and_version(app) -> None:
    meta = requests.get(f"{app.url}/models/strategy_optimizer", timeout=10).json()
    assert meta["observation_dim"] == 15 and len(meta["observation_names"]) == 15
    assert meta["action_names"] == list(ACTION_NAMES[:N_ENV_ACTIONS])
    assert meta["version"] == "v1" and meta["output"] == "q_values"
    analyst = requests.get(f"{app.url}/models/market_analyst", timeout=10).json()
    assert analyst["observation_dim"] == 20 and analyst["output"] == "probabilities"
    assert analyst["action_names"] == ["strong_sell", "sell", "hold", "buy", "strong_buy"]


def test_unknown_model_is_404_naming_the_served_ones(app) -> None:
    for r in (
        requests.get(f"{app.url}/models/nope", timeout=10),
        requests.post(f"{app.url}/models/nope", json={"observation": [0.0] * 15}, timeout=10),
    ):
        assert r.status_code == 404
        assert "nope" in r.json()["detail"] and "risk_manager" in r.json()["detail"]


@pytest.mark.parametrize("name", POLICIES)
def test_post_answers_as_the_policy_loaded_directly(app, name: str) -> None:
    policy = load_policy(app.registry / name / "v1")
    x = observations(5, 15, seed=hash(name) % 1000)
    q = policy.q_values(x)
    actions, confidence = policy.act_with_confidence(x)
    for i, row in enumerate(x):
        r = requests.post(
            f"{app.url}/models/{name}", json={"observation": row.tolist()}, timeout=10
        )
        assert r.status_code == 200, r.text
        body = r.json()
        assert set(body) == {"action", "action_name", "q_values", "confidence",
                             "raw_confidence", "calibrated", "model_version"}  # fmt: skip
        assert body["action"] == actions[i]
        assert body["action_name"] == ACTION_NAMES[actions[i]]
        np.testing.assert_allclose(body["q_values"], q[i], rtol=1e-5, atol=1e-6)
        # v1 has no calibration map: its confidence is the raw q-weight
        assert body["calibrated"] is False and body["raw_confidence"] == body["confidence"]
        assert body["confidence"] == pytest.approx(confidence[i], rel=1e-5)
        assert body["model_version"] == "v1"


def test_post_to_the_analyst_returns_class_probabilities(app) -> None:
    from swarm_ray.registry.calibration import Calibration

    model = load_analysis_model(app.registry)
    cal = Calibration.from_card(model.card)
    assert cal is not None  # the shipped analyst is calibrated
    x = observations(3, 20, seed=7)
    p = model.predict_proba(x)
    calibrated = cal.confidence(p, p.argmax(axis=1))
    for i, row in enumerate(x):
        body = requests.post(
            f"{app.url}/models/market_analyst", json={"observation": row.tolist()}, timeout=10
        ).json()
        assert body["action"] == int(p[i].argmax())
        assert body["action_name"] == model.classes[body["action"]]
        np.testing.assert_allclose(body["probabilities"], p[i], rtol=1e-5, atol=1e-7)
        assert body["raw_confidence"] == pytest.approx(float(p[i].max()), rel=1e-5)
        assert body["calibrated"] is True
        assert body["confidence"] == pytest.approx(float(calibrated[i]), rel=1e-5)
        assert 0.0 <= body["confidence"] <= 1.0


GOOD = [0.1] * 15
BAD_BODIES = [
    ("short", json.dumps({"observation": GOOD[:14]}), "14 values"),
    ("long", json.dumps({"observation": [*GOOD, 1.0]}), "16 values"),
    ("nan", json.dumps({"observation": [math.nan, *GOOD[1:]]}), "observation[0] is nan"),
    ("infinity", json.dumps({"observation": [*GOOD[:3], math.inf, *GOOD[4:]]}), "[3] is inf"),
    ("string", json.dumps({"observation": [*GOOD[:2], "0.1", *GOOD[3:]]}), "[2] is str"),
    ("null", json.dumps({"observation": [None, *GOOD[1:]]}), "[0] is NoneType"),
    ("bool", json.dumps({"observation": [True, *GOOD[1:]]}), "[0] is bool"),
    ("nested", json.dumps({"observation": [GOOD]}), "[0] is list"),
    ("not-a-list", json.dumps({"observation": "0.1,0.2"}), "must be a list"),
    ("missing-key", json.dumps({"obs": GOOD}), 'no "observation" key'),
    ("extra-key", json.dumps({"observation": GOOD, "x": 1}), "unknown keys ['x']"),
    ("array-body", json.dumps([GOOD]), "must be a JSON object"),
    ("not-json", "observation=0.1", "not valid JSON"),
    ("empty", "", "not valid JSON"),
]


@pytest.mark.parametrize(
    ("body", "words"), [b[1:] for b in BAD_BODIES], ids=[b[0] for b in BAD_BODIES]
)
def test_bad_input_gets_a_4xx_naming_the_problem_never_an_answer(app, body, words) -> None:
    r = requests.post(
        f"{app.url}/models/risk_manager",
        data=body,
        headers={"content-type": "application/json"},
        timeout=10,
    )
    assert 400 <= r.status_code < 500, (r.status_code, r.text)
    detail = r.json()["detail"]
    assert words.lower() in detail.lower(), detail
    assert "traceback" not in detail.lower() and "ray::" not in detail and len(detail) < 300
    assert "action" not in r.json()


# --- handles: the swarm's way in ------------------------------------------------------


def test_handle_predict_and_predict_many_answer_like_http(app) -> None:
    h = handle("risk_manager")
    x = observations(6, 15, seed=3)
    one = h.predict(x[0]).result()  # a numpy row
    same = h.predict(x[0].tolist()).result()  # a list
    assert one == same and one["model_version"] == "v1"
    many = h.predict_many(x).result()
    assert len(many) == 6 and many[0]["action"] == one["action"]
    np.testing.assert_allclose(many[0]["q_values"], one["q_values"], rtol=1e-6)
    assert h.predict_many(x.tolist()).result() == many
    analyst = handle("market_analyst").predict_many(observations(2, 20)).result()
    assert {"probabilities", "confidence"} <= set(analyst[0])


def test_one_request_answers_every_model_as_each_model_alone(app) -> None:
    """The swarm's request: every role's rows in, every model's answers out, in one call."""
    x15, x20 = observations(3, 15, seed=4), observations(3, 20, seed=4)
    requests_ = {n: x15 for n in POLICIES} | {"market_analyst": x20}
    both = asyncio.run(_ask(models_handle(), requests_))
    assert set(both) == set(requests_)
    for name, rows in requests_.items():
        assert both[name] == handle(name).predict_many(rows).result()
    with pytest.raises(Exception, match="no model 'nope'"):
        asyncio.run(_ask(models_handle(), {"nope": x15}))


async def _ask(h, requests_):
    return await h.predict_models.remote(requests_)


@pytest.mark.parametrize("by_value", [False, True], ids=["default-handle", "model_handle"])
def test_handle_raises_invalid_observation_for_bad_input(app, by_value: bool) -> None:
    h = model_handle("execution_agent") if by_value else handle("execution_agent")
    with pytest.raises(InvalidObservation, match="14 values"):
        h.predict([0.0] * 14).result()
    with pytest.raises(InvalidObservation, match=r"observations\[1\]\[2\] is nan"):
        h.predict_many([[0.0] * 15, [0.0, 0.0, math.nan] + [0.0] * 12]).result()
    # the replica keeps answering
    assert h.predict([0.0] * 15).result()["model_version"] == "v1"


def test_model_handle_answers_as_the_default_handle(app) -> None:
    x = observations(4, 15, seed=9)
    fast, default = model_handle("risk_manager"), handle("risk_manager")
    assert fast.predict(x[0]).result() == default.predict(x[0]).result()
    assert fast.predict_many(x).result() == default.predict_many(x).result()


def test_concurrent_callers_share_forward_passes(app) -> None:
    h = handle("strategy_optimizer")
    before = h.metadata().result()
    x = observations(200, 15, seed=5)

    async def burst() -> list[dict]:
        return await asyncio.gather(*(h.predict(row) for row in x))

    answers = asyncio.run(burst())
    after = h.metadata().result()
    rows = after["rows_answered"] - before["rows_answered"]
    passes = after["forward_passes"] - before["forward_passes"]
    assert rows == 200 and len(answers) == 200
    assert passes < 100, f"{passes} forward passes for 200 concurrent requests: no batching"
    direct = h.predict_many(x).result()
    assert [a["action"] for a in answers] == [a["action"] for a in direct]


# --- a version roll-out under load ----------------------------------------------------


def test_rollout_to_v2_under_load_has_zero_failures_and_no_restart(app) -> None:
    h = handle("risk_manager")
    before = h.metadata().result()
    assert before["version"] == "v1"
    x = observations(64, 15, seed=11).tolist()
    stop = threading.Event()

    def http_caller() -> tuple[int, int]:
        ok = bad = 0
        with requests.Session() as s:
            while not stop.is_set():
                r = s.post(f"{app.url}/models/risk_manager", json={"observation": x[0]}, timeout=10)
                ok, bad = (ok + 1, bad) if r.status_code == 200 else (ok, bad + 1)
        return ok, bad

    with ThreadPoolExecutor(2) as pool:
        http = [pool.submit(http_caller) for _ in range(2)]
        try:
            served, results, errors = under_load(
                h, x, lambda: rollout({"risk_manager": "v2"}), callers=16, settle_s=0.5
            )
        finally:
            stop.set()
        http_counts = [f.result() for f in http]

    assert served == {"risk_manager": "v2"}
    assert errors == [], errors[:3]
    assert all(bad == 0 for _, bad in http_counts), http_counts
    assert sum(ok for ok, _ in http_counts) > 0
    versions = [r["model_version"] for r in results]
    assert versions[0] == "v1" and versions[-1] == "v2" and set(versions) == {"v1", "v2"}
    # v2's answers, not v1's relabelled
    after = [h.predict(row).result() for row in x[:8]]
    assert all(a["model_version"] == "v2" and a["action"] == V2_ACTION for a in after)
    meta = h.metadata().result()
    assert meta["replica"] == before["replica"], "the replica was restarted"
    assert meta["swaps"] == before["swaps"] + 1
    # the other models were not touched
    assert handle("execution_agent").metadata().result()["swaps"] == 0
    # and back, so the module's state is as the fixture made it
    assert rollout({"risk_manager": "v1"}) == {"risk_manager": "v1"}


def test_rollout_to_a_missing_version_is_refused_and_the_old_one_keeps_serving(app) -> None:
    h = handle("execution_agent")
    with pytest.raises(ValueError, match=r"no version 'v9'; available: \['v1'\]"):
        rollout({"execution_agent": "v9"})
    assert h.predict([0.0] * 15).result()["model_version"] == "v1"
    assert h.metadata().result()["swaps"] == 0


# --- overload ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def drill(app):
    """A second application: one risk_manager replica, one request at a time, 2 queued,
    and 300 ms added to each forward pass (``drill_latency_ms``)."""
    current = deployed_config().model_dump(exclude_unset=True)
    ours = next(a for a in current["applications"] if a["name"] == APP_NAME)
    drill_app = {
        "name": DRILL_APP,
        "route_prefix": "/drill",
        "import_path": "serve.app:build_app",
        "args": {
            "models_dir": str(app.registry),
            "models": ["risk_manager"],
            "max_batch_size": 1,
            "max_ongoing_requests": 1,
            "max_queued_requests": 2,
        },
        "deployments": [
            {
                "name": MODELS_NAME,
                "user_config": {"risk_manager": {"version": "v1", "drill_latency_ms": 300}},
            }
        ],
    }
    from ray.serve.schema import ServeDeploySchema

    from serve.deploy import wait_running

    with_drill = ServeDeploySchema.model_validate({"applications": [ours, drill_app]})
    from ray.serve.context import _get_global_client

    _get_global_client().deploy_apps(with_drill, _blocking=False)
    wait_running(DRILL_APP, timeout_s=120)
    yield DRILL_APP
    serve.delete(DRILL_APP)


@pytest.mark.parametrize("by_value", [False, True], ids=["default-handle", "model_handle"])
def test_overload_is_rejected_fast_with_backpressure_error(drill, by_value: bool) -> None:
    h = model_handle("risk_manager", drill) if by_value else handle("risk_manager", drill)

    async def flood(n: int) -> list[tuple[float, object]]:
        async def one() -> tuple[float, object]:
            t0 = time.perf_counter()
            try:
                out: object = await h.predict([0.0] * 15)
            except BackPressureError as exc:
                out = exc
            return time.perf_counter() - t0, out

        return await asyncio.gather(*(one() for _ in range(n)))

    results = asyncio.run(flood(20))
    rejected = [t for t, out in results if isinstance(out, BackPressureError)]
    answered = [t for t, out in results if isinstance(out, dict)]
    assert len(rejected) + len(answered) == 20
    assert len(rejected) >= 15, f"only {len(rejected)} of 20 rejected"
    assert max(rejected) < 0.25, f"a rejection took {max(rejected):.3f} s"
    assert min(answered) >= 0.29  # the accepted ones were served, slowly


def test_overload_over_http_is_a_fast_503(app, drill) -> None:
    url = f"{app.url}/drill/models/risk_manager"

    def post() -> tuple[float, requests.Response]:
        t0 = time.perf_counter()
        r = requests.post(url, json={"observation": [0.0] * 15}, timeout=30)
        return time.perf_counter() - t0, r

    with ThreadPoolExecutor(20) as pool:
        responses = list(pool.map(lambda _: post(), range(20)))
    codes = [r.status_code for _, r in responses]
    assert set(codes) <= {200, 503}, codes
    rejected_http = [(t, r) for t, r in responses if r.status_code == 503]
    assert len(rejected_http) >= 10, codes
    assert max(t for t, _ in rejected_http) < 1.0
    assert all("overload" in r.text.lower() or "backpressure" in r.text.lower()
               for _, r in rejected_http)  # fmt: skip


# --- the benchmark script runs (figures are not asserted) -----------------------------


def test_bench_serve_quick_run_reports_its_figures(app) -> None:
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        import bench_serve
    finally:
        sys.path.remove(str(ROOT / "scripts"))
    cfg = bench_serve.Config(
        models_dir=str(app.registry), requests=50, warmup=10, callers=16, batched_s=0.5
    )
    res = bench_serve.run(cfg)
    for key in ("handle_p50_ms", "handle_p99_ms", "actor_p50_ms", "batched_rps"):
        assert res[key] > 0, key
    assert res["batched_rejected"] == 0
    assert APP_NAME in serve.status().applications  # the bench removed only its own app
