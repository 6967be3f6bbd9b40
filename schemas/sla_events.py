"""The output contract: one record on ``sla-events`` per thing that happened to a cycle."""

from __future__ import annotations

from dataclasses import MISSING, dataclass, fields
from typing import Final

import orjson

from slawatch.core.effects import SlaEvent
from slawatch.core.keys import ConversationKind
from slawatch.core.sla import CancelReason, Metric, SlaEventKind, Stop
from slawatch.core.timestamps import format_timestamp_ms
from slawatch.schemas.fields import Choice, Flag, Integer, Nullable, Number, Text, spec_field

SLA_EVENT_VERSION = 1

_NAME = Text(256)


@dataclass(frozen=True, slots=True, kw_only=True)
class SlaEventRecord:
    """An SLA event as published. ``event_id`` is stable: a consumer that sees it twice
    (at-least-once delivery) keeps one."""

    DESCRIPTION = "Something that happened to one SLA cycle of a ticket, chat or call."

    schema_version: int = spec_field(Integer(1, 1), "Version of this record.")
    event_id: str = spec_field(
        Text(1024), "Stable id: conversation key, metric, cycle and kind, joined by '|'."
    )
    kind: str = spec_field(Choice(*(k.value for k in SlaEventKind)), "What happened.")
    metric: str = spec_field(Choice(*(m.value for m in Metric)), "The commitment.")
    cycle: int = spec_field(Integer(1, 10**9), "Which cycle of the metric (1, 2, …).")
    conversation_key: str = spec_field(Text(1024), "kind:tenant:id of the conversation.")
    conversation_kind: str = spec_field(
        Choice(*(k.value for k in ConversationKind)), "ticket, chat or call."
    )
    conversation_id: str = spec_field(Text(128), "The ticket, chat or call id.")
    tenant: str | None = spec_field(Nullable(_NAME), "Tenant.", default=None)
    channel: str | None = spec_field(Nullable(_NAME), "Source channel.", default=None)
    priority: str = spec_field(_NAME, "Priority when the event was decided.")
    department: str | None = spec_field(Nullable(_NAME), "Department.", default=None)
    assignee: str | None = spec_field(Nullable(_NAME), "Assigned agent.", default=None)
    queue: str | None = spec_field(Nullable(_NAME), "Call queue.", default=None)
    customer_group: str | None = spec_field(Nullable(_NAME), "Customer group.", default=None)
    requester: str | None = spec_field(
        Nullable(Text(256)),
        "Who asked: the ticket's requester, the chat's customer, the call's caller.",
        default=None,
    )
    level: str = spec_field(_NAME, "SLA level that set the target.")
    policy_version: str = spec_field(_NAME, "Policy version that produced this event.")
    target_s: float = spec_field(Number(0, 2**53), "Target, seconds of working time.")
    started_at: str = spec_field(Text(40), "When the cycle started (RFC 3339, UTC).")
    due_at: str = spec_field(Text(40), "When it is or was due.")
    at_risk_at: str = spec_field(
        Text(40), "When the cycle is or was at risk (its at-risk threshold, event time)."
    )
    at: str = spec_field(
        Text(40), "The event time this is about: the at-risk instant, due, or the stop."
    )
    elapsed_s: float = spec_field(Number(0, 2**53), "Working time from start to `at`, in seconds.")
    detected_at: str = spec_field(Text(40), "When slawatch decided it (wall clock).")
    detection_delay_ms: int = spec_field(
        Integer(-(2**53), 2**53), "detected_at - at, in milliseconds (alerts: the lateness)."
    )
    late: bool = spec_field(
        Flag(), "Decided well after the fact (e.g. on recovery after downtime)."
    )
    reason: str | None = spec_field(
        Nullable(Choice(*(r.value for r in CancelReason))), "Why it was cancelled.", default=None
    )
    stop: str | None = spec_field(
        Nullable(Choice(*(s.value for s in Stop))),
        "Final kinds (met, missed, cancelled): what stopped the cycle.",
        default=None,
    )
    previous_level: str | None = spec_field(
        Nullable(_NAME), "For level_changed: the level before.", default=None
    )
    sequence: int = spec_field(
        Integer(0, 2**31),
        "This event's number among its cycle's events (1, 2, …): of two events about a "
        "cycle, the larger number is the later word (0: written before slawatch numbered "
        "them).",
        default=0,
    )


