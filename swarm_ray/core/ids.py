"""Client order ids: the name an order carries from the coordinator's decision to the venue.

An id is derived from the run, symbol, cycle, side, ladder level and attempt alone, so every
process computes the same id for the same order. The coordinator journals an intent under it
before sending, and a restarted coordinator finds the venue's copy of the order by it.
"""

from __future__ import annotations

import hashlib
import string

from swarm_ray.core.domain import Side

__all__ = ["deterministic_client_order_id"]

_B36 = string.digits + string.ascii_lowercase


def _b36(n: int) -> str:
    out = ""
    while True:
        n, r = divmod(n, 36)
        out = _B36[r] + out
        if n == 0:
            return out


def deterministic_client_order_id(
    run_id: str, symbol: str, cycle: int, side: Side | str, level: int, attempt: int = 0
) -> str:
    """The client order id of one ladder level of one cycle, the same in every process.

    ``sr<12 hex of sha256(run_id, symbol)>-<cycle>-<B|S><level>-<attempt>`` with the numbers
    in base 36: at most 32 characters of ``[a-z0-9-]``, inside Binance's
    ``^[.A-Z:/a-z0-9_-]{1,36}$``. Within one run and symbol it is injective; across runs and
    symbols it differs unless 48 bits of SHA-256 collide.
    """
    side = Side(side)
    if not isinstance(cycle, int) or not 0 <= cycle < 36**10:
        raise ValueError(f"cycle must be an int in [0, 36**10), got {cycle!r}")
    if not isinstance(level, int) or not 0 <= level < 36**2:
        raise ValueError(f"level must be an int in [0, 1296), got {level!r}")
    if not isinstance(attempt, int) or not 0 <= attempt < 36**2:
        raise ValueError(f"attempt must be an int in [0, 1296), got {attempt!r}")
    # Length-prefixed so that ("ab", "c") and ("a", "bc") hash differently.
    key = f"{len(run_id)}:{run_id}|{len(symbol)}:{symbol}".encode()
    digest = hashlib.sha256(key).hexdigest()[:12]
    side_char = "B" if side is Side.BUY else "S"
    return f"sr{digest}-{_b36(cycle)}-{side_char}{_b36(level)}-{_b36(attempt)}"
