"""Workers killed, paused, added and removed under traffic, on the real broker: the
``sla-events`` topic against ``slawatch replay`` of the same input (slawatch/dev/chaos.py;
`make chaos` runs it at full size: docs/BENCHMARKS.md, "Chaos")."""

from __future__ import annotations

import pytest

from slawatch.dev.chaos import ChaosPlan, run_against
from tests.integration.conftest import run

pytestmark = pytest.mark.integration


def test_kills_and_rebalances_lose_nothing_double_nothing_breach_nothing_falsely(
    settings_factory, tmp_path
) -> None:
    """The worker paused past its session notices it when it resumes and applies nothing
    more before the group answers (without that guard, the resumed worker applied a
    partition the group had given to another: docs/OPERATIONS.md, Several workers)."""
    plan = ChaosPlan(
        workers=3, partitions=12, duration_s=45, rate_eps=15, kills=4, time_scale=120,
        pause_s=8, seed=2, run_dir=tmp_path,
    )  # fmt: skip
    results = run(run_against(plan, settings_factory()))
    summary = {k: results[k] for k in ("duplicate_event_ids", "lost_timers", "false_breaches",
                                       "other_differences", "cycles_only_on_topic")}  # fmt: skip
    assert results["chaos"] == {"kill": 4, "added": 1, "retired": 1, "paused": 1, "resumed": 1}, (
        results["chaos"]
    )
    assert results["pauses_noticed"] >= 1
    assert summary == dict.fromkeys(summary, 0), (summary, results["examples"])
    assert results["passed"]
    # The run compared something: cycles of every kind, met and breached ones among them.
    assert results["cycles_replayed"] > 100 and results["kinds"].get("breached", 0) > 0
    assert results["detection_delay_ms"]["count"] > 0


def test_input_held_behind_with_replies_in_the_backlog_gives_no_false_breach(
    settings_factory, tmp_path
) -> None:
    """The workers start 20 s into the traffic (40 minutes of SLA time at the time scale)
    and read a backlog with replies in it, kills and a rebalance included."""
    plan = ChaosPlan(
        workers=2, partitions=12, duration_s=45, rate_eps=15, kills=2, time_scale=120,
        pause_s=0, lag_s=20, seed=5, run_dir=tmp_path,
    )  # fmt: skip
    results = run(run_against(plan, settings_factory()))
    assert results["false_breaches"] == 0 and results["retractions"] == 0, results["examples"]
    assert results["lost_timers"] == 0 and results["duplicate_event_ids"] == 0, results["examples"]
    assert results["passed"], results["examples"]
    # The backlog held breaches to declare, late, and replies that settled others first.
    assert results["kinds"].get("breached", 0) > 0 and results["kinds"].get("met", 0) > 0
