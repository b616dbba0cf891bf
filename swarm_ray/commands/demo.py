"""``swarm-ray demo``: the whole swarm on a bundled real day, no keys and no network.

Local Ray, Ray Serve with the shipped models, one coordinator (hosting the four agents) on the
paper exchange replaying 2024-08-20 at replay speed, a live status view, then ``report.md`` with
PNG plots and the journal, all under ``--out``.
"""

from __future__ import annotations

import argparse
import shutil
import time
from pathlib import Path

from swarm_ray.commands._swarm import DEFAULT_CONFIG, free_port, load_swarm_config, start_panel
from swarm_ray.commands.views import status_table
from swarm_ray.core.storage import storage_root


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="run the full swarm on a bundled real day and write a report")
    p.add_argument(
        "--out", default="runs/demo", help="output folder (default runs/demo, in the storage root)"
    )
    p.add_argument("--config", default=DEFAULT_CONFIG, help="swarm config (default paper)")
    p.add_argument("--cycles", type=int, default=None, help="cycles to run (default: the day)")
    p.add_argument("--num-cpus", type=int, default=None, help="CPUs of the local Ray cluster")
    p.add_argument("--quiet", action="store_true", help="no live status view")
    p.add_argument("--no-panel", action="store_true", help="do not start the control panel")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import ray
    from rich.console import Console
    from rich.live import Live

    from swarm_ray.commands._swarm import init_ray
    from swarm_ray.evaluation.report_swarm import write_swarm_report
    from swarm_ray.journal import Journal
    from swarm_ray.runtime import swarm as runtime

    base = load_swarm_config(args.config)
    paper = base.exchange.paper
    if base.exchange.kind != "paper" or paper is None:
        raise SystemExit("the demo runs on the paper exchange; use `swarm-ray run` for venues")
    out = Path(storage_root(base.storage).local_path(args.out, "--out"))
    for stale in ("journal", "paper_account.sqlite"):  # a demo always starts from scratch
        target = out / stale
        if target.is_dir():
            shutil.rmtree(target)
        elif target.exists():
            target.unlink()
    exchange = base.exchange.model_copy(
        update={"paper": paper.model_copy(update={"state_path": str(out / "paper_account.sqlite")})}
    )
    panel = base.panel.model_copy(update={"enabled": base.panel.enabled and not args.no_panel})
    cfg = base.model_copy(
        update={
            "journal_dir": str(out / "journal"),
            "exchange": exchange,
            "run_id": "demo",
            "panel": panel,
        }
    )
    console = Console()
    t0 = time.monotonic()
    init_ray(None, args.num_cpus)
    deployed = False
    try:
        http_port = free_port()
        with console.status("starting Ray Serve with the shipped models..."):
            deployed = runtime.ensure_models_served(cfg, http_port=http_port)
        handles = runtime.start_swarm(cfg)
        for line in start_panel(cfg, http_port, token_dir=str(out)):
            console.print(line, highlight=False, soft_wrap=True)
        coord = next(h for n, h in handles.items() if n.startswith("coordinator:"))
        ref = coord.run.remote(args.cycles, keep_history=True)
        started = time.monotonic()
        if args.quiet:
            status = ray.get(ref)
        else:
            with Live(console=console, refresh_per_second=4) as live:
                while True:
                    ready, _ = ray.wait([ref], timeout=0.5)
                    status = ray.get(coord.status.remote())
                    live.update(status_table({status["name"]: status}))
                    if ready:
                        status = ray.get(ref)
                        break
        wall = time.monotonic() - started
        history = ray.get(coord.history_since.remote(0))
        jpath = ray.get(coord.journal_path.remote())
    finally:
        if deployed:  # the app's replicas go; Serve's controller ends with the cluster
            runtime.release_models()
        ray.shutdown()
    with Journal(jpath, read_only=True) as j:
        summary = j.summary(cfg.symbols[0])
        agents = j.agent_records(cfg.symbols[0])
        orders = j.orders(symbol=cfg.symbols[0])
        explained = j.explain_order(orders[-1].client_order_id) if orders else None
    cycles = len(history)
    days = ", ".join(Path(f).name for f in paper.symbols[cfg.symbols[0]].klines)
    notes = [
        f"Paper exchange replaying {days} from {cfg.cycle.start}; models served by Ray Serve "
        f"from `{cfg.models_dir}`.",
        "",
        f"{cycles} cycles in {wall:.1f} s of wall time ({cycles / max(wall, 1e-9):.0f} cycles/s, "
        f"{time.monotonic() - t0:.0f} s including start-up).",
    ]
    report = write_swarm_report(
        out, history, summary, title="swarm-ray demo", threshold=cfg.consensus.threshold,
        explained=explained, notes=notes, agents=agents,
        hindsight=status["symbols"][cfg.symbols[0]].get("hindsight_edges"),
        fees=(cfg.track.maker_bps, cfg.track.taker_bps),
        track=f"{cfg.track.horizon_bars} bars, maker {cfg.track.maker_bps:g} bps, "
              f"taker {cfg.track.taker_bps:g} bps",
    )  # fmt: skip
    last = history[-1] if history else {}
    console.print(
        f"{cycles} cycles, PnL {last.get('pnl', 0):.2f} USDT, position {last.get('position', 0):g}"
    )
    console.print(f"report: {report}")
    if cfg.panel.enabled:
        console.print(f"browse the run: swarm-ray panel --journal-dir {out / 'journal'}",
                      highlight=False, soft_wrap=True)  # fmt: skip
    return 0
