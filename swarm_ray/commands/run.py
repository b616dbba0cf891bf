"""``swarm-ray run``: one swarm per configured symbol, until stopped (or the replay ends).

Attaches to the Ray cluster of ``--address``/``RAY_ADDRESS`` (as under ``ray job submit``) or
starts a local one, deploys the model app on Serve unless it runs already, starts the
coordinator actors (each hosting the agents), and waits. A coordinator that dies is restarted
by Ray; this driver then asks it to carry on (it reconciles with the venue and the journal first).
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys

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
    p.add_argument("--no-panel", action="store_true", help="do not start the control panel")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from swarm_ray.commands._swarm import start_panel
    from swarm_ray.commands.views import status_lines
    from swarm_ray.core.logs import log_format

    cfg = load_swarm_config(args.config)  # output paths resolved under the storage root
    if cfg.exchange.is_mainnet and not args.yes_mainnet:
        print("this config trades real money on mainnet; pass --yes-mainnet to mean it",
              file=sys.stderr)  # fmt: skip
        return 2
    if args.check:
        if cfg.learning.every is not None:  # as the run checks it when it starts
            from swarm_ray.runtime.learning import LearningSchedule

            LearningSchedule.for_run(cfg)
        print(f"{args.config}: ok (run {cfg.run_id}, {', '.join(cfg.symbols)} on "
              f"{cfg.exchange.kind}, journal {cfg.journal_dir})")  # fmt: skip
        return 0
    if cfg.exchange.kind != "paper" and not (args.address or os.environ.get("RAY_ADDRESS")):
        # a local cluster's actors read the keys from this environment: check them first
        from swarm_ray.exchanges import BinanceCredentials

        BinanceCredentials.from_env()

    from swarm_ray.runtime.api import Swarm

    if log_format() == "json":  # the run's own lines as log records too
        log = logging.getLogger("swarm_ray.run")
        log.setLevel(logging.INFO)
        say = log.info
    else:

        def say(line: str) -> None:
            print(line, flush=True)

    if args.no_panel:
        cfg = cfg.model_copy(update={"panel": cfg.panel.model_copy(update={"enabled": False})})
    swarm = Swarm(cfg, address=args.address, http_port=args.http_port, yes_mainnet=True)
    signal.signal(signal.SIGTERM, _interrupt)  # `ray job stop`, a supervisor: like Ctrl-C
    panel: list[str] = []
    try:
        swarm.start(args.cycles)
        say(f"swarm {cfg.run_id}: {', '.join(swarm.coordinators)} on {cfg.exchange.kind}")
        panel = start_panel(cfg, args.http_port)
        for line in panel:
            print(line, flush=True)  # not a log record: a generated token shows on a terminal
        swarm.wait(
            every=args.status_every,
            on_status=lambda statuses: [say(line) for line in status_lines(statuses)],
            on_event=say,
        )
    except KeyboardInterrupt:
        say("stopping after the current cycle...")
        swarm.stop(reason="interrupted (Ctrl-C or SIGTERM)", wait=False)
        return 130
    finally:
        if panel and swarm.last_on_cluster():
            from swarm_ray.panel.deploy import stop_panel

            stop_panel()
        swarm.close()  # the model app's CPUs go back to the cluster
    return 1 if swarm.failed else 0


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt
