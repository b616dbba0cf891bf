"""``swarm-ray explain ORDER_ID``: an order with its cycle's votes, decision and risk reasons;
``swarm-ray kill-switch``: show or clear a symbol's kill switch (works offline, on the journal)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

DEFAULT_JOURNAL_DIR = "runs/paper/journal"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("explain", help="explain an order by its cycle's votes (from the journal)")
    p.add_argument("order_id", help="client order id")
    p.add_argument("--journal-dir", default=DEFAULT_JOURNAL_DIR, help="folder of journal files")
    p.set_defaults(func=run)


def _journals(folder: str) -> list[Path]:
    d = Path(folder)
    if d.is_file():
        return [d]
    files = sorted(d.glob("*.sqlite"))
    if not files:
        raise SystemExit(f"no journal under {d}")
    return files


def run(args: argparse.Namespace) -> int:
    from swarm_ray.journal import Journal

    for path in _journals(args.journal_dir):
        with Journal(path, read_only=True) as j:
            if j.order(args.order_id) is not None:
                print(json.dumps(j.explain_order(args.order_id), indent=2, default=str))
                return 0
    print(f"order {args.order_id} is in no journal under {args.journal_dir}")
    return 1
