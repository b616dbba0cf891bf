"""Run the fill-validation strategies through hftbacktest (the peer), in its own environment.

Called by ``scripts/validate_fills.py`` with the peer's Python (``make peer`` builds it:
hftbacktest pins numpy below the version this project uses, so it cannot share our venv).
Needs only numpy and hftbacktest. Input: an ``.npz`` of market events on one time axis
(``kind`` 0 depth / 1 trade, ``side`` +1 bid or buy-initiated / -1, ``exch_ns``, ``local_ns``,
``px``, ``qty``) and a JSON of settings; output: one JSON object on stdout with every fill the
strategy saw (per order and step), the step grid's start and the wall time of the run.

    python hftbacktest_runner.py EVENTS.npz SETTINGS.json
"""

from __future__ import annotations

import json
import sys
import time

import numpy as np
from hftbacktest import (
    BUY_EVENT,
    DEPTH_EVENT,
    EXCH_EVENT,
    GTX,
    LIMIT,
    LOCAL_EVENT,
    SELL_EVENT,
    TRADE_EVENT,
    BacktestAsset,
    HashMapMarketDepthBacktest,
)
from hftbacktest.types import event_dtype
from numba import njit
from numba.core import types
from numba.typed import Dict

# hftbacktest's elapse() codes (py-hftbacktest's backtest.rs)
ERRORS = {
    1: "end of data",
    10: "OrderIdExist",
    11: "OrderRequestInProcess",
    12: "OrderNotFound",
    13: "InvalidOrderRequest",
    14: "InvalidOrderStatus",
    15: "EndOfData",
    100: "DataError",
}


def to_events(npz: np.lib.npyio.NpzFile) -> np.ndarray:
    kind, side = npz["kind"], npz["side"]
    out = np.zeros(len(kind), dtype=event_dtype)
    flags = np.where(kind == 0, DEPTH_EVENT, TRADE_EVENT).astype(np.uint64)
    flags |= np.where(side > 0, BUY_EVENT, SELL_EVENT).astype(np.uint64)
    out["ev"] = flags | EXCH_EVENT | LOCAL_EVENT
    out["exch_ts"] = npz["exch_ns"]
    out["local_ts"] = npz["local_ns"]
    out["px"] = npz["px"]
    out["qty"] = npz["qty"]
    return out


@njit(cache=False)
def requote(hbt, oid, buy, target, want, resting, move_ticks, tick, size, next_id):
    """One side's quote: a live one stays while ``resting`` (strategy B), wanted and within
    ``move_ticks`` of ``target``, else it is cancelled; a new one goes in where wanted.
    Returns (the side's order id, the next free id)."""
    live = False
    if oid != 0:
        o = hbt.orders(0).get(oid)
        if o is not None and o.leaves_qty > 0 and (o.status == 1 or o.status == 5):
            live = True
            if not (resting and want and abs(round(o.price / tick) - target) <= move_ticks):
                hbt.cancel(0, oid, False)
                live = False
    if not live and want:
        oid = next_id
        next_id += 1
        if buy:
            hbt.submit_buy_order(0, oid, target * tick, size, GTX, LIMIT, False)
        else:
            hbt.submit_sell_order(0, oid, target * tick, size, GTX, LIMIT, False)
    return oid, next_id


