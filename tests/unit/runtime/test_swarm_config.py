"""The swarm config refuses symbols it cannot trade when it is loaded, naming the field."""

from __future__ import annotations

import pytest

from swarm_ray.core.config import ConfigError, parse_config
from swarm_ray.runtime.config import SwarmConfig


def _parse(data: dict) -> SwarmConfig:
    return parse_config(SwarmConfig, data, "swarm.yaml")


def test_a_symbol_the_paper_exchange_has_no_data_for_fails_at_load() -> None:
    with pytest.raises(ConfigError, match=r"symbols: the paper exchange has no data for \['ETH"):
        _parse({"symbols": ["BTCUSDT", "ETHUSDT"]})


def test_paper_symbols_configured_with_data_are_accepted() -> None:
    day = "data/binance-spot-1m/BTCUSDT-1m-2024-08-20.csv"
    cfg = _parse(
        {
            "symbols": ["ETHUSDT"],
            "exchange": {"kind": "paper", "paper": {"symbols": {"ETHUSDT": {"klines": [day]}}}},
        }
    )
    assert cfg.symbols == ("ETHUSDT",)


@pytest.mark.parametrize(
    ("symbols", "message"),
    [(["btcusdt"], r"symbols\[0\]: 'btcusdt' is not an exchange symbol"),
     (["BTC/USDT"], r"symbols\[0\]: 'BTC/USDT'"),
     (["BTCUSDT", "BTCUSDT"], r"symbols: listed twice")],
)  # fmt: skip
def test_malformed_or_repeated_symbols_fail_at_load(symbols, message) -> None:
    with pytest.raises(ConfigError, match=message):
        _parse({"symbols": symbols})


def test_binance_symbols_are_checked_for_form_only_at_load() -> None:
    cfg = _parse({"symbols": ["SOLUSDT"], "exchange": {"kind": "binance-spot"}})
    assert cfg.symbols == ("SOLUSDT",)
