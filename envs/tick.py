"""The environment's tick replay: its quotes rest in the recorded queue between two steps.

``TickFills`` keeps one resting quote per side on an L2 ``TickTape``. At each step the agent's
new quotes reach the venue ``latency_ms`` after the step's time; until then the old ones keep
trading. A quote whose price does not change keeps its place in the queue (as a coordinator
that diffs its ladder keeps its orders); a new price joins the back of the queue. Post-only:
a quote that would cross the book when it arrives is not placed. Fills, partial ones included,
come from ``envs.queue.queue_fills``, the paper exchange's own matching.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from dataclasses import dataclass

from envs.data.l2.tape import TickTape
from envs.queue import QueueModel, QueueModelName, QueuePosition, queue_fills

__all__ = ["Quote", "TickFills"]


@dataclass
class Quote:
    """A resting quote: side (+1 bid, -1 ask), price, quantity still open, queue place."""

    side: int
    price: float
    leaves: float
    queue: QueuePosition


class TickFills:
    """Resting quotes on ``tape``, matched with ``model`` (see the module docstring)."""

    def __init__(
        self,
        tape: TickTape,
        tick_size: float,
        lot_size: float,
        model: QueueModelName = "risk_averse",
        power: float = 2.0,
        latency_ms: float = 10.0,
    ) -> None:
        self.tape = tape
        self.tick = tick_size
        self.lot = lot_size
        self.model = QueueModel(model, power)
        self.latency_ms = latency_ms
        self.resting: dict[int, Quote] = {}

    def reset(self) -> None:
        self.resting.clear()

    def bid_price(self, price: float) -> float:
        """``price`` rounded down to the tick (a bid never improves on what was asked)."""
        return round(math.floor(price / self.tick + 1e-9) * self.tick, 12)

    def ask_price(self, price: float) -> float:
        return round(math.ceil(price / self.tick - 1e-9) * self.tick, 12)

    def step(
        self, t0_ms: int, t1_ms: int, bid: float | None, ask: float | None, size: float
    ) -> list[tuple[int, float, float]]:
        """Quote ``bid``/``ask`` (tick prices, None: no quote) from ``t0_ms`` (plus latency)
        until ``t1_ms``; the fills on the way, ``(side, quantity, price)`` in time order."""
        arrive = min(t0_ms + self.latency_ms, t1_ms)
        fills = self._match(t0_ms, arrive)
        tape = self.tape
        i = bisect_right(tape.book_ms, arrive) - 1
        for side, px in ((1, bid), (-1, ask)):
            old = self.resting.get(side)
            if old is not None and px is not None and old.price == px and old.leaves > 0:
                continue
            self.resting.pop(side, None)
            if px is None or i < 0:
                continue
            if (px >= tape.best_ask[i]) if side > 0 else (px <= tape.best_bid[i]):
                continue  # would take: post-only refuses it
            shown = tape.level_qty(side > 0, px, i)
            self.resting[side] = Quote(side, px, size, QueuePosition(shown))
        fills += self._match(arrive, t1_ms)
        return fills

    def _match(self, start_ms: float, end_ms: float) -> list[tuple[int, float, float]]:
        """Fills of the resting quotes on the tape's events in ``(start_ms, end_ms]``."""
        if not self.resting or end_ms <= start_ms:
            return []
        tape = self.tape
        books = (bisect_right(tape.book_ms, start_ms), bisect_right(tape.book_ms, end_ms))
        trade_ms = tape.trade_ms
        trades = (
            int(trade_ms.searchsorted(start_ms, side="right")),
            int(trade_ms.searchsorted(end_ms, side="right")),
        )
        hits: list[tuple[int, int, float, float]] = []
        for side, q in list(self.resting.items()):
            for _, _, pos, qty in queue_fills(
                tape, side > 0, q.price, q.leaves, q.queue, self.model, self.lot, books, trades
            ):
                qty = min(qty, q.leaves)
                q.leaves -= qty
                hits.append((pos, side, qty, q.price))
            if q.leaves < self.lot / 2:
                del self.resting[side]
        hits.sort()
        return [(side, qty, px) for _, side, qty, px in hits]
