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
import signal
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from slawatch.core.clock import ManualClock
from slawatch.core.events import InputEvent
from slawatch.core.partitioning import partition_for
from slawatch.core.policy import SlaPolicy
from slawatch.core.scheduler import MemoryStore, PartitionScheduler, Tick
from slawatch.core.state import NEVER, ConversationState, Cycle
from slawatch.schemas.cycle_log import CycleLog, CycleRecord
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


def _quiet_record(state: ConversationState, cycle: Cycle) -> CycleRecord:
    """The log record of an open cycle without SLA events (paused, or not yet at risk): no
    due while it is paused short of its target."""
    return CycleRecord.quiet(state, cycle, None if cycle.due_ms >= NEVER else cycle.due_ms)


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
    conversation, metric and cycle: the rows of :class:`~slawatch.schemas.cycle_log.CycleLog`
    (instants in epoch ms; :func:`~slawatch.schemas.cycle_log.as_text` for the JSONL form).

    Lines are checked as ingest checks them, with ``as_of_ms`` as the clock: an event more
    than ``max_future_skew_ms`` after it is refused as from the future (as the stream
    refuses one from after the wall clock). The events run through the worker's tick
    (:class:`~slawatch.core.scheduler.PartitionScheduler`) over an in-memory store, with
    no watermark until the end, when one last tick declares what ``as_of_ms`` makes due.
    With ``jobs`` > 1 the conversations are split among that many processes by the
    worker's partitioning function (each conversation's events stay together and in
    order); each line is parsed once, in this process.
    """
    validator = EventValidator(
        max_event_bytes=max_event_bytes,
        max_future_skew_ms=max_future_skew_ms,
        clock=ManualClock(as_of_ms),
    )
    report = ReplayReport()
    if jobs <= 1:
        shard = _Shard(policy, as_of_ms, late_after_ms, report)
        for chunk in _chunks(_valid_events(lines, validator, report)):
            shard.apply(chunk)
        shard.finish()
        return list(shard.log.rows()), report
    global _JOB
    events = list(_valid_events(lines, validator, report))
    shards = [partition_for(event.key, jobs) for event in events]
    _JOB = (events, shards, policy, {"as_of_ms": as_of_ms, "late_after_ms": late_after_ms})
    try:
        # fork: the children inherit the events and the compiled policy, nothing is pickled.
        # Ctrl-C reaches every process of the terminal's group; the children leave it to
        # this one, whose KeyboardInterrupt ends the pool (terminate) and the replay. They
        # start with SIGINT blocked and ignore it before unblocking it, so a Ctrl-C that
        # comes between a child's fork and its initializer is dropped, not a traceback.
        blocked = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
        try:
            pool = multiprocessing.get_context("fork").Pool(jobs, initializer=_ignore_sigint)
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
        with pool:
            parts = pool.map(_run_shard, range(jobs))
    finally:
        _JOB = None
    records: list[dict[str, Any]] = []
    for part_records, part in parts:
        records += part_records
        report.merge(part)
    records.sort(key=lambda r: (r["conversation_key"], r["metric"], r["cycle"]))
    return records, report


#: Events per tick: enough to pay the tick's bookkeeping rarely, small enough to stream.
_CHUNK = 1024

_JOB: tuple[list[InputEvent], list[int], SlaPolicy, dict[str, int]] | None = None


def _valid_events(
    lines: Iterable[bytes], validator: EventValidator, report: ReplayReport
) -> Iterator[InputEvent]:
    """The events of ``lines`` that pass ingest's checks; counts lines and rejections."""
    for line in lines:
        line = line.strip()
        if not line:
            continue
        report.lines += 1
        event = validator.validate(line, None)
        if isinstance(event, Rejection):
            report.rejected[event.reason.value] += 1
            continue
        yield event


def _chunks(events: Iterable[InputEvent]) -> Iterator[list[InputEvent]]:
    chunk: list[InputEvent] = []
    for event in events:
        chunk.append(event)
        if len(chunk) == _CHUNK:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _ignore_sigint() -> None:
    """Pool initializer: Ctrl-C is the parent's to handle (see :func:`replay`)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})


def _run_shard(shard: int) -> tuple[list[dict[str, Any]], ReplayReport]:
    assert _JOB is not None
    events, shards, policy, options = _JOB
    report = ReplayReport()
    replayer = _Shard(policy, options["as_of_ms"], options["late_after_ms"], report)
    mine = (event for event, owner in zip(events, shards, strict=True) if owner == shard)
    for chunk in _chunks(mine):
        replayer.apply(chunk)
    replayer.finish()
    return list(replayer.log.rows()), report


class _Shard:
    """One replay process's share: the worker's tick over an in-memory store, and the log."""

    def __init__(
        self, policy: SlaPolicy, as_of_ms: int, late_after_ms: int, report: ReplayReport
    ) -> None:
        self.policy = policy
        self.as_of_ms = as_of_ms
        self.late_after_ms = late_after_ms
        self.report = report
        self.store = MemoryStore()
        self.scheduler = PartitionScheduler(self.store, keep_before=False)
        self.log = CycleLog()

    def apply(self, events: list[InputEvent]) -> None:
        """One tick without a watermark: event time settles stops, nothing is declared."""
        tick = self.scheduler.tick(events, None, self.policy, self.as_of_ms)
        self.report.events += len(events) - len(tick.refused)
        if tick.refused:
            self.report.rejected["illegal_transition"] += len(tick.refused)
        self._record(tick)

    def finish(self) -> None:
        """The last tick, at ``as_of_ms``; then the open cycles nothing was said about."""
        self._record(self.scheduler.tick((), self.as_of_ms, self.policy, self.as_of_ms))
        for state in self.store.states():
            for cycle in state.open_cycles:
                if (state.key, cycle.metric.value, cycle.number) not in self.log:
                    self.log.add_quiet(_quiet_record(state, cycle))
        self.report.conversations += len(self.store)

    def _record(self, tick: Tick) -> None:
        for key, state, deadline_ms in tick.persist:
            self.store.put(key, state, deadline_ms)
        for effect in tick.effects:
            self.log.add(to_record(effect, late_after_ms=self.late_after_ms))
        self.report.sla_events += len(tick.effects)