@njit(cache=False)
def run(hbt, strategy, half_ticks, move_ticks, size, cap, lot, step_ns, max_fills):
    """Strategy A (0): every step cancel and re-quote a bid and an ask ``half_ticks`` from the
    mid. B (1): leave each quote resting until its price is more than ``move_ticks`` from
    where A would quote. Post-only, fixed size, no quote on the side beyond the position cap."""
    fills = np.zeros((max_fills, 5), np.float64)  # time, side, price, qty, order id
    n = 0
    seen = Dict.empty(key_type=types.int64, value_type=types.float64)
    bid_id = 0
    ask_id = 0
    next_id = 1
    start = 0
    pos = 0.0  # from the fills seen, as the paper side counts it
    code = 0
    while True:
        code = hbt.elapse(step_ns)
        if code != 0:  # 1: the end of the data; more: hftbacktest stopped on an error
            break
        if start == 0:
            start = hbt.current_timestamp
        # fills since the last step
        values = hbt.orders(0).values()
        while values.has_next():
            o = values.get()
            done = o.qty - o.leaves_qty
            prev = seen.get(np.int64(o.order_id), 0.0)
            if done > prev + 1e-12 and n < max_fills:
                fills[n, 0] = o.exch_timestamp
                fills[n, 1] = o.side
                fills[n, 2] = o.price
                fills[n, 3] = done - prev
                fills[n, 4] = o.order_id
                n += 1
                seen[np.int64(o.order_id)] = done
                pos += o.side * (done - prev)
        hbt.clear_inactive_orders(0)
        depth = hbt.depth(0)
        bb = depth.best_bid
        ba = depth.best_ask
        if not (np.isfinite(bb) and np.isfinite(ba)) or bb <= 0 or ba <= bb:
            continue
        tick = depth.tick_size
        mid_t = (bb + ba) / 2.0 / tick
        bid_t = np.floor(mid_t - half_ticks + 1e-9)
        ask_t = np.ceil(mid_t + half_ticks - 1e-9)
        # positions are float sums of fills here: compare with half a lot to spare
        resting = strategy == 1
        bid_id, next_id = requote(
            hbt, bid_id, True, bid_t, pos < cap - lot / 2, resting, move_ticks, tick, size, next_id
        )
        ask_id, next_id = requote(
            hbt,
            ask_id,
            False,
            ask_t,
            pos > -cap + lot / 2,
            resting,
            move_ticks,
            tick,
            size,
            next_id,
        )
    return fills[:n], start, code, hbt.current_timestamp


def main() -> None:
    events_path, settings_path = sys.argv[1], sys.argv[2]
    with open(settings_path) as fh:
        s = json.load(fh)
    events = to_events(np.load(events_path))
    asset = (
        BacktestAsset()
        .data([events])
        .linear_asset(1.0)
        .constant_order_latency(int(s["entry_latency_ns"]), int(s["response_latency_ns"]))
        .tick_size(s["tick"])
        .lot_size(s["lot"])
        .trading_value_fee_model(s["maker_fee"], s["taker_fee"])
        .partial_fill_exchange()
        .last_trades_capacity(0)
    )
    q = s["queue_model"]
    if q == "risk_averse":
        asset = asset.risk_adverse_queue_model()
    elif q == "power_prob":
        asset = asset.power_prob_queue_model(float(s["queue_power"]))
    elif q == "log_prob":
        asset = asset.log_prob_queue_model()
    else:
        raise SystemExit(f"unknown queue model {q!r}")
    strategy = {"A": 0, "B": 1}[s["strategy"]]
    args = (
        strategy,
        float(s["half_ticks"]),
        float(s["move_ticks"]),
        float(s["size"]),
        float(s["cap"]),
        float(s["lot"]),
        int(s["step_ns"]),
        200_000,
    )
    # compile on a short copy first, so the timed run measures the backtest, not numba
    warm = HashMapMarketDepthBacktest([asset])
    run(warm, *args[:-2], int(events["exch_ts"][-1] - events["exch_ts"][0]) + 1, 10)
    warm.close()
    hbt = HashMapMarketDepthBacktest([asset])
    t0 = time.perf_counter()
    fills, start, code, stop = run(hbt, *args)
    wall = time.perf_counter() - t0
    hbt.close()
    json.dump(
        {
            "start_ns": int(start),
            "stop_ns": int(stop),
            "stop": ERRORS.get(int(code), f"code {int(code)}"),
            "wall_s": wall,
            "events": len(events),
            "fills": [
                {
                    "time_ns": int(f[0]),
                    "side": int(f[1]),
                    "price": float(f[2]),
                    "qty": float(f[3]),
                    "order": int(f[4]),
                }
                for f in fills
            ],
        },
        sys.stdout,
    )


if __name__ == "__main__":
    main()
