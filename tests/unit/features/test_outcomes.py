"""What each action would have earned in hindsight, and how a vote is scored against its
alternative."""

from __future__ import annotations

import math

import numpy as np
import pytest

from envs.actions import Action
from swarm_ray.features.outcomes import (
    OutcomeParams,
    action_edges,
    alternative,
    side_of,
    vote_label,
)
from swarm_ray.trading.quoting import QuotingParams

# tight 3 bps, wide 8 bps, skews 1.5 / 4.5 bps; maker 2 bps, taker 5 bps + 1 bps half spread
P = OutcomeParams(horizon=5, maker_bps=2.0, taker_bps=5.0, table=tuple(QuotingParams().table()),
                  market_half_spread_bps=1.0)  # fmt: skip


def bps(mid: float, x: float) -> float:
    return mid * (1 + x / 1e4)


def test_a_bar_that_trades_through_the_bid_fills_it_and_marks_it_to_the_later_mid() -> None:
    mid = 60_000.0
    # low 5 bps below the mid: tight (3), skew_buy's bid (1.5) and skew_sell's (4.5) fill, wide
    # (8) does not; the high (2 bps up) reaches only skew_sell's ask (1.5); later mid -4 bps
    (e,) = action_edges(P, [mid], [bps(mid, 2)], [bps(mid, -5)], [bps(mid, -4)])
    assert e[Action.STAND_ASIDE] == 0.0
    assert e[Action.QUOTE_TIGHT] == pytest.approx(-4 + 3 - 2)  # bought 3 below, worth -4
    assert e[Action.QUOTE_WIDE] == 0.0  # no fill: a tie with standing aside
    assert e[Action.SKEW_BUY] == pytest.approx(-4 + 1.5 - 2)
    assert e[Action.SKEW_SELL] == pytest.approx((-4 + 4.5 - 2) + (1.5 + 4 - 2))  # both sides
    assert e[Action.REDUCE_BUY] == pytest.approx(-4 - 5 - 1)  # a market buy before a fall
    assert e[Action.REDUCE_SELL] == pytest.approx(4 - 5 - 1)


def test_touching_a_price_is_not_trading_through_it_and_bad_input_has_no_outcome() -> None:
    mid = 100.0
    edges = action_edges(
        P, [mid, mid, math.nan], [bps(mid, 3), 101, 101], [bps(mid, -3), 99, 99], [mid, math.inf, 1]
    )
    assert edges[0, Action.QUOTE_TIGHT] == 0.0  # low == bid exactly: no fill
    assert np.isnan(edges[1]).all() and np.isnan(edges[2]).all()


def test_a_vote_is_scored_against_its_alternative_ties_counting_half() -> None:
    e = np.array([0.0, -1.0, 0.0, 2.0, -3.0, -6.0, -4.0])
    assert side_of(Action.QUOTE_TIGHT) == "active" and side_of(Action.EMERGENCY_STOP) == "passive"
    assert alternative(Action.SKEW_BUY) is Action.STAND_ASIDE
    q = [5.0, 1.0, 0.5, 3.0, 0.0, 0.0, 0.0]  # stand aside first, skew_buy its best way to trade
    assert alternative(Action.STAND_ASIDE, q) is Action.SKEW_BUY
    assert alternative(Action.STAND_ASIDE) is Action.QUOTE_TIGHT  # no ranking
    assert vote_label(e, Action.SKEW_BUY, Action.STAND_ASIDE) == 1.0
    assert vote_label(e, Action.QUOTE_TIGHT, Action.STAND_ASIDE) == 0.0
    assert vote_label(e, Action.QUOTE_WIDE, Action.STAND_ASIDE) == 0.5
    assert vote_label(e, Action.STAND_ASIDE, Action.SKEW_BUY) == 0.0  # it missed +2
    assert vote_label(e, Action.EMERGENCY_STOP, Action.QUOTE_TIGHT) == 1.0
    assert math.isnan(vote_label(np.full(7, np.nan), Action.QUOTE_TIGHT, Action.STAND_ASIDE))


def test_outcome_params_refuse_a_horizon_below_one_bar() -> None:
    with pytest.raises(ValueError, match="horizon"):
        OutcomeParams(horizon=0, maker_bps=0, taker_bps=0, table=P.table)
