"""``swarm-ray status``: every running swarm's last cycle, from its coordinator actors.

A table on a terminal; one ``key=value`` line per symbol when the output goes to a pipe or a
file (or with ``--plain``); ``--json`` for the coordinators' status as they report it.
"""

from __future__ import annotations

import argparse
import json
import sys


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("status", help="show the running swarms (coordinator actors)")
    p.add_argument("--address", default="auto", help="Ray cluster address (default auto)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument(
        "--plain", action="store_true", help="one key=value line per symbol (default when piped)"
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from swarm_ray.commands._swarm import init_ray
    from swarm_ray.commands.views import status_lines, status_table
    from swarm_ray.runtime import swarm as runtime

    init_ray(args.address, hidden=True)
    statuses = runtime.swarm_status()
    if args.json:
        print(json.dumps(statuses, indent=2, default=str))
    elif not statuses:
        print("no swarm is running on this cluster")
    elif args.plain or not sys.stdout.isatty():
        print("\n".join(status_lines(statuses)))
    else:
        from rich.console import Console

        Console().print(status_table(statuses))
    return 0 if statuses else 1
