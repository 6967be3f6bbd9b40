"""The SLA log: one record per SLA cycle, folded from the SLA events about it.

``slawatch replay`` writes it, the log sink keeps it in a database (``slawatch.reports``),
and the tests build it from the ``sla-events`` topic: one definition, so the stream, the
replay and the store agree. What a record says is event-time truth, not when slawatch
noticed: a breach the stream declared early and then retracted (a stop that was still
unread) is not a breach here, and ``at_risk_at`` is the instant the cycle's working time
crossed its at-risk threshold, if it did before it stopped.

The fold is order-free and idempotent, so a sink may see the events of a cycle in any
batches, twice, or replayed from the start of the topic, and write the same row: a record
keeps the kinds seen so far (a bit each) and the fields of the latest event, the latest
being the greatest by :func:`precedence`. A corrected ``met`` wins over the ``missed`` it
corrects, any final over what came before it, and otherwise the later event (events are
numbered per cycle: ``sequence``).

Statuses (:class:`~slawatch.core.sla.CycleStatus`): the three finals are named as the
stream's final kinds (``met``, ``missed``, ``cancelled``); an open cycle is ``open``,
``at_risk`` once the stream said so, ``breached`` once it declared the breach.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, fields
from typing import Any, Final

import orjson

from slawatch.core.sla import FINAL_STATUS, CycleStatus, SlaEventKind
from slawatch.core.state import ConversationState, Cycle
from slawatch.core.timestamps import format_timestamp_ms, parse_written_ms
from slawatch.schemas.sla_events import SlaEventRecord

#: One bit per kind in :attr:`CycleRecord.seen`; bit 7 says a declaration was late.
KIND_BITS: Final = {kind: 1 << i for i, kind in enumerate(SlaEventKind)}
LATE_BIT: Final = 1 << 7
#: What the stream declares of an open cycle (``late`` means one was declared late).
_DECLARATIONS: Final = frozenset({SlaEventKind.AT_RISK, SlaEventKind.BREACHED})
#: Finals outrank the rest; a ``met`` after a ``missed`` is the correction of it.
_FINAL_RANK: Final = {SlaEventKind.CANCELLED: 1, SlaEventKind.MISSED: 2, SlaEventKind.MET: 3}
#: Among events decided at the same instant about the same event time: emission order.
_KIND_RANK: Final = {
    kind: i
    for i, kind in enumerate(
        (
            SlaEventKind.LEVEL_CHANGED,
            SlaEventKind.AT_RISK,
            SlaEventKind.BREACHED,
            SlaEventKind.RETRACTED,
            SlaEventKind.CANCELLED,
            SlaEventKind.MISSED,
            SlaEventKind.MET,
        )
    )
}
_KINDS: Final = {kind.value: kind for kind in SlaEventKind}

#: The key of a cycle: conversation key, metric, cycle number.
CycleKey = tuple[str, str, int]
#: See :func:`precedence`.
Precedence = tuple[int, int, int, int, int]
#: Before any event (an open cycle nothing has been said about).
NO_PRECEDENCE: Final[Precedence] = (0, -1, 0, 0, -1)

#: The log record's fields, in order: what the store's table holds (plus ``fold``) and
#: what ``replay`` writes (instants as RFC 3339 text, ``*_at`` instead of ``*_ms``).
LOG_FIELDS: Final = (
    "conversation_key",
    "metric",
    "cycle",
    "conversation_kind",
    "conversation_id",
    "tenant",
    "requester",
    "customer_group",
    "channel",
    "priority",
    "department",
    "queue",
    "agent",
    "level",
    "policy_version",
    "target_s",
    "started_ms",
    "due_ms",
    "stopped_ms",
    "at_risk_ms",
    "breached_ms",
    "status",
    "stop",
    "reason",
    "business_s",
    "remaining_s",
    "late",
)
_INSTANTS: Final = frozenset(name for name in LOG_FIELDS if name.endswith("_ms"))


def precedence(record: SlaEventRecord) -> Precedence:
    """Which of two events about a cycle has the latest word: finals first (a corrected
    ``met`` over the ``missed``), then the event's number in its cycle; for events from
    before slawatch numbered them, the later decision, event time and kind."""
    kind = _KINDS[record.kind]
    if record.sequence:  # numbered: the number says it all (no time to parse)
        return (_FINAL_RANK.get(kind, 0), record.sequence, 0, 0, _KIND_RANK[kind])
    return (
        _FINAL_RANK.get(kind, 0),
        0,
        parse_written_ms(record.detected_at),
        parse_written_ms(record.at),
        _KIND_RANK[kind],
    )


@dataclass(slots=True)
class CycleRecord:
    """One cycle's log record as folded so far: the latest event's word and the kinds
    seen. :meth:`row` derives what the log says; :meth:`from_row` takes a row back."""

    conversation_key: str
    metric: str
    cycle: int
    conversation_kind: str
    conversation_id: str
    tenant: str | None
    requester: str | None
    customer_group: str | None
    channel: str | None
    priority: str
    department: str | None
    queue: str | None
    agent: str | None
    level: str
    policy_version: str
    target_s: float
    started_ms: int
    due_ms: int | None
    #: The latest event's kind (None: nothing said yet), event time, at-risk instant as
    #: scheduled then, working time, and why and by what it stopped (finals).
    kind: SlaEventKind | None = None
    at_ms: int = 0
    scheduled_at_risk_ms: int | None = None
    elapsed_s: float | None = None
    reason: str | None = None
    stop: str | None = None
    seen: int = 0
    latest: Precedence = NO_PRECEDENCE

    @property
    def key(self) -> CycleKey:
        return (self.conversation_key, self.metric, self.cycle)

    @classmethod
    def of_event(cls, record: SlaEventRecord) -> CycleRecord:
        """The fold of one event."""
        kind = _KINDS[record.kind]
        return cls._of(record, kind, precedence(record), _bits(record, kind))

    @classmethod
    def _of(cls, r: SlaEventRecord, kind: SlaEventKind, rank: Precedence, seen: int) -> CycleRecord:
        return cls(
            conversation_key=r.conversation_key,
            metric=r.metric,
            cycle=r.cycle,
            conversation_kind=r.conversation_kind,
            conversation_id=r.conversation_id,
            tenant=r.tenant,
            requester=r.requester,
            customer_group=r.customer_group,
            channel=r.channel,
            priority=r.priority,
            department=r.department,
            queue=r.queue,
            agent=r.assignee,
            level=r.level,
            policy_version=r.policy_version,
            target_s=r.target_s,
            started_ms=parse_written_ms(r.started_at),
            due_ms=parse_written_ms(r.due_at),
            kind=kind,
            at_ms=parse_written_ms(r.at),
            scheduled_at_risk_ms=parse_written_ms(r.at_risk_at),
            elapsed_s=r.elapsed_s,
            reason=r.reason,
            stop=r.stop,
            seen=seen,
            latest=rank,
        )

    @classmethod
    def quiet(cls, state: ConversationState, cycle: Cycle, due_ms: int | None) -> CycleRecord:
        """An open cycle nothing has been said about yet (only a replay, which holds the
        states, knows it): ``due_ms`` None while it is paused short of its target."""
        context = state.context
        return cls(
            conversation_key=state.key,
            metric=cycle.metric.value,
            cycle=cycle.number,
            conversation_kind=context.kind.value,
            conversation_id=context.conversation_id,
            tenant=context.tenant,
            requester=context.requester,
            customer_group=context.customer_group,
            channel=context.channel,
            priority=context.priority,
            department=context.department,
            queue=context.queue,
            agent=context.assignee,
            level=context.level,
            policy_version=cycle.policy_version,
            target_s=cycle.target_ms / 1000,
            started_ms=cycle.started_ms,
            due_ms=due_ms,
        )

    def add(self, record: SlaEventRecord) -> None:
        """Fold one more event about this cycle in (in any order; again changes nothing).
        A record that cannot be read raises before anything changes."""
        kind = _KINDS[record.kind]
        rank = precedence(record)
        if rank <= self.latest:
            self.seen |= _bits(record, kind)
            return
        self.merge(self._of(record, kind, rank, _bits(record, kind)))

    def merge(self, other: CycleRecord) -> None:
        """Fold in another record of the same cycle (what a store held, say)."""
        self.seen |= other.seen
        if other.latest > self.latest:
            seen = self.seen
            for name in _ALL_FIELDS:
                setattr(self, name, getattr(other, name))
            self.seen = seen

    # --- what the log says --------------------------------------------------------------

    @property
    def status(self) -> CycleStatus:
        if self.kind in FINAL_STATUS:
            return FINAL_STATUS[self.kind]
        seen = self.seen
        if (
            seen & KIND_BITS[SlaEventKind.BREACHED]
            and not seen & KIND_BITS[SlaEventKind.RETRACTED]
            and self.due_ms is not None
            and self.due_ms <= self.at_ms  # not a level change that gave it more time
        ):
            return CycleStatus.BREACHED
        if seen & KIND_BITS[SlaEventKind.AT_RISK] and self._risk_reached():
            return CycleStatus.AT_RISK
        return CycleStatus.OPEN

    def _risk_reached(self) -> bool:
        """The latest word puts the at-risk instant at or before its own time (a level
        change that gave more time can put it back in the future)."""
        at_risk = self.scheduled_at_risk_ms
        return at_risk is not None and at_risk <= self.at_ms

    def row(self) -> dict[str, Any]:
        """The log record: :data:`LOG_FIELDS` (instants in epoch ms) and ``fold``, the
        fold's own state, for :meth:`from_row`."""
        status = self.status
        final = self.kind in FINAL_STATUS
        at_risk = self.scheduled_at_risk_ms
        stopped = self.at_ms if final else None
        if final:
            reached_risk = at_risk is not None and at_risk <= self.at_ms
            # breached while open: due passed before it stopped (missed, or cancelled late)
            due_passed = self.due_ms is not None and self.due_ms < self.at_ms
            breached = self.due_ms if status is CycleStatus.MISSED or due_passed else None
            if status is CycleStatus.MET:
                breached = None
        else:
            reached_risk = status is not CycleStatus.OPEN and self._risk_reached()
            breached = self.due_ms if status is CycleStatus.BREACHED else None
        business = self.elapsed_s if final else None
        return {
            "conversation_key": self.conversation_key,
            "metric": self.metric,
            "cycle": self.cycle,
            "conversation_kind": self.conversation_kind,
            "conversation_id": self.conversation_id,
            "tenant": self.tenant,
            "requester": self.requester,
            "customer_group": self.customer_group,
            "channel": self.channel,
            "priority": self.priority,
            "department": self.department,
            "queue": self.queue,
            "agent": self.agent,
            "level": self.level,
            "policy_version": self.policy_version,
            "target_s": self.target_s,
            "started_ms": self.started_ms,
            "due_ms": self.due_ms,
            "stopped_ms": stopped,
            "at_risk_ms": at_risk if reached_risk else None,
            "breached_ms": breached,
            "status": status.value,
            "stop": self.stop if final else None,
            "reason": self.reason if final else None,
            "business_s": business,
            "remaining_s": None if business is None else round(self.target_s - business, 3),
            "late": bool(self.seen & LATE_BIT),
            "fold": self._fold_text(),
        }

    def _fold_text(self) -> str:
        return orjson.dumps(
            [
                self.seen,
                list(self.latest),
                None if self.kind is None else self.kind.value,
                self.at_ms,
                self.scheduled_at_risk_ms,
                self.elapsed_s,
                self.reason,
                self.stop,
            ]
        ).decode()

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> CycleRecord:
        """Rebuild the fold from a row :meth:`row` made (read back from the store)."""
        seen, latest, kind, at_ms, at_risk, elapsed, reason, stop = orjson.loads(row["fold"])
        return cls(
            **{name: row[name] for name in _CONTEXT_FIELDS | _KEY_FIELDS},
            kind=None if kind is None else _KINDS[kind],
            at_ms=at_ms,
            scheduled_at_risk_ms=at_risk,
            elapsed_s=elapsed,
            reason=reason,
            stop=stop,
            seen=seen,
            latest=tuple(latest),
        )


