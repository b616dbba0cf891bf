"""Champions: which version is served by default (champions.json, else the newest), its atomic
writes and history, the listing's statuses, and the registry-only champion switch (health
check first, nothing changed on a refusal)."""

from __future__ import annotations

import json
import shutil
import threading
from pathlib import Path

import pytest

from serve.models import load_served_model
from swarm_ray.learning.serving import UnhealthyVersion, switch_champion
from swarm_ray.registry import RegistryError
from swarm_ray.registry.champions import (
    CHAMPIONS_FILE,
    champion,
    champion_history,
    previous_champion,
    read_champions,
    record_champion,
    record_rejected,
    rejected,
    serving_dir,
    serving_version,
)
from swarm_ray.registry.files import CARD, WEIGHTS_FILE
from swarm_ray.registry.listing import model_versions
from swarm_ray.registry.observation import observation_spec
from tests.conftest import ROOT

RM = "risk_manager"


def copy_versions(dest: Path, name: str, *versions: str) -> None:
    for v in versions:
        shutil.copytree(ROOT / "models" / name / v, dest / name / v)


@pytest.fixture
def models(tmp_path: Path) -> Path:
    """risk_manager v1..v3, market_analyst v1 and strategy_optimizer v1 (the observation spec
    reads its card), copied from the shipped registry."""
    root = tmp_path / "models"
    copy_versions(root, RM, "v1", "v2", "v3")
    copy_versions(root, "market_analyst", "v1")
    copy_versions(root, "strategy_optimizer", "v1")
    return root


def edit_card(vdir: Path, **changes) -> None:
    card = json.loads((vdir / CARD).read_text())
    card.update(changes)
    (vdir / CARD).write_text(json.dumps(card, indent=2))


def leftovers(root: Path) -> list[str]:
    return sorted(p.name for p in root.iterdir() if p.name.startswith(".champions."))


# --- resolution ---------------------------------------------------------------------------


def test_without_champions_file_the_newest_version_is_served(models: Path) -> None:
    assert not (models / CHAMPIONS_FILE).exists()
    assert observation_spec(models).layout(RM) == "v3"
    assert champion(models, RM) is None
    assert serving_version(models, RM) == "v3"
    assert serving_dir(models, RM) == models / RM / "v3"
    assert read_champions(models) == {"models": {}, "rejected": {}}
    assert load_served_model(models, RM).version == "v3"


def test_the_champion_is_served_and_loaded_by_default(models: Path) -> None:
    record_champion(models, RM, "v1", "rollback", reason="test")
    assert champion(models, RM) == "v1"
    assert serving_version(models, RM) == "v1"
    assert serving_dir(models, RM) == models / RM / "v1"
    assert load_served_model(models, RM).version == "v1"
    assert load_served_model(models, RM, "v2").version == "v2"  # a version asked for
    # the observation spec follows: v1 is on layout v2 (15 features), v3 on layout v3
    assert observation_spec(models).layout(RM) == "v2"
    # another model without a decision still serves its newest
    assert serving_version(models, "market_analyst") == "v1"


def test_a_champion_naming_a_missing_version_is_an_error_naming_the_file(models: Path) -> None:
    (models / CHAMPIONS_FILE).write_text(
        json.dumps({"models": {RM: {"champion": "v7", "history": []}}})
    )
    with pytest.raises(RegistryError, match="v7") as err:
        serving_version(models, RM)
    assert str(models / CHAMPIONS_FILE) in str(err.value)
    with pytest.raises(RegistryError, match=CHAMPIONS_FILE):
        load_served_model(models, RM)


@pytest.mark.parametrize(
    ("text", "words"),
    [("{not json", "not valid JSON"), ('{"models": []}', "'models' object")],
)
def test_an_unreadable_champions_file_is_an_error_naming_it(
    models: Path, text: str, words: str
) -> None:
    (models / CHAMPIONS_FILE).write_text(text)
    with pytest.raises(RegistryError, match=words) as err:
        serving_version(models, RM)
    assert CHAMPIONS_FILE in str(err.value)


# --- writes and history -------------------------------------------------------------------


def test_record_keeps_the_history_and_the_replaced_version_as_initial(models: Path) -> None:
    record_champion(models, RM, "v2", "promoted", parent="v3", evidence={"diff": 1.5})
    history = champion_history(models, RM)
    assert [(e["version"], e["event"]) for e in history] == [("v3", "initial"), ("v2", "promoted")]
    assert history[1]["parent"] == "v3" and history[1]["evidence"] == {"diff": 1.5}
    assert all("time" in e for e in history)
    record_champion(models, RM, "v3", "rollback")
    assert [e["event"] for e in champion_history(models, RM)] == ["initial", "promoted", "rollback"]
    on_disk = json.loads((models / CHAMPIONS_FILE).read_text())
    assert on_disk["models"][RM]["champion"] == "v3"
    assert leftovers(models) == []


