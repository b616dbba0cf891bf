"""``swarm-ray stop [--emergency]``: stop the running swarms after their current cycle.

``--emergency`` trips each symbol's kill switch (kept in the journal, so it survives restarts)
and cancels every open order at once. Quoting resumes only after an operator clears it:
``swarm-ray kill-switch --clear --operator NAME``. Every stop is recorded in the journal with
its operator, reason and wall time.
"""

from __future__ import annotations

import argparse
import getpass


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("stop", help="stop the running swarms (--emergency: kill switch + cancel)")
    p.add_argument("--address", default="auto", help="Ray cluster address (default auto)")
    p.add_argument("--emergency", action="store_true", help="trip the kill switch, cancel all")
    p.add_argument("--symbol", default=None, help="only the coordinator trading this symbol")
    p.add_argument("--reason", default="operator stop", help="recorded in the journal")
    p.add_argument(
        "--operator", default=None, help="who stops it, recorded (default: the login name)"
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import ray

    from swarm_ray.commands._swarm import init_ray
    from swarm_ray.runtime import swarm as runtime

    operator = args.operator or getpass.getuser()
    init_ray(args.address, hidden=True)
    coords = runtime.find_coordinators()
    if not coords:
        print("no swarm is running on this cluster")
        return 1
    if args.symbol:
        symbols = runtime.coordinator_symbols(coords)
        wanted = args.symbol.upper()
        coords = {n: h for n, h in coords.items() if wanted in symbols.get(n, ())}
        if not coords:
            trading = ", ".join(sorted(s for ss in symbols.values() for s in ss)) or "none"
            print(f"no running coordinator trades {wanted}; trading now: {trading}")
            return 1
    stops = [h.stop.remote(args.emergency, args.reason, operator) for h in coords.values()]
    for name, st in zip(coords, ray.get(stops), strict=True):
        what = "kill switch tripped, orders canceled" if args.emergency else "stopping"
        print(f"{name}: {what} (cycle {st['cycles']}; by {operator}: {args.reason})")
    return 0
