"""``swarm-ray backtest --l2``: the swarm's coordinator every second on an L2 recording, filled
by the queue model, beside the baselines on the environment's tick replay."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from swarm_ray.core.config import load_config, resolve_path
from swarm_ray.evaluation.backtest_config import BacktestConfig
from swarm_ray.evaluation.tick import TickRun, run_tick_backtest, symbol_of_l2
from tests.conftest import ROOT, quoting_registry

L2 = ("data/binance-l2/spot/btcusdt_20240808.gz", "data/binance-l2/spot/btcusdt_20240809.gz")
HISTORY = ("data/binance-spot-1m/BTCUSDT-1m-2024-08-08.csv",)


def config(tmp_path: Path, threshold: float) -> BacktestConfig:
    swarm = yaml.safe_load((ROOT / "configs" / "paper.yaml").read_text())
    swarm["consensus"]["threshold"] = threshold
    swarm["agents"]["unlikely_vote"] = "keep"  # the v2 models' own votes: they quote
    path = tmp_path / "swarm.yaml"
    path.write_text(yaml.safe_dump(swarm))
    cfg = load_config(resolve_path("configs/backtest.yaml"), BacktestConfig)
    models = quoting_registry(tmp_path / "models")
    return cfg.model_copy(update={"swarm_config": str(path), "models_dir": str(models)})


def test_the_swarm_cycles_every_second_and_fills_through_the_queue(tmp_path: Path) -> None:
    # the models' own votes and a low threshold make them carry: the mechanics, not a figure
    cfg = config(tmp_path, threshold=0.3)
    run = TickRun("BTCUSDT", L2, HISTORY, interval_ms=1000, queue_model="power_prob")
    res = run_tick_backtest(cfg, run, strategies=["swarm", "fixed_spread"])
    swarm = res.records["swarm"][0]
    assert swarm.n_bars == 649 and len(swarm.decisions) == 649
    assert sum(swarm.carried) > 50 and swarm.quoting.sum() > 50
    assert len(swarm.fills) > 0  # quotes at the touch fill from the queue
    fixed = res.records["fixed_spread"][0]
    assert fixed.n_bars == 649 and fixed.quoting.all()
    assert res.fill_model == run.fill_model() | {"queue_model": "power_prob"}
    out = res.to_json()
    assert out["fill_model"]["kind"] == "queue" and out["fill_model"]["interval_ms"] == 1000


def test_the_command_prints_the_fill_model_and_refuses_what_the_tick_replay_cannot_run() -> None:
    cmd = [sys.executable, "-m", "swarm_ray", "backtest", "--l2", *L2, "--history", *HISTORY,
           "--strategies", "stand_aside", "fixed_spread", "--json"]  # fmt: skip
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, cwd=ROOT, timeout=300)
    res = json.loads(out.stdout.splitlines()[-1])
    assert res["fill_model"]["kind"] == "queue" and set(res["strategies"]) == {
        "stand_aside",
        "fixed_spread",
    }
    bad = subprocess.run(
        [*cmd[:-4], "--strategies", "avellaneda_stoikov"], capture_output=True, text=True, cwd=ROOT
    )
    assert bad.returncode != 0 and "do not run on the tick replay" in bad.stderr


def test_trades_and_book_ticker_files_backtest_like_a_recording(tmp_path: Path) -> None:
    from envs.data.ticks import l2_to_ticks

    files = ("data/binance-l2/usdm/ethusdt_20240718.gz", "data/binance-l2/usdm/ethusdt_20240719.gz")
    trades, tickers = l2_to_ticks(files, tmp_path, "ETHUSDT")
    cmd = [sys.executable, "-m", "swarm_ray", "backtest", "--trades", str(trades),
           "--book-ticker", str(tickers), "--strategies", "fixed_spread", "--json"]  # fmt: skip
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, cwd=ROOT, timeout=300)
    res = json.loads(out.stdout.splitlines()[-1])
    assert res["fill_model"]["data"] == "trades + bookTicker (the touch)"
    fixed = res["strategies"]["fixed_spread"]
    assert fixed["quoting_share"] == 1.0 and fixed["bars"] >= 400  # 8 minutes of 1 s steps
    alone = subprocess.run(cmd[:6] + cmd[8:], capture_output=True, text=True, cwd=ROOT)
    assert alone.returncode != 0 and "--book-ticker" in alone.stderr


def test_symbol_from_the_recorder_file_name() -> None:
    assert symbol_of_l2("data/x/btcusdt_20240808.gz") == "BTCUSDT"
    assert symbol_of_l2("book.gz") is None
    assert symbol_of_l2("x/ETHUSDT-aggTrades-2024-07-18.csv") == "ETHUSDT"
    with pytest.raises(ValueError, match="fewer than 2 steps"):
        run_tick_backtest(
            load_config(resolve_path("configs/backtest.yaml"), BacktestConfig),
            TickRun("BTCUSDT", L2, interval_ms=3_600_000),
        )
