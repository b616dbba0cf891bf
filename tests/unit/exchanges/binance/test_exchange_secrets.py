"""Keys never show up in reprs, logs, exceptions or pickles; configs refuse unsafe settings."""

from __future__ import annotations

import logging
import pickle
from decimal import Decimal

import pytest
from pydantic import SecretStr

from swarm_ray.core.config import ConfigError, load_config, parse_config
from swarm_ray.core.domain import OrderIntent, Side
from swarm_ray.exchanges.config import BinanceCredentials, ExchangeConfig
from swarm_ray.exchanges.errors import ExchangeError
from tests.fakes.binance_server import DOC_API_KEY, DOC_API_SECRET, FakeBinance, Fault, exchange_on


def test_credentials_repr_str_and_pickle_never_reveal_keys() -> None:
    creds = BinanceCredentials(SecretStr(DOC_API_KEY), SecretStr(DOC_API_SECRET))
    text = repr(creds) + str(creds) + repr(creds.api_key)
    assert DOC_API_KEY not in text and DOC_API_SECRET not in text
    with pytest.raises(TypeError):
        pickle.dumps(creds)


def test_logs_and_errors_of_a_faulty_session_contain_no_key_or_secret(caplog) -> None:
    with FakeBinance() as fake, caplog.at_level(logging.DEBUG):
        ex = exchange_on(fake)
        fake.inject(Fault("lost"), Fault("http500", method="GET", endpoint="account"))
        ex.place_order(OrderIntent("BTCUSDT", Side.BUY, Decimal("50000"), Decimal("0.001"), "s"))
        with pytest.raises(ExchangeError) as info:
            ex.balances()
        text = caplog.text + str(info.value) + repr(info.value) + repr(ex)
    assert caplog.records  # the session did log
    assert DOC_API_KEY not in text and DOC_API_SECRET not in text


def test_missing_env_keys_is_a_config_error_naming_the_variables(monkeypatch) -> None:
    monkeypatch.delenv("BINANCE_API_KEY", raising=False)
    monkeypatch.setenv("BINANCE_API_SECRET", "x")
    with pytest.raises(ConfigError, match="BINANCE_API_KEY"):
        BinanceCredentials.from_env()


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"kind": "binance-spot", "testnet": False}, "allow_mainnet"),
        ({"kind": "binance-spot", "recv_window_ms": 10000}, "recv_window_ms"),
        ({"kind": "binance-spot", "api_key": "abc"}, "unknown key"),
        ({"kind": "kraken"}, "kind"),
        ({"kind": "binance-spot", "base_url": "localhost:80"}, "base_url"),
    ],
)
def test_unsafe_or_wrong_exchange_configs_are_rejected(data, field) -> None:
    with pytest.raises(ConfigError, match=field):
        parse_config(ExchangeConfig, data)


def test_defaults_are_testnet_and_mainnet_needs_both_switches() -> None:
    cfg = ExchangeConfig(kind="binance-spot")
    assert cfg.testnet and not cfg.is_mainnet and "testnet" in cfg.rest_root()
    live = ExchangeConfig(kind="binance-futures", testnet=False, allow_mainnet=True)
    assert live.rest_root() == "https://fapi.binance.com"


@pytest.mark.parametrize("name", ["binance_testnet.yaml", "binance_futures_testnet.yaml"])
def test_shipped_exchange_configs_load_and_are_testnet(name: str) -> None:
    cfg = load_config(f"configs/{name}", ExchangeConfig, section="exchange")
    assert cfg.testnet and not cfg.is_mainnet and cfg.recv_window_ms <= 5000
