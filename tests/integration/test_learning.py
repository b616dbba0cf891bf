"""The learning loop on a real local Ray cluster (2 CPUs) with the model app on Serve.

The champions and challengers are real registry models with a known behaviour: the shipped v2
risk manager with one output bias raised, so that it always quotes tight (which loses on the
bundled days, at the regular tier) or always stands aside. The judgement is the real
whole-swarm backtest on two bundled days (a swarm whose vote is the risk manager's alone), and
the promotion the real rollout on Serve. Then a smoke step trains real challengers (RLlib DQN
and the analysis network, one Tune experiment), and a running swarm learns on its own clock
without waiting for it.
"""

from __future__ import annotations

import json
import shutil
import time
from datetime import date
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import yaml

ray = pytest.importorskip("ray")

import torch  # noqa: E402

from envs.actions import ACTION_NAMES  # noqa: E402
from serve.client import model_handle  # noqa: E402
from swarm_ray.journal import Journal  # noqa: E402
from swarm_ray.learning.config import LearnConfig  # noqa: E402
from swarm_ray.learning.loop import learn_step  # noqa: E402
from swarm_ray.learning.train import Challenger  # noqa: E402
from swarm_ray.registry.champions import champion, rejected, serving_version  # noqa: E402
from swarm_ray.registry.files import read_card  # noqa: E402
from swarm_ray.registry.policies import load_policy, save_policy  # noqa: E402
from tests.conftest import ROOT, model_app, under_load  # noqa: E402

RM = "risk_manager"
MODELS = ("risk_manager", "strategy_optimizer", "execution_agent", "market_analyst")
# judged on the day before: the models here trained on 08-01..12 and were validated on 08-13..16
BETTER_DAY, WORSE_DAY, NAN_DAY = date(2024, 8, 18), date(2024, 8, 19), date(2024, 8, 20)


