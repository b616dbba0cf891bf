from __future__ import annotations

from pathlib import Path

import pytest

from envs.config import MarketMakingConfig, make_config
from swarm_ray.core.config import (
    ConfigError,
    load_config,
    parse_config,
    resolve_path,
    secret_from_env,
)
from swarm_ray.evaluation.backtest import EvaluateConfig


def test_load_config_unknown_key_names_field_and_file(tmp_path: Path) -> None:
    f = tmp_path / "eval.yaml"
    f.write_text("fixed_spread:\n  half_spread_bps: 5\n  halfspread: 3\n")
    with pytest.raises(ConfigError) as exc:
        load_config(f, EvaluateConfig)
    msg = str(exc.value)
    assert str(f) in msg
    assert "fixed_spread.halfspread" in msg
    assert "unknown key" in msg


def test_load_config_wrong_type_names_field(tmp_path: Path) -> None:
    f = tmp_path / "eval.yaml"
    f.write_text("fixed_spread:\n  half_spread_bps: wide\n")
    with pytest.raises(ConfigError, match=r"fixed_spread\.half_spread_bps"):
        load_config(f, EvaluateConfig)


def test_load_config_out_of_range_value_is_rejected(tmp_path: Path) -> None:
    f = tmp_path / "eval.yaml"
    f.write_text("fixed_spread:\n  half_spread_bps: -1\n")
    with pytest.raises(ConfigError, match="greater than 0"):
        load_config(f, EvaluateConfig)


def test_load_config_missing_file_and_bad_yaml(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.yaml", EvaluateConfig)
    bad = tmp_path / "bad.yaml"
    bad.write_text("a: [1, 2\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad, EvaluateConfig)
    top = tmp_path / "list.yaml"
    top.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="mapping"):
        load_config(top, EvaluateConfig)


def test_load_config_section(tmp_path: Path) -> None:
    f = tmp_path / "all.yaml"
    f.write_text("evaluate:\n  seed: 7\n")
    assert load_config(f, EvaluateConfig, section="evaluate").seed == 7
    with pytest.raises(ConfigError, match="missing section 'train'"):
        load_config(f, EvaluateConfig, section="train")


def test_configs_are_frozen() -> None:
    cfg = parse_config(EvaluateConfig, {"seed": 1})
    with pytest.raises(Exception, match="frozen"):
        cfg.seed = 2  # type: ignore[misc]


def test_bundled_evaluate_config_loads() -> None:
    cfg = load_config(resolve_path("configs/evaluate.yaml"), EvaluateConfig)
    assert cfg.fit_files and cfg.fixed_spread.half_spread_bps > 0
    assert all(resolve_path(f).is_file() for f in cfg.fit_files)


def test_env_config_presets_and_overrides() -> None:
    cfg = make_config({"preset": "as2008", "fills": {"k": 2.0}})
    assert cfg.fills.k == 2.0 and cfg.fills.A == 140.0 and cfg.midprice.sigma == 2.0
    assert cfg.midprice.increments == "binomial" and cfg.n_steps == 200 and cfg.dt == 0.005
    with pytest.raises(ValueError, match="unknown preset"):
        make_config({"preset": "nope"})


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"actions": {"tight": 2.0, "wide": 1.0}}, "tight"),
        ({"midprice": {"kind": "replay"}}, "midprice.files"),
        ({"fills": {"kind": "trade_through"}}, "trade_through"),
        ({"n_steps": 0}, "n_steps"),
        ({"reward": {"kind": "sharpe"}}, "reward.kind"),
        ({"dt": 0.01, "bogus": 1}, "bogus"),
    ],
)
def test_env_config_rejects_bad_values(data: dict, field: str) -> None:
    with pytest.raises(ValueError, match=field.split(".")[0]):
        MarketMakingConfig.model_validate(data)
    with pytest.raises(ConfigError, match=field.split(".")[-1]):
        parse_config(MarketMakingConfig, data, "env.yaml")


def test_secret_from_env_is_masked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SWARM_TEST_SECRET", "s3cr3t-value")
    secret = secret_from_env("SWARM_TEST_SECRET")
    assert secret is not None and secret.get_secret_value() == "s3cr3t-value"
    assert "s3cr3t" not in repr(secret) and "s3cr3t" not in str(secret)
    monkeypatch.setenv("SWARM_TEST_SECRET", "")
    assert secret_from_env("SWARM_TEST_SECRET") is None
