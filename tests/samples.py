"""Example input messages shared by unit and integration tests: one valid event of every
type, and one invalid message for every dead-letter reason."""

from __future__ import annotations

from typing import Any

import orjson

from slawatch.core.keys import ConversationKind
from slawatch.schemas.events import EVENT_TYPES
from slawatch.schemas.reasons import RejectReason

#: A fixed "now" for validators in tests: 2026-11-22T12:00:00Z.
NOW_MS = 1_795_348_800_000

T, C, Q = ConversationKind.TICKET, ConversationKind.CHAT, ConversationKind.CALL


def event(type_: str, n: int = 1, **fields: Any) -> dict[str, Any]:
    """A minimal valid event of ``type_`` (override or add any field)."""
    family = type_.split(".")[0]
    base: dict[str, Any] = {
        "schema_version": 1,
        "event_id": f"evt-{type_}-{n}",
        "type": type_,
        "occurred_at": "2026-11-22T10:00:00+07:00",
        EVENT_TYPES[type_].ID_FIELD: f"{family[0].upper()}-{n}",
    }
    base.update(REQUIRED[type_])
    base.update(fields)
    return base


REQUIRED: dict[str, dict[str, Any]] = {
    "ticket.created": {"channel": "email"},
    "ticket.updated": {"changes": {"status": "pending"}},
    "message.received": {"message_id": "m-1"},
    "message.sent": {"message_id": "m-2", "agent": "agent-01", "visibility": "public"},
    "chat.started": {},
    "chat.message": {"message_id": "m-3", "author": "customer"},
    "chat.transferred": {"to_department": "billing"},
    "chat.ended": {"ended_by": "customer"},
    "call.queued": {"queue": "general"},
    "call.answered": {"agent": "agent-02"},
    "call.abandoned": {},
    "call.transferred": {"to_queue": "vip"},
    "call.ended": {},
}


def valid_examples() -> list[tuple[ConversationKind, dict[str, Any]]]:
    """One rich valid event per type, with the kind of topic it belongs on."""
    rich = {
        "ticket.created": dict(
            priority="urgent",
            department="billing",
            requester="ana@example.com",
            customer_group="enterprise",
            assignee="agent-01",
            assignee_status="online",
            tags=["vip", "refund"],
            custom_fields={"plan": "pro", "seats": 40, "trial": False, "note": None},
            referrer_url="https://shop.example.com/checkout",
            created_via_invitation=True,
            tenant="acme",
            occurred_at=NOW_MS - 60_000,
        ),
        "ticket.updated": dict(changes={"assignee": None, "deleted": False, "tags": ["x"]}),
        "call.abandoned": dict(queue="general", position=3),
        "chat.message": dict(author="agent", agent="agent-07"),
    }
    return [(EVENT_TYPES[name].KIND, event(name, **rich.get(name, {}))) for name in REQUIRED]


