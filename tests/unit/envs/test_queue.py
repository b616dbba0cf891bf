"""Queue-position models: the arithmetic hftbacktest's models of the same names use."""

from __future__ import annotations

import math

import pytest

from envs.queue import QueueModel, QueuePosition


def test_risk_averse_advances_only_on_trades_and_shrinking_below_the_estimate() -> None:
    m = QueueModel("risk_averse")
    q = QueuePosition(5.0)
    m.on_level(q, 3.0)  # cancels somewhere in the level: no progress unless below us
    assert q.ahead == 3.0  # the level is smaller than what was ahead
    m.on_level(q, 10.0)  # newcomers join behind
    assert q.ahead == 3.0
    m.on_trade(q, 2.0)
    assert q.ahead == 1.0 and m.filled(q, 0.001) == 0.0
    m.on_trade(q, 1.5)
    assert m.filled(q, 0.001) == pytest.approx(0.5)


def test_power_prob_splits_a_cancel_by_the_queue_behind_and_ahead() -> None:
    m = QueueModel("power_prob", power=2.0)
    q = QueuePosition(4.0)  # 4 ahead
    q.level = 10.0  # ... and 6 behind
    m.on_level(q, 8.0)  # 2 cancelled
    p = 36 / (36 + 16)  # f(back) / (f(back) + f(front))
    assert q.ahead == pytest.approx(4.0 - (1 - p) * 2.0)
    # a trade already counted in the next level update is not counted twice
    q = QueuePosition(4.0)
    q.level = 10.0
    m.on_trade(q, 1.0)
    m.on_level(q, 9.0)  # the trade explains the whole decrease
    assert q.ahead == pytest.approx(3.0)


def test_log_prob_and_an_undefined_split() -> None:
    m = QueueModel("log_prob")
    q = QueuePosition(4.0)
    q.level = 10.0
    m.on_level(q, 8.0)
    p = math.log1p(6) / (math.log1p(6) + math.log1p(4))
    assert q.ahead == pytest.approx(4.0 - (1 - p) * 2.0)
    empty = QueuePosition(0.0)
    QueueModel("power_prob").on_level(empty, 0.0)
    assert empty.ahead == 0.0


def test_unknown_model_and_bad_power_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown queue model"):
        QueueModel("fifo")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="power"):
        QueueModel("power_prob", power=0)
