"""``swarm-ray panel``: the control panel over a run's journals, without a cluster.

``swarm-ray run`` and ``demo`` start the panel on Ray Serve beside the swarm; this command
serves the same page for a finished (or still running) run's journal folder, with uvicorn on
this machine: the overview, the charts, the orders and their explanations, the audit trail, and
the kill-switch controls (which work on the journal, so a running coordinator obeys them at its
next cycle). Stopping a running swarm needs the panel that ``run`` started.
"""

from __future__ import annotations

import argparse

from swarm_ray.commands.explain import add_journal_arguments, journal_dir


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("panel", help="the control panel in the browser, over a run's journals")
    add_journal_arguments(p)
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8765, help="port (default 8765)")
    p.add_argument(
        "--public-read",
        action="store_true",
        help="anyone who reaches it may look without the token (controls still need it)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    import uvicorn

    from swarm_ray.commands._swarm import load_swarm_config, panel_token, token_notice
    from swarm_ray.core.errors import CommandError
    from swarm_ray.core.storage import storage_root
    from swarm_ray.panel.app import PanelSettings, create_app

    folder = journal_dir(args)
    if not Path(folder).exists():
        raise CommandError(f"--journal-dir: no journal folder at {folder}")
    cfg = None if args.journal_dir else load_swarm_config(args.config)
    token = panel_token()
    settings = PanelSettings(
        journal_dir=folder,
        token_digest=token.digest,
        public_read=args.public_read,
        threshold=None if cfg is None else cfg.consensus.threshold,
        refresh_s=2.0 if cfg is None else cfg.panel_refresh_s,
        title="swarm-ray " + (Path(folder).parent.name if cfg is None else cfg.run_id),
    )
    print(f"panel: http://{args.host}:{args.port}/ over {folder}", flush=True)
    root = storage_root(None if cfg is None else cfg.storage).local_path(".", "storage root")
    print(token_notice(token, root), flush=True)
    uvicorn.run(create_app(settings), host=args.host, port=args.port, log_level="warning")
    return 0
