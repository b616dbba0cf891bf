"""The shipped swarm configs (paper, the tick replay and both Binance testnets) are complete runs
of their own: each loads with the project's loader, names its own run and journal, and the
testnet ones trade small on the testnet with keys from the environment only, failing in one line
without them."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
import yaml

from swarm_ray.commands._swarm import load_swarm_config
from swarm_ray.core.config import ConfigError
from swarm_ray.exchanges.config import BinanceCredentials
from swarm_ray.runtime.config import SwarmConfig
from tests.conftest import ROOT
from tests.fakes.binance_server import FakeBinance

ENV_KEYS = ("BINANCE_API_KEY", "BINANCE_API_SECRET")


def _swarm_config_files() -> list[Path]:
    """Every file under configs/ made only of swarm-config sections (a run's config)."""
    fields = set(SwarmConfig.model_fields)
    out = []
    for path in sorted((ROOT / "configs").glob("*.yaml")):
        data = yaml.safe_load(path.read_text())
        if isinstance(data, dict) and "exchange" in data and set(data) <= fields:
            out.append(path)
    return out


SWARM_CONFIGS = _swarm_config_files()
TESTNET_CONFIGS = {
    "binance_testnet.yaml": ("binance-spot", "spot-testnet", "5"),
    "binance_futures_testnet.yaml": ("binance-futures", "futures-testnet", "100"),
}


@pytest.fixture(autouse=True)
def _no_storage_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SWARM_RAY_STORAGE", raising=False)


def test_every_shipped_swarm_config_is_found() -> None:
    names = {p.name for p in SWARM_CONFIGS}
    assert names == {"paper.yaml", "paper_tick.yaml", *TESTNET_CONFIGS}


@pytest.mark.parametrize("path", SWARM_CONFIGS, ids=lambda p: p.name)
def test_shipped_swarm_config_loads_and_names_its_own_run_and_journal(path: Path) -> None:
    raw = yaml.safe_load(path.read_text())
    cfg = load_swarm_config(str(path))
    # explicit, not the defaults (which are the paper run's)
    assert raw["run_id"] == cfg.run_id
    assert raw["journal_dir"] == f"runs/{cfg.run_id}/journal"
    assert Path(cfg.journal_dir).parts[-3:] == ("runs", cfg.run_id, "journal")


def test_run_ids_and_journals_are_distinct_across_shipped_swarm_configs() -> None:
    cfgs = {p.name: load_swarm_config(str(p)) for p in SWARM_CONFIGS}
    run_ids = [c.run_id for c in cfgs.values()]
    journals = [c.journal_dir for c in cfgs.values()]
    assert len(set(run_ids)) == len(cfgs), run_ids
    assert len(set(journals)) == len(cfgs), journals
    states = [c.exchange.paper.state_path for c in cfgs.values() if c.exchange.paper]
    assert len(set(states)) == len(states)


@pytest.mark.parametrize("name", sorted(TESTNET_CONFIGS))
def test_testnet_config_trades_small_in_real_time_on_the_testnet(name: str) -> None:
    kind, run_id, min_notional = TESTNET_CONFIGS[name]
    cfg = load_swarm_config(str(ROOT / "configs" / name))
    assert (cfg.exchange.kind, cfg.run_id) == (kind, run_id)
    assert cfg.exchange.testnet and not cfg.exchange.is_mainnet and cfg.exchange.paper is None
    assert cfg.cycle.start is None and cfg.cycle.interval_s <= 60  # live: now, every few seconds
    assert not cfg.agents.llm.enabled  # no Groq key needed to start
    q = cfg.agents.quoting
    # a quote clears the venue's minimum notional (spot 5, USD-M BTCUSDT 100 USDT) with BTC above
    # 50,000, and a handful of fills reach the position limit
    assert Decimal(str(q.size)) * 50_000 >= Decimal(min_notional)
    assert 2 * q.size <= cfg.risk.max_position <= 10 * q.size
    assert cfg.risk.daily_loss_limit <= 0.05 * cfg.capital
    assert cfg.agents.risk_emergency_drawdown < cfg.risk.max_drawdown


@pytest.mark.parametrize("name", sorted(TESTNET_CONFIGS))
def test_testnet_config_has_no_key_fields(name: str) -> None:
    text = (ROOT / "configs" / name).read_text()
    data = yaml.safe_load(text)
    assert not {"api_key", "api_secret"} & set(data["exchange"])
    for var in ENV_KEYS:
        assert var in text  # the comment says where the keys come from


def test_missing_keys_are_one_line_naming_both_variables(monkeypatch) -> None:
    for var in ENV_KEYS:
        monkeypatch.delenv(var, raising=False)
    with pytest.raises(ConfigError) as info:
        BinanceCredentials.from_env()
    message = str(info.value)
    assert "\n" not in message
    assert all(var in message for var in ENV_KEYS)
    assert "BINANCE_API_KEY, BINANCE_API_SECRET" in message  # both listed as not set


@pytest.mark.parametrize("name", sorted(TESTNET_CONFIGS))
def test_check_exchange_on_a_testnet_config_without_keys_fails_in_one_line(
    name: str, monkeypatch, capsys
) -> None:
    from swarm_ray.cli import main

    for var in ENV_KEYS:
        monkeypatch.delenv(var, raising=False)
    kind = TESTNET_CONFIGS[name][0]
    config = str(ROOT / "configs" / name)
    with FakeBinance() as fake:
        argv = ["check-exchange", "--exchange", kind, "--config", config, "--symbol", "BTCUSDT"]
        code = main([*argv, "--base-url", fake.url])
        assert fake.requests == []  # nothing sent without keys
    out = capsys.readouterr()
    assert code == 1 and "Traceback" not in out.out + out.err
    (line,) = [x for x in out.out.splitlines() if "BINANCE_API_KEY" in x]
    assert "BINANCE_API_SECRET" in line
