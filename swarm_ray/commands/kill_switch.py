"""``swarm-ray kill-switch``: show the kill switches, or clear one (an operator's decision).

Works on the journal files directly, so it also works while no swarm runs; a running
coordinator reads the journal every cycle and resumes quoting once its switch is cleared.
"""

from __future__ import annotations

import argparse
import dataclasses
import json

from swarm_ray.commands.explain import _journals, add_journal_arguments, journal_dir


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("kill-switch", help="show or clear kill switches (journal)")
    add_journal_arguments(p)
    p.add_argument("--symbol", default=None, help="symbol (default: every symbol found)")
    p.add_argument("--clear", action="store_true", help="clear it (needs --operator)")
    p.add_argument("--operator", default="", help="who clears it (recorded)")
    p.add_argument(
        "--reason", default="", help="why it is cleared (recorded; default 'cleared by operator')"
    )
    p.add_argument("--json", action="store_true", help="print JSON: symbol -> state")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from swarm_ray.commands.views import kill_switch_view
    from swarm_ray.journal import Journal

    if args.clear and not args.operator:
        print("clearing a kill switch needs --operator NAME (it is recorded)")
        return 2
    found = {}
    rows = {}  # for the human layout: the state after this command, with its history
    for path in _journals(journal_dir(args)):
        with Journal(path, read_only=not args.clear) as j:
            symbols = [args.symbol] if args.symbol else j.symbols()
            for s in symbols:
                ks = j.kill_switch(s)
                if args.clear and ks is not None and (ks.symbol is not None or not args.symbol):
                    # its own switch, or (no --symbol: all of them) the one for every symbol
                    j.clear_kill_switch(ks.symbol, args.operator, args.reason)
                    still = j.kill_switch(s)  # a global switch can still hold it
                    found[s] = (
                        f"cleared by {args.operator} (was: {ks.reason})"
                        if still is None
                        else "tripped: " + still.reason
                    )
                elif args.clear and ks is not None:
                    found[s] = (
                        f"tripped for every symbol: {ks.reason} (clearing it resumes every "
                        "symbol: run --clear without --symbol)"
                    )
                else:
                    found[s] = "tripped: " + ks.reason if ks else "clear"
                now = j.kill_switch(s)
                state = "tripped" if now else ("cleared" if ks else "clear")
                switch = None if now is None else dataclasses.asdict(now)
                history = j.kill_switch_history(s)
                rows[s] = {"symbol": s, "state": state, "switch": switch, "history": history}
    if args.json:
        print(json.dumps(found, indent=2))
    else:
        print(kill_switch_view(list(rows.values())))
    return 0
