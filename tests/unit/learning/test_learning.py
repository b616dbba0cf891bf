"""The learning loop's plain parts: its config, the window of a step, the judgement of a
challenger against its champion, and a promotion (without Serve) that a crash cannot leave
half done."""

from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path

import numpy as np
import pytest

from swarm_ray.core.config import ConfigError, parse_config
from swarm_ray.evaluation.records import DayRecord
from swarm_ray.learning.config import LearnConfig, PromotionConfig, parse_duration
from swarm_ray.learning.judge import paired_interval, side_metrics, verdict, view_registry
from swarm_ray.learning.loop import kline_days, promote, step_window
from swarm_ray.registry.champions import champion, rejected, serving_version
from swarm_ray.registry.files import read_card
from swarm_ray.registry.listing import model_versions
from tests.conftest import ROOT

RM = "risk_manager"
ALL = ("risk_manager", "strategy_optimizer", "execution_agent", "market_analyst")


def day(pnl_steps: np.ndarray, date_: str = "2024-08-13") -> DayRecord:
    """A day whose PnL moves by ``pnl_steps`` each minute."""
    n = len(pnl_steps)
    equity = np.concatenate([[0.0], np.cumsum(pnl_steps)])
    return DayRecord(
        strategy="swarm",
        symbol="BTCUSDT",
        date=date_,
        mid=np.full(n + 1, 60_000.0),
        equity=equity,
        position=np.zeros(n + 1),
        quoting=np.ones(n, dtype=bool),
    )


P = PromotionConfig(block_minutes=60, bootstrap_samples=2000, seed=0)


def noise(seed: int, n: int = 1440, scale: float = 0.2) -> np.ndarray:
    return np.random.default_rng(seed).normal(0.0, scale, n)


def test_a_challenger_that_makes_more_on_every_hour_is_promoted() -> None:
    base = noise(1) - 0.05  # loses about 72 a day
    champ = [day(base, "2024-08-13"), day(noise(2) - 0.05, "2024-08-14")]
    chall = [day(base + 0.05, "2024-08-13"), day(noise(2), "2024-08-14")]
    v = verdict(champ, chall, P, "regular")
    assert v.decision == "promoted", v.reason
    assert v.interval is not None and v.interval[0] > 0
    assert v.challenger["minus_champion"] == pytest.approx(0.05 * 2880, rel=1e-6)
    assert v.champion["fees"] == "regular" and v.champion["days"] == ["2024-08-13", "2024-08-14"]


def test_a_worse_challenger_is_rejected_and_the_reason_says_by_how_much() -> None:
    champ = [day(noise(1))]
    chall = [day(noise(1) - 0.05)]
    v = verdict(champ, chall, P, "regular")
    assert v.decision == "rejected"
    assert "did not beat the champion" in v.reason and "-72.00 USDT" in v.reason


def test_a_better_total_whose_interval_spans_zero_is_rejected() -> None:
    # one lucky hour: more in total, but the interval of the difference includes zero
    steps = np.zeros(1440)
    steps[30] = 5.0
    v = verdict([day(noise(3))], [day(noise(3) + steps)], P, "regular")
    assert v.decision == "rejected"
    assert "does not exclude zero" in v.reason
    assert v.interval is not None and v.interval[0] <= 0 < v.challenger["minus_champion"]


def test_the_margin_must_be_beaten() -> None:
    champ, chall = [day(noise(1))], [day(noise(1) + 0.001)]  # +1.44 USDT, every hour
    assert verdict(champ, chall, P, "regular").decision == "promoted"
    strict = P.model_copy(update={"margin_usdt": 5.0})
    v = verdict(champ, chall, strict, "regular")
    assert v.decision == "rejected" and "margin 5.0" in v.reason


def test_two_models_that_trade_alike_are_not_told_apart() -> None:
    flat = [day(np.zeros(1440))]
    v = verdict(flat, flat, P, "regular")
    assert v.decision == "rejected" and v.interval == (0.0, 0.0)
    assert v.reason.startswith("no difference")


def test_the_bootstrap_pairs_the_same_days() -> None:
    with pytest.raises(ValueError, match="different days"):
        paired_interval([day(noise(1), "2024-08-13")], [day(noise(1), "2024-08-14")], P)
    assert side_metrics([day(np.full(1440, 0.01))])["pnl"] == pytest.approx(14.4)


def test_the_window_uses_only_days_before_the_step() -> None:
    days = [date(2024, 8, d) for d in range(1, 21)]
    train, evaluation = step_window(days, date(2024, 8, 15), train_n=12, eval_n=2)
    assert evaluation == (date(2024, 8, 13), date(2024, 8, 14))
    assert train == tuple(date(2024, 8, d) for d in range(1, 13))
    assert not set(train) & set(evaluation)
    with pytest.raises(ConfigError, match="needs 12 to train and 2 to judge"):
        step_window(days, date(2024, 8, 10), train_n=12, eval_n=2)


def test_the_bundled_days_are_found_and_bad_data_is_named(tmp_path) -> None:
    days = kline_days([str(ROOT / "data" / "binance-spot-1m")], "BTCUSDT")
    assert date(2024, 8, 1) in days and date(2024, 8, 20) in days
    assert all(Path(f).is_absolute() for f in days.values())
    with pytest.raises(ConfigError, match="does not exist"):
        kline_days([str(tmp_path / "nowhere")], "BTCUSDT")
    with pytest.raises(ConfigError, match="no ETHUSDT daily kline files"):
        kline_days([str(tmp_path)], "ETHUSDT")
    odd = tmp_path / "prices.csv"
    odd.write_text("x\n")
    with pytest.raises(ConfigError, match="not a daily kline file"):
        kline_days([str(odd)], "BTCUSDT")


