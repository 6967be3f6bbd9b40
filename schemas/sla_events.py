"""The output contract: one record on ``sla-events`` per thing that happened to a cycle."""

from __future__ import annotations

from dataclasses import MISSING, dataclass, fields
from typing import Annotated, Final

import orjson

from slawatch.core.effects import SlaEvent
from slawatch.core.keys import ConversationKind
from slawatch.core.sla import CancelReason, Metric, SlaEventKind, Stop
from slawatch.core.timestamps import format_timestamp_ms
from slawatch.schemas.contract import choice, doc, integer, text

SLA_EVENT_VERSION = 1

_Name = Annotated[str, text(256)]


@dataclass(frozen=True, slots=True, kw_only=True)
class SlaEventRecord:
    """An SLA event as published. ``event_id`` is stable: a consumer that sees it twice
    (at-least-once delivery) keeps one."""

    DESCRIPTION = "Something that happened to one SLA cycle of a ticket, chat or call."

    schema_version: Annotated[int, integer(1, 1, "Version of this record.")]
    event_id: Annotated[
        str, text(1024, "Stable id: conversation key, metric, cycle and kind, joined by '|'.")
    ]
    kind: Annotated[str, choice((k.value for k in SlaEventKind), "What happened.")]
    metric: Annotated[str, choice((m.value for m in Metric), "The commitment.")]
    cycle: Annotated[int, integer(1, 10**9, "Which cycle of the metric (1, 2, …).")]
    conversation_key: Annotated[str, text(1024, "kind:tenant:id of the conversation.")]
    conversation_kind: Annotated[
        str, choice((k.value for k in ConversationKind), "ticket, chat or call.")
    ]
    conversation_id: Annotated[str, text(128, "The ticket, chat or call id.")]
    tenant: Annotated[_Name | None, doc("Tenant.")] = None
    channel: Annotated[_Name | None, doc("Source channel.")] = None
    priority: Annotated[str, text(256, "Priority when the event was decided.")]
    department: Annotated[_Name | None, doc("Department.")] = None
    assignee: Annotated[_Name | None, doc("Assigned agent.")] = None
    queue: Annotated[_Name | None, doc("Call queue.")] = None
    customer_group: Annotated[_Name | None, doc("Customer group.")] = None
    requester: Annotated[
        _Name | None,
        doc("Who asked: the ticket's requester, the chat's customer, the call's caller."),
    ] = None
    level: Annotated[str, text(256, "SLA level that set the target.")]
    policy_version: Annotated[str, text(256, "Policy version that produced this event.")]
    target_s: Annotated[float, integer(0, 2**53, "Target, seconds of working time.")]
    started_at: Annotated[str, text(40, "When the cycle started (RFC 3339, UTC).")]
    due_at: Annotated[str, text(40, "When it is or was due.")]
    at_risk_at: Annotated[
        str, text(40, "When the cycle is or was at risk (its at-risk threshold, event time).")
    ]
    at: Annotated[
        str, text(40, "The event time this is about: the at-risk instant, due, or the stop.")
    ]
    elapsed_s: Annotated[float, integer(0, 2**53, "Working time from start to `at`, in seconds.")]
    detected_at: Annotated[str, text(40, "When slawatch decided it (wall clock).")]
    detection_delay_ms: Annotated[
        int,
        integer(-(2**53), 2**53, "detected_at - at, in milliseconds (alerts: the lateness)."),
    ]
    late: Annotated[bool, doc("Decided well after the fact (e.g. on recovery after downtime).")]
    reason: Annotated[
        Annotated[str, choice(r.value for r in CancelReason)] | None,
        doc("Why it was cancelled."),
    ] = None
    stop: Annotated[
        Annotated[str, choice(s.value for s in Stop)] | None,
        doc("Final kinds (met, missed, cancelled): what stopped the cycle."),
    ] = None
    previous_level: Annotated[_Name | None, doc("For level_changed: the level before.")] = None
    sequence: Annotated[
        int,
        integer(
            0,
            2**31,
            "This event's number among its cycle's events (1, 2, …): of two events about a "
            "cycle, the larger number is the later word (0: written before slawatch numbered "
            "them).",
        ),
    ] = 0


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
#: (name, the slot's setter, default) per field: a record filled through its slots
#: (skipping the frozen dataclass's ``__init__``) costs a third of that ``__init__``.
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
