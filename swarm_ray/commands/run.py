"""``swarm-ray run``: one swarm per configured symbol, until stopped (or the replay ends).

Attaches to the Ray cluster of ``--address``/``RAY_ADDRESS`` (as under ``ray job submit``) or
starts a local one, deploys the model app on Serve unless it runs already, starts the agent and
coordinator actors, and waits. A coordinator that dies is restarted by Ray; this driver then
asks it to carry on (it reconciles with the venue and the journal first).
"""

from __future__ import annotations

import argparse
import time

from swarm_ray.commands._swarm import DEFAULT_CONFIG, load_swarm_config


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", help="run one swarm per configured symbol until stopped")
    p.add_argument("--config", default=DEFAULT_CONFIG, help="swarm config (default paper)")
    p.add_argument(
        "--address", default=None, help="Ray cluster address (default: RAY_ADDRESS or local)"
    )
    p.add_argument("--cycles", type=int, default=None, help="stop after this many cycles")
    p.add_argument(
        "--http-port", type=int, default=8000, help="Serve's HTTP port if it starts Serve"
    )
    p.add_argument("--status-every", type=float, default=10.0, help="seconds between status lines")
    p.add_argument(
        "--yes-mainnet", action="store_true", help="confirm a mainnet config (real money)"
    )
    p.add_argument("--check", action="store_true", help="check the config and exit")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import ray
    from ray.exceptions import RayActorError

    from swarm_ray.commands._swarm import init_ray
    from swarm_ray.runtime import swarm as runtime

    cfg = runtime.resolve_journal_dir(load_swarm_config(args.config))
    if cfg.exchange.is_mainnet and not args.yes_mainnet:
        print("this config trades real money on mainnet; pass --yes-mainnet to mean it")
        return 2
    if args.check:
        print(f"{args.config}: ok (run {cfg.run_id}, {', '.join(cfg.symbols)} on "
              f"{cfg.exchange.kind}, journal {cfg.journal_dir})")  # fmt: skip
        return 0
    init_ray(args.address)
    deployed = runtime.ensure_models_served(cfg, http_port=args.http_port)
    handles = runtime.start_swarm(cfg)
    coords = {n: h for n, h in handles.items() if n.startswith("coordinator:")}
    print(f"swarm {cfg.run_id}: {', '.join(coords)} on {cfg.exchange.kind}", flush=True)
    running = {n: h.run.remote(args.cycles) for n, h in coords.items()}
    last_status = time.monotonic()
    code = 0
    try:
        while running:
            ready, _ = ray.wait(list(running.values()), num_returns=1, timeout=1.0)
            for ref in ready:
                name = next(n for n, r in running.items() if r == ref)
                try:
                    st = ray.get(ref)
                    print(f"{name}: finished after {st['cycles']} cycles", flush=True)
                    del running[name]
                except RayActorError:
                    print(
                        f"{name}: actor died; it restarts and reconciles, then carries on",
                        flush=True,
                    )
                    time.sleep(1.0)
                    running[name] = coords[name].run.remote(args.cycles)
                except Exception as exc:  # a coordinator failed on an error: report and stop it
                    print(f"{name}: stopped on {type(exc).__name__}: {exc}", flush=True)
                    del running[name]
                    code = 1
            if time.monotonic() - last_status >= args.status_every:
                last_status = time.monotonic()
                for st in runtime.swarm_status().values():
                    for sym, s in (st.get("symbols") or {}).items():
                        last = s.get("last") or {}
                        print(
                            f"{sym}: cycle {s['cycle']} {last.get('action', '-')} "
                            f"pos {s['position']:g} pnl {s['pnl']:.2f} fills {s['fills']}",
                            flush=True,
                        )
    except KeyboardInterrupt:
        print("stopping after the current cycle...", flush=True)
        ray.get([h.stop.remote(False, "interrupted (Ctrl-C or SIGTERM)") for h in coords.values()])
        return 130
    finally:
        if deployed:  # leave the cluster's CPUs to the next job
            runtime.release_models()
    return code
