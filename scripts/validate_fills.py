"""Check the paper exchange's tick fills against hftbacktest; measure the 1-minute model's bias.

Two simple strategies run on the bundled USD-M futures L2 files, every 100 ms, through our
paper exchange's tick replay (``fill_model: queue``) and through hftbacktest (its partial-fill
exchange with the same queue model, latencies and fees):

- A: cancel and re-quote one bid and one ask ``--half-ticks`` from the mid at every step;
- B: leave each quote resting until its price is more than ``--move-ticks`` from where A would
  quote, so that its place in the queue decides its fills.

Both see the same events on the same time axis (each book update at its event time ``E``, each
trade at its trade time, the order of the recording), so what differs is only how each
backtester matches. Printed per strategy, queue model and file: fills, PnL (marked to the last
mid, maker fees paid), fill agreement (fills of the same side within 100 ms, matched one to
one, over the larger count) and replay speed in messages per second.

``--bias`` also measures the 1-minute trade-through model against the tick model on the spot
BTCUSDT minutes where both the klines and the L2 recording exist: at each minute a bid and an
ask ``d`` bps from the mid, left for the minute, through both replays of the paper exchange;
fill rate and markout (mid one minute later) per model.

hftbacktest runs in its own environment (``make peer`` builds ``.venv-peer``): it pins numpy
below the version this project uses. Run::

    make peer && .venv/bin/python scripts/validate_fills.py [--bias] [--json]
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import tempfile
import time
from bisect import bisect_right
from dataclasses import dataclass, replace
from decimal import Decimal
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from envs.data.l2.tape import TickTape, load_tape  # noqa: E402
from envs.data.ticks import l2_to_ticks  # noqa: E402
from swarm_ray.core.clock import SimulatedClock  # noqa: E402
from swarm_ray.core.domain import OrderIntent, OrderType, Side  # noqa: E402
from swarm_ray.exchanges.config import PaperConfig, PaperSymbolConfig  # noqa: E402
from swarm_ray.exchanges.errors import DefiniteReject  # noqa: E402
from swarm_ray.exchanges.paper import PaperExchange  # noqa: E402
from swarm_ray.exchanges.paper.replay import ReplayFinished  # noqa: E402

PEER_RUNNER = ROOT / "scripts" / "peer" / "hftbacktest_runner.py"
DEFAULT_PEER = ROOT / ".venv-peer" / "bin" / "python"
L2 = ROOT / "data" / "binance-l2"
WINDOWS = {
    "BTCUSDT": (
        (str(L2 / "usdm" / "btcusdt_20240718.gz"), str(L2 / "usdm" / "btcusdt_20240719.gz")),
        "0.1",
    ),
    "ETHUSDT": (
        (str(L2 / "usdm" / "ethusdt_20240718.gz"), str(L2 / "usdm" / "ethusdt_20240719.gz")),
        "0.01",
    ),
}
MAKER_BPS, TAKER_BPS = 2.0, 5.0  # Binance USD-M regular tier (VIP 0)
MATCH_NS = 100_000_000


@dataclass(frozen=True)
class Setup:
    symbol: str
    files: tuple[str, ...]
    tick: str
    lot: str
    size: str
    cap: float
    strategy: str
    half_ticks: float
    move_ticks: float
    queue_model: str
    queue_power: float
    entry_ms: float
    feed_ms: float
    step_ms: int = 100
    ticks: tuple[str, str] | None = None
    """(aggTrades CSV, bookTicker CSV): replay these instead of ``files`` (our side only)."""


# ----------------------------------------------------------------------------- the peer's input


def write_events(data: TickTape, feed_ns: int, path: Path) -> int:
    """Every level update and trade of ``data`` in stream order, as the peer runner reads them;
    returns the number of messages (book updates + trades)."""
    nb = len(data.book_ms)
    keep = data.change_book < nb
    cb = data.change_book[keep]
    c_pos = np.asarray(data.book_pos, dtype=np.int64)[cb]
    c_ms = np.asarray(data.book_ms, dtype=np.int64)[cb]
    t_pos = np.asarray(data.trade_pos, dtype=np.int64)
    n_c, n_t = len(cb), len(t_pos)
    pos = np.r_[c_pos, t_pos]
    sub = np.r_[np.arange(n_c), np.arange(n_t)]  # within one position: update order
    order = np.lexsort((sub, pos))
    kind = np.r_[np.zeros(n_c, np.int8), np.ones(n_t, np.int8)][order]
    side = np.r_[
        np.where(data.change_bid[keep], 1, -1),
        np.where(data.trade_taker_buy > 0, 1, -1),
    ].astype(np.int8)[order]
    exch = (np.r_[c_ms, data.trade_ms] * 1_000_000)[order]
    np.savez(
        path,
        kind=kind,
        side=side,
        exch_ns=exch,
        local_ns=exch + feed_ns,
        px=np.r_[data.change_price[keep], data.trade_price][order],
        qty=np.r_[data.change_qty[keep], data.trade_qty][order],
    )
    return nb + n_t


def run_peer(setup: Setup, events: Path, python: Path) -> dict:
    settings = {
        "strategy": setup.strategy,
        "half_ticks": setup.half_ticks,
        "move_ticks": setup.move_ticks,
        "size": float(setup.size),
        "cap": setup.cap,
        "step_ns": setup.step_ms * 1_000_000,
        "tick": float(setup.tick),
        "lot": float(setup.lot),
        "maker_fee": MAKER_BPS / 1e4,
        "taker_fee": TAKER_BPS / 1e4,
        "entry_latency_ns": round(setup.entry_ms * 1e6),
        "response_latency_ns": 0,
        "queue_model": setup.queue_model,
        "queue_power": setup.queue_power,
    }
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as fh:
        json.dump(settings, fh)
    out = subprocess.run(
        [str(python), str(PEER_RUNNER), str(events), fh.name],
        capture_output=True,
        text=True,
        check=False,
    )
    Path(fh.name).unlink()
    if out.returncode != 0:
        raise SystemExit(f"hftbacktest runner failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout)


# ----------------------------------------------------------------------------- our side


def paper_exchange(setup: Setup, start_ns: int) -> tuple[PaperExchange, SimulatedClock]:
    data: dict = {"l2": setup.files}
    if setup.ticks is not None:
        data = {"trades": (setup.ticks[0],), "book_ticker": (setup.ticks[1],)}
    sym = PaperSymbolConfig(
        **data,
        tick_size=Decimal(setup.tick),
        step_size=Decimal(setup.lot),
        min_qty=Decimal(setup.lot),
        min_notional=Decimal(0),
    )
    cfg = PaperConfig(
        symbols={setup.symbol: sym},
        market="futures",
        maker_fee_bps=Decimal(str(MAKER_BPS)),
        taker_fee_bps=Decimal(str(TAKER_BPS)),
        latency_ms=setup.entry_ms,
        feed_latency_ms=setup.feed_ms,
        fill_model="queue",
        queue_model=setup.queue_model,  # type: ignore[arg-type]
        queue_power=setup.queue_power,
        initial_balances={"USDT": Decimal(10_000_000)},
        leverage=100,
    )
    clock = SimulatedClock(start_ns)
    return PaperExchange(cfg, clock), clock


def run_ours(setup: Setup, start_ns: int, end_ns: int | None = None) -> dict:
    """The same strategy as the peer runner's, step for step, through the paper exchange,
    from ``start_ns`` to ``end_ns`` (None: the end of the data)."""
    ex, clock = paper_exchange(setup, start_ns)
    s = setup.symbol
    tick, size = Decimal(setup.tick), Decimal(setup.size)
    step = setup.step_ms * 1_000_000
    end = ex.replay_end_ns(s) if end_ns is None else min(end_ns, ex.replay_end_ns(s))
    n_seen = 0
    fills: list[dict] = []
    live = {Side.BUY: "", Side.SELL: ""}
    next_id = 1
    position = 0.0  # from the fills seen, as the peer runner counts it
    t = start_ns
    t0 = time.perf_counter()
    while t <= end:
        clock.set(t)
        try:
            snap = ex.market_snapshot(s, depth=1)
        except ReplayFinished:
            break
        # fills since the last step, per order (cancelled ones too: a fill can beat the
        # cancel to the venue), as the peer runner records them
        new = ex.fills_since(s, 0)[n_seen:]
        n_seen += len(new)
        per_order: dict[str, list] = {}
        for f in new:
            per_order.setdefault(f.client_order_id, []).append(f)
        for cid, fs in per_order.items():
            sign = 1 if fs[0].side is Side.BUY else -1
            qty = float(sum(f.quantity for f in fs))
            fills.append(
                {
                    "time_ns": fs[-1].time_ms * 1_000_000,
                    "side": sign,
                    "price": float(fs[-1].price),
                    "qty": qty,
                    "order": cid,
                }
            )
            position += sign * qty
        for side, cid in live.items():
            if cid and not ex.get_order(s, cid).status.is_open:
                live[side] = ""
        bb, ba = snap.best_bid, snap.best_ask
        if not (math.isfinite(bb) and math.isfinite(ba)) or bb <= 0 or ba <= bb:
            t += step
            continue
        tf = float(tick)
        mid_t = (bb + ba) / 2.0 / tf
        targets = {
            Side.BUY: math.floor(mid_t - setup.half_ticks + 1e-9),
            Side.SELL: math.ceil(mid_t + setup.half_ticks - 1e-9),
        }
        pos = position
        half_lot = float(setup.lot) / 2
        want = {Side.BUY: pos < setup.cap - half_lot, Side.SELL: pos > -setup.cap + half_lot}
        for side in (Side.BUY, Side.SELL):
            cid = live[side]
            if cid:
                o = ex.get_order(s, cid)
                keep = (
                    setup.strategy == "B"
                    and want[side]
                    and abs(round(float(o.price) / tf) - targets[side]) <= setup.move_ticks
                )
                if not keep:
                    ex.cancel_order(s, cid)
                    live[side] = ""
            if not live[side] and want[side]:
                cid = f"v{next_id}"
                next_id += 1
                intent = OrderIntent(
                    s, side, targets[side] * tick, size, cid, OrderType.LIMIT_MAKER, "GTX"
                )
                try:
                    ex.place_order(intent)
                    live[side] = cid
                except DefiniteReject:
                    pass  # would cross: post-only refused, as the peer's GTX expires
        t += step
    wall = time.perf_counter() - t0
    ex.close()
    return {"fills": fills, "wall_s": wall}


# ----------------------------------------------------------------------------- comparison


def pnl(fills: list[dict], final_mid: float) -> float:
    """Cash from the fills, less maker fees, plus the position marked at ``final_mid``."""
    cash = position = 0.0
    for f in fills:
        notional = f["price"] * f["qty"]
        cash -= f["side"] * notional + notional * MAKER_BPS / 1e4
        position += f["side"] * f["qty"]
    return cash + position * final_mid


def agreement(ours: list[dict], peer: list[dict]) -> dict:
    """Fills matched one to one: same side, within 100 ms (nearest first)."""
    matched = 0
    for side in (1, -1):
        a = sorted(f["time_ns"] for f in ours if f["side"] == side)
        b = sorted(f["time_ns"] for f in peer if f["side"] == side)
        used = [False] * len(b)
        for t in a:
            j = bisect_right(b, t - MATCH_NS - 1)
            best = None
            while j < len(b) and b[j] <= t + MATCH_NS:
                if not used[j] and (best is None or abs(b[j] - t) < abs(b[best] - t)):
                    best = j
                j += 1
            if best is not None:
                used[best] = True
                matched += 1
    n = max(len(ours), len(peer))
    return {"matched": matched, "agreement": matched / n if n else 1.0}


def compare(setup: Setup, python: Path) -> dict:
    data = load_tape(setup.files)
    with tempfile.TemporaryDirectory() as tmp:
        events = Path(tmp) / "events.npz"
        messages = write_events(data, round(setup.feed_ms * 1e6), events)
        peer = run_peer(setup, events, python)
    # where hftbacktest stopped early (an error of its own), both are compared up to there
    early = peer["stop"] != "end of data"
    stop_ns = peer["stop_ns"] if early else None
    ours = run_ours(setup, peer["start_ns"], stop_ns)
    i = (
        len(data.book_ms) - 1
        if stop_ns is None
        else bisect_right(data.book_ms, stop_ns // 10**6) - 1
    )
    final_mid = (data.best_bid[i] + data.best_ask[i]) / 2.0
    seconds = ((stop_ns or data.book_ms[-1] * 10**6) - peer["start_ns"]) / 1e9
    if stop_ns is not None:  # the messages replayed before the stop
        messages = (i + 1) + int(np.searchsorted(data.trade_ms, stop_ns // 10**6, side="right"))
    agree = agreement(ours["fills"], peer["fills"])
    p_ours, p_peer = pnl(ours["fills"], final_mid), pnl(peer["fills"], final_mid)
    return {
        "_setup": setup,  # for --touch; not printed
        "_start_ns": peer["start_ns"],
        "_stop_ns": stop_ns,
        "symbol": setup.symbol,
        "strategy": setup.strategy,
        "queue_model": setup.queue_model,
        "half_ticks": setup.half_ticks,
        "seconds": seconds,
        "peer_stop": peer["stop"],
        "fills_ours": len(ours["fills"]),
        "fills_peer": len(peer["fills"]),
        "qty_ours": sum(f["qty"] for f in ours["fills"]),
        "qty_peer": sum(f["qty"] for f in peer["fills"]),
        "matched": agree["matched"],
        "agreement": agree["agreement"],
        "pnl_ours": p_ours,
        "pnl_peer": p_peer,
        "pnl_gap": (p_ours - p_peer) / abs(p_peer) if p_peer else math.nan,
        "messages": messages,
        "msgs_per_s_ours": messages / ours["wall_s"],
        "msgs_per_s_peer": messages / peer["wall_s"],
    }


# ----------------------------------------------------------------------------- touch only


def touch_only(results: list[dict], args: argparse.Namespace) -> list[dict]:
    """Our tick replay on the full book against ours on trades + bookTicker (what the data
    site offers): the same strategies, the same start; how much the missing depth changes."""
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for symbol in args.symbols:
            files = WINDOWS[symbol][0]
            ticks = tuple(str(p) for p in l2_to_ticks(files, tmp, symbol))
            for r in (r for r in results if r["symbol"] == symbol):
                setup = r["_setup"]
                full = run_ours(setup, r["_start_ns"], r["_stop_ns"])
                touch = run_ours(replace(setup, ticks=ticks), r["_start_ns"], r["_stop_ns"])
                agree = agreement(touch["fills"], full["fills"])
                row = {
                    "symbol": symbol,
                    "strategy": setup.strategy,
                    "queue_model": setup.queue_model,
                    "half_ticks": setup.half_ticks,
                    "fills_full_book": len(full["fills"]),
                    "fills_touch_only": len(touch["fills"]),
                    "agreement": agree["agreement"],
                }
                rows.append(row)
                if not args.json:
                    print(
                        f"{symbol} {setup.strategy} {setup.queue_model:11s} touch only vs full "
                        f"book: fills {row['fills_touch_only']}/{row['fills_full_book']}  "
                        f"agreement {row['agreement']:6.1%}"
                    )
    return rows


# ----------------------------------------------------------------------------- 1-minute bias


def minute_bias(distances_bps: list[float]) -> list[dict]:
    """Fill rate and 1-minute markout of a quote left for a minute, under the 1-minute
    trade-through model and the tick (queue) model, on the same minutes and prices."""
    l2_files = (
        str(L2 / "spot" / "btcusdt_20240808.gz"),
        str(L2 / "spot" / "btcusdt_20240809.gz"),
    )
    kl_files = tuple(
        str(ROOT / "data" / "binance-spot-1m" / f"BTCUSDT-1m-2024-08-0{d}.csv") for d in (8, 9)
    )
    data = load_tape(l2_files)
    first_min = (data.book_ms[0] // 60_000 + 1) * 60_000
    last_min = (data.book_ms[-1] // 60_000) * 60_000
    minutes = list(range(first_min, last_min - 60_000, 60_000))  # each with a later mid

    def l2_mid(ms: int) -> float:
        i = bisect_right(data.book_ms, ms) - 1
        return (data.best_bid[i] + data.best_ask[i]) / 2.0

    rows = []
    for model in ("trade_through_1m", "queue_tick"):
        for d in distances_bps:
            fills, marks, marks_fill = 0, [], []
            for m in minutes:
                mid = l2_mid(m)
                later = l2_mid(m + 60_000)
                bid = Decimal(math.floor(mid * (1 - d / 1e4) * 100) / 100).quantize(Decimal("0.01"))
                ask = Decimal(math.ceil(mid * (1 + d / 1e4) * 100) / 100).quantize(Decimal("0.01"))
                for side, px in ((Side.BUY, bid), (Side.SELL, ask)):
                    filled_ms = _one_minute(model, side, px, m, l2_files, kl_files)
                    if filled_ms is not None:
                        fills += 1
                        sign = 1 if side is Side.BUY else -1
                        marks.append(sign * (later - float(px)) / mid * 1e4)
                        after = l2_mid(filled_ms + 60_000)
                        marks_fill.append(sign * (after - float(px)) / mid * 1e4)
            n = 2 * len(minutes)
            rows.append(
                {
                    "model": model,
                    "distance_bps": d,
                    "quotes": n,
                    "fill_rate": fills / n,
                    "markout_bps": float(np.mean(marks)) if marks else math.nan,
                    "markout_from_fill_bps": float(np.mean(marks_fill)) if marks else math.nan,
                }
            )
    return rows


def _one_minute(
    model: str,
    side: Side,
    price: Decimal,
    minute_ms: int,
    l2_files: tuple[str, ...],
    kl_files: tuple[str, ...],
) -> int | None:
    """When (ms) a quote placed at the minute's start first fills within the minute, if it
    does (the 1-minute model stamps it at the bar's close)."""
    if model == "queue_tick":
        sym = PaperSymbolConfig(l2=l2_files, tick_size=Decimal("0.01"), min_notional=Decimal(0))
        cfg = PaperConfig(
            symbols={"BTCUSDT": sym}, fill_model="queue", latency_ms=0.0,
            initial_balances={"USDT": Decimal(10_000_000)}, leverage=100,
        )  # fmt: skip
    else:
        sym = PaperSymbolConfig(klines=kl_files, tick_size=Decimal("0.01"), min_notional=Decimal(0))
        cfg = PaperConfig(
            symbols={"BTCUSDT": sym}, fill_model="trade_through", latency_ms=0.0,
            initial_balances={"USDT": Decimal(10_000_000)}, leverage=100,
        )  # fmt: skip
    clock = SimulatedClock(minute_ms * 1_000_000)
    ex = PaperExchange(cfg, clock)
    try:
        intent = OrderIntent("BTCUSDT", side, price, Decimal("0.001"), "b1", OrderType.LIMIT)
        try:
            ex.place_order(intent)
        except DefiniteReject:
            return None
        clock.set((minute_ms + 60_000) * 1_000_000)
        fills = ex.fills_since("BTCUSDT", 0)
        return fills[0].time_ms if fills else None
    finally:
        ex.close()


# ----------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--symbols", nargs="+", default=["BTCUSDT", "ETHUSDT"], choices=list(WINDOWS))
    ap.add_argument("--strategies", nargs="+", default=["A", "B"], choices=["A", "B"])
    ap.add_argument(
        "--queue-models", nargs="+", default=["risk_averse", "power_prob"],
        choices=["risk_averse", "power_prob", "log_prob"],
    )  # fmt: skip
    ap.add_argument("--queue-power", type=float, default=2.0)
    ap.add_argument("--half-ticks", type=float, default=1.0, help="quote distance from the mid")
    ap.add_argument("--move-ticks", type=float, default=5.0, help="B: re-quote beyond this")
    ap.add_argument("--size-usd", type=float, default=1000.0, help="quote size, in USDT")
    ap.add_argument("--cap-quotes", type=float, default=5.0, help="position cap, in quotes")
    ap.add_argument("--entry-latency-ms", type=float, default=10.0)
    ap.add_argument("--feed-latency-ms", type=float, default=5.0)
    ap.add_argument("--peer-python", type=Path, default=DEFAULT_PEER)
    ap.add_argument("--bias", action="store_true", help="also measure the 1-minute model's bias")
    ap.add_argument(
        "--touch", action="store_true",
        help="also replay trades + bookTicker only (the data site's files) against the full book",
    )  # fmt: skip
    ap.add_argument("--json", action="store_true", help="print one JSON object last")
    args = ap.parse_args(argv)
    if not args.peer_python.exists():
        print(f"no peer environment at {args.peer_python}: run `make peer`", file=sys.stderr)
        return 2
    results = []
    for symbol in args.symbols:
        files, tick = WINDOWS[symbol]
        data = load_tape(files)
        mid = (data.best_bid[0] + data.best_ask[0]) / 2.0
        lot = Decimal("0.001")
        size = (Decimal(str(args.size_usd / mid)) / lot).to_integral_value() * lot
        for strategy in args.strategies:
            for qm in args.queue_models:
                setup = Setup(
                    symbol, files, tick, str(lot), str(size), float(size) * args.cap_quotes,
                    strategy, args.half_ticks, args.move_ticks, qm, args.queue_power,
                    args.entry_latency_ms, args.feed_latency_ms,
                )  # fmt: skip
                r = compare(setup, args.peer_python)
                results.append(r)
                if not args.json:
                    print(
                        f"{symbol} {strategy} {qm:11s} fills ours/peer {r['fills_ours']:4d}/"
                        f"{r['fills_peer']:4d}  agreement {r['agreement']:6.1%}  PnL ours/peer "
                        f"{r['pnl_ours']:8.3f}/{r['pnl_peer']:8.3f} USDT (gap "
                        f"{r['pnl_gap']:+.1%})  msgs/s ours/peer {r['msgs_per_s_ours']:,.0f}/"
                        f"{r['msgs_per_s_peer']:,.0f}"
                        + (
                            f"  [hftbacktest stopped: {r['peer_stop']} after {r['seconds']:.0f} s]"
                            if r["peer_stop"] != "end of data"
                            else ""
                        ),
                        flush=True,
                    )
    out: dict = {"comparisons": [{k: v for k, v in r.items() if k[0] != "_"} for r in results]}
    if args.touch:
        out["touch_only"] = touch_only(results, args)
    if args.bias:
        bias = minute_bias([0.0, 0.5, 1.0, 2.0, 5.0])
        out["minute_bias"] = bias
        if not args.json:
            for b in bias:
                print(
                    f"{b['model']:17s} d={b['distance_bps']:4.1f} bps  fill rate "
                    f"{b['fill_rate']:5.1%}  markout {b['markout_bps']:+6.2f} bps from the "
                    f"minute, {b['markout_from_fill_bps']:+6.2f} bps from the fill "
                    f"({b['quotes']} quotes)"
                )
    if args.json:
        print(json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