def test_record_refuses_an_unknown_event_or_version(models: Path) -> None:
    with pytest.raises(ValueError, match="event must be one of"):
        record_champion(models, RM, "v2", "crowned")
    with pytest.raises(RegistryError, match="no version 'v9'"):
        record_champion(models, RM, "v9", "promoted")
    assert not (models / CHAMPIONS_FILE).exists()


def test_previous_champion(models: Path) -> None:
    assert previous_champion(models, RM) == "v2"  # no decision: the version before the newest
    record_champion(models, RM, "v2", "promoted")
    assert previous_champion(models, RM) == "v3"  # the one it replaced (initial)
    record_champion(models, RM, "v3", "rollback")
    assert previous_champion(models, RM) == "v2"
    assert previous_champion(models, "market_analyst") is None  # one version only


def test_a_failed_write_leaves_the_old_file_and_no_temporary_file(
    models: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import swarm_ray.registry.champions as champions

    record_champion(models, RM, "v2", "promoted")
    before = (models / CHAMPIONS_FILE).read_bytes()

    def half_written(state, f, **kwargs):
        f.write('{"models": {"risk_man')
        raise OSError("disk full")

    monkeypatch.setattr(champions.json, "dump", half_written)
    with pytest.raises(OSError, match="disk full"):
        record_champion(models, RM, "v1", "rollback")
    assert (models / CHAMPIONS_FILE).read_bytes() == before
    assert leftovers(models) == []
    monkeypatch.undo()
    assert serving_version(models, RM) == "v2"


def test_concurrent_writers_lose_no_record(models: Path) -> None:
    def reject(worker: int) -> None:
        for i in range(5):
            record_rejected(models, RM, id=f"w{worker}-{i}", reason="lost", evidence={})

    threads = [threading.Thread(target=reject, args=(w,)) for w in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    ids = {r["id"] for r in rejected(models, RM)}
    assert ids == {f"w{w}-{i}" for w in range(6) for i in range(5)}
    assert leftovers(models) == []


def test_record_rejected_keeps_id_reason_and_evidence(models: Path) -> None:
    record_rejected(models, RM, id="c-1", reason="lost by 2.1 USDT", evidence={"diff": -2.1})
    [r] = rejected(models, RM)
    assert (r["id"], r["reason"], r["evidence"]) == ("c-1", "lost by 2.1 USDT", {"diff": -2.1})
    assert serving_version(models, RM) == "v3"  # a rejection changes no champion


# --- the listing --------------------------------------------------------------------------


def statuses(models: Path, name: str = RM) -> dict[str, str]:
    return {
        e["version"] if e["status"] != "rejected" else e["id"]: e["status"]
        for e in model_versions(models)[name]
    }


def test_listing_without_decisions(models: Path) -> None:
    assert statuses(models) == {"v1": "available", "v2": "available", "v3": "champion"}
    assert statuses(models, "market_analyst") == {"v1": "champion"}


def test_listing_statuses_after_decisions(models: Path) -> None:
    record_champion(models, RM, "v2", "promoted")  # replaces v3 (initial)
    record_champion(models, RM, "v3", "rollback")
    record_champion(models, RM, "v2", "rollback")
    # a version written after the decision and never promoted: an interrupted promotion
    shutil.copytree(models / RM / "v3", models / RM / "v4")
    # a smoke-test version
    shutil.copytree(models / RM / "v3", models / RM / "v5")
    edit_card(models / RM / "v5", smoke=True)
    record_rejected(models, RM, id="cand-7", reason="lost", evidence={"diff": -1.0})
    rows = {e["version"] or e["id"]: e for e in model_versions(models)[RM]}
    assert {k: e["status"] for k, e in rows.items()} == {
        "v1": "available",
        "v2": "champion",
        "v3": "retired",
        "v4": "unpromoted",
        "v5": "smoke",
        "cand-7": "rejected",
    }
    assert [e["event"] for e in rows["v2"]["events"]] == ["promoted", "rollback"]
    assert [e["event"] for e in rows["v3"]["events"]] == ["initial", "rollback"]
    assert rows["v5"]["smoke"] is True
    assert rows["cand-7"]["reason"] == "lost" and rows["cand-7"]["evidence"] == {"diff": -1.0}
    assert rows["v1"]["created"] == json.loads((models / RM / "v1" / CARD).read_text())["created"]
    # the default is still the champion, not the newer unpromoted version
    assert load_served_model(models, RM).version == "v2"


def test_a_rejected_challenger_in_the_registry_is_not_unpromoted(models: Path) -> None:
    record_champion(models, RM, "v2", "promoted")
    shutil.copytree(models / RM / "v3", models / RM / "v4")
    record_rejected(models, RM, id="cand-4", version="v4", reason="lost", evidence={})
    [v4] = [e for e in model_versions(models)[RM] if e["version"] == "v4"]
    assert v4["status"] == "rejected" and v4["id"] == "cand-4"
    assert len(model_versions(models)[RM]) == 4  # not listed twice


def test_listing_reads_the_lineage_of_a_card(models: Path) -> None:
    lineage = {
        "parent": "v2",
        "train_days": ["2024-08-01", "2024-08-12"],
        "evaluation_days": ["2024-08-17", "2024-08-20"],
        "evidence": {"minus_champion": 0.8},
    }
    edit_card(models / RM / "v3", lineage=lineage)
    [*_, v3] = model_versions(models)[RM]
    assert {k: v3[k] for k in lineage} == lineage
    [v1, *_] = model_versions(models)[RM]
    assert v1["parent"] is None and v1["evidence"] is None


def test_listing_names_a_broken_card_and_a_broken_champions_file(models: Path) -> None:
    (models / RM / "v1" / CARD).write_text("{oops")
    [v1, *_] = model_versions(models)[RM]
    assert v1["status"] == "available" and "model card" in v1["error"]
    (models / CHAMPIONS_FILE).write_text(json.dumps({"models": {RM: {"champion": "v9"}}}))
    with pytest.raises(RegistryError, match=CHAMPIONS_FILE):
        model_versions(models)


# --- the switch without Serve ---------------------------------------------------------------


def nan_version(models: Path, version: str) -> None:
    """``risk_manager/<version>``: v1's network with every weight 1e30: finite, so it loads,
    and it answers inf and NaN."""
    import torch

    from swarm_ray.registry import load_policy
    from swarm_ray.registry.policies import save_policy

    policy = load_policy(models / RM / "v1")
    with torch.no_grad():
        for p in policy.network.parameters():
            p.fill_(1e30)
    save_policy(policy, models / RM / version)


def corrupt_version(models: Path, version: str) -> None:
    """``risk_manager/<version>``: v1 with one byte of its weight file changed."""
    shutil.copytree(models / RM / "v1", models / RM / version)
    weights = models / RM / version / WEIGHTS_FILE
    data = bytearray(weights.read_bytes())
    data[-10] ^= 0xFF
    weights.write_bytes(bytes(data))


def test_switch_without_serve_records_the_champion(models: Path) -> None:
    done = switch_champion(models, RM, "v2", "promoted", details={"parent": "v3"}, serve_app=False)
    assert done == {
        "role": RM,
        "version": "v2",
        "previous": "v3",
        "event": "promoted",
        "served_by": "registry",
    }
    assert champion(models, RM) == "v2"
    assert champion_history(models, RM)[-1]["parent"] == "v3"
    # "auto" without Ray initialised: the registry only
    done = switch_champion(models, RM, "v3", "rollback")
    assert done["served_by"] == "registry" and done["previous"] == "v2"


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # the overflow of the NaN version
@pytest.mark.parametrize("make", [corrupt_version, nan_version], ids=["corrupt", "nan-answer"])
def test_an_unhealthy_version_is_refused_and_nothing_changes(models: Path, make) -> None:
    record_champion(models, RM, "v2", "promoted")
    before = (models / CHAMPIONS_FILE).read_bytes()
    make(models, "v4")
    with pytest.raises(UnhealthyVersion, match="risk_manager v4 failed its health check"):
        switch_champion(models, RM, "v4", "promoted", serve_app=False)
    assert (models / CHAMPIONS_FILE).read_bytes() == before


def test_switch_to_an_unknown_model_or_version_names_what_there_is(models: Path) -> None:
    with pytest.raises(RegistryError, match=r"versions: v1, v2, v3"):
        switch_champion(models, RM, "v9", "rollback", serve_app=False)
    with pytest.raises(RegistryError, match=r"no model 'nope'.*risk_manager"):
        switch_champion(models, "nope", "v1", "rollback", serve_app=False)
    assert not (models / CHAMPIONS_FILE).exists()
