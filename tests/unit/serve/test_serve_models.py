"""Serving logic without Ray: observation validation, answers, versions, health, configs."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import yaml

from serve.app import APP_NAME, INGRESS_NAME, MODELS_NAME, ModelAppArgs, served_model_names
from serve.models import (
    ANALYSIS_OUTPUT,
    POLICY_OUTPUT,
    InvalidObservation,
    ModelServer,
    ModelUnavailable,
    ServedModel,
    build_answers,
    load_served_model,
    validate_batch,
    validate_observation,
)
from swarm_ray.core.config import ConfigError
from tests.conftest import ROOT

MODELS = ROOT / "models"
REGISTRY_MODELS = ["execution_agent", "market_analyst", "risk_manager", "strategy_optimizer"]


def fake_model(
    version: str = "v1", output: str = POLICY_OUTPUT, forward=None, name: str = "fake"
) -> ServedModel:
    """A 3-in, 4-out model; its default forward pass is a fixed linear map."""
    w = np.arange(12, dtype=np.float32).reshape(3, 4) / 10

    def linear(x: np.ndarray) -> np.ndarray:
        y = x @ w
        return _softmax(y) if output == ANALYSIS_OUTPUT else y

    return ServedModel(
        name=name,
        kind="test",
        version=version,
        observation_names=("a", "b", "c"),
        action_names=("w", "x", "y", "z"),
        output=output,
        forward=forward or linear,
    )


def _softmax(y: np.ndarray) -> np.ndarray:
    e = np.exp(y - y.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def fake_loader(forward=None):
    """A registry of ``fake`` with versions v1 and v2; records what was loaded."""
    loaded: list[str | None] = []

    def load(models_dir, name, version):
        if version not in (None, "v1", "v2"):
            raise FileNotFoundError(f"model {name!r} has no version {version!r}")
        loaded.append(version)
        return fake_model(version or "v2", forward=forward, name=name)

    load.loaded = loaded
    return load


# --- validation -------------------------------------------------------------------------


def test_validate_observation_accepts_lists_tuples_ints_and_arrays() -> None:
    for obs in ([1, 2.5, -3], (1.0, 2.5, -3.0), np.array([1, 2.5, -3]), [np.float32(1), 2.5, -3]):
        x = validate_observation(obs, 3)
        assert x.dtype == np.float32 and x.shape == (3,)
        np.testing.assert_allclose(x, [1, 2.5, -3])


@pytest.mark.parametrize(
    ("obs", "words"),
    [
        ([1.0, 2.0], ["2 values", "expects 3"]),
        ([1.0, 2.0, 3.0, 4.0], ["4 values", "expects 3"]),
        ([1.0, math.nan, 3.0], ["observation[1]", "nan", "finite"]),
        ([1.0, 2.0, math.inf], ["observation[2]", "inf"]),
        (np.array([1.0, -np.inf, 0.0]), ["observation[1]", "inf"]),
        ([1.0, "2.0", 3.0], ["observation[1]", "str", "numbers"]),
        ([1.0, True, 3.0], ["observation[1]", "bool"]),
        ([None, 1.0, 2.0], ["observation[0]", "NoneType"]),
        ([[1.0, 2.0, 3.0]], ["observation[0]", "list"]),
        ("1,2,3", ["must be a list", "str"]),
        ({"a": 1}, ["must be a list", "dict"]),
        (None, ["must be a list", "NoneType"]),
        (np.zeros((1, 3)), ["flat list", "(1, 3)"]),
        (np.array(["1", "2", "3"]), ["dtype"]),
        ([1.0, 1e39, 0.0], ["float32 range"]),
    ],
)
def test_validate_observation_rejects_bad_input_naming_the_problem(obs, words) -> None:
    with pytest.raises(InvalidObservation) as err:
        validate_observation(obs, 3)
    assert isinstance(err.value, ValueError)
    for w in words:
        assert w.lower() in str(err.value).lower()


def test_validate_batch_rows_and_arrays_and_names_the_bad_row() -> None:
    x = validate_batch([[1, 2, 3], [4, 5, 6]], 3)
    assert x.shape == (2, 3) and x.dtype == np.float32
    assert validate_batch(np.ones((5, 3)), 3).shape == (5, 3)
    assert validate_batch([], 3).shape == (0, 3)
    with pytest.raises(InvalidObservation, match=r"observations\[1\] has 2 values"):
        validate_batch([[1, 2, 3], [4, 5]], 3)
    with pytest.raises(InvalidObservation, match=r"observations\[2\]\[0\] is nan"):
        validate_batch(np.array([[1, 2, 3], [4, 5, 6], [np.nan, 0, 0]]), 3)
    with pytest.raises(InvalidObservation, match=r"\(n, 3\).*\(4, 2\)"):
        validate_batch(np.ones((4, 2)), 3)
    with pytest.raises(InvalidObservation, match="must be a list of rows"):
        validate_batch("x", 3)


# --- answers ----------------------------------------------------------------------------


def test_policy_answers_are_greedy_with_softmax_confidence() -> None:
    q = np.array([[0.0, 2.0, 1.0, -1.0], [3.0, 0.0, 0.0, 0.0]])
    answers = build_answers(q, fake_model(version="v7"))
    assert [a["action"] for a in answers] == [1, 0]
    assert answers[0]["action_name"] == "x"
    assert set(answers[0]) == {"action", "action_name", "q_values", "confidence",
                               "raw_confidence", "calibrated", "model_version"}  # fmt: skip
    assert answers[0]["q_values"] == [0.0, 2.0, 1.0, -1.0]
    expected = math.exp(2) / sum(math.exp(v) for v in (0, 2, 1, -1))
    assert answers[0]["confidence"] == pytest.approx(expected)  # no calibration map: raw
    assert answers[0]["raw_confidence"] == answers[0]["confidence"]
    assert answers[0]["calibrated"] is False
    assert answers[1]["model_version"] == "v7"
    assert all(isinstance(a["action"], int) and isinstance(a["confidence"], float) for a in answers)


def test_a_calibration_map_turns_each_vote_into_its_probability_of_beating_the_alternative():
    """A vote to trade is mapped by its Q-margin over standing aside, a vote to stand aside by
    its margin over the model's best way to trade, each side by its own logistic map."""
    from dataclasses import replace

    from swarm_ray.registry.calibration import Calibration

    cal = Calibration(
        score="q_margin",
        maps={"active": (1.0, 0.0), "passive": (0.0, math.log(0.8 / 0.2))},
        horizon=5, fees="regular", maker_bps=2.0, taker_bps=5.0,
    )  # fmt: skip
    model = replace(fake_model(), calibration=cal)
    q = np.array([[0.0, 2.0, 1.0, -1.0], [3.0, 0.0, 0.5, 0.0]])
    trade, aside = build_answers(q, model)
    assert trade["action"] == 1 and trade["calibrated"] is True
    assert trade["confidence"] == pytest.approx(1 / (1 + math.exp(-2.0)))  # margin 2 over 0
    assert trade["raw_confidence"] == pytest.approx(
        math.exp(2) / sum(math.exp(v) for v in (0, 2, 1, -1))
    )
    assert aside["action"] == 0 and aside["confidence"] == pytest.approx(0.8)
    # the card form round-trips, and a malformed map is refused naming the key
    assert Calibration.from_card({"calibration": cal.to_card()}) == cal
    assert Calibration.from_card({}) is None
    with pytest.raises(ValueError, match=r"calibration.*maps"):
        Calibration.from_card({"calibration": {"kind": "platt", "score": "q_margin"}})