_KEY_FIELDS: Final = frozenset({"conversation_key", "metric", "cycle"})
#: The fold's own state: what the latest event said beyond its context, and the kinds seen.
_FOLD_FIELDS: Final = frozenset(
    {"kind", "at_ms", "scheduled_at_risk_ms", "elapsed_s", "reason", "stop", "seen", "latest"}
)
#: What the latest event says of its conversation and schedule.
_CONTEXT_FIELDS: Final = frozenset(
    f.name for f in fields(CycleRecord) if f.name not in _KEY_FIELDS | _FOLD_FIELDS
)
_ALL_FIELDS: Final = tuple(f.name for f in fields(CycleRecord))


def _bits(record: SlaEventRecord, kind: SlaEventKind) -> int:
    late = record.late and kind in _DECLARATIONS
    return KIND_BITS[kind] | (LATE_BIT if late else 0)


def as_text(row: dict[str, Any]) -> dict[str, Any]:
    """A log row as ``replay`` writes it: instants as RFC 3339 text (``*_ms`` -> ``*_at``),
    without the fold's own state."""
    out: dict[str, Any] = {}
    for name in LOG_FIELDS:
        value = row[name]
        if name in _INSTANTS:
            out[name[:-3] + "_at"] = None if value is None else format_timestamp_ms(value)
        else:
            out[name] = value
    return out


