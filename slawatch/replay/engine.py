"""``slawatch replay``: the SLA engine run offline, in event time, over a file of events.

It reads the input contracts one JSON event per line (what ``slawatch simulate --out``
writes, or an export of the input topics), checks each line as ingest does, applies the
events in file order with the same state machine and policy the workers run, and at the
end declares, as of ``as_of_ms``, what is still open: at risk, breached, or open. The
result is the SLA log (schemas/cycle_log.py), one line per cycle. No broker, no Redis:
this is how a manager tries a new policy on last month's events, or a backfill is made.
"""

from __future__ import annotations

import multiprocessing
import zlib
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson

from slawatch.core.clock import ManualClock
from slawatch.core.effects import SlaEvent
from slawatch.core.machine import IllegalTransition, advance, apply
from slawatch.core.policy import SlaPolicy
from slawatch.core.state import ConversationState, Cycle
from slawatch.core.timestamps import format_timestamp_ms
from slawatch.schemas.cycle_log import CycleLog
from slawatch.schemas.events import Event
from slawatch.schemas.sla_events import to_record
from slawatch.schemas.validation import EventValidator, Rejection


@dataclass(slots=True)
class ReplayReport:
    """What a replay read and produced."""

    lines: int = 0
    events: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    sla_events: int = 0
    conversations: int = 0

    def merge(self, other: ReplayReport) -> None:
        self.lines += other.lines
        self.events += other.events
        self.rejected += other.rejected
        self.sla_events += other.sla_events
        self.conversations += other.conversations

    def summary(self) -> str:
        rejected = sum(self.rejected.values())
        reasons = ", ".join(f"{r} {n}" for r, n in self.rejected.most_common())
        return (
            f"{self.lines} lines, {self.events} events applied, {rejected} rejected"
            + (f" ({reasons})" if reasons else "")
            + f"; {self.conversations} conversations, {self.sla_events} SLA events"
        )


def _quiet_record(state: ConversationState, cycle: Cycle) -> dict[str, Any]:
    """The log record of an open cycle without SLA events (paused, or not yet at risk)."""
    context = state.context
    return {
        "conversation_key": state.key,
        "conversation_kind": context.kind.value,
        "conversation_id": context.conversation_id,
        "tenant": context.tenant,
        "metric": cycle.metric.value,
        "cycle": cycle.number,
        "level": context.level,
        "policy_version": cycle.policy_version,
        "target_s": cycle.target_ms / 1000,
        "started_at": format_timestamp_ms(cycle.started_ms),
        "due_at": None if cycle.paused else format_timestamp_ms(cycle.due_ms),
        "stopped_at": None,
        "status": "open",
        "business_seconds": None,
        "at_risk_at": None,
        "breached_at": None,
    }


def replay(
    lines: Iterable[bytes],
    policy: SlaPolicy,
    *,
    as_of_ms: int,
    jobs: int = 1,
    max_event_bytes: int = 65536,
    max_future_skew_ms: int = 300_000,
    late_after_ms: int = 5000,
) -> tuple[list[dict[str, Any]], ReplayReport]:
    """Apply every event of ``lines`` and return the SLA log as of ``as_of_ms``, sorted by
    conversation, metric and cycle.

    Lines are checked as ingest checks them, with ``as_of_ms`` as the clock: an event more
    than ``max_future_skew_ms`` after it is refused as from the future (as the stream
    refuses one from after the wall clock). With ``jobs`` > 1 the conversations are split
    among that many processes (each conversation's events stay together and in order).
    """
    options = {
        "as_of_ms": as_of_ms,
        "max_event_bytes": max_event_bytes,
        "max_future_skew_ms": max_future_skew_ms,
        "late_after_ms": late_after_ms,
    }
    if jobs <= 1:
        log, report = _replay_shard(lines, policy, **options)
        return list(log.records()), report
    global _JOB
    lines = list(lines)
    _JOB = (lines, [_shard_of(line, jobs) for line in lines], policy, options)
    try:
        # fork: the children inherit the lines and the compiled policy, nothing is pickled
        with multiprocessing.get_context("fork").Pool(jobs) as pool:
            parts = pool.map(_run_shard, range(jobs))
    finally:
        _JOB = None
    records: list[dict[str, Any]] = []
    report = ReplayReport()
    for part_records, part in parts:
        records += part_records
        report.merge(part)
    records.sort(key=lambda r: (r["conversation_key"], r["metric"], r["cycle"]))
    return records, report


_JOB: tuple[list[bytes], list[int], SlaPolicy, dict[str, int]] | None = None


def _shard_of(line: bytes, jobs: int) -> int:
    """Which process replays ``line``: by conversation (its id and tenant), 0 if unreadable."""
    try:
        event = orjson.loads(line)
    except orjson.JSONDecodeError:
        return 0
    if not isinstance(event, dict):
        return 0
    ident = event.get("ticket_id") or event.get("chat_id") or event.get("call_id")
    return zlib.crc32(f"{ident}|{event.get('tenant')}".encode()) % jobs


def _run_shard(shard: int) -> tuple[list[dict[str, Any]], ReplayReport]:
    assert _JOB is not None
    lines, shards, policy, options = _JOB
    mine = (line for line, owner in zip(lines, shards, strict=True) if owner == shard)
    log, report = _replay_shard(mine, policy, **options)
    return list(log.records()), report


def _replay_shard(
    lines: Iterable[bytes],
    policy: SlaPolicy,
    *,
    as_of_ms: int,
    max_event_bytes: int,
    max_future_skew_ms: int,
    late_after_ms: int,
) -> tuple[CycleLog, ReplayReport]:
    validator = EventValidator(
        max_event_bytes=max_event_bytes,
        max_future_skew_ms=max_future_skew_ms,
        clock=ManualClock(as_of_ms),
    )
    report = ReplayReport()
    log = CycleLog()
    states: dict[str, ConversationState] = {}

    def emit(effects: list[SlaEvent]) -> None:
        for effect in effects:
            log.add(to_record(effect, late_after_ms=late_after_ms))
        report.sla_events += len(effects)

    for line in lines:
        line = line.strip()
        if not line:
            continue
        report.lines += 1
        event = validator.validate(line, None)
        if isinstance(event, Rejection):
            report.rejected[event.reason.value] += 1
            continue
        assert isinstance(event, Event)
        key = event.key
        try:
            state, effects = apply(states.get(key), event, policy, as_of_ms)
        except IllegalTransition:
            report.rejected["illegal_transition"] += 1
            continue
        states[key] = state
        report.events += 1
        if effects:
            emit(effects)
    for key, state in states.items():
        if state.open_cycles:
            states[key], effects = advance(state, as_of_ms, policy, as_of_ms)
            emit(effects)
            for cycle in states[key].open_cycles:
                if (key, cycle.metric.value, cycle.number) not in log:
                    log.add_quiet(_quiet_record(states[key], cycle))
    report.conversations = len(states)
    return log, report
