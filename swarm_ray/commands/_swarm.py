"""Shared plumbing of the swarm commands: the config, Ray, and the live status view."""

from __future__ import annotations

import os
import socket
import time
from typing import Any

from swarm_ray.core.config import load_config, resolve_path
from swarm_ray.runtime.config import SwarmConfig

DEFAULT_CONFIG = "configs/paper.yaml"


def load_swarm_config(path: str, **overrides: Any) -> SwarmConfig:
    cfg = load_config(resolve_path(path), SwarmConfig)
    return cfg.model_copy(update=overrides) if overrides else cfg


def init_ray(address: str | None, num_cpus: int | None = None) -> None:
    """Attach to the cluster at ``address`` (or ``RAY_ADDRESS``, as under ``ray job submit``),
    else start a local one. The swarm's own namespace keeps its actors findable."""
    import ray

    from swarm_ray.runtime.actors import NAMESPACE

    if ray.is_initialized():
        return
    address = address or os.environ.get("RAY_ADDRESS")
    kwargs: dict[str, Any] = {"namespace": NAMESPACE, "log_to_driver": False}
    if address:
        ray.init(address=address, **kwargs)
    else:
        ray.init(num_cpus=num_cpus, include_dashboard=False, **kwargs)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


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
