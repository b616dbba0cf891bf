"""How the swarm commands show what they find: the status table, and the human layouts of
``explain`` and ``kill-switch``."""

from __future__ import annotations

import time
from typing import Any


def status_table(statuses: dict[str, dict[str, Any]]) -> Any:
    """A rich table of every symbol's last cycle."""
    from rich.table import Table

    table = Table(title="swarm-ray", expand=False)
    for col in ("symbol", "cycle", "time (UTC)", "mid", "action", "votes", "share", "position",
                "PnL", "fills", "ms", "notes"):  # fmt: skip
        table.add_column(col, justify="right" if col in ("cycle", "mid", "share", "ms") else "left")
    for name, st in sorted(statuses.items()):
        if "symbols" not in st:
            table.add_row(name, "", "", "", "", "", "", "", "", "", "", st.get("error", "?"))
            continue
        for sym, s in st["symbols"].items():
            last = s.get("last") or {}
            t = last.get("time_ns")
            when = time.strftime("%Y-%m-%d %H:%M", time.gmtime(t / 1e9)) if t else ""
            votes = " ".join(f"{a[:4]}:{v}" for a, v in (last.get("votes") or {}).items())
            notes = "; ".join(
                [*(last.get("data_problems") or []), *(last.get("risk_reasons") or [])]
            )
            if s.get("kill_switch"):
                notes = "KILL SWITCH " + notes
            table.add_row(
                sym,
                str(s.get("cycle", "")),
                when,
                f"{last['mid']:.2f}" if last.get("mid") else "",
                last.get("action", ""),
                votes,
                f"{last.get('share', 0):.2f}",
                f"{s.get('position', 0):g}",
                f"{s.get('pnl', 0):.2f}",
                str(s.get("fills", 0)),
                f"{last.get('latency_ms', 0):.1f}",
                notes[:60],
            )
    return table
