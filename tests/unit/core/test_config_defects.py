"""Configs refuse non-finite numbers and empty files; a fuzzed paper.yaml never loads a
config with a switched-off limit."""

from __future__ import annotations

import copy
import math
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from serve.app import ModelAppArgs
from swarm_ray.core.config import ConfigError, load_config, parse_config
from swarm_ray.evaluation.backtest_config import BacktestConfig
from swarm_ray.exchanges.config import ExchangeConfig
from swarm_ray.runtime.config import SwarmConfig
from swarm_ray.training.config import TrainConfig
from tests.conftest import ROOT

ROOT = ROOT
PAPER = yaml.safe_load((ROOT / "configs" / "paper.yaml").read_text())
TRAIN = yaml.safe_load((ROOT / "configs" / "train_dqn.yaml").read_text())
BACKTEST = yaml.safe_load((ROOT / "configs" / "backtest.yaml").read_text())
EXCHANGE = yaml.safe_load((ROOT / "configs" / "binance_testnet.yaml").read_text())

NON_FINITE = [math.inf, -math.inf, math.nan, "inf", "nan", "-Infinity", "1e999"]


def _with(data: dict[str, Any], path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    out = copy.deepcopy(data)
    node = out
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return out


def _write(tmp_path: Path, data: Any, name: str = "cfg.yaml") -> Path:
    f = tmp_path / name
    f.write_text(yaml.safe_dump(data, sort_keys=False))
    return f


# ------------------------------------------------------------------------- inf and NaN


def _names(msg: str, path: tuple[Any, ...]) -> bool:
    """The message names the field: its dotted path, or its mapping's path and its key."""
    dotted = ".".join(map(str, path))
    return dotted in msg or (".".join(map(str, path[:-1])) in msg and str(path[-1]) in msg)


SWARM_FIELDS = [
    ("risk", "max_notional"),
    ("risk", "daily_loss_limit"),
    ("capital",),
    ("cycle", "max_data_age_s"),
    ("risk", "max_volatility_bps"),
    ("cycle", "interval_s"),
    ("agents", "model_timeout_s"),
    ("risk", "max_position"),
    ("consensus", "weights", "risk_manager"),
    ("exchange", "paper", "maker_fee_bps"),  # a Decimal
    ("exchange", "paper", "initial_balances", "USDT"),  # a Decimal in a mapping
    ("agents", "quoting", "size"),
]


@pytest.mark.parametrize("value", NON_FINITE, ids=repr)
@pytest.mark.parametrize("path", SWARM_FIELDS, ids=".".join)
def test_swarm_config_refuses_non_finite_numbers(tmp_path, path, value) -> None:
    f = _write(tmp_path, _with(PAPER, path, value))
    with pytest.raises(ConfigError) as info:
        load_config(f, SwarmConfig)
    msg = str(info.value)
    assert str(f) in msg and _names(msg, path)
    if value in (math.inf, "inf", "1e999"):  # past every lower bound: not finite, or too large
        assert "finite" in msg or "less than" in msg


def test_yaml_inf_spelling_is_refused_too(tmp_path) -> None:
    text = (ROOT / "configs" / "paper.yaml").read_text()
    f = tmp_path / "paper.yaml"
    f.write_text(text.replace("max_notional: 5000.0", "max_notional: .inf"))
    with pytest.raises(ConfigError, match=r"risk\.max_notional.*finite"):
        load_config(f, SwarmConfig)


@pytest.mark.parametrize(
    ("model", "data", "path", "section"),
    [
        (TrainConfig, TRAIN, ("dqn", "lr"), None),
        (TrainConfig, TRAIN, ("analysis", "weight_decay"), None),
        (TrainConfig, TRAIN, ("env", "max_inventory"), None),  # a free-form mapping
        (BacktestConfig, BACKTEST, ("sizing", "order_notional"), None),
        (BacktestConfig, BACKTEST, ("periods_per_year",), None),
        (ExchangeConfig, EXCHANGE, ("exchange", "request_timeout_s"), "exchange"),
        (ExchangeConfig, EXCHANGE, ("exchange", "market_data_max_age_s"), "exchange"),
        (ModelAppArgs, {"models_dir": "models"}, ("request_timeout_s",), None),
        (ModelAppArgs, {"models_dir": "models"}, ("replica_cpus",), None),
    ],
    ids=lambda v: ".".join(v) if isinstance(v, tuple) else getattr(v, "__name__", ""),
)
@pytest.mark.parametrize("value", [math.inf, math.nan], ids=repr)
def test_every_config_model_refuses_non_finite_numbers(
    tmp_path, model, data, path, section, value
) -> None:
    f = _write(tmp_path, _with(data, path, value))
    with pytest.raises(ConfigError) as info:
        load_config(f, model, section=section)
    field = ".".join(path[1:] if section else path)
    msg = str(info.value)
    assert str(f) in msg and field in msg
    assert "finite" in msg or "less than" in msg or value != value  # a range check may come first


def test_parse_config_refuses_non_finite_numbers_as_serve_deploy_passes_them() -> None:
    with pytest.raises(ConfigError, match=r"swarm_models\.args.*request_timeout_s.*finite"):
        parse_config(ModelAppArgs, {"request_timeout_s": math.inf}, "swarm_models.args")


def test_infinite_capital_no_longer_makes_drawdown_nan(tmp_path) -> None:
    f = _write(tmp_path, _with(PAPER, ("capital",), math.inf))
    with pytest.raises(ConfigError, match="capital"):
        load_config(f, SwarmConfig)


# The strict base model itself should refuse them too (direct construction, ``serve run``
# building ModelAppArgs from its args); active once envs.config.StrictModel forbids inf/NaN.
def _base_allows_inf() -> bool:
    from envs.config import StrictModel

    return StrictModel.model_config.get("allow_inf_nan", True) is not False


@pytest.mark.skipif(_base_allows_inf(), reason="envs.config.StrictModel still allows inf/NaN")
@pytest.mark.parametrize(
    "build",
    [
        lambda: SwarmConfig.model_validate({"risk": {"max_notional": math.inf}}),
        lambda: ExchangeConfig(request_timeout_s=math.nan),
        lambda: ModelAppArgs(request_timeout_s=math.inf),
        lambda: BacktestConfig.model_validate({"sizing": {"order_notional": "inf"}}),
    ],
)
def test_models_refuse_non_finite_numbers_when_built_directly(build) -> None:
    with pytest.raises(ValueError, match="finite"):
        build()


# ------------------------------------------------------------------------- empty files


@pytest.mark.parametrize(
    "text", ["", "\n\n", "# only a comment\n# and another\n", "null\n", "~\n", "---\n"]
)
def test_an_empty_config_file_is_refused(tmp_path, text) -> None:
    f = tmp_path / "empty.yaml"
    f.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_config(f, SwarmConfig)
    assert str(f) in str(info.value) and "empty" in str(info.value)


@pytest.mark.parametrize("text", ["- a\n- b\n", "42\n", "just a string\n", "[1, 2]\n"])
@pytest.mark.parametrize("section", [None, "exchange"])
def test_a_config_whose_top_level_is_not_a_mapping_is_refused(tmp_path, text, section) -> None:
    f = tmp_path / "list.yaml"
    f.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_config(f, ExchangeConfig, section=section)
    assert str(f) in str(info.value) and "mapping" in str(info.value)


@pytest.mark.parametrize("text", ["exchange:\n", "exchange: null\n", "exchange: # todo\n"])
def test_an_empty_section_is_refused(tmp_path, text) -> None:
    f = tmp_path / "ex.yaml"
    f.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_config(f, ExchangeConfig, section="exchange")
    msg = str(info.value)
    assert str(f) in msg and "exchange" in msg and "empty" in msg


def test_deeply_nested_yaml_is_a_config_error(tmp_path) -> None:
    f = tmp_path / "deep.yaml"
    f.write_text("env: " + "[" * 20_000 + "]" * 20_000 + "\n")
    with pytest.raises(ConfigError, match=str(f)):
        load_config(f, TrainConfig)


def test_parse_config_of_none_still_means_defaults() -> None:
    # serve's user_config may be None: the model's defaults, not an error
    assert parse_config(ExchangeConfig, None) == ExchangeConfig()


# ------------------------------------------------------------------------- fuzz


def _at(data: Any, path: tuple[Any, ...]) -> Any:
    for key in path:
        data = data[key]
    return data


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out: list[tuple[Any, ...]] = []
    items = node.items() if isinstance(node, dict) else enumerate(node)
    for key, value in items:
        path = (*prefix, key)
        out.append(path)
        if isinstance(value, dict | list):
            out.extend(_paths(value, path))
    return out


PAPER_PATHS = _paths(PAPER)
NUMERIC_PATHS = [
    p
    for p in PAPER_PATHS
    if isinstance(_at(PAPER, p), int | float) and not isinstance(_at(PAPER, p), bool)
]

# limits whose value must be finite and > 0 when a config loads
LIMITS = [
    ("capital",),
    ("risk", "max_position"),
    ("risk", "max_notional"),
    ("risk", "max_drawdown"),
    ("risk", "daily_loss_limit"),
    ("risk", "stop_loss"),
    ("risk", "max_volatility_bps"),
    ("cycle", "interval_s"),
    ("cycle", "max_data_age_s"),
    ("agents", "model_timeout_s"),
    ("agents", "risk_max_volatility_bps"),
    ("agents", "risk_emergency_drawdown"),
    ("consensus", "threshold"),
    ("consensus", "quorum"),
    ("exchange", "request_timeout_s"),
    ("exchange", "market_data_max_age_s"),
]

scalars = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.floats(min_value=-1e6, max_value=-1e-9),
    st.sampled_from([math.inf, -math.inf, math.nan, 0, -1, 0.0, 1e308, 10**400, -(10**30)]),
    st.integers(min_value=-(2**80), max_value=2**80),
    st.sampled_from(["inf", "nan", "-inf", "Infinity", "1e999", "NaN", "", "0", "x"]),
    st.text(max_size=12),
    st.booleans(),
    st.none(),
)
dangerous = st.sampled_from(
    [math.inf, -math.inf, math.nan, "inf", ".inf", "Infinity", "1e999", 1e308, 10**400, -1, 0]
)
nested = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=6,
)
values = st.one_of(dangerous, scalars, nested)


