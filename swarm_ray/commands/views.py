"""How the swarm commands show what they find: the status table, its plain-line form, and the
human layouts of ``explain`` and ``kill-switch``.

Every function here takes the plain dicts the runtime and the journal hand out (a coordinator's
``status()``, :meth:`Journal.explain_order`) and returns a string or a rich renderable, so the
layouts are tested without Ray.
"""

from __future__ import annotations

import json
import textwrap
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from rich.table import Table
from rich.text import Text

from swarm_ray.core.domain import Action
from swarm_ray.core.roles import ROLES

if TYPE_CHECKING:
    from rich.console import Console, ConsoleOptions, ConsoleRenderable, RenderResult

__all__ = [
    "ACTION_CODES",
    "ROLE_CODES",
    "explain_view",
    "kill_switch_view",
    "status_lines",
    "status_table",
]

ROLE_CODES: dict[str, str] = {role: role[0].upper() for role in ROLES}
"""One letter per voting role (``market_analyst`` -> ``M``), for votes in a narrow table."""

ACTION_CODES: dict[str, str] = {
    a.label: "".join(part[0] for part in a.label.split("_")).upper() for a in Action
}
"""Two letters per action (``quote_tight`` -> ``QT``), for votes in a narrow table."""

_MISSING = "-"
_GAP = 2  # spaces between two table columns

# ----------------------------------------------------------------------------- formatting


def _utc(time_ns: int | None, fmt: str = "%Y-%m-%d %H:%M:%S") -> str:
    return time.strftime(fmt, time.gmtime(time_ns / 1e9)) if time_ns else _MISSING


def _price(x: float | None) -> str:
    if x is None:
        return _MISSING
    return f"{x:.2f}" if abs(x) >= 1 else f"{x:.6g}"


def _num(x: float | None, fmt: str) -> str:
    return _MISSING if x is None else format(x, fmt)


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: max(width - 1, 0)] + "…"


def _logfmt(key: str, value: object) -> str:
    text = str(value)
    if text == "" or any(c in text for c in ' "=\\') or not text.isprintable():
        text = json.dumps(text)
    return f"{key}={text}"


# ----------------------------------------------------------------------------- status rows


@dataclass(frozen=True)
class _Row:
    """One symbol of one swarm, as the layouts read it."""

    symbol: str
    cycle: str
    time_ns: int | None
    mid: str
    action: str
    share: str
    consensus: str
    votes: dict[str, str]
    position: float | None
    pnl: float | None
    fills: str
    ms: float | None
    kill_switch: bool | None
    notes: str


def _notes(s: Mapping[str, Any], last: Mapping[str, Any]) -> str:
    if not last:
        return "no cycle yet"
    reasons = list(last.get("risk_reasons") or [])
    # the risk gate quotes the data problems it stood aside for: list each once
    problems = [p for p in last.get("data_problems") or [] if not any(p in r for r in reasons)]
    parts = [*problems, *reasons]
    if s.get("kill_switch") and not any("kill switch" in p.lower() for p in parts):
        parts.insert(0, "kill switch tripped")
    if last.get("timed_out"):
        parts.append("no model answer: " + ", ".join(last["timed_out"]))
    return "; ".join(parts)


def _rows(statuses: Mapping[str, Mapping[str, Any]]) -> tuple[list[_Row], list[tuple[str, str]]]:
    """The symbols' rows (by symbol) and the swarms that could not answer (name, error)."""
    rows, errors = [], []
    for name, st in sorted(statuses.items()):
        if st.get("error"):
            errors.append((name, str(st["error"])))
        for sym, s in (st.get("symbols") or {}).items():
            last = s.get("last") or {}
            rows.append(
                _Row(
                    symbol=sym,
                    cycle=str(s["cycle"]) if last and s.get("cycle") is not None else _MISSING,
                    time_ns=last.get("time_ns"),
                    mid=_price(last.get("mid")),
                    action=last.get("action") or _MISSING,
                    share=_num(last.get("share"), ".2f") if last else _MISSING,
                    consensus=last.get("reason") or _MISSING,
                    votes=dict(last.get("votes") or {}),
                    position=s.get("position"),
                    pnl=s.get("pnl"),
                    fills=_num(s.get("fills"), "d"),
                    ms=last.get("latency_ms"),
                    kill_switch=s.get("kill_switch"),
                    notes=_notes(s, last),
                )
            )
    rows.sort(key=lambda r: r.symbol)
    return rows, errors


