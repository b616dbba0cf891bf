"""Queue-position models: how much of the displayed size is still ahead of a resting order.

A resting limit order joins the back of the queue at its price: everything displayed there
when it arrives is ahead of it. Trades at its price eat the queue from the front; cancels by
others shrink the level too, but the data does not say whether they were ahead of the order or
behind it. The models differ only in that guess:

- ``risk_averse``: cancels never help. The order advances on trades at its price, and only drops
  to the level's size when the level shrinks below what is ahead.
- ``power_prob`` (exponent ``n``) and ``log_prob``: a decrease of the level that trades do not
  explain is split between ahead and behind with the probability ``f(back) / (f(back) +
  f(front))``, ``f(x) = x ** n`` or ``log(1 + x)``: the further back the order, the more of a
  cancel is likely to have been ahead of it.

These are the queue models of hftbacktest (its ``RiskAdverseQueueModel`` and ``ProbQueueModel``
with ``PowerProbQueueFunc`` / ``LogProbQueueFunc``), written for this project.
``queue_fills`` walks a ``TickTape`` for one resting order with them: the paper exchange's and
the environment's tick replays use it, and ``scripts/validate_fills.py`` checks the fills
against hftbacktest itself.

One deliberate difference: a fill here is never larger than the trade that made it. In
hftbacktest 2.4.4 a probabilistic estimate pushed below zero by cancels lets the next trade,
however small, fill the order by everything past the front.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from envs.data.l2.tape import TickTape

__all__ = ["QUEUE_MODELS", "QueueModel", "QueueModelName", "QueuePosition", "queue_fills"]

QueueModelName = Literal["risk_averse", "power_prob", "log_prob"]
QUEUE_MODELS: tuple[str, ...] = ("risk_averse", "power_prob", "log_prob")


class QueuePosition:
    """One resting order's place in its price level's queue.

    ``ahead``: displayed quantity in front of it (negative once trades have reached it).
    ``level``: the level's displayed size as last seen. ``traded``: quantity traded at the level
    since the level last changed (a later book update already includes it).
    """

    __slots__ = ("ahead", "level", "traded")

    def __init__(self, level_qty: float) -> None:
        self.ahead = level_qty
        self.level = level_qty
        self.traded = 0.0

    def __repr__(self) -> str:
        return f"QueuePosition(ahead={self.ahead:g}, level={self.level:g})"


class QueueModel:
    """A queue-position model: ``on_trade`` and ``on_level`` move the order's position,
    ``filled`` says how much of the last trade reached it.

    ``name`` is one of ``QUEUE_MODELS``; ``power`` the exponent of ``power_prob``.
    """

    __slots__ = ("_log", "_power", "_prob", "name")

    def __init__(self, name: QueueModelName = "risk_averse", power: float = 2.0) -> None:
        if name not in QUEUE_MODELS:
            raise ValueError(f"unknown queue model {name!r}; known: {QUEUE_MODELS}")
        if not power > 0:
            raise ValueError(f"queue power must be positive, got {power}")
        self.name = name
        self._power = power
        self._prob = name != "risk_averse"
        self._log = name == "log_prob"

    def __repr__(self) -> str:
        extra = f", power={self._power:g}" if self.name == "power_prob" else ""
        return f"QueueModel({self.name!r}{extra})"

    def on_trade(self, pos: QueuePosition, qty: float) -> None:
        """A trade of ``qty`` at the order's price, against its side."""
        pos.ahead -= qty
        pos.traded += qty

    def on_level(self, pos: QueuePosition, new_qty: float) -> None:
        """The level at the order's price now shows ``new_qty`` (others' orders only)."""
        prev = pos.level
        pos.level = new_qty
        traded, pos.traded = pos.traded, 0.0
        if not self._prob:
            pos.ahead = min(pos.ahead, new_qty)
            return
        change = prev - new_qty - traded  # the decrease trades do not explain: cancels
        if change < 0.0:  # the level grew: newcomers join behind
            pos.ahead = min(pos.ahead, new_qty)
            return
        front = pos.ahead
        back = prev - front
        p = self._behind_prob(front, back)
        estimate = front - (1.0 - p) * change + min(back - p * change, 0.0)
        # an undefined split (an empty level, a queue estimate gone negative) keeps the level
        pos.ahead = new_qty if math.isnan(estimate) else min(estimate, new_qty)

    def _behind_prob(self, front: float, back: float) -> float:
        """The chance that a cancel at the level came from behind the order (NaN: undefined)."""
        fb, ff = self._f(back), self._f(front)
        total = fb + ff
        if total == 0.0 or math.isnan(total):
            return math.nan
        p = fb / total
        return 1.0 if math.isinf(p) else p

    def _f(self, x: float) -> float:
        try:
            return math.log1p(x) if self._log else math.pow(x, self._power)
        except (ValueError, OverflowError):
            return math.nan

    @staticmethod
    def filled(pos: QueuePosition, lot: float) -> float:
        """Whole lots the trades have reached past the queue ahead (0 while it is not used
        up); the order is then at the front (``ahead`` 0)."""
        lots = round(-pos.ahead / lot)
        if lots <= 0:
            return 0.0
        pos.ahead = 0.0
        return lots * lot