def _numbers(value: Any, path: str = "") -> list[tuple[str, Any]]:
    if isinstance(value, BaseModel):
        return [
            n
            for name in type(value).model_fields
            for n in _numbers(getattr(value, name), f"{path}.{name}".lstrip("."))
        ]
    if isinstance(value, dict):
        return [n for k, v in value.items() for n in _numbers(v, f"{path}.{k}")]
    if isinstance(value, list | tuple):
        return [n for i, v in enumerate(value) for n in _numbers(v, f"{path}.{i}")]
    if isinstance(value, float | Decimal) and not isinstance(value, bool):
        return [(path, value)]
    return []


@settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(path=st.one_of(st.sampled_from(NUMERIC_PATHS), st.sampled_from(PAPER_PATHS)), value=values)
@example(path=("risk", "max_notional"), value=math.inf)
@example(path=("risk", "daily_loss_limit"), value=math.inf)
@example(path=("capital",), value=math.inf)
@example(path=("cycle", "max_data_age_s"), value=math.inf)
@example(path=("risk", "max_volatility_bps"), value="inf")
@example(path=("cycle", "interval_s"), value=math.inf)
@example(path=("agents", "model_timeout_s"), value="1e999")
def test_fuzzed_paper_config_loads_with_finite_limits_or_names_the_field(
    tmp_path, path, value
) -> None:
    f = _write(tmp_path, _with(PAPER, path, value), "fuzz.yaml")
    try:
        cfg = load_config(f, SwarmConfig)
    except ConfigError as exc:
        msg = str(exc)
        named = [k for k in path if isinstance(k, str)]
        assert str(f) in msg, msg
        assert named[-1] in msg, f"{path}={value!r}: {msg}"
        return
    for where, number in _numbers(cfg):
        assert math.isfinite(number), f"{path}={value!r} loaded {where}={number}"
    for limit in LIMITS:
        node: Any = cfg
        for key in limit:
            node = getattr(node, key)
        assert math.isfinite(node) and node > 0, f"{path}={value!r} loaded {limit}={node}"
