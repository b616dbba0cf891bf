"""Smoke-test models never serve: a version marked ``smoke: true`` is refused from a serving
registry (newest or named), loads from a scratch registry, and exports keep the two apart."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from serve.models import load_served_model
from swarm_ray.registry import (
    RegistryError,
    SmokeModel,
    latest_dir,
    load_analysis_model,
    load_policies,
    load_policy,
)
from swarm_ray.registry.files import SCRATCH_MARK, is_scratch_registry
from swarm_ray.registry.observation import observation_spec
from swarm_ray.registry.policies import new_version_dir
from tests.conftest import ROOT

MODELS = ROOT / "models"


def _set_smoke(vdir: Path, smoke: bool) -> None:
    card_path = vdir / "model_card.json"
    card = json.loads(card_path.read_text())
    card["smoke"] = smoke
    card["version"] = vdir.name
    card_path.write_text(json.dumps(card))


@pytest.fixture
def serving(tmp_path: Path) -> Path:
    """A serving registry whose newest risk_manager and market_analyst (v2) are smoke runs."""
    root = tmp_path / "models"
    for name in ("risk_manager", "strategy_optimizer", "market_analyst"):
        shutil.copytree(MODELS / name / "v1", root / name / "v1")
    for name in ("risk_manager", "market_analyst"):
        shutil.copytree(root / name / "v1", root / name / "v2")
        _set_smoke(root / name / "v2", True)
    return root


def test_the_shipped_registry_holds_no_smoke_model():
    for card in MODELS.glob("*/v*/model_card.json"):
        assert json.loads(card.read_text())["smoke"] is False, card


def test_a_smoke_version_is_refused_as_the_newest_naming_it(serving):
    with pytest.raises(SmokeModel) as err:
        latest_dir(serving, "risk_manager")
    msg = str(err.value)
    assert "risk_manager v2 is a smoke-test model" in msg
    assert str(serving / "risk_manager" / "v2") in msg
    assert latest_dir(serving, "strategy_optimizer").name == "v1"
    with pytest.raises(SmokeModel, match="v2 is a smoke-test model"):
        load_policies(serving)
    with pytest.raises(SmokeModel, match="market_analyst v2"):
        load_analysis_model(serving)
    with pytest.raises(SmokeModel, match="market_analyst v2"):
        observation_spec(serving)  # not taken for a missing layout


def test_serving_refuses_a_smoke_version_newest_or_named_and_serves_the_others(serving):
    for version in (None, "v2"):
        with pytest.raises(SmokeModel, match="risk_manager v2"):
            load_served_model(serving, "risk_manager", version)
        with pytest.raises(SmokeModel, match="market_analyst v2"):
            load_served_model(serving, "market_analyst", version)
    assert load_served_model(serving, "risk_manager", "v1").version == "v1"
    with pytest.raises(SmokeModel):
        load_policy(serving / "risk_manager" / "v2")


def test_a_scratch_registry_loads_its_smoke_models(serving):
    (serving / SCRATCH_MARK).write_text("{}")
    assert is_scratch_registry(serving)
    policies = {p.name: p for p in load_policies(serving)}
    assert policies["risk_manager"].version == "v2" and policies["risk_manager"].card["smoke"]
    assert load_analysis_model(serving).version == "v2"
    assert load_served_model(serving, "risk_manager").version == "v2"


def test_a_smoke_export_is_refused_by_a_serving_registry(serving, tmp_path):
    with pytest.raises(RegistryError, match="a serving registry") as err:
        new_version_dir(serving, "risk_manager", None, smoke=True)
    assert "strategy_optimizer/v1" in str(err.value) or "risk_manager/v1" in str(err.value)
    assert not is_scratch_registry(serving)
    assert new_version_dir(serving, "risk_manager", None, smoke=False) == (
        serving / "risk_manager" / "v3"
    )


def test_a_smoke_export_marks_a_new_registry_scratch_which_refuses_full_exports(tmp_path):
    scratch = tmp_path / "runs" / "smoke" / "models"
    assert new_version_dir(scratch, "risk_manager", None, smoke=True) == (
        scratch / "risk_manager" / "v1"
    )
    assert is_scratch_registry(scratch)
    assert new_version_dir(scratch, "risk_manager", "v7", smoke=True).name == "v7"
    with pytest.raises(RegistryError, match="a scratch registry of smoke-test models"):
        new_version_dir(scratch, "risk_manager", None, smoke=False)


def test_export_analysis_records_smoke_in_the_card(tmp_path):
    import torch

    from swarm_ray.features.analysis import N_FEATURES
    from swarm_ray.registry.analysis_model import build_network
    from swarm_ray.training.analysis import AnalysisTrainingResult, export_analysis

    torch.manual_seed(0)
    result = AnalysisTrainingResult(
        network=build_network((8, 8)),
        mean=np.zeros(N_FEATURES),
        std=np.ones(N_FEATURES),
        ref_vol=1e-3,
        metrics={"validation": {}},
        history=[],
    )
    full = export_analysis(result, tmp_path / "serving", "market_analyst", {})
    assert json.loads((full / "model_card.json").read_text())["smoke"] is False
    with pytest.raises(RegistryError, match="a serving registry"):
        export_analysis(result, tmp_path / "serving", "market_analyst", {"smoke": True})
    smoke = export_analysis(result, tmp_path / "scratch", "market_analyst", {"smoke": True})
    assert json.loads((smoke / "model_card.json").read_text())["smoke"] is True
    assert load_analysis_model(tmp_path / "scratch").version == "v1"