def status_lines(statuses: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """One ``key=value`` line per symbol (logfmt: the same keys in the same order on every
    line, ``-`` when unknown, notes last and quoted), then one per swarm that failed to answer.
    For pipes, logs and ``grep``; ``swarm-ray run`` prints these as it goes."""
    rows, errors = _rows(statuses)
    lines = []
    for r in rows:
        ks = _MISSING if r.kill_switch is None else ("tripped" if r.kill_switch else "clear")
        fields = {
            "symbol": r.symbol,
            "time": _utc(r.time_ns, "%Y-%m-%dT%H:%M:%SZ"),
            "cycle": r.cycle,
            "mid": r.mid,
            "action": r.action,
            "share": r.share,
            "consensus": r.consensus,
            "position": _num(r.position, ".10g"),
            "pnl": _num(r.pnl, ".2f"),
            "fills": r.fills,
            "ms": _num(r.ms, ".1f"),
            "kill_switch": ks,
            "votes": ",".join(f"{a}:{v}" for a, v in _by_role(r.votes)) or _MISSING,
            "notes": r.notes,
        }
        lines.append(" ".join(_logfmt(k, v) for k, v in fields.items()))
    lines += [f"{_logfmt('swarm', name)} {_logfmt('error', err)}" for name, err in errors]
    return lines


# ----------------------------------------------------------------------------- track records


def track_records(statuses: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, float]]:
    """Each agent's votes scored in hindsight, summed over every symbol of ``statuses``:
    ``{agent: {"scored", "hit_rate", "scored_confidence"}}`` (agents with a scored vote only)."""
    sums: dict[str, list[float]] = {}
    for st in statuses.values():
        for s in (st.get("symbols") or {}).values():
            for agent, t in (s.get("track") or {}).items():
                n = t.get("scored") or 0
                if n:
                    acc = sums.setdefault(agent, [0, 0.0, 0.0])
                    acc[0] += n
                    acc[1] += n * t["hit_rate"]
                    acc[2] += n * t["scored_confidence"]
    return {
        a: {"scored": n, "hit_rate": hits / n, "scored_confidence": conf / n}
        for a, (n, hits, conf) in sorted(sums.items(), key=lambda kv: _role_rank(kv[0]))
    }


def track_text(track: Mapping[str, Mapping[str, float]]) -> str:
    """``hindsight: risk_manager 0.47 at p 0.55 (n 120) ...``: each agent's hit rate against
    the confidence it stated."""
    parts = [
        f"{a} {t['hit_rate']:.2f} at p {t['scored_confidence']:.2f} (n {int(t['scored'])})"
        for a, t in track.items()
    ]
    return "hindsight: " + "  ".join(parts)


# ----------------------------------------------------------------------------- votes


def _role_rank(agent: str) -> tuple[int, str]:
    return (ROLES.index(agent) if agent in ROLES else len(ROLES), agent)


def _action_rank(action: str) -> tuple[int, str]:
    codes = list(ACTION_CODES)
    return (codes.index(action) if action in codes else len(codes), action)


def _by_role(votes: Mapping[str, str]) -> list[tuple[str, str]]:
    return sorted(votes.items(), key=lambda kv: _role_rank(kv[0]))


