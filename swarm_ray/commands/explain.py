"""``swarm-ray explain ORDER_ID``: an order with its cycle's votes, decision and risk reasons;
``swarm-ray kill-switch``: show or clear a symbol's kill switch (works offline, on the journal)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from swarm_ray.commands._swarm import DEFAULT_CONFIG
from swarm_ray.core.errors import CommandError
from swarm_ray.core.storage import ENV_VAR


def add_journal_arguments(p: argparse.ArgumentParser) -> None:
    """``--journal-dir`` and ``--config``: where a swarm run's journals are."""
    p.add_argument(
        "--journal-dir",
        default=None,
        help="folder of journal files (relative: under the storage root; "
        "default: the config's journal_dir)",
    )
    p.add_argument(
        "--config",
        default=DEFAULT_CONFIG,
        help=f"swarm config whose journal_dir to read (default {DEFAULT_CONFIG})",
    )


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("explain", help="explain an order by its cycle's votes (from the journal)")
    p.add_argument("order_id", help="client order id")
    add_journal_arguments(p)
    p.add_argument("--json", action="store_true", help="print the explanation as JSON")
    p.set_defaults(func=run)


def journal_dir(args: argparse.Namespace) -> str:
    """The journal folder: ``--journal-dir`` under the storage root, else the config's
    ``journal_dir`` (resolved as ``swarm-ray run`` resolves it)."""
    from swarm_ray.commands._swarm import load_swarm_config
    from swarm_ray.core.storage import storage_root

    if args.journal_dir:
        return storage_root().local_path(args.journal_dir, "--journal-dir")
    return load_swarm_config(args.config).journal_dir


def _journals(folder: str) -> list[Path]:
    d = Path(folder)
    if d.is_file():
        return [d]
    files = sorted(d.glob("*.sqlite"))
    if not files:
        raise CommandError(
            f"no journal under {d}; name the run's config (--config) or its folder "
            f"(--journal-dir), with the storage root the run had ({ENV_VAR})"
        )
    return files


def _threshold(args: argparse.Namespace) -> float | None:
    """The consensus threshold to show beside the share (the journal does not keep it): the
    config's, when the config is what found the journal."""
    from swarm_ray.commands._swarm import load_swarm_config

    return None if args.journal_dir else load_swarm_config(args.config).consensus.threshold


def run(args: argparse.Namespace) -> int:
    from swarm_ray.commands.views import explain_view
    from swarm_ray.journal import Journal

    folder = journal_dir(args)
    for path in _journals(folder):
        with Journal(path, read_only=True) as j:
            if j.order(args.order_id) is not None:
                why = j.explain_order(args.order_id)
                if args.json:
                    print(json.dumps(why, indent=2, default=str))
                else:
                    print(explain_view(why, threshold=_threshold(args)))
                return 0
    print(f"order {args.order_id} is in no journal under {folder}")
    return 1