def to_record(event: SlaEvent, *, late_after_ms: int) -> SlaEventRecord:
    """The published form of a core :class:`~slawatch.core.effects.SlaEvent`."""
    context = event.context
    return SlaEventRecord(
        schema_version=SLA_EVENT_VERSION,
        event_id=event.event_id,
        kind=event.kind.value,
        metric=event.metric.value,
        cycle=event.cycle,
        conversation_key=event.key,
        conversation_kind=context.kind.value,
        conversation_id=context.conversation_id,
        tenant=context.tenant,
        channel=context.channel,
        priority=context.priority,
        department=context.department,
        assignee=context.assignee,
        queue=context.queue,
        customer_group=context.customer_group,
        requester=context.requester,
        level=context.level,
        policy_version=event.policy_version,
        target_s=event.target_ms / 1000,
        started_at=format_timestamp_ms(event.started_ms),
        due_at=format_timestamp_ms(event.due_ms),
        at_risk_at=format_timestamp_ms(event.at_risk_ms),
        at=format_timestamp_ms(event.at_ms),
        elapsed_s=event.elapsed_ms / 1000,
        detected_at=format_timestamp_ms(event.detected_at_ms),
        detection_delay_ms=event.detection_delay_ms,
        late=event.detection_delay_ms > late_after_ms,
        reason=event.reason.value if event.reason else None,
        stop=event.stop.value if event.stop else None,
        previous_level=event.previous_level,
        sequence=event.sequence,
    )


def encode(record: SlaEventRecord) -> bytes:
    return orjson.dumps(record)


_FIELDS: Final = frozenset(f.name for f in fields(SlaEventRecord))
_REQUIRED: Final = frozenset(
    f.name for f in fields(SlaEventRecord) if f.default is MISSING and f.default_factory is MISSING
)
#: (name, the slot's setter, default) per field: a record filled through its slots, as
#: :func:`slawatch.core.state.evolve` does, costs a third of the frozen ``__init__``.
_SLOTS: Final = tuple(
    (f.name, getattr(SlaEventRecord, f.name).__set__, None if f.default is MISSING else f.default)
    for f in fields(SlaEventRecord)
)
_TEXT: Final = (
    "event_id", "conversation_key", "conversation_id", "priority", "level", "policy_version",
    "started_at", "due_at", "at_risk_at", "at", "detected_at",
)  # fmt: skip
_OPTIONAL_TEXT: Final = (
    "tenant", "channel", "department", "assignee", "queue", "customer_group", "requester",
    "previous_level",
)  # fmt: skip
_CHOICES: Final[dict[str, frozenset[str]]] = {
    "kind": frozenset(k.value for k in SlaEventKind),
    "metric": frozenset(m.value for m in Metric),
    "conversation_kind": frozenset(k.value for k in ConversationKind),
}
_OPTIONAL_CHOICES: Final[dict[str, frozenset[str]]] = {
    "reason": frozenset(r.value for r in CancelReason),
    "stop": frozenset(s.value for s in Stop),
}


def decode_sla_event(value: bytes | None) -> SlaEventRecord:
    """A record of ``sla-events`` as its consumers read it (the log sink, the notifier).

    JSON, fields by name (unknown ones ignored: a newer slawatch may add some), each of the
    type the contract gives it, the closed vocabularies checked; raises ``ValueError`` or
    ``TypeError`` for anything else. Lighter than the contract's full check, which the
    worker that wrote the record made: what a consumer needs to never store or route a
    value of the wrong type.
    """
    document = orjson.loads(value or b"")
    if not isinstance(document, dict):
        raise TypeError("not a JSON object")
    if not document.keys() <= _FIELDS:
        document = {k: v for k, v in document.items() if k in _FIELDS}
    missing = _REQUIRED - document.keys()
    if missing:
        raise TypeError(f"not an SLA event record: {sorted(missing)} missing")
    get = document.get
    for name in _TEXT:
        if not isinstance(get(name), str):
            raise TypeError(f"{name} is not text")
    for name in _OPTIONAL_TEXT:
        text = get(name)
        if text is not None and not isinstance(text, str):
            raise TypeError(f"{name} is not text")
    for name, allowed in _CHOICES.items():
        if get(name) not in allowed:
            raise ValueError(f"{name} is not one of {sorted(allowed)}")
    for name, allowed in _OPTIONAL_CHOICES.items():
        choice = get(name)
        if choice is not None and choice not in allowed:
            raise ValueError(f"{name} is not one of {sorted(allowed)}")
    for name in ("cycle", "sequence", "schema_version", "detection_delay_ms"):
        number = get(name, 0)
        if type(number) is not int:  # not a bool either
            raise TypeError(f"{name} is not a whole number")
    for name in ("target_s", "elapsed_s"):
        number = get(name)
        if type(number) is not float and type(number) is not int:
            raise TypeError(f"{name} is not a number")
    if not isinstance(get("late"), bool):
        raise TypeError("late is not true or false")
    record = object.__new__(SlaEventRecord)
    for name, set_slot, default in _SLOTS:
        set_slot(record, get(name, default))
    return record