def test_analysis_answers_are_the_most_probable_class_with_its_probability() -> None:
    p = np.array([[0.1, 0.2, 0.6, 0.1]])
    (answer,) = build_answers(p, fake_model(output=ANALYSIS_OUTPUT))
    assert answer["action"] == 2 and answer["action_name"] == "y"
    assert answer["probabilities"] == pytest.approx([0.1, 0.2, 0.6, 0.1])
    assert answer["confidence"] == pytest.approx(0.6)
    assert "q_values" not in answer


def test_answers_refuse_a_model_output_of_the_wrong_shape_or_not_finite() -> None:
    with pytest.raises(ModelUnavailable, match="shape"):
        build_answers(np.zeros((1, 3)), fake_model())
    with pytest.raises(ModelUnavailable, match="not finite"):
        build_answers(np.array([[0.0, np.nan, 0.0, 0.0]]), fake_model())


# --- the model server: versions, batching settings, health ------------------------------


def test_server_loads_the_newest_version_unless_user_config_names_one() -> None:
    loader = fake_loader()
    server = ModelServer(
        "unused", "fake", max_batch_size=8, batch_wait_timeout_s=0.0, loader=loader
    )
    assert not server.loaded
    with pytest.raises(ModelUnavailable, match="no model version is loaded"):
        server.check_health()
    server.ensure_loaded()
    assert server.model.version == "v2" and loader.loaded == [None]
    server.configure({"version": "v1", "max_batch_size": 32})
    assert server.model.version == "v1" and server.max_batch_size == 32
    assert server.swaps == 1
    # same version again: no reload; batching settings still apply
    server.configure({"version": "v1", "batch_wait_timeout_s": 0.005})
    assert loader.loaded == [None, "v1"]
    assert server.batch_wait_timeout_s == 0.005 and server.max_batch_size == 8
    server.check_health()


