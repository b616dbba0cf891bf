"""The coordinator of one symbol: one cycle as plain Python (no Ray here).

One cycle: snapshot -> features -> (opinions, gathered by the caller) -> consensus -> risk gate
-> quote ladder -> order diff -> journal -> orders -> metrics. ``prepare`` does the part before
the opinions and ``act`` the rest, so that a Ray actor can gather the opinions of many symbols
in one call per agent.

Order safety:
- every intent is committed to the journal (``PENDING``, deterministic client order id) in the
  same transaction as the votes that caused it, before it is sent;
- on start, and whenever an order's fate is unknown, ``reconcile`` asks the venue about every
  unresolved journaled order and about fills, and nothing new is placed until all are known;
- an intent is sent at most once: its id is never reused (the cycle number is part of it, and
  the journal refuses a duplicate), and an order whose answer was lost is queried, not resent.
"""

from __future__ import annotations

import logging
import math
import os
import time
from dataclasses import dataclass, field
from typing import Any

from envs.actions import Action
from swarm_ray.core.accounting import PositionLedger
from swarm_ray.core.clock import Clock
from swarm_ray.core.domain import (
    Fill,
    MarketSnapshot,
    Opinion,
    OrderIntent,
    OrderStatus,
    OrderType,
)
from swarm_ray.core.errors import OrderDropped
from swarm_ray.core.ids import deterministic_client_order_id
from swarm_ray.exchanges.base import Exchange
from swarm_ray.exchanges.errors import DefiniteReject, ExchangeError, OrderNotFound, RateLimited
from swarm_ray.features.observation import WINDOW, BarWindow, ObservationSpec, agent_observation
from swarm_ray.journal import CycleRecord, DecisionRecord, Journal
from swarm_ray.trading.config import TradingConfig
from swarm_ray.trading.consensus import adapt_weights, decide
from swarm_ray.trading.cycle import CycleInput, CycleSummary
from swarm_ray.trading.mute import MuteEvent, MuteGuard
from swarm_ray.trading.quoting import QuoteLadder, QuotingParams, diff_orders, ladder
from swarm_ray.trading.risk import RiskState, check
from swarm_ray.trading.track import ScoredVote, TrackRecords

__all__ = ["Account", "SymbolCoordinator"]

log = logging.getLogger(__name__)
MARKET_LEVEL = 99  # the ladder level used in the client order id of a reduce (market) order
_NS = 1_000_000_000
_DAY_NS = 86_400 * _NS


@dataclass
class Account:
    """Position, cash and fees of one symbol, rebuilt from fills (the journal's, then new)."""

    ledger: PositionLedger = field(default_factory=PositionLedger)

    def apply(self, fill: Fill, base_asset: str, quote_asset: str) -> None:
        self.ledger.apply(fill, base_asset, quote_asset)

    @property
    def quantity(self) -> float:
        return float(self.ledger.quantity)

    @property
    def avg_price(self) -> float:
        return float(self.ledger.entry_price or 0)

    @property
    def cash(self) -> float:
        return float(self.ledger.cash)

    @property
    def fees(self) -> float:
        return float(self.ledger.fees)

    @property
    def fills(self) -> int:
        return self.ledger.fills

    @property
    def last_fill_ms(self) -> int:
        return self.ledger.last_fill_ms

    def pnl(self, mid: float) -> float:
        return float(self.ledger.pnl(mid))

    def unrealized(self, mid: float) -> float:
        return float(self.ledger.unrealized(mid))