def queue_fills(
    tape: TickTape,
    buy: bool,
    price: float,
    leaves: float,
    queue: QueuePosition,
    model: QueueModel,
    lot: float,
    books: tuple[int, int],
    trades: tuple[int, int],
) -> list[tuple[bool, int, int, float]]:
    """Fills of one resting order over books ``[b0, b1)`` and trades ``[t0, t1)`` of ``tape``,
    in order: ``(is_trade, index, stream position, quantity)``, the index a trade's or a book's.
    ``queue`` is updated in place; the order is done when the quantities add up to ``leaves``.

    A trade at the order's price against its side first uses up the queue ahead; what is left
    of it fills the order, partly when it is smaller than what the order still needs. A trade
    through the order's price, or the opposite best price reaching it, fills the rest. Buys
    fill only from sell-initiated trades, sells from buy-initiated ones (hftbacktest's
    partial-fill exchange).
    """
    d = tape
    b0, b1 = books
    t0, t1 = trades
    events: list[tuple[int, int, int]] = []  # (position, kind, index): 0 level, 1 trade, 2 cross
    hist = d.levels.get((buy, price))
    if hist is not None:
        idx = hist[0]
        for j in range(bisect_left(idx, b0), bisect_left(idx, b1)):
            events.append((d.book_pos[idx[j]], 0, j))
    prices, takers = d.price_l, d.taker_buy_l
    for k in range(t0, t1):
        p = prices[k]
        if buy:
            if p <= price and not takers[k]:
                events.append((d.trade_pos[k], 1, k))
        elif p >= price and takers[k]:
            events.append((d.trade_pos[k], 1, k))
    touch = d.best_ask if buy else d.best_bid
    for i in range(b0, b1):
        if (touch[i] <= price) if buy else (touch[i] >= price):
            events.append((d.book_pos[i], 2, i))
            break
    if not events:
        return []
    events.sort()
    out: list[tuple[bool, int, int, float]] = []
    qtys = d.qty_l
    for pos, kind, i in events:
        if kind == 0:
            assert hist is not None
            model.on_level(queue, hist[1][i])
            continue
        if kind == 2:
            out.append((False, i, pos, leaves))
            return out
        p = prices[i]
        if p != price:  # through the order's price
            out.append((True, i, pos, leaves))
            return out
        model.on_trade(queue, qtys[i])
        reach = model.filled(queue, lot)
        if reach > 0.0:
            q = min(reach, qtys[i], leaves)
            out.append((True, i, pos, q))
            leaves -= q
            if leaves < lot / 2:
                return out
    return out