def test_user_config_version_null_moves_to_a_newer_registry_version(tmp_path: Path) -> None:
    import shutil

    from swarm_ray.registry.policies import read_card, write_card

    registry = tmp_path / "models"
    shutil.copytree(MODELS / "market_analyst" / "v1", registry / "market_analyst" / "v1")
    server = ModelServer(registry, "market_analyst", 8, 0.0)
    server.configure({"version": None})
    assert server.model.version == "v1"
    assert not server.needs_load(server.parse_config({"version": None}))
    v2 = registry / "market_analyst" / "v2"
    shutil.copytree(registry / "market_analyst" / "v1", v2)
    write_card(v2, {**read_card(v2), "version": "v2"})
    server.configure({"version": None})  # re-applied: the newest is now v2
    assert server.model.version == "v2" and server.swaps == 1
    server.configure({"version": "v1"})  # pinned back
    assert server.model.version == "v1"


def test_server_rejects_a_bad_user_config_and_keeps_serving() -> None:
    server = ModelServer("unused", "fake", 8, 0.0, loader=fake_loader())
    server.configure({"version": "v1"})
    with pytest.raises(ConfigError, match="verison"):
        server.configure({"verison": "v2"})
    with pytest.raises(ConfigError, match="max_batch_size"):
        server.configure({"max_batch_size": 0})
    with pytest.raises(FileNotFoundError, match="v9"):
        server.configure({"version": "v9"})
    assert server.model.version == "v1"


def test_answer_rows_gives_each_row_its_own_answer_and_isolates_a_wrong_size_row() -> None:
    server = ModelServer("unused", "fake", 8, 0.0, loader=fake_loader())
    server.ensure_loaded()
    rows = [server.validate([1, 0, 0]), np.zeros(4, np.float32), server.validate([0, 0, 1])]
    out = server.answer_rows(rows)
    assert isinstance(out[1], InvalidObservation)
    assert out[0]["action"] == 3 and out[2]["action"] == 3
    assert out[0]["q_values"] == pytest.approx([0.0, 0.1, 0.2, 0.3])
    assert server.answer_batch([[1, 0, 0], [0, 0, 1]])[1]["q_values"] == pytest.approx(
        [0.8, 0.9, 1.0, 1.1]
    )


@pytest.mark.parametrize(
    "forward",
    [
        lambda x: np.full((len(x), 4), np.nan),
        lambda x: np.zeros((len(x), 2)),
        lambda x: (_ for _ in ()).throw(RuntimeError("weights gone")),
    ],
    ids=["nan-output", "wrong-shape", "raises"],
)
def test_health_check_fails_when_the_model_cannot_answer(forward) -> None:
    good = ModelServer("unused", "fake", 8, 0.0, loader=fake_loader())
    good.ensure_loaded()
    good.check_health()
    broken = ModelServer("unused", "fake", 8, 0.0, loader=fake_loader())
    broken.install(broken.config, fake_model(forward=forward))
    with pytest.raises(ModelUnavailable):
        broken.check_health()
    # a broken version is refused at load time, before it is ever served
    with pytest.raises(ModelUnavailable):
        ModelServer("unused", "fake", 8, 0.0, loader=fake_loader(forward)).configure({})


def test_metadata_lists_the_contract_fields() -> None:
    server = ModelServer(MODELS, "market_analyst", 8, 0.0)
    server.ensure_loaded()
    meta = server.metadata()
    assert meta["name"] == "market_analyst" and meta["version"] == "v1"
    assert meta["observation_dim"] == 20 and len(meta["observation_names"]) == 20
    assert meta["action_names"] == ["strong_sell", "sell", "hold", "buy", "strong_buy"]
    assert meta["output"] == "probabilities" and meta["available_versions"] == ["v1"]


def test_served_analyst_matches_the_analysis_model_loaded_directly() -> None:
    from swarm_ray.registry import load_analysis_model

    served = load_served_model(MODELS, "market_analyst")
    direct = load_analysis_model(MODELS)
    x = np.random.default_rng(0).normal(size=(4, 20)).astype(np.float32)
    answers = served.answer(x)
    p = direct.predict_proba(x)
    assert [a["action"] for a in answers] == p.argmax(-1).tolist()
    np.testing.assert_allclose([a["probabilities"] for a in answers], p, rtol=1e-6)
    with pytest.raises(FileNotFoundError, match="no version 'v9'"):
        load_served_model(MODELS, "market_analyst", "v9")