class SymbolCoordinator:
    """The cycle of one symbol over an exchange, a journal and a clock."""

    def __init__(
        self,
        symbol: str,
        cfg: TradingConfig,
        exchange: Exchange,
        journal: Journal,
        clock: Clock,
        spec: ObservationSpec,
        metrics: Any = None,
        quoting: QuotingParams | None = None,
    ) -> None:
        self.symbol = symbol
        self.cfg = cfg
        self.exchange = exchange
        self.journal = journal
        self.clock = clock
        self.spec = spec
        self.metrics = metrics
        self.rules = exchange.symbol_rules(symbol)
        self.quoting = quoting or QuotingParams()
        """Quoting parameters in force: the strategy optimizer's (updated when it re-tunes)."""
        self.last_agreed: Action | None = None  # the last action a vote carried
        self.last_ladder: tuple[float, float] | None = None  # and its blended ladder
        self.weights = dict(cfg.consensus.weights)
        """The consensus weights in force: the configured, or adapted (``consensus.adapt``)."""
        self.window = BarWindow(spec)
        self.track = TrackRecords(cfg.track, self.quoting.table())
        """Every agent's votes scored in hindsight (their track records)."""
        self._scored: list[ScoredVote] = []
        self._agents_exported = False
        self.mute = MuteGuard.of(cfg.consensus.mute, spec.floors)
        """Each agent's rolling record against its floor (``consensus.mute``)."""
        self._horizons = self.mute.prediction_horizons()
        self._mute_events: list[MuteEvent] = []
        if cfg.consensus.mute.enabled:
            self._check_floors()
        self.account = Account()
        self.cycle_no = (journal.last_cycle(symbol) or 0) + 1
        self.peak_equity = cfg.capital
        self.session_peak = 0.0
        self.day_start_equity = cfg.capital
        self.day = -1
        self.session = -1
        self.needs_reconcile = True
        self._venue_down_since: int | None = None
        """Since when (clock ns) the venue has failed every reconcile/fill call; None: it is up."""
        self.last_summary: CycleSummary | None = None
        self.reconciled: dict[str, int] = {}
        self._snapshot: MarketSnapshot | None = None
        self._problems: tuple[str, ...] = ()
        self._t0 = 0.0
        self._new_fills = 0
        self.crash_before_send = False
        """Chaos for fault tests (paper runs): exit once the next intents are journaled, before
        any is sent."""
        for f in journal.fills(symbol):
            self.account.apply(f, self.rules.base_asset, self.rules.quote_asset)

    # ------------------------------------------------------------------ safety
    def reconcile(self) -> dict[str, int]:
        """Settle every unresolved journaled order and fetch missed fills from the venue."""
        stats = {"checked": 0, "never_sent": 0, "updated": 0, "foreign_canceled": 0, "fills": 0}
        known = set()
        for o in self.journal.unresolved_orders(self.symbol):
            stats["checked"] += 1
            known.add(o.client_order_id)
            venue = self.exchange.get_order(self.symbol, o.client_order_id)
            if venue is None:
                if o.status in (OrderStatus.PENDING, OrderStatus.UNKNOWN):
                    self.journal.mark_never_sent(o.client_order_id, "venue never had it")
                    stats["never_sent"] += 1
                else:
                    self.journal.set_order_status(
                        o.client_order_id, OrderStatus.EXPIRED, reason="gone from the venue"
                    )
                    stats["updated"] += 1
                continue
            self.journal.update_order(venue)
            stats["updated"] += 1
        for o in self.exchange.open_orders(self.symbol):
            if o.client_order_id not in known and self.journal.order(o.client_order_id) is None:
                # not ours by the journal: a quote we cannot explain must not rest on our account
                self.exchange.cancel_order(self.symbol, o.client_order_id)
                stats["foreign_canceled"] += 1
        stats["fills"] = self._sync_fills()
        self.needs_reconcile = False
        self.reconciled = stats
        return stats

    def _sync_fills(self) -> int:
        since = max(0, (self.journal.last_fill_time_ms(self.symbol) or 0) - 1)
        new = self.journal.record_fills(self.exchange.fills_since(self.symbol, since))
        for f in new:
            self.account.apply(f, self.rules.base_asset, self.rules.quote_asset)
            if self.metrics is not None:
                self.metrics.fill(self.symbol, f.side.value)
        # the journal keeps each order's state: take the venue's word for the ones that traded
        for cid in dict.fromkeys(f.client_order_id for f in new):
            order = self.exchange.get_order(self.symbol, cid)
            if order is not None:
                self.journal.update_order(order)
        return len(new)

    # ------------------------------------------------------------------ prepare
    def prepare(self) -> CycleInput:
        """Snapshot, bars and features of this cycle: the agents' input."""
        self._t0 = time.perf_counter()
        problems: list[str] = []
        self._new_fills = 0
        try:
            if self.needs_reconcile:
                self._new_fills = self.reconcile()["fills"]
            else:
                self._new_fills = self._sync_fills()
            self._venue_down_since = None
        except ExchangeError as exc:
            # a venue error degrades this cycle (no new quotes; reconcile again next cycle)
            # instead of stopping the symbol with its quotes left on the book unmanaged
            self.needs_reconcile = True
            problems.append(f"venue unavailable: {type(exc).__name__}: {exc}")
            log.warning("%s: reconcile/fills failed (%s); standing aside", self.symbol, exc)
            self._venue_failing(exc)
        now_ns = self.clock.now_ns()
        snap: MarketSnapshot | None
        try:
            snap = self.exchange.market_snapshot(self.symbol)
            problems += snap.problems(now_ns, int(self.cfg.cycle.max_data_age_s * _NS))
        except ExchangeError as exc:
            snap = None
            problems.append(f"market data unavailable: {exc}")
        try:
            self._refresh_bars(now_ns)
            self._scored = self.track.resolve(self.window.bars())
            if self.cfg.consensus.adapt.enabled and self._scored:
                scored = ((v.agent_id, v.label) for v in self._scored)
                self.weights = adapt_weights(self.weights, self.cfg.consensus, scored)
            if self.cfg.consensus.mute.enabled:
                predicted = self.track.resolve_predictions(self.window.bars())
                self.mute.score(self._scored, predicted)
                self._muted(self.mute.judge(self.cycle_no, now_ns))
        except ExchangeError as exc:
            problems.append(f"bars unavailable: {exc}")
        mid = snap.mid if snap is not None else math.nan
        analysis: tuple[float, ...] = (0.0,) * 20
        obs: tuple[float, ...] = (0.0,) * 15
        others: dict[str, tuple[float, ...]] = {}
        if not problems:
            try:
                a, market = self.window.features()
                obs = tuple(float(x) for x in self._observation(market, mid))
                analysis = tuple(float(x) for x in a)
                values = analysis + obs
                if self.spec.needs_v3:
                    row, unit = self.window.market_v3()
                    v3 = tuple(float(x) for x in self._observation(row, mid, unit))
                    others = {m: v3 for m, layout in self.spec.layouts if layout == "v3"}
                    values += v3
                if not all(map(math.isfinite, values)):
                    problems.append("non-finite features")
            except ValueError as exc:
                problems.append(str(exc))
        self._snapshot = snap
        self._problems = tuple(problems)
        equity = self.cfg.capital + (self.account.pnl(mid) if math.isfinite(mid) else 0.0)
        dd = max(0.0, (self.peak_equity - equity) / self.peak_equity) if math.isfinite(mid) else 0
        return CycleInput(
            symbol=self.symbol,
            cycle=self.cycle_no,
            time_ns=now_ns,
            mid=mid,
            analysis=analysis,
            observation=obs,
            inventory_share=self.account.quantity / self.cfg.risk.max_position,
            drawdown=dd,
            volatility_bps=self.window.volatility_bps(),
            data_problems=self._problems,
            snapshot=snap,
            observations=others,
        )

    def _refresh_bars(self, now_ns: int) -> None:
        now_ms = now_ns // 1_000_000
        last = self.window.last
        if last is not None and now_ms < last.close_time_ms + 1 + 60_000:
            return  # no newer bar has closed yet
        limit = WINDOW if last is None else min(WINDOW, (now_ms - last.close_time_ms) // 60_000 + 2)
        bars = self.exchange.recent_klines(self.symbol, "1m", int(limit))
        self.window.extend(b for b in bars if b.close_time_ms < now_ms)

    def _observation(self, market_row: Any, mid: float, pnl_unit: float | None = None) -> Any:
        t_ns = self.clock.now_ns()
        session = (t_ns // 60_000_000_000) // self.spec.n_steps
        pnl = self.account.pnl(mid)
        if session != self.session:
            self.session, self.session_peak = session, pnl
        self.session_peak = max(self.session_peak, pnl)
        last = self.window.last
        bars_since = (
            (t_ns // 1_000_000 - self.account.last_fill_ms) / 60_000
            if self.account.last_fill_ms
            else 1e9
        )
        return agent_observation(
            market_row,
            self.spec,
            inventory=self.account.quantity,
            unrealized_pnl=self.account.unrealized(mid),
            drawdown=self.session_peak - pnl,
            bars_since_fill=bars_since,
            bar_open_ms=last.open_time_ms + 60_000 if last else t_ns // 1_000_000,
            pnl_unit=pnl_unit,
        )

    # ------------------------------------------------------------------ act
    def act(
        self,
        inp: CycleInput,
        opinions: list[Opinion],
        no_model: tuple[str, ...] = (),
    ) -> CycleSummary:
        """Consensus, risk gate, orders, journal and metrics of the prepared cycle.

        ``no_model``: the agents whose model did not answer (they voted without it)."""
        cfg, sym = self.cfg, self.symbol
        snap, problems = self._snapshot, self._problems
        mid = inp.mid
        consensus = cfg.consensus
        muting = consensus.mute.enabled
        if muting:  # a retrained model starts afresh, un-muted
            self._muted(self.mute.observe(opinions, self.cycle_no, inp.time_ns))
        if consensus.adapt.enabled or muting:  # this cycle's weights, journaled with each vote
            weights = self.mute.apply(self.weights, opinions) if muting else dict(self.weights)
            consensus = consensus.model_copy(update={"weights": weights})
        # a muted agent's weight counts toward the quorum at its muted value
        quorum_of = sum(self.weights.values()) if muting else None
        cons = decide(opinions, consensus, self.last_agreed, self.quoting.table(), quorum_of)
        distances = cons.ladder
        if cons.reason == "consensus":
            self.last_agreed, self.last_ladder = cons.action, cons.ladder
        elif cons.reason == "emergency_stop":
            self.last_agreed = self.last_ladder = None  # only a new vote quotes again
        elif cons.reason == "below_threshold" and cfg.consensus.no_consensus == "keep_quotes":
            distances = self.last_ladder  # the ladder agreed last, with its action
        pnl = self.account.pnl(mid) if math.isfinite(mid) else 0.0
        equity = cfg.capital + pnl
        day = inp.time_ns // _DAY_NS
        if day != self.day:
            self.day, self.day_start_equity = day, equity
        if math.isfinite(mid):
            self.peak_equity = max(self.peak_equity, equity)
        tripped = self.journal.kill_switch(sym) is not None
        state = RiskState(
            position=self.account.quantity,
            mid=mid,
            equity=equity,
            peak_equity=self.peak_equity,
            day_start_equity=self.day_start_equity,
            entry_price=self.account.avg_price or None,
            volatility_bps=inp.volatility_bps,
            kill_switch=tripped,
            data_problems=problems,
        )
        verdict = check(cons, state, cfg.risk)
        reasons = list(verdict.reasons)
        if verdict.cancel_all or snap is None:
            want = QuoteLadder(verdict.action)
        else:
            blend = distances if verdict.action is cons.action else None
            want = ladder(
                verdict.action, mid, snap.best_bid, snap.best_ask, self.quoting,
                self.rules, verdict.max_buy, verdict.max_sell, blend,
            )  # fmt: skip
        open_orders = self._open_orders()
        diff = diff_orders(want, open_orders, cfg.cycle.order_tolerance_ticks, self.rules)
        places = diff.places
        # read after asking the venue: when it could not list our orders, what rests there is
        # unknown, and placing a ladder on top of it could double it
        if self.needs_reconcile and places:
            reasons.append("our orders at the venue are unknown: reconcile before placing")
            places = ()
        intents = [self._intent(d) for d in places]
        decision = DecisionRecord(
            action=verdict.action,
            voted_action=cons.winner,
            consensus_share=cons.share,
            winning_score=cons.winning_score,
            responding_weight=cons.responding_weight,
            reason=cons.reason,
            risk_allowed=not reasons,
            risk_reasons=tuple(reasons),
            scores=dict(cons.scores),
            ladder=distances,
        )
        latency_ms = (time.perf_counter() - self._t0) * 1e3
        record = CycleRecord(
            symbol=sym,
            cycle=self.cycle_no,
            time_ns=inp.time_ns,
            mid=mid if math.isfinite(mid) else None,
            best_bid=snap.best_bid if snap else None,
            best_ask=snap.best_ask if snap else None,
            data_problems=problems,
            opinions=tuple(opinions),
            weights=consensus.weights,
            decision=decision,
            latency_ms=latency_ms,
            inventory=self.account.quantity,
            pnl=pnl,
            hindsight=tuple((v.cycle, v.agent_id, v.label, v.edge_bps) for v in self._scored),
        )
        self.journal.record_cycle(record, intents)
        scored_now, self._scored = bool(self._scored), []
        self.track.add(self.cycle_no, inp.time_ns, mid, opinions)
        if muting:
            self.track.add_predictions(self.cycle_no, self.window.last, opinions, self._horizons)
        events, self._mute_events = tuple(self._mute_events), []
        if verdict.trip_kill_switch:
            self.journal.trip_kill_switch(sym, "; ".join(verdict.reasons), actor="risk_gate")
            tripped = True
        if verdict.action is Action.EMERGENCY_STOP and open_orders:
            canceled = self._cancel_all(open_orders)
        else:
            canceled = self._cancel(diff.cancels)
        if self.crash_before_send and intents:
            os._exit(71)
        placed = self._place(intents)
        self.cycle_no += 1
        latency_ms = (time.perf_counter() - self._t0) * 1e3
        summary = CycleSummary(
            symbol=sym,
            cycle=inp.cycle,
            time_ns=inp.time_ns,
            mid=mid,
            best_bid=snap.best_bid if snap else math.nan,
            best_ask=snap.best_ask if snap else math.nan,
            action=verdict.action.label,
            voted=cons.winner.label if cons.winner is not None else None,
            share=cons.share,
            reason=cons.reason,
            risk_reasons=tuple(reasons),
            position=self.account.quantity,
            pnl=pnl,
            bids=tuple(float(d.price) for d in want.bids),
            asks=tuple(float(d.price) for d in want.asks),
            placed=placed,
            canceled=canceled,
            new_fills=self._new_fills,
            timed_out=no_model,
            data_problems=problems,
            latency_ms=latency_ms,
            kill_switch=tripped,
            votes={o.agent_id: o.action.label for o in opinions},
            carried=cons.carried,
            muted=self.mute.muted if muting else (),
            mute_events=events,
        )
        self.last_summary = summary
        if self.metrics is not None:
            self.metrics.cycle(
                sym, verdict.action.label, cons.share, latency_ms / 1e3, self.account.quantity, pnl
            )
            for agent in no_model:
                self.metrics.agent_timeout(sym, agent)
            if problems:
                self.metrics.data_fault(sym)
            if scored_now or events or not self._agents_exported:  # the weights at start
                self.metrics.agents(sym, self.agents_summary(), dict(consensus.weights))
                self._agents_exported = True
            self.metrics.kill_switch(sym, tripped)
        return summary

    def _muted(self, events: list[MuteEvent]) -> None:
        """Log each agent muted or un-muted (once, when it happens), for the cycle's summary."""
        for ev in events:
            log.warning("%s: %s", self.symbol, ev.reason)
        self._mute_events += events

    def agents_summary(self) -> dict[str, dict[str, Any]]:
        """Each agent's track record, and whether it is muted (``consensus.mute``)."""
        muted = set(self.mute.muted) if self.cfg.consensus.mute.enabled else set()
        out: dict[str, dict[str, Any]] = dict(self.track.summary())
        for agent in set(out) | muted:
            out[agent] = {**out.get(agent, {}), "muted": agent in muted}
        return dict(sorted(out.items()))

    def _check_floors(self) -> None:
        """Warn when the floors were measured at another horizon than the votes are scored at
        (``track.horizon_bars``): the rolling hit rates would not compare with them."""
        h = self.cfg.track.horizon_bars
        other = {
            f"{f.model} {f.version} ({f.horizon_bars} bars)"
            for f in self.spec.floors
            if f.measure == "hit_rate" and f.horizon_bars not in (None, h)
        }
        if other:
            log.warning(
                "%s: consensus.mute: votes are scored %d bars ahead (track.horizon_bars), the "
                "floors of %s were measured at another horizon",
                self.symbol, h, ", ".join(sorted(other)),
            )  # fmt: skip

    def _open_orders(self) -> list:
        try:
            return self.exchange.open_orders(self.symbol)
        except ExchangeError as exc:
            log.warning(
                "%s: open orders unavailable (%s); reconciling next cycle", self.symbol, exc
            )
            self.needs_reconcile = True
            return []

    def _intent(self, d: Any) -> OrderIntent:
        level = MARKET_LEVEL if d.order_type is OrderType.MARKET else d.level
        cid = deterministic_client_order_id(
            self.journal.run_id, self.symbol, self.cycle_no, d.side, level
        )
        return OrderIntent(self.symbol, d.side, d.price, d.quantity, cid, d.order_type)

    def _cancel(self, orders: Any) -> int:
        n = 0
        for o in orders:
            try:
                final = self.exchange.cancel_order(self.symbol, o.client_order_id)
                self.journal.update_order(final)
                n += 1
            except OrderNotFound:
                self.needs_reconcile = True  # filled or gone meanwhile: ask the venue
            except ExchangeError as exc:
                log.warning("%s: cancel %s failed: %s", self.symbol, o.client_order_id, exc)
                self.needs_reconcile = True
            else:
                self._metric_order("CANCELED")
        return n

    def _cancel_all(self, open_orders: list) -> int:
        try:
            self.exchange.cancel_all(self.symbol)
        except ExchangeError as exc:
            log.error("%s: cancel_all failed: %s", self.symbol, exc)
            self.needs_reconcile = True
            return 0
        for o in open_orders:
            final = self.exchange.get_order(self.symbol, o.client_order_id)
            if final is not None:
                self.journal.update_order(final)
        return len(open_orders)

    def _place(self, intents: list[OrderIntent]) -> int:
        placed = 0
        for i, intent in enumerate(intents):
            cid = intent.client_order_id
            try:
                order = self.exchange.place_order(intent)
            except OrderDropped as exc:
                self.journal.mark_never_sent(cid, f"dropped by filters: {exc}")
                self._metric_order("DROPPED")
                continue
            except RateLimited as exc:
                # nothing executed; leave the rest of this cycle's intents unsent too
                for rest in intents[i:]:
                    self.journal.mark_never_sent(rest.client_order_id, f"rate limited: {exc}")
                self._metric_order("RATE_LIMITED")
                break
            except DefiniteReject as exc:
                self.journal.set_order_status(cid, OrderStatus.REJECTED, reason=str(exc)[:200])
                self._metric_order("REJECTED")
                continue
            except ExchangeError as exc:
                # the fate of this order is unknown: never resend; ask the venue next cycle
                self.journal.set_order_status(cid, OrderStatus.UNKNOWN, reason=str(exc)[:200])
                self._metric_order("UNKNOWN")
                for rest in intents[i + 1 :]:
                    self.journal.mark_never_sent(rest.client_order_id, "earlier order unknown")
                self.needs_reconcile = True
                break
            self.journal.update_order(order)
            self._metric_order(order.status.value)
            if order.status is OrderStatus.UNKNOWN:
                self.needs_reconcile = True
                for rest in intents[i + 1 :]:
                    self.journal.mark_never_sent(rest.client_order_id, "earlier order unknown")
                break
            placed += 1
        return placed

    def _metric_order(self, status: str) -> None:
        if self.metrics is not None:
            self.metrics.order(self.symbol, status)

    def _venue_failing(self, exc: Exception) -> None:
        """After ``cycle.venue_grace_s`` of failures, stop the symbol: cancel every order
        (retried) and trip the kill switch, which holds until an operator clears it."""
        now = self.clock.now_ns()
        if self._venue_down_since is None:
            self._venue_down_since = now
        down_s = (now - self._venue_down_since) / _NS
        if down_s <= self.cfg.cycle.venue_grace_s or self.journal.kill_switch(self.symbol):
            return
        canceled = False
        for _ in range(3):
            try:
                self.exchange.cancel_all(self.symbol)
                canceled = True
                break
            except ExchangeError as err:
                log.error("%s: cancel_all failed: %s", self.symbol, err)
        self.needs_reconcile = True
        outcome = "orders canceled" if canceled else "cancel-all FAILED, orders may rest"
        reason = f"venue unavailable for {down_s:.0f}s ({type(exc).__name__}: {exc}); {outcome}"
        self.journal.trip_kill_switch(self.symbol, reason, actor="coordinator")
        log.error("%s: stopped: %s", self.symbol, reason)

    def emergency_stop(self, reason: str, actor: str = "operator") -> int:
        """Trip the kill switch (persisted) and cancel every open order now."""
        self.journal.trip_kill_switch(self.symbol, reason, actor=actor)
        open_orders = self._open_orders()
        return self._cancel_all(open_orders) if open_orders else 0
