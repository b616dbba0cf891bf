"""The swarm report says which agents consensus.mute muted, when and why."""

from __future__ import annotations

from dataclasses import asdict, replace

from swarm_ray.evaluation.report_swarm import write_swarm_report
from swarm_ray.trading.cycle import CycleSummary
from swarm_ray.trading.mute import MuteEvent

T0 = 1_724_133_600_000_000_000  # 2024-08-20 06:00 UTC
WHY = (
    "execution_agent muted: rolling hit rate 0.410 over its last 200 scored votes is below its "
    "floor 0.612 - 0.05 (validation beat rate on its v3 card, days 2024-08-13..2024-08-16); its "
    "weight x0"
)


def _cycle(k: int, muted: tuple[str, ...] = (), events: tuple[MuteEvent, ...] = ()) -> dict:
    s = CycleSummary(
        "BTCUSDT", k, T0 + k * 60_000_000_000, 60_000.0 + k, 59_999.0, 60_001.0, "stand_aside",
        "stand_aside", 1.0, "consensus", (), 0.0, 0.0, (), (), 0, 0, 0, (), (), 1.0, False,
        carried=True, muted=muted, mute_events=events,
    )  # fmt: skip
    return asdict(s)


def test_the_report_says_who_was_muted_when_and_why(tmp_path) -> None:
    muted = MuteEvent(
        2, T0 + 2 * 60_000_000_000, "execution_agent", True, "v3", "hit_rate", 0.41, 200,
        0.612, "validation beat rate on its v3 card, days 2024-08-13..2024-08-16", WHY,
    )  # fmt: skip
    back = replace(muted, cycle=4, time_ns=T0 + 4 * 60_000_000_000, muted=False, rate=None)
    back = replace(back, reason="execution_agent un-muted: its model changed from v3 to v4")
    ea = ("execution_agent",)
    history = [
        _cycle(1), _cycle(2, ea, (muted,)), _cycle(3, ea), _cycle(4, (), (back,)), _cycle(5, ea),
    ]  # fmt: skip
    text = write_swarm_report(tmp_path, history, {}, title="t", threshold=0.65).read_text()
    section = text[text.index("## Muted agents") : text.index("## Plots")]
    assert f"- 2024-08-20T06:02:00 (cycle 2): {WHY}" in section
    assert "- 2024-08-20T06:04:00 (cycle 4): execution_agent un-muted: its model changed" in section
    assert "execution_agent was muted in 3 of 5 cycles." in section
    assert "Still muted at the end: execution_agent." in section


def test_no_section_when_nobody_was_muted(tmp_path) -> None:
    text = write_swarm_report(tmp_path, [_cycle(1), _cycle(2)], {}, title="t", threshold=0.65)
    assert "Muted" not in text.read_text()


def test_a_long_run_of_mutes_is_cut_short(tmp_path) -> None:
    ev = MuteEvent(1, T0, "risk_manager", True, "v3", "hit_rate", 0.5, 500, 0.6, "card", "why")
    history = [_cycle(k, ("risk_manager",), (replace(ev, cycle=k),)) for k in range(1, 16)]
    text = write_swarm_report(tmp_path, history, {}, title="t", threshold=0.65).read_text()
    assert text.count("): why") == 12 and "- and 3 more (in the swarm's log)" in text