# --- app arguments and the committed Serve config ---------------------------------------


def test_app_args_are_strict_and_name_unknown_models() -> None:
    from pydantic import ValidationError

    assert served_model_names(ModelAppArgs()) == REGISTRY_MODELS
    assert served_model_names(ModelAppArgs(models=["risk_manager"])) == ["risk_manager"]
    with pytest.raises(ValidationError, match="max_batchsize"):
        ModelAppArgs.model_validate({"max_batchsize": 3})
    with pytest.raises(ValidationError, match="twice"):
        ModelAppArgs(models=["risk_manager", "risk_manager"])
    with pytest.raises(ValueError, match=r"\['nope'\] are not in the registry"):
        served_model_names(ModelAppArgs(models=["nope"]))
    with pytest.raises(ValueError, match="no model in the registry"):
        served_model_names(ModelAppArgs(models_dir=str(ROOT / "no-such-registry")))


def test_committed_serve_yaml_is_a_valid_serve_config_of_the_four_models() -> None:
    from ray.serve.schema import ServeDeploySchema

    path = ROOT / "configs" / "serve.yaml"
    config = ServeDeploySchema.model_validate(yaml.safe_load(path.read_text()))
    (app,) = config.applications
    assert app.name == APP_NAME and app.route_prefix == "/"
    assert app.import_path == "serve.app:build_app"
    args = ModelAppArgs.model_validate(app.args)
    assert {d.name for d in app.deployments} == {MODELS_NAME, INGRESS_NAME}
    models = next(d for d in app.deployments if d.name == MODELS_NAME)
    # one user_config entry per served model, each serving the newest version
    assert set(models.user_config) == set(served_model_names(args)) == set(REGISTRY_MODELS)
    assert all(c == {"version": None} for c in models.user_config.values())
    # no secrets travel in the runtime_env
    assert not app.runtime_env.get("env_vars")
    text = path.read_text().lower()
    assert "api_key" not in text and "secret" not in text.replace("no secrets", "")
    assert all(d.max_queued_requests > 0 for d in app.deployments), "overload must be rejected"


def test_configure_overrides_address_models_and_versions() -> None:
    from serve.deploy import app_args, configure, load_deploy_config

    config = load_deploy_config("configs/serve.yaml")
    out = configure(
        config,
        host="127.0.0.1",
        port=18123,
        models=["risk_manager", "market_analyst"],
        versions={"risk_manager": "v1"},
    )
    assert out.http_options.port == 18123
    (app,) = out.applications
    assert {d.name for d in app.deployments} == {MODELS_NAME, INGRESS_NAME}
    models = next(d for d in app.deployments if d.name == MODELS_NAME)
    # the models dropped from the app lose their entries; the others keep theirs
    assert models.user_config == {"risk_manager": {"version": "v1"},
                                  "market_analyst": {"version": None}}  # fmt: skip
    assert app_args(out).models == ["risk_manager", "market_analyst"]
    with pytest.raises(ConfigError, match="no served model 'execution_agent'"):
        configure(out, versions={"execution_agent": "v1"})


def test_load_deploy_config_names_a_missing_or_bad_file(tmp_path: Path) -> None:
    from serve.deploy import load_deploy_config

    with pytest.raises(ConfigError, match="not found"):
        load_deploy_config(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("applications:\n- name: other\n  import_path: x:y\n")
    with pytest.raises(ConfigError, match="no application named 'swarm_models'"):
        load_deploy_config(bad)


def test_cli_serve_parses_rollouts_and_refuses_bad_arguments(capsys, monkeypatch) -> None:
    from swarm_ray.cli import main

    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    from swarm_ray.commands.serve import parse_rollout

    assert parse_rollout(["risk_manager=v2", "market_analyst=latest"]) == {
        "risk_manager": "v2",
        "market_analyst": None,
    }
    for bad in ("risk_manager", "=v2", "risk_manager="):
        with pytest.raises(ConfigError, match="NAME=VERSION"):
            parse_rollout([bad])
    assert main(["serve", "--detach"]) == 2
    assert "--detach needs --address" in capsys.readouterr().err
    assert main(["serve", "--models", "nope"]) == 2
    assert "['nope'] are not in the registry" in capsys.readouterr().err
    assert main(["serve", "--config", "no/such.yaml"]) == 2
    assert "not found" in capsys.readouterr().err
