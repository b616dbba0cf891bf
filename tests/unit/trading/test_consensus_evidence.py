"""The shipped consensus is the one its evidence chose: the tuning runs in
configs/consensus-evidence/ kept configs/paper.yaml's consensus, on days the models were not
trained on."""

from __future__ import annotations

import json

import pytest
import yaml

from tests.conftest import ROOT

EVIDENCE = sorted((ROOT / "configs" / "consensus-evidence").glob("*.json"))
TRAIN_DAYS = {f"BTCUSDT-1m-2024-08-{d:02d}.csv" for d in range(1, 13)}


@pytest.mark.parametrize("path", EVIDENCE, ids=[p.stem for p in EVIDENCE])
def test_the_shipped_consensus_is_the_evidences_best(path) -> None:
    evidence = json.loads(path.read_text())
    shipped = yaml.safe_load((ROOT / "configs" / "paper.yaml").read_text())["consensus"]
    best = evidence["best"]["consensus"]
    assert best["weights"] == shipped["weights"] and best["threshold"] == shipped["threshold"]
    assert best["no_consensus"] == shipped["no_consensus"]
    assert evidence["fees"] == path.stem and evidence["swarm_config"] == "configs/paper.yaml"
    assert not set(evidence["days"]) & TRAIN_DAYS, "tuned on the models' training days"
    scores = [t["objective"] for t in evidence["trials"]]
    assert evidence["best"]["objective"] == max(scores) and len(scores) >= 16


def test_there_is_evidence_for_both_fee_tiers() -> None:
    assert [p.stem for p in EVIDENCE] == ["lp_rebate", "regular"]