def test_a_bad_learning_config_names_the_field() -> None:
    with pytest.raises(ConfigError, match=r"promotion\.confidence"):
        parse_config(LearnConfig, {"promotion": {"confidence": 1.5}})
    with pytest.raises(ConfigError, match="roles"):
        parse_config(LearnConfig, {"roles": ["trader"]})
    with pytest.raises(ConfigError, match=r"window\.train_days"):
        parse_config(LearnConfig, {"window": {"train_days": 1}})
    with pytest.raises(ConfigError, match=r"smoke\.train_days must not exceed"):
        parse_config(LearnConfig, {"window": {"train_days": 2}, "smoke": {"train_days": 3}})
    assert parse_duration("24h") == 86_400 and parse_duration("30m") == 1800
    assert parse_duration(90) == 90 and parse_duration("1d") == 86_400
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration("daily")


def test_a_run_checks_its_learning_section_at_start(tmp_path) -> None:
    from swarm_ray.core.config import load_config
    from swarm_ray.runtime.config import LearningConfig, SwarmConfig
    from swarm_ray.runtime.learning import LearningSchedule

    assert LearningConfig().every is None
    with pytest.raises(ValueError, match="not a duration"):
        LearningConfig(every="often")
    run = load_config(ROOT / "configs" / "paper.yaml", SwarmConfig)
    bad = tmp_path / "learn.yaml"
    bad.write_text("budget: {env_steps: 5}\n")
    learning = LearningConfig(every="24h", config=str(bad))
    with pytest.raises(ConfigError, match=r"budget\.env_steps"):
        LearningSchedule.for_run(run.model_copy(update={"learning": learning}))
    good = LearningConfig(every="24h", config=str(ROOT / "configs" / "learn.yaml"))
    schedule = LearningSchedule.for_run(run.model_copy(update={"learning": good}))
    assert schedule.every_ns == 86_400 * 10**9 and not schedule.running
    # resolved on the driver: every node gets absolute paths
    assert Path(schedule.cfg.train_config).is_absolute()
    assert all(Path(d).is_absolute() for d in schedule.cfg.data)


@pytest.fixture
def registry(tmp_path) -> Path:
    """risk_manager v1 and v2 (the newest, served by default) and the other models' newest."""
    root = tmp_path / "models"
    for v in ("v1", "v2"):
        shutil.copytree(ROOT / "models" / RM / v, root / RM / v)
    for name in ALL[1:]:
        src = sorted((ROOT / "models" / name).iterdir())[-1]
        shutil.copytree(src, root / name / src.name)
    return root


def test_a_view_serves_the_challenger_in_its_champions_place(registry, tmp_path) -> None:
    challenger = tmp_path / "challengers" / RM / "c1"
    shutil.copytree(registry / RM / "v1", challenger)
    view = view_registry(registry, tmp_path / "view", ALL, challenger)
    assert serving_version(view, RM) == "v3"  # the challenger, as the next version there
    assert read_card(view / RM / "v3")["weights"] == read_card(challenger)["weights"]
    assert sorted(p.name for p in (view / RM).iterdir()) == ["v2", "v3"]
    plain = view_registry(registry, tmp_path / "plain", ALL)
    assert serving_version(plain, RM) == "v2"
    assert serving_version(registry, RM) == "v2"  # the registry itself is untouched


def test_promotion_writes_the_lineage_and_makes_the_champion(registry, tmp_path) -> None:
    challenger = tmp_path / "challengers" / RM / "c1"
    shutil.copytree(registry / RM / "v1", challenger)
    lineage = {"parent": "v2", "train_days": ["2024-08-01"], "evidence": {"interval": [1, 2]}}
    switched = promote(registry, RM, challenger, lineage, serve_app=False)
    assert switched["version"] == "v3" and switched["served_by"] == "registry"
    assert champion(registry, RM) == "v3"
    card = read_card(registry / RM / "v3")
    assert card["version"] == "v3"
    assert card["lineage"]["parent"] == "v2" and card["lineage"]["evidence"]["interval"] == [1, 2]
    rows = {r["version"]: r for r in model_versions(registry)[RM]}
    assert rows["v3"]["status"] == "champion" and rows["v3"]["parent"] == "v2"
    assert rows["v2"]["status"] == "retired"


def test_a_crash_in_the_middle_of_a_promotion_leaves_the_old_champion_served(
    registry, tmp_path
) -> None:
    from serve.models import load_served_model

    challenger = tmp_path / "challengers" / RM / "c1"
    shutil.copytree(registry / RM / "v1", challenger)

    def crash() -> None:
        raise KeyboardInterrupt("killed between the new folder and the decision")

    with pytest.raises(KeyboardInterrupt):
        promote(registry, RM, challenger, {"parent": "v2"}, serve_app=False, before_record=crash)
    # the new folder is there, whole, but no decision names it: v2 is still served by default
    assert (registry / RM / "v3" / "weights.safetensors").is_file()
    assert champion(registry, RM) == "v2"
    assert load_served_model(registry, RM).version == "v2"
    statuses = {r["version"]: r["status"] for r in model_versions(registry)[RM]}
    assert statuses == {"v1": "available", "v2": "champion", "v3": "unpromoted"}


def test_rejections_are_remembered_with_their_evidence(registry) -> None:
    from swarm_ray.registry.champions import record_rejected

    record_rejected(registry, RM, id="c20240815", reason="lost", evidence={"interval": [-3, -1]})
    (entry,) = rejected(registry, RM)
    assert entry["id"] == "c20240815" and entry["evidence"]["interval"] == [-3, -1]
    assert serving_version(registry, RM) == "v2"
