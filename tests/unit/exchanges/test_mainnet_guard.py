"""Mainnet is decided by the endpoints a config resolves to, not by the ``testnet`` flag.

Any REST or websocket root that is not a known Binance testnet host or a loopback address is
real money: the config needs ``allow_mainnet: true`` and the CLI a confirmation on top.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from swarm_ray.cli import main
from swarm_ray.core.config import ConfigError, load_config, parse_config
from swarm_ray.exchanges.config import ExchangeConfig
from swarm_ray.runtime.config import SwarmConfig

MAINNET_LIKE = [
    "https://api.binance.com",
    "https://fapi.binance.com",
    "https://api1.binance.com:443",
    "http://10.0.0.5:8080",  # a proxy: where it forwards is unknown, so real money
    "http://0.0.0.0:8080",
    "https://testnet.binance.vision.example.com",
    "https://binance.vision",
    "http://[::ffff:10.0.0.1]:80",
    "https://localhost.example.com",
]
NOT_MAINNET = [
    "https://testnet.binance.vision",
    "https://TESTNET.binance.vision",
    "https://testnet.binancefuture.com",
    "http://127.0.0.1:8080",
    "http://127.5.6.7",
    "http://[::1]:9000",
    "http://[::ffff:127.0.0.1]:80",
    "http://localhost:8080",
    "http://LOCALHOST",
]


@pytest.mark.parametrize("url", MAINNET_LIKE)
@pytest.mark.parametrize("kind", ["binance-spot", "binance-futures"])
def test_a_non_testnet_base_url_needs_allow_mainnet_even_with_testnet_left_on(kind, url) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(ExchangeConfig, {"kind": kind, "base_url": url}, "ex.yaml")
    msg = str(info.value)
    assert "base_url" in msg and url.rstrip("/") in msg and "allow_mainnet" in msg
    assert "mainnet" in msg.replace("allow_mainnet", "")


@pytest.mark.parametrize("url", ["wss://stream.binance.com:9443", "ws://192.168.1.2:9000"])
def test_a_non_testnet_ws_url_needs_allow_mainnet(url) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(ExchangeConfig, {"kind": "binance-spot", "ws_url": url}, "ex.yaml")
    msg = str(info.value)
    assert "ws_url" in msg and url in msg and "allow_mainnet" in msg


@pytest.mark.parametrize("url", MAINNET_LIKE)
def test_with_allow_mainnet_it_loads_and_says_mainnet(url) -> None:
    cfg = ExchangeConfig(kind="binance-spot", base_url=url, allow_mainnet=True)
    assert cfg.is_mainnet and cfg.network == "mainnet"


@pytest.mark.parametrize("url", NOT_MAINNET)
def test_testnet_hosts_and_loopback_are_not_mainnet(url) -> None:
    cfg = ExchangeConfig(kind="binance-spot", base_url=url)
    assert not cfg.is_mainnet and cfg.network == "testnet"
    cfg = ExchangeConfig(kind="binance-spot", base_url=url, ws_url=url.replace("http", "ws"))
    assert not cfg.is_mainnet


def test_testnet_false_with_both_endpoints_on_loopback_is_not_real_money() -> None:
    cfg = ExchangeConfig(
        kind="binance-spot",
        testnet=False,
        base_url="http://127.0.0.1:1",
        ws_url="ws://127.0.0.1:2",
    )
    assert not cfg.is_mainnet
    # the default websocket root of testnet: false is Binance's mainnet stream
    with pytest.raises(ConfigError, match="ws_url"):
        parse_config(
            ExchangeConfig, {"kind": "binance-spot", "testnet": False, "base_url": "http://[::1]:1"}
        )


@pytest.mark.parametrize(
    "url",
    [
        "https://testnet.binance.vision@api.binance.com",
        "https://api.binance.com?x=testnet.binance.vision",
        "https://api.binance.com#testnet.binance.vision",
        "https://api.binance.com\\@testnet.binance.vision",
        "https://api.binance.com:notaport",
    ],
)
def test_urls_that_could_hide_their_host_are_refused(url) -> None:
    with pytest.raises(ConfigError, match="base_url"):
        parse_config(
            ExchangeConfig, {"kind": "binance-spot", "base_url": url, "allow_mainnet": True}
        )


def test_paper_ignores_endpoints() -> None:
    cfg = ExchangeConfig(kind="paper")
    assert not cfg.is_mainnet and cfg.network == "paper"


def test_binance_exchange_name_says_mainnet_for_a_mainnet_endpoint() -> None:
    from swarm_ray.exchanges.binance import BinanceExchange

    cfg = ExchangeConfig(
        kind="binance-spot", base_url="https://api.binance.com", allow_mainnet=True
    )
    ex = BinanceExchange(cfg, None)
    try:
        assert ex.name == "binance-spot" and "testnet" not in repr(ex)
    finally:
        ex.close()


# --------------------------------------------------------------------------- check-exchange


def _exchange_yaml(tmp_path: Path, **fields: object) -> Path:
    lines = ["exchange:", "  kind: binance-spot"]
    lines += [f"  {k}: {str(v).lower() if isinstance(v, bool) else v}" for k, v in fields.items()]
    f = tmp_path / "exchange.yaml"
    f.write_text("\n".join(lines) + "\n")
    return f


@pytest.fixture
def no_venue(monkeypatch):
    """Any attempt to build the exchange fails the test: nothing may be sent."""

    def boom(*a, **k):
        raise AssertionError("an exchange was built: requests would have been sent")

    monkeypatch.setattr("swarm_ray.commands.check_exchange.BinanceExchange", boom)


def _argv(*extra: str) -> list[str]:
    return ["check-exchange", "--exchange", "binance-spot", "--symbol", "BTCUSDT", *extra]


def test_check_exchange_mainnet_base_url_without_flags_is_refused(no_venue, capsys) -> None:
    code = main(_argv("--base-url", "https://api.binance.com", "--json"))
    err = capsys.readouterr().err
    assert code == 2
    assert "base_url" in err and "https://api.binance.com" in err and "allow_mainnet" in err


def test_check_exchange_mainnet_config_still_needs_the_mainnet_flag(
    tmp_path, no_venue, capsys, monkeypatch
) -> None:
    f = _exchange_yaml(tmp_path, base_url="https://api.binance.com", allow_mainnet=True)
    monkeypatch.setattr("builtins.input", lambda: pytest.fail("asked without --mainnet"))
    code = main(_argv("--config", str(f), "--json"))
    err = capsys.readouterr().err
    assert code == 2 and "--mainnet" in err and "https://api.binance.com" in err


def test_check_exchange_mainnet_config_with_flag_asks_for_the_confirmation(
    tmp_path, no_venue, capsys, monkeypatch
) -> None:
    f = _exchange_yaml(tmp_path, base_url="https://api.binance.com", allow_mainnet=True)
    asked: list[bool] = []
    monkeypatch.setattr("builtins.input", lambda: asked.append(True) or "yes")
    code = main(_argv("--config", str(f), "--mainnet", "--json"))
    assert code == 2 and asked and "not confirmed" in capsys.readouterr().err


def test_check_exchange_confirmed_mainnet_reports_mainnet(tmp_path, capsys, monkeypatch) -> None:
    from swarm_ray.commands.check_exchange import MAINNET_CONFIRMATION

    f = _exchange_yaml(tmp_path, base_url="https://api.binance.com", allow_mainnet=True)
    monkeypatch.setattr("builtins.input", lambda: MAINNET_CONFIRMATION)
    monkeypatch.delenv("BINANCE_API_KEY", raising=False)  # stops before anything is sent
    monkeypatch.delenv("BINANCE_API_SECRET", raising=False)
    code = main(_argv("--config", str(f), "--mainnet", "--json"))
    out = capsys.readouterr().out
    report = __import__("json").loads(out[out.index("{") :])
    assert code == 1 and report["network"] == "mainnet"
    assert report["base_url"] == "https://api.binance.com"


def test_check_exchange_text_report_names_mainnet(tmp_path, capsys, monkeypatch) -> None:
    from swarm_ray.commands.check_exchange import MAINNET_CONFIRMATION

    f = _exchange_yaml(tmp_path, ws_url="wss://stream.binance.com:9443", allow_mainnet=True)
    monkeypatch.setattr("builtins.input", lambda: MAINNET_CONFIRMATION)
    monkeypatch.delenv("BINANCE_API_KEY", raising=False)
    code = main(_argv("--config", str(f), "--mainnet"))
    out = capsys.readouterr().out
    assert code == 1 and "(mainnet)" in out and "(testnet)" not in out


# --------------------------------------------------------------------------------- run


def test_run_refuses_a_mainnet_endpoint_without_yes_mainnet(tmp_path, monkeypatch, capsys) -> None:
    def no_ray(*a, **k):
        raise AssertionError("Ray was started for a mainnet config without --yes-mainnet")

    monkeypatch.setattr("swarm_ray.commands._swarm.init_ray", no_ray)
    f = tmp_path / "live.yaml"
    f.write_text(
        "exchange:\n  kind: binance-futures\n  base_url: https://fapi.binance.com\n"
        "  allow_mainnet: true\n"
    )
    assert load_config(f, SwarmConfig).exchange.is_mainnet
    code = main(["run", "--config", str(f)])
    assert code == 2 and "mainnet" in capsys.readouterr().err
