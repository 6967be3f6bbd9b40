"""``slawatch bench-policy``: the policy engine offline, no broker.

(f) business time: due computations per second on a business-hours calendar with a year
    of holidays (and split shifts, in a zone with daylight saving), against the 24x7
    calendar's (one addition) measured in the same run;
(g) replay: lines per second of ``slawatch replay`` over simulated events with the
    README's example policy, one process and one per core, against two floors measured on
    the same lines: decoding each line with orjson, and checking each line as ingest does
    (what a replay does before the state machine);
(h) apply alone: events per second of the state machine over the same lines, checked
    once beforehand: through the tick (:class:`~slawatch.core.scheduler.PartitionScheduler`
    over a :class:`~slawatch.core.scheduler.MemoryStore`, chunks of 1,024 events, no
    watermark: a replay without validation and without the SLA log), and through
    :func:`~slawatch.core.machine.apply_in_place` alone over a dict of states.

Each figure is the median of ``repeats`` runs. Prints a table and writes JSON.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import statistics
import time
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import orjson

from slawatch.core.business_hours import BusinessCalendar
from slawatch.core.calendar import AlwaysOpen, Calendar
from slawatch.core.clock import ManualClock
from slawatch.core.events import InputEvent
from slawatch.core.machine import IllegalTransition, apply_in_place
from slawatch.core.policy import SlaPolicy
from slawatch.core.scheduler import MemoryStore, PartitionScheduler
from slawatch.core.state import ConversationState
from slawatch.core.timestamps import parse_timestamp_ms
from slawatch.dev.bench import _machine
from slawatch.dev.simulator.traffic import TrafficProfile, generate_traffic
from slawatch.policy import load_policy
from slawatch.replay.engine import replay
from slawatch.schemas.validation import EventValidator, Rejection

EXAMPLE_POLICY = Path(__file__).resolve().parents[2] / "examples" / "policy.yaml"
START = "2026-11-02T01:00:00Z"


def _median_rate(work: Callable[[], int], repeats: int) -> float:
    """Median of ``repeats`` runs of ``work`` (which returns how many items it did), per s."""
    rates = []
    for _ in range(repeats):
        started = time.perf_counter()
        done = work()
        rates.append(done / (time.perf_counter() - started))
    return statistics.median(rates)


def business_calendar_with_a_year_of_holidays() -> BusinessCalendar:
    """New York, Monday to Friday 08:00-12:00 and 13:00-17:30, Saturday mornings, 60 holidays
    spread over 2027, two one-off exceptions."""
    rng = random.Random(3)
    holidays = sorted({date(2027, 1, 1) + timedelta(days=rng.randrange(365)) for _ in range(60)})
    weekly = {d: [(8 * 60, 12 * 60), (13 * 60, 17 * 60 + 30)] for d in range(5)}
    weekly[5] = [(8 * 60, 12 * 60)]
    return BusinessCalendar("bench", "America/New_York", weekly, holidays)


def _dues(calendar: Calendar, starts: list[int], targets: list[int]) -> Callable[[], int]:
    def work() -> int:
        add = calendar.add
        for start, target in zip(starts, targets, strict=True):
            add(start, target)
        return len(starts)

    return work


def _tick_only(events: list[InputEvent], policy: SlaPolicy, now_ms: int) -> Callable[[], int]:
    """Every event through the tick, as replay runs it, without validation or the log."""

    def work() -> int:
        store = MemoryStore()
        scheduler = PartitionScheduler(store, keep_before=False)
        put = store.put
        for i in range(0, len(events), 1024):
            for key, state, deadline_ms in scheduler.tick(
                events[i : i + 1024], None, policy, now_ms
            ).persist:
                put(key, state, deadline_ms)
        return len(events)

    return work


def _apply_only(events: list[InputEvent], policy: SlaPolicy, now_ms: int) -> Callable[[], int]:
    """Every event through the machine alone, over a dict of states."""

    def work() -> int:
        states: dict[str, ConversationState] = {}
        get = states.get
        for event in events:
            key = event.key
            try:
                states[key], _ = apply_in_place(get(key), event, policy, now_ms, key)
            except IllegalTransition:  # refused: skipped, as the tick skips it
                continue
        return len(events)

    return work


def run_policy_bench(*, events: int, repeats: int, out: Path) -> int:
    results: dict[str, Any] = {"machine": _machine(), "params": {"events": events,
                                                                  "repeats": repeats}}  # fmt: skip
    # (f) due computations
    rng = random.Random(1)
    year_start = parse_timestamp_ms("2027-01-01T00:00:00Z")
    starts = [year_start + rng.randrange(365 * 86_400_000) for _ in range(100_000)]
    targets = [rng.choice((90_000, 15 * 60_000, 8 * 3_600_000, 3 * 86_400_000, 40 * 3_600_000))
               for _ in starts]  # fmt: skip
    calendar = business_calendar_with_a_year_of_holidays()
    calendar.add(starts[0], 1)  # tabulate the year once, as a worker does on its first due
    baseline = _median_rate(_dues(AlwaysOpen(), starts, targets), repeats)
    business = _median_rate(_dues(calendar, starts, targets), repeats)
    results["f_due_computations_per_s"] = {
        "business_hours": business,
        "always_open_baseline": baseline,
        "ratio_to_baseline": business / baseline,
    }
    print(f"(f) due computations: {business:,.0f}/s on business hours "
          f"({baseline:,.0f}/s on 24x7, ratio {business / baseline:.2f})", flush=True)  # fmt: skip

    # (g) replay
    lines = [
        m.value
        for m in generate_traffic(
            TrafficProfile(rate_eps=250.0, malformed_share=0.01, file_output=True),
            seed=5,
            start_ms=parse_timestamp_ms(START),
            duration_s=events / 55.0,  # the daily profile thins 250/s to about 55/s here
        )
    ][:events]
    policy = load_policy(EXAMPLE_POLICY)
    as_of = parse_timestamp_ms("2026-12-01T00:00:00Z")
    validator = EventValidator(max_event_bytes=65536, max_future_skew_ms=300_000,
                               clock=ManualClock(as_of))  # fmt: skip

    def decode_only() -> int:
        for line in lines:
            with contextlib.suppress(orjson.JSONDecodeError):
                orjson.loads(line)
        return len(lines)

    def validate_only() -> int:
        for line in lines:
            validator.validate(line, None)
        return len(lines)

    def replay_with(jobs: int) -> Callable[[], int]:
        def work() -> int:
            _, report = replay(lines, policy, as_of_ms=as_of, jobs=jobs)
            return report.lines

        return work

    cores = os.cpu_count() or 1
    decode = _median_rate(decode_only, repeats)
    validate = _median_rate(validate_only, repeats)
    single = _median_rate(replay_with(1), repeats)
    parallel = _median_rate(replay_with(cores), repeats)
    results["g_replay_lines_per_s"] = {
        "lines": len(lines),
        "decode_only_floor": decode,
        "validate_only_floor": validate,
        "replay_1_process": single,
        f"replay_{cores}_processes": parallel,
        "ratio_1_process_to_validate_only": single / validate,
    }
    print(f"(g) replay of {len(lines)} lines: {single:,.0f}/s in 1 process, {parallel:,.0f}/s "
          f"in {cores}; floors: orjson decode {decode:,.0f}/s, validation {validate:,.0f}/s",
          flush=True)  # fmt: skip

    # (h) apply alone, over the same lines checked once
    checked = [validator.validate(line, None) for line in lines]
    valid = [event for event in checked if not isinstance(event, Rejection)]
    ticks = _median_rate(_tick_only(valid, policy, as_of), repeats)
    applies = _median_rate(_apply_only(valid, policy, as_of), repeats)
    results["h_apply_events_per_s"] = {
        "events": len(valid),
        "tick_1_process": ticks,
        "apply_in_place_1_process": applies,
    }
    print(f"(h) apply alone, {len(valid)} events: {ticks:,.0f}/s through the tick, "
          f"{applies:,.0f}/s through apply_in_place", flush=True)  # fmt: skip
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"results in {out}")
    return 0