@dataclass(slots=True)
class CycleLog:
    """Fold SLA events into cycles, in memory (replay, tests)."""

    _cycles: dict[CycleKey, CycleRecord] = field(default_factory=dict)

    def add(self, record: SlaEventRecord) -> None:
        key = (record.conversation_key, record.metric, record.cycle)
        cycle = self._cycles.get(key)
        if cycle is None:
            self._cycles[key] = CycleRecord.of_event(record)
        else:
            cycle.add(record)

    def __contains__(self, key: CycleKey) -> bool:
        return key in self._cycles

    def add_quiet(self, record: CycleRecord) -> None:
        """An open cycle nothing has been said about yet."""
        self._cycles.setdefault(record.key, record)

    def __len__(self) -> int:
        return len(self._cycles)

    def rows(self) -> Iterator[dict[str, Any]]:
        """The log rows (instants in ms), sorted by conversation, metric and cycle."""
        for key in sorted(self._cycles):
            yield self._cycles[key].row()

    def records(self) -> Iterator[dict[str, Any]]:
        """The log as ``replay`` writes it (:func:`as_text`), in the order of :meth:`rows`."""
        for row in self.rows():
            yield as_text(row)


def cycle_log(records: Iterable[SlaEventRecord]) -> CycleLog:
    log = CycleLog()
    for record in records:
        log.add(record)
    return log
