"""``swarm-ray stop [--emergency]``: stop the running swarms after their current cycle.

``--emergency`` trips each symbol's kill switch (kept in the journal, so it survives restarts)
and cancels every open order at once. Quoting resumes only after an operator clears it:
``swarm-ray kill-switch --clear --operator NAME``.
"""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("stop", help="stop the running swarms (--emergency: kill switch + cancel)")
    p.add_argument("--address", default="auto", help="Ray cluster address (default auto)")
    p.add_argument("--emergency", action="store_true", help="trip the kill switch, cancel all")
    p.add_argument("--symbol", default=None, help="only the coordinator of this symbol")
    p.add_argument("--reason", default="operator stop", help="recorded in the journal")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import ray

    from swarm_ray.commands._swarm import init_ray
    from swarm_ray.runtime import swarm as runtime

    init_ray(args.address)
    coords = runtime.find_coordinators()
    if args.symbol:
        coords = {n: h for n, h in coords.items() if args.symbol in n}
    if not coords:
        print("no swarm is running on this cluster")
        return 1
    for name, st in zip(
        coords,
        ray.get([h.stop.remote(args.emergency, args.reason) for h in coords.values()]),
        strict=True,
    ):
        what = "kill switch tripped, orders canceled" if args.emergency else "stopping"
        print(f"{name}: {what} (cycle {st['cycles']})")
    return 0