def _agent_codes(agents: Iterable[str]) -> dict[str, str]:
    """A one-letter code per agent: the role's letter, else a free letter of its name."""
    codes: dict[str, str] = {}
    for agent in sorted(set(agents), key=_role_rank):
        taken = set(codes.values())
        known = ROLE_CODES.get(agent)
        choices = [known] if known and known not in taken else []
        choices += [c.upper() for c in agent if c.isalnum()]
        choices += list("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
        codes[agent] = next((c for c in choices if c not in taken), "?")
    return codes


def _votes_text(votes: Mapping[str, str], form: str, codes: Mapping[str, str]) -> str:
    """``full``: ``market_analyst:quote_tight ...``; ``mid``: ``quote_wide:RSE quote_tight:M``;
    ``short``: ``QW:RSE QT:M`` (the most voted action first, agents in role order)."""
    if not votes:
        return _MISSING
    ordered = _by_role(votes)
    if form == "full":
        return " ".join(f"{a}:{v}" for a, v in ordered)
    groups: dict[str, list[str]] = {}
    for agent, action in ordered:
        groups.setdefault(action, []).append(codes[agent])
    ranked = sorted(groups.items(), key=lambda g: -len(g[1]))  # stable: role order on ties
    name = (lambda a: ACTION_CODES.get(a, a)) if form == "short" else (lambda a: a)
    return " ".join(f"{name(a)}:{''.join(who)}" for a, who in ranked)


# ----------------------------------------------------------------------------- status table


@dataclass(frozen=True)
class _Column:
    key: str
    header: str
    right: bool = False


_COLUMNS: tuple[_Column, ...] = (
    _Column("symbol", "symbol"),
    _Column("cycle", "cycle", right=True),
    _Column("time", "time"),
    _Column("mid", "mid", right=True),
    _Column("action", "action"),
    _Column("share", "share", right=True),
    _Column("votes", "votes"),
    _Column("position", "pos", right=True),
    _Column("pnl", "PnL", right=True),
    _Column("fills", "fills", right=True),
    _Column("ms", "ms", right=True),
)
# Dropped in this order when the table does not fit; symbol, mid and action always stay.
_DROP_ORDER = ("ms", "cycle", "fills", "time", "share", "votes", "pnl", "position")


class _StatusTable:
    """The status as a rich renderable that lays itself out for the console's width."""

    def __init__(self, statuses: Mapping[str, Mapping[str, Any]], title: str) -> None:
        self.rows, self.errors = _rows(statuses)
        self.title = title
        self.codes = _agent_codes(a for r in self.rows for a in r.votes)
        self.track = track_records(statuses)
        days = {_utc(r.time_ns, "%Y-%m-%d") for r in self.rows if r.time_ns}
        self.one_day = days.pop() if len(days) == 1 else None

    def _cells(self, r: _Row, form: str) -> dict[str, str]:
        return {
            "symbol": r.symbol,
            "cycle": r.cycle,
            "time": _utc(r.time_ns, "%H:%M" if self.one_day else "%m-%d %H:%M"),
            "mid": r.mid,
            "action": r.action,
            "share": r.share,
            "votes": _votes_text(r.votes, form, self.codes),
            "position": _num(r.position, "g"),
            "pnl": _num(r.pnl, ".2f"),
            "fills": r.fills,
            "ms": _num(r.ms, ".0f"),
        }

    def _needed(self, cols: Sequence[_Column], form: str) -> int:
        cells = [self._cells(r, form) for r in self.rows]
        widths = [max([len(c.header), *(len(x[c.key]) for x in cells)]) for c in cols]
        return sum(widths) + _GAP * (len(cols) - 1)

    def layout(self, width: int) -> tuple[list[_Column], str, int]:
        """The columns, the votes' form and the width of the notes column (0: the notes go
        under the table, where they have the whole width), for a console ``width`` wide."""
        notes = max((len(r.notes) for r in self.rows), default=0)
        for form in ("full", "mid", "short"):
            room = width - self._needed(_COLUMNS, form)
            if room >= 0 and not notes:
                return list(_COLUMNS), form, 0
            if room - _GAP >= max(notes, len("notes")):  # notes in a column, uncut
                return list(_COLUMNS), form, room - _GAP
        if width - self._needed(_COLUMNS, "short") >= 0:
            return list(_COLUMNS), "short", 0
        cols = list(_COLUMNS)
        for drop in (None, *_DROP_ORDER):
            cols = [c for c in cols if c.key != drop]
            if self._needed(cols, "short") <= width:
                break
        return cols, "short", 0

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        width = options.max_width
        title = self.title
        if self.one_day:
            title += f"  {self.one_day} UTC"
        elif any(r.time_ns for r in self.rows):
            title += "  (UTC)"
        if not self.rows:
            yield Text(title, style="bold")
        else:
            cols, form, notes_width = self.layout(width)
            table = Table(title=title, box=None, padding=(0, 1), pad_edge=False, expand=False)
            for c in cols:
                table.add_column(c.header, justify="right" if c.right else "left", no_wrap=True)
            if notes_width:
                table.add_column("notes", no_wrap=True)
            for r in self.rows:
                cells = self._cells(r, form)
                out: list[Any] = []
                for c in cols:
                    text = cells[c.key]
                    if c.key == "pnl" and r.pnl:
                        out.append(Text(text, style="green" if r.pnl > 0 else "red"))
                    elif c.key == "symbol":
                        out.append(Text(text, style="bold red" if r.kill_switch else "bold"))
                    else:
                        out.append(text)
                if notes_width:
                    notes = _cut(r.notes, notes_width)
                    out.append(Text(notes, style="red" if r.kill_switch else "yellow"))
                table.add_row(*out)
            yield table
            if any(c.key == "votes" for c in cols):
                yield from self._legend(form)
            if self.track:
                yield Text(_cut(track_text(self.track), width), style="dim")
            if not notes_width:
                pad = max(len(r.symbol) for r in self.rows)
                for r in self.rows:
                    if r.notes:
                        line = _cut(f"{r.symbol:<{pad}}  {r.notes}", width)
                        yield Text(line, style="red" if r.kill_switch else "yellow")
        for name, err in self.errors:
            yield Text(_cut(f"{name}: {err}", width), style="red")

    def _legend(self, form: str) -> Iterator[Text]:
        if form == "full":
            return
        used = {a for r in self.rows for a in r.votes}
        agents = [f"{self.codes[a]}={a}" for a in sorted(used, key=_role_rank)]
        if agents:
            yield Text("votes: " + "  ".join(agents), style="dim")
        if form == "short":
            voted = {v for r in self.rows for v in r.votes.values()}
            actions = [f"{ACTION_CODES.get(a, a)}={a}" for a in sorted(voted, key=_action_rank)]
            yield Text(" " * 7 + "  ".join(actions), style="dim")


def status_table(
    statuses: Mapping[str, Mapping[str, Any]], title: str = "swarm-ray"
) -> ConsoleRenderable:
    """The last cycle of every symbol as a rich renderable that fits the console: at 80 columns
    the votes are abbreviated (``QW:RSE QT:M``: quote_wide by the risk manager, the strategy
    optimizer and the execution agent, quote_tight by the market analyst, with a legend under
    the table), the least needed columns make way, and the notes go under the table; a wider
    console shows every column, the actions spelled out (and the agents too, when wide enough)
    and the notes in a column."""
    return _StatusTable(statuses, title)


# ----------------------------------------------------------------------------- explain

_CARRIED = {
    "consensus": "carried",
    "emergency_stop": "carried (the risk manager's emergency stop overrides)",
    "below_threshold": "not carried: below the threshold",
    "no_quorum": "not carried: too few agents answered",
    "no_votes": "not carried: no votes",
}


def _wrapped(text: str, indent: str, width: int, first: str | None = None) -> list[str]:
    """``text`` wrapped to ``width``: the first line starts with ``first`` (default
    ``indent``), the others with ``indent``."""
    lead = indent if first is None else first
    return textwrap.wrap(text, width, initial_indent=lead, subsequent_indent=indent) or [lead]


def _field(label: str, text: str, width: int) -> list[str]:
    """An indented ``label  text`` line, its text wrapped under itself."""
    return _wrapped(text, " " * 12, width, first=f"  {label:<10}")


def explain_view(
    explanation: Mapping[str, Any], *, threshold: float | None = None, width: int = 80
) -> str:
    """:meth:`Journal.explain_order`'s result for a person: the order; its cycle's market,
    consensus, risk gate and decision; every agent's vote with its confidence and rationale;
    the fills; the cycle's other orders. ``threshold`` (the consensus config's) is shown
    beside the winner's share when given: the journal does not keep it."""
    o = explanation["order"]
    tif = f" {o['time_in_force']}" if o.get("time_in_force") else ""
    venue_id = f", venue id {o['exchange_order_id']}" if o.get("exchange_order_id") else ""
    lines = [
        f"order {o['client_order_id']}",
        *_field(
            "order",
            f"{o['side']} {o['quantity']} {o['symbol']} @ {o['price']} {o['type']}{tif}",
            width,
        ),
        *_field("status", f"{o['status']}, filled {o['filled_quantity']}{venue_id}", width),
        *(_field("reason", o["reason"], width) if o.get("reason") else []),
        *_field("created", f"{_utc(o.get('created_ns'))} UTC", width),
        *_field("updated", f"{_utc(o.get('updated_ns'))} UTC", width),
        *_field("run", f"{o.get('run_id') or _MISSING}, cycle {_num(o.get('cycle'), 'd')}", width),
    ]
    if explanation.get("note"):
        lines += _field("note", explanation["note"], width)

    c = explanation.get("cycle")
    if c is not None:
        lines += ["", f"cycle {c['cycle']} at {_utc(c['time_ns'])} UTC"]
        lines += _field(
            "market",
            f"mid {_price(c['mid'])}, bid {_price(c['best_bid'])}, ask {_price(c['best_ask'])}",
            width,
        )
        lines += _field(
            "account",
            f"position {_num(c['inventory'], 'g')}, PnL {_num(c['pnl'], '.2f')}, "
            f"latency {_num(c['latency_ms'], '.1f')} ms",
            width,
        )
        for problem in c.get("data_problems") or []:
            lines += _field("data", problem, width)
        d = c.get("decision")
        if d is not None:
            share = _num(d.get("consensus_share"), ".2f")
            against = f" (threshold {threshold:.2f})" if threshold is not None else ""
            outcome = _CARRIED.get(d["reason"], d["reason"])
            voted = d.get("voted_action") or "no winner"
            lines += _field(
                "consensus", f"{voted}, {share} of the score{against}: {outcome}", width
            )
            gate = "allowed" if d["risk_allowed"] else "blocked"
            lines += _field("risk gate", "; ".join([gate, *(d.get("risk_reasons") or [])]), width)
            ladder = d.get("ladder_bps")
            blend = f", ladder bid -{ladder[0]:.2f} / ask +{ladder[1]:.2f} bps" if ladder else ""
            lines += _field("decision", d["action"] + blend, width)
        opinions = sorted(
            explanation.get("opinions") or [], key=lambda v: _role_rank(v["agent_id"])
        )
        if opinions:
            lines += ["", f"{'votes':<26}{'action':<16}{'conf':>5}{'weight':>8}  model"]
            for v in opinions:
                lines += _vote_lines(v, width)
            if any(v.get("features") for v in opinions):
                lines.append("  (what each model saw, its features, is in --json)")

    fills = explanation.get("fills") or []
    lines += ["", "fills (UTC)" if fills else "fills: none"]
    day = _utc(o.get("created_ns"), "%Y-%m-%d")
    for f in fills:
        at_ns = f["time_ms"] * 1_000_000
        at = _utc(at_ns, "%H:%M:%S" if _utc(at_ns, "%Y-%m-%d") == day else "%Y-%m-%d %H:%M:%S")
        role = "maker" if f.get("is_maker") else "taker"
        lines.append(
            f"  {at}  {f['side']} {f['quantity']} @ {f['price']}  {role}  "
            f"fee {f['fee']} {f['fee_asset']}  trade {f['trade_id']}"
        )
    others = [
        x
        for x in explanation.get("cycle_orders") or []
        if x["client_order_id"] != o["client_order_id"]
    ]
    if others:
        lines += ["", "other orders of this cycle"]
        lines += [
            f"  {x['client_order_id']}  {x['side']} {x['quantity']} @ {x['price']}  {x['status']}"
            for x in others
        ]
    return "\n".join(lines)


def _vote_lines(v: Mapping[str, Any], width: int) -> list[str]:
    weight = _num(v.get("weight"), ".2f")
    if v["outcome"] != "voted":
        return [f"  {v['agent_id']:<24}{'no vote (' + v['outcome'] + ')':<21}{weight:>8}"]
    conf = _num(v.get("confidence"), ".2f")
    head = (
        f"  {v['agent_id']:<24}{v['action']:<16}{conf:>5}{weight:>8}"
        f"  {v.get('model_version') or _MISSING}"
    )
    return [head, *(_wrapped(v["rationale"], " " * 6, width) if v.get("rationale") else [])]


# ----------------------------------------------------------------------------- kill switch


def kill_switch_view(rows: Sequence[Mapping[str, Any]]) -> str:
    """One line per symbol: its state (``TRIPPED``, ``clear``, or ``cleared`` by this very
    command), when and by whom it last changed (UTC), and why. A row is a dict with ``symbol``,
    ``state`` (``tripped``, ``clear`` or ``cleared``), ``switch`` (the tripped
    :class:`KillSwitch` as a dict, or ``None``) and ``history``
    (:meth:`Journal.kill_switch_history` of the symbol, oldest first)."""
    if not rows:
        return "no symbol in the journal"
    cells = [_kill_switch_cells(r) for r in rows]
    header = ("symbol", "state", "since (UTC)", "by", "reason")
    widths = [max(len(x[i]) for x in [header, *cells]) for i in range(4)]
    return "\n".join(
        "  ".join([*(x[i].ljust(widths[i]) for i in range(4)), x[4]]).rstrip()
        for x in [header, *cells]
    )


def _kill_switch_cells(r: Mapping[str, Any]) -> tuple[str, str, str, str, str]:
    sw = r.get("switch")
    if r["state"] == "tripped" and sw:
        scope = " (every symbol)" if sw.get("symbol") is None else ""
        when, by, why = sw["tripped_ns"], sw["tripped_by"], sw["reason"] + scope
        return r["symbol"], "TRIPPED", _utc(when, "%Y-%m-%d %H:%M"), by, why
    history = list(r.get("history") or [])
    clears = [k for k, e in enumerate(history) if e["event"] == "clear"]
    if not clears:
        return r["symbol"], r["state"], "", "", "never tripped"
    k = clears[-1]
    trips = [e for e in history[:k] if e["event"] == "trip"]
    why = f"was: {trips[-1]['reason']}" if trips else history[k]["reason"]
    when = _utc(history[k]["time_ns"], "%Y-%m-%d %H:%M")
    return r["symbol"], r["state"], when, history[k]["actor"], why
