"""The environment's tick replay fills its quotes as the paper exchange's tick replay does."""

from __future__ import annotations

from decimal import Decimal

import pytest

from envs.market_making import MarketMakingEnv
from envs.vector import VectorMarketSim
from swarm_ray.core.clock import SimulatedClock
from swarm_ray.core.domain import OrderIntent, OrderType, Side
from swarm_ray.exchanges.config import PaperConfig, PaperSymbolConfig
from swarm_ray.exchanges.errors import DefiniteReject
from swarm_ray.exchanges.paper import PaperExchange

FILES = ("data/binance-l2/usdm/ethusdt_20240718.gz", "data/binance-l2/usdm/ethusdt_20240719.gz")
STEPS = 240
SIZE = 0.3


def tick_config(**fills) -> dict:
    return {
        "preset": "replay",
        "n_steps": STEPS,
        "max_inventory": 1000.0,
        "midprice": {"kind": "tick", "files": list(FILES), "interval_ms": 1000,
                     "tick_size": 0.01, "lot_size": 0.001, "random_start": False},
        "fills": {"kind": "queue", "latency_ms": 10.0, **fills},
        "actions": {"unit": "bps", "tight": 0.1, "wide": 1.0, "order_size": SIZE},
    }  # fmt: skip


@pytest.mark.parametrize("model", ["risk_averse", "power_prob"])
def test_env_fills_equal_the_paper_exchange_on_the_same_quotes(model: str) -> None:
    env = MarketMakingEnv(tick_config(queue_model=model))
    env.reset(seed=0)
    times = env._times  # the step grid (ms)
    env_fills, quotes = [], []
    for _ in range(STEPS):
        t = env.t
        mid = env.mid
        quotes.append((times[t], env.tick.bid_price(mid * (1 - 1e-5)),
                       env.tick.ask_price(mid * (1 + 1e-5))))  # fmt: skip
        _, _, _, _, info = env.step(1)  # quote_tight
        env_fills += [(s, round(q, 6), round(p, 6)) for s, q, p in info["fills"]]
    assert len(env_fills) >= 20
    assert any(q % SIZE > 1e-9 for _, q, _ in env_fills)  # some partial fills

    # the same quotes, kept while their price holds, through the paper exchange
    sym = PaperSymbolConfig(l2=FILES, tick_size=Decimal("0.01"), step_size=Decimal("0.001"),
                            min_qty=Decimal("0.001"), min_notional=Decimal(0))  # fmt: skip
    cfg = PaperConfig(symbols={"ETHUSDT": sym}, fill_model="queue", queue_model=model,
                      latency_ms=10.0, leverage=100, maker_fee_bps=Decimal(0),
                      initial_balances={"USDT": Decimal(10**7)})  # fmt: skip
    clock = SimulatedClock(times[0] * 1_000_000)
    ex = PaperExchange(cfg, clock)
    live: dict[Side, tuple[str, float]] = {}
    n = 0
    for t_ms, bid, ask in quotes:
        clock.set(t_ms * 1_000_000)
        for side, px in ((Side.BUY, bid), (Side.SELL, ask)):
            cur = live.get(side)
            if cur is not None:
                o = ex.get_order("ETHUSDT", cur[0])
                if o.status.is_open and cur[1] == px:
                    continue
                ex.cancel_order("ETHUSDT", cur[0])
                del live[side]
            n += 1
            intent = OrderIntent("ETHUSDT", side, Decimal(repr(px)), Decimal(repr(SIZE)),
                                 f"q{n}", OrderType.LIMIT_MAKER)  # fmt: skip
            try:
                ex.place_order(intent)
                live[side] = (f"q{n}", px)
            except DefiniteReject:
                pass
    clock.set(times[STEPS] * 1_000_000)
    paper_fills = [
        (1 if f.side is Side.BUY else -1, float(f.quantity), float(f.price))
        for f in ex.fills_since("ETHUSDT", 0)
    ]
    assert env_fills == paper_fills


def test_the_tick_replay_needs_its_pieces() -> None:
    with pytest.raises(ValueError, match="go together"):
        MarketMakingEnv(tick_config() | {"fills": {"kind": "poisson"}})
    with pytest.raises(ValueError, match="tick_size"):
        MarketMakingEnv(tick_config() | {"midprice": {"kind": "tick", "files": list(FILES)}})
    with pytest.raises(ValueError, match="one path at a time"):
        VectorMarketSim(tick_config(), n_paths=2)
