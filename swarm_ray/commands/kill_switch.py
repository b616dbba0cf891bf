"""``swarm-ray kill-switch``: show the kill switches, or clear one (an operator's decision).

Works on the journal files directly, so it also works while no swarm runs; a running
coordinator reads the journal every cycle and resumes quoting once its switch is cleared.
"""

from __future__ import annotations

import argparse
import json

from swarm_ray.commands.explain import DEFAULT_JOURNAL_DIR, _journals


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("kill-switch", help="show or clear kill switches (journal)")
    p.add_argument("--journal-dir", default=DEFAULT_JOURNAL_DIR, help="folder of journal files")
    p.add_argument("--symbol", default=None, help="symbol (default: every symbol found)")
    p.add_argument("--clear", action="store_true", help="clear it (needs --operator)")
    p.add_argument("--operator", default="", help="who clears it (recorded)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from swarm_ray.journal import Journal

    if args.clear and not args.operator:
        print("clearing a kill switch needs --operator NAME (it is recorded)")
        return 2
    found = {}
    for path in _journals(args.journal_dir):
        with Journal(path, read_only=not args.clear) as j:
            symbols = [args.symbol] if args.symbol else j.symbols()
            for s in symbols:
                ks = j.kill_switch(s)
                if args.clear and ks is not None:
                    j.clear_kill_switch(s, args.operator)
                    found[s] = f"cleared by {args.operator} (was: {ks.reason})"
                else:
                    found[s] = "tripped: " + ks.reason if ks else "clear"
    print(json.dumps(found, indent=2))
    return 0