def fixed_action(src: Path, dest: Path, action: str) -> Path:
    """The policy at ``src`` with its advantage head's bias for ``action`` raised by 1000, so
    it picks ``action`` whatever it sees: a real model of known behaviour."""
    policy = load_policy(src)
    state = policy.network.state_dict()
    key = sorted(k for k in state if k.startswith("af.") and k.endswith("bias"))[-1]
    with torch.no_grad():
        state[key][ACTION_NAMES.index(action)] += 1000.0
    policy.network.load_state_dict(state)
    return save_policy(policy, dest)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A registry (v2 policies, the risk manager's v3 always quoting tight), challengers of
    known behaviour, a learning config judged by a swarm that follows the risk manager, and the
    model app on Serve."""
    tmp = tmp_path_factory.mktemp("learning")
    models = tmp / "models"
    for name in MODELS:
        src = ROOT / "models" / name / ("v1" if name == "market_analyst" else "v2")
        shutil.copytree(src, models / name / src.name)
    v2 = ROOT / "models" / RM / "v2"
    fixed_action(v2, models / RM / "v3", "quote_tight")
    aside = fixed_action(v2, tmp / "challengers" / RM / "aside", "stand_aside")
    tight = fixed_action(v2, tmp / "challengers" / RM / "tight", "quote_tight")
    swarm = yaml.safe_load((ROOT / "configs" / "paper.yaml").read_text())
    swarm["agents"]["unlikely_vote"] = "keep"
    swarm["consensus"]["weights"] = {m: float(m == RM) for m in MODELS}
    (tmp / "swarm.yaml").write_text(yaml.safe_dump(swarm))
    bt = yaml.safe_load((ROOT / "configs" / "backtest.yaml").read_text())
    bt["swarm_config"] = str(tmp / "swarm.yaml")
    (tmp / "backtest.yaml").write_text(yaml.safe_dump(bt))
    cfg = LearnConfig(
        train_config=str(ROOT / "configs" / "train_dqn.yaml"),  # the v2 layout of these models
        backtest_config=str(tmp / "backtest.yaml"),
        models_dir=str(models),
        work_dir=str(tmp / "work"),
        data=(str(ROOT / "data" / "binance-spot-1m"),),
        roles=(RM,),
        window={"train_days": 2, "evaluation_days": 1},
        smoke={"train_days": 2, "evaluation_days": 1, "env_steps": 200, "episode_steps": 40},
    )
    with model_app(models):
        yield SimpleNamespace(tmp=tmp, models=models, cfg=cfg, aside=aside, tight=tight)


def served() -> str:
    return model_handle(RM, by_value=False).metadata().result(timeout_s=30)["version"]


def challenger(path: Path) -> dict[str, Challenger]:
    return {RM: Challenger(RM, path, "v2", ("2024-08-15", "2024-08-16"))}


def test_a_better_challenger_is_promoted_and_served_with_zero_failed_requests(world) -> None:
    assert served() == "v3" and serving_version(world.models, RM) == "v3"
    h = model_handle(RM, by_value=False)
    x = np.random.default_rng(0).normal(size=(32, 15)).astype(np.float32).tolist()

    def promote_aside():
        with Journal(str(world.tmp / "journal.sqlite"), run_id="t") as j:
            step = learn_step(
                world.cfg, BETTER_DAY, world.models, world.tmp / "work", serve_app=True,
                journal=j, challengers=challenger(world.aside),
            )  # fmt: skip
            return step, j.model_decisions(RM)

    (step, rows), answers, errors = under_load(h, x, promote_aside)
    (d,) = step.decisions
    assert d.decision == "promoted", d.reason
    assert d.interval is not None and d.interval[0] > 0
    assert d.champion["pnl"] < 0 and d.challenger["pnl"] == 0.0  # quoting tight lost; aside 0
    assert d.promoted_version == "v4"
    assert errors == [], errors[:3]
    versions = [a["model_version"] for a in answers]
    assert versions[0] == "v3" and versions[-1] == "v4"
    assert served() == "v4" and champion(world.models, RM) == "v4"
    assert {a["action_name"] for a in answers if a["model_version"] == "v4"} == {"stand_aside"}
    lineage = read_card(world.models / RM / "v4")["lineage"]
    assert lineage["parent"] == "v3" and lineage["evaluation_days"] == ["2024-08-17"]
    assert lineage["evidence"]["interval"] == list(d.interval)
    (row,) = rows
    assert (row["decision"], row["champion"], row["challenger"]) == ("promoted", "v3", "v4")
    assert json.loads(json.dumps(d.to_json()))["challenger"]["version"] == "v4"


def test_a_worse_challenger_is_rejected_and_never_served(world) -> None:
    assert champion(world.models, RM) == "v4"  # after the promotion above: stands aside
    before = sorted(p.name for p in (world.models / RM).iterdir())
    step = learn_step(
        world.cfg, WORSE_DAY, world.models, world.tmp / "work", serve_app=True,
        challengers=challenger(world.tight),
    )  # fmt: skip
    (d,) = step.decisions
    assert d.decision == "rejected" and "did not beat the champion" in d.reason
    assert d.challenger["pnl"] < d.champion["pnl"] == 0.0
    assert served() == "v4" and champion(world.models, RM) == "v4"
    assert sorted(p.name for p in (world.models / RM).iterdir()) == before  # no new version
    assert rejected(world.models, RM)[-1]["reason"] == d.reason


def test_a_challenger_that_answers_nan_is_never_served(world) -> None:
    broken = fixed_action(world.aside, world.tmp / "challengers" / RM / "broken", "stand_aside")
    policy = load_policy(broken)
    state = policy.network.state_dict()
    key = sorted(k for k in state if k.startswith("af.") and k.endswith("weight"))[-1]
    with torch.no_grad():
        state[key].fill_(3e38)  # finite weights whose answers are not: inf - inf is NaN
    policy.network.load_state_dict(state)
    save_policy(policy, broken)
    step = learn_step(
        world.cfg, NAN_DAY, world.models, world.tmp / "work", serve_app=True,
        challengers=challenger(broken),
    )  # fmt: skip
    (d,) = step.decisions
    assert d.decision == "rejected" and "health check" in d.reason
    assert served() == "v4"


def test_a_smoke_step_trains_real_challengers_in_a_copy_of_the_registry(world, capsys) -> None:
    from swarm_ray.cli import main

    cfg = world.cfg.model_copy(update={"roles": (RM, "market_analyst")})
    path = world.tmp / "learn.yaml"
    path.write_text(yaml.safe_dump(cfg.model_dump(mode="json")))
    before = sorted(p.name for p in (world.models / RM).iterdir())
    code = main(["learn", "--config", str(path), "--smoke", "--today", "2024-08-20", "--json"])
    assert code == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    roles = {d["role"]: d for d in out["decisions"]}
    assert set(roles) == {RM, "market_analyst"}
    for d in roles.values():
        assert d["decision"] in ("promoted", "rejected") and d["reason"]
        assert d["champion"]["days"] == ["2024-08-19"]
    registry = Path(out["registry"])
    assert registry != world.models and (registry / "scratch_registry.json").is_file()
    assert sorted(p.name for p in (world.models / RM).iterdir()) == before
    trained = next((world.tmp / "work" / "steps").glob(f"c20240820t*/challengers/{RM}/*"))
    card = read_card(trained)
    assert card["smoke"] is True and card["lineage"]["parent"] == "v4"  # warm-started
    assert card["lineage"]["train_days"] == ["2024-08-17", "2024-08-18"]
    assert card["data"]["train_days"] == ["2024-08-17"]  # 08-18 picked the analyst's epoch
    assert card["training"]["env_steps"] >= 200


def test_a_running_swarm_learns_on_its_own_clock_without_waiting(world) -> None:
    from swarm_ray.runtime.api import Swarm

    learn = world.cfg.model_copy(
        update={"window": {"train_days": 2, "evaluation_days": 1},  # judged on 08-19
                "budget": {"env_steps": 400, "analysis_epochs": 1}}
    )  # fmt: skip
    path = world.tmp / "learn_run.yaml"
    path.write_text(yaml.safe_dump(learn.model_dump(mode="json")))
    cfg = yaml.safe_load((ROOT / "configs" / "paper.yaml").read_text())
    cfg |= {
        "run_id": "learning",
        "journal_dir": str(world.tmp / "run" / "journal"),
        "models_dir": str(world.models),
        "metrics": False,
        "panel": {"enabled": False},
        "learning": {"every": "30m", "config": str(path)},
    }
    cfg["exchange"]["paper"]["state_path"] = None
    cfg["cycle"]["replay_speed"] = 600  # ten cycles a second
    cfg["agents"]["inference"] = "local"
    swarm = Swarm(cfg)
    swarm.start()
    try:
        seen: list[tuple[float, int, bool]] = []
        deadline = time.monotonic() + 240
        started = None
        while time.monotonic() < deadline:
            if not swarm.wait(timeout=1.0, on_event=lambda line: None):
                pass
            else:  # the replay is over: the step is still polled
                swarm.learning.poll(None)
                time.sleep(1.0)
            cycles = sum(c["cycles"] for c in swarm.status().values())
            assert swarm.learning is not None
            seen.append((time.monotonic(), cycles, swarm.learning.running))
            if swarm.learning.running and started is None:
                started = len(seen)
            if swarm.learning.steps >= 1:
                break
        assert started is not None, "no learning step started within 30 minutes of run time"
        assert swarm.learning.steps == 1, "the learning step did not finish"
        during = [c for _, c, running in seen[started - 1 :] if running]
        # the cycles went on while the challengers trained
        assert len(during) >= 3 and during[-1] - during[0] >= 20, during
    finally:
        swarm.stop(reason="test over")
        swarm.close()
    (d,) = swarm.learning.decisions
    assert d["role"] == RM and d["decision"] in ("promoted", "rejected")
    with Journal(str(world.tmp / "run" / "journal" / "learning.sqlite"), read_only=True) as j:
        assert [r["role"] for r in j.model_decisions()] == [RM]