def invalid_examples() -> list[tuple[str, ConversationKind, bytes, RejectReason]]:
    """(label, topic kind, raw bytes, expected reason) for every reason code."""
    ok = event("ticket.created")
    dumps = orjson.dumps
    return [
        ("truncated JSON", T, dumps(ok)[:20], RejectReason.NOT_JSON),
        ("not UTF-8", T, b"\xff\xfe{}", RejectReason.NOT_JSON),
        ("not UTF-8 in a field", T, dumps(ok).replace(b"T-1", b"T-\xfc1"), RejectReason.NOT_JSON),
        ("a lone surrogate in a field", T, dumps(ok).replace(b"T-1", b"T-\xed\xa0\x801"),
         RejectReason.NOT_JSON),
        ("array", T, dumps([ok]), RejectReason.NOT_OBJECT),
        ("oversized", T, dumps({**ok, "pad": "x" * 70_000}), RejectReason.OVERSIZED),
        ("no event_id", T, dumps({k: v for k, v in ok.items() if k != "event_id"}),
         RejectReason.MISSING_FIELD),
        ("null ticket_id", T, dumps({**ok, "ticket_id": None}), RejectReason.MISSING_FIELD),
        ("no type", T, dumps({k: v for k, v in ok.items() if k != "type"}),
         RejectReason.MISSING_FIELD),
        ("numeric ticket_id", T, dumps({**ok, "ticket_id": 7}), RejectReason.WRONG_TYPE),
        ("tags not a list", T, dumps({**ok, "tags": "vip"}), RejectReason.WRONG_TYPE),
        ("priority unknown", T, dumps({**ok, "priority": "critical"}),
         RejectReason.INVALID_VALUE),
        ("changes empty", T, dumps(event("ticket.updated", changes={})),
         RejectReason.INVALID_VALUE),
        ("changes unknown key", T, dumps(event("ticket.updated", changes={"colour": "red"})),
         RejectReason.INVALID_VALUE),
        ("unknown type", T, dumps({**ok, "type": "ticket.merged"}), RejectReason.UNKNOWN_TYPE),
        ("call on tickets", T, dumps(event("call.queued")), RejectReason.WRONG_TOPIC),
        ("version 2", T, dumps({**ok, "schema_version": 2}),
         RejectReason.UNSUPPORTED_SCHEMA_VERSION),
        ("naive time", T, dumps({**ok, "occurred_at": "2026-11-22T10:00:00"}),
         RejectReason.BAD_TIMESTAMP),
        ("epoch seconds", T, dumps({**ok, "occurred_at": 1_795_348_800}),
         RejectReason.BAD_TIMESTAMP),
        ("February 30", T, dumps({**ok, "occurred_at": "2026-02-30T10:00:00Z"}),
         RejectReason.BAD_TIMESTAMP),
        ("an hour ahead", T, dumps({**ok, "occurred_at": NOW_MS + 3_600_000}),
         RejectReason.FUTURE_TIMESTAMP),
        ("transfer nowhere", Q, dumps(event("call.transferred", to_queue=None)),
         RejectReason.MISSING_FIELD),
    ]  # fmt: skip


def sla_record(
    kind: Any,
    *,
    due_ms: int,
    at_ms: int | None = None,
    detected_after_ms: int = 500,
    **context: Any,
) -> Any:
    """A published SLA event record (first reply, a one-hour target due at ``due_ms``,
    cycle 1) of a ticket, as the timers agent makes one from a core event: ``kind`` is an
    ``SlaEventKind``; ``context`` overrides the ticket's (``conversation_id``, ``tenant``,
    ``level``, ...)."""
    from slawatch.core.effects import SlaEvent
    from slawatch.core.sla import Metric
    from slawatch.core.state import Context
    from slawatch.schemas.sla_events import to_record

    hour = 3_600_000
    at_ms = due_ms if at_ms is None else at_ms
    values: dict[str, Any] = {
        "kind": ConversationKind.TICKET,
        "conversation_id": "48213",
        "tenant": "acme",
        "channel": "email",
        "priority": "high",
        "department": "billing",
        "assignee": "agent-07",
        "level": "high",
        **context,
    }
    ctx = Context(**values)
    event = SlaEvent(
        kind=kind,
        metric=Metric.FIRST_REPLY,
        cycle=1,
        key=f"ticket:{ctx.tenant or ''}:{ctx.conversation_id}",
        context=ctx,
        target_ms=hour,
        started_ms=due_ms - hour,
        due_ms=due_ms,
        at_risk_ms=due_ms - hour // 4,
        at_ms=at_ms,
        elapsed_ms=at_ms - (due_ms - hour),
        detected_at_ms=at_ms + detected_after_ms,
        policy_version="builtin-1",
    )
    return to_record(event, late_after_ms=60_000)


def keyed_event(
    type_: str, conversation: str, at_ms: int, n: int = 1, **fields: Any
) -> tuple[bytes, bytes]:
    """(key, value) of an input message: event ``type_`` number ``n`` of ``conversation``
    (its ticket, chat or call id, and its key) at ``at_ms``, other fields as given."""
    body = event(type_, n, occurred_at=at_ms, **fields)
    body["event_id"] = f"{conversation}-{type_}-{n}"
    for id_field in ("ticket_id", "chat_id", "call_id"):
        if id_field in body:
            body[id_field] = conversation
    return conversation.encode(), orjson.dumps(body)
