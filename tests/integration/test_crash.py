"""SIGKILL a real ``swarm-ray run`` (driver and its local Ray cluster) at seeded random moments
over a replayed day, restart it each time, and check that the journal and the venue agree on
every order, every fill and the position."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest
import yaml

from swarm_ray.core.clock import SimulatedClock
from swarm_ray.core.config import parse_config
from swarm_ray.core.domain import OrderStatus, Side
from swarm_ray.exchanges.paper import PaperExchange
from swarm_ray.journal import Journal
from swarm_ray.runtime.config import SwarmConfig
from tests.conftest import ROOT

KILLS = 3


def write_config(tmp: Path) -> Path:
    data = yaml.safe_load((ROOT / "configs" / "paper.yaml").read_text())
    data.update(run_id="crash", journal_dir=str(tmp / "journal"), metrics=False)
    data["exchange"]["paper"]["state_path"] = str(tmp / "paper.sqlite")
    data["agents"].update(inference="scripted", scripted_action="quote_tight")
    data["cycle"]["start"] = "2024-08-20T06:00:00Z"  # most of the day: ~1,080 cycles
    path = tmp / "crash.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def start(cfg: Path, log: Path) -> subprocess.Popen:
    # its own session, so that one signal reaches the driver and the Ray cluster it started
    return subprocess.Popen(
        [sys.executable, "-m", "swarm_ray", "run", "--config", str(cfg)],
        cwd=ROOT,
        stdout=log.open("a"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


@pytest.mark.slow
def test_sigkilled_runs_leave_journal_and_venue_in_agreement(tmp_path) -> None:
    cfg_path = write_config(tmp_path)
    log = tmp_path / "run.log"
    rng = np.random.default_rng(7)
    for k in range(KILLS):
        proc = start(cfg_path, log)
        deadline = time.monotonic() + 120  # start-up: Ray, the actors, reconciling
        while log.read_text().count("swarm crash:") <= k and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(float(rng.uniform(0.3, 1.5)))  # then kill it mid-cycles
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        time.sleep(1.0)
    proc = start(cfg_path, log)  # the last run trades to the end of the replay
    assert proc.wait(timeout=300) == 0, log.read_text()[-3000:]
    text = log.read_text()
    # every kill landed mid-run: only the last run reached the end of the replay
    assert text.count("swarm crash:") == KILLS + 1 and text.count("finished after") == 1

    cfg = parse_config(SwarmConfig, yaml.safe_load(cfg_path.read_text()))
    with Journal(tmp_path / "journal" / "coordinator_BTCUSDT.sqlite", read_only=True) as j:
        orders = j.orders(symbol="BTCUSDT")
        fills = j.fills("BTCUSDT")
    assert orders and fills, "the runs traded nothing: the check would prove nothing"
    venue = PaperExchange(cfg.exchange, clock=SimulatedClock(2**62))
    try:
        at_venue = {f.trade_id: f for f in venue.fills_since("BTCUSDT", 0)}
        assert {f.trade_id for f in fills} == set(at_venue), "fills differ"
        for o in orders:
            v = venue.get_order("BTCUSDT", o.client_order_id)
            if o.status is OrderStatus.REJECTED or (v is None and o.status is OrderStatus.EXPIRED):
                continue
            assert v is not None, f"{o.client_order_id} journaled {o.status} but unknown at venue"
            assert v.status == o.status, (o.client_order_id, o.status, v.status)
        assert not [o for o in orders if o.status in (OrderStatus.UNKNOWN, OrderStatus.PENDING)]
        position = sum(
            (f.quantity if f.side is Side.BUY else -f.quantity for f in fills), Decimal(0)
        )
        assert venue.position("BTCUSDT").quantity == position
    finally:
        venue.close()
