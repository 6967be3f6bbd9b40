"""The input event contracts: how each of the core's event types is read from JSON.

The event types themselves (their fields, types and defaults) and the vocabularies they
use are defined once, in the core (slawatch/core/events.py, slawatch/core/vocabulary.py).
This module gives every field of every event type its *spec* (how a decoded JSON value is
checked and normalised) and its description, so :func:`~slawatch.schemas.model.parse_model`
builds the core's classes and :func:`~slawatch.schemas.model.model_json_schema` describes
them. A field without a spec, or a spec without a field, fails at import (and in
tests/unit/test_schemas.py).

The JSON Schema files in ``schemas/json/`` are generated from these contracts
(``slawatch schemas export``) and a test fails if they differ, so producers in other
languages read the same contract.

``occurred_at`` arrives as RFC 3339 with offset or epoch milliseconds; a parsed event
holds it as epoch milliseconds (UTC).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from slawatch.core.events import (
    EVENT_CLASSES,
    TICKET_CHANGE_KEYS,
    CallAbandoned,
    CallAnswered,
    CallEnded,
    CallEvent,
    CallQueued,
    CallTransferred,
    ChatEnded,
    ChatEvent,
    ChatMessage,
    ChatStarted,
    ChatTransferred,
    InputEvent,
    MessageReceived,
    MessageSent,
    TicketChanges,
    TicketCreated,
    TicketEvent,
    TicketUpdated,
)
from slawatch.core.vocabulary import (
    AGENT_STATUSES,
    CALL_ENDED_BY,
    CHANNELS,
    CHAT_ENDED_BY,
    PARTIES,
    PRIORITIES,
    STATUSES,
    VISIBILITIES,
)
from slawatch.schemas.fields import (
    Choice,
    Const,
    CustomFields,
    Flag,
    Integer,
    Nullable,
    Text,
    TextList,
    Timestamp,
)
from slawatch.schemas.model import FieldContract, Record, describe_model
from slawatch.schemas.reasons import RejectReason

__all__ = [
    "AGENT_STATUSES",
    "CHANNELS",
    "EVENT_TYPES",
    "PRIORITIES",
    "SCHEMA_VERSION",
    "STATUSES",
    "TENANT_PATTERN",
    "TICKET_CHANGES",
    "CallAbandoned",
    "CallAnswered",
    "CallEnded",
    "CallEvent",
    "CallQueued",
    "CallTransferred",
    "ChatEnded",
    "ChatEvent",
    "ChatMessage",
    "ChatStarted",
    "ChatTransferred",
    "Event",
    "MessageReceived",
    "MessageSent",
    "TicketChanges",
    "TicketCreated",
    "TicketEvent",
    "TicketUpdated",
]

SCHEMA_VERSION = 1
TENANT_PATTERN = r"^[A-Za-z0-9_.\-]{1,64}$"

#: The base class of every input event (the core's :class:`InputEvent`).
Event = InputEvent

_ID = Text(128)
_NAME = Text(128)
_URL = Text(2048)


TICKET_CHANGES = Record(
    {
        "status": (Choice(*STATUSES), "New status."),
        "priority": (Choice(*PRIORITIES), "New priority."),
        "channel": (Choice(*CHANNELS), "Corrected source channel."),
        "department": (Nullable(_NAME), "New department, or null for none."),
        "assignee": (Nullable(_NAME), "New assignee, or null for unassigned."),
        "assignee_status": (Nullable(Choice(*AGENT_STATUSES)), "The assignee's availability."),
        "customer_group": (Nullable(_NAME), "New customer group, or null."),
        "tags": (TextList(), "The full new tag list (replaces the old one)."),
        "custom_fields": (CustomFields(), "Custom fields that changed (merged into the old)."),
        "referrer_url": (Nullable(_URL), "New referrer URL."),
        "deleted": (Flag(), "True when the ticket was deleted (cancels its timers)."),
    }
)
if sorted(TICKET_CHANGES.properties) != sorted(TICKET_CHANGE_KEYS):
    raise TypeError(
        f"TICKET_CHANGES keys {sorted(TICKET_CHANGES.properties)} differ from the core's "
        f"{TicketChanges.__name__} {sorted(TICKET_CHANGE_KEYS)}"
    )

#: The spec and description of each field, per class; a class's fields are described by
#: its own entry and its base classes' (the ``type`` field of a concrete class accepts
#: exactly its own name).
FIELDS: Final[Mapping[type[InputEvent], Mapping[str, FieldContract]]] = {
    InputEvent: {
        "schema_version": (
            Const(SCHEMA_VERSION, RejectReason.UNSUPPORTED_SCHEMA_VERSION),
            "Version of this contract; this build reads version 1.",
        ),
        "event_id": (
            _ID,
            "Unique id of this event. A second event with the same id is a duplicate.",
        ),
        "type": (Text(64), "The event type."),
        "occurred_at": (
            Timestamp(),
            "When it happened at the source: RFC 3339 with offset, or epoch milliseconds. "
            "SLA arithmetic runs on this time, not on when slawatch reads the event.",
        ),
        "tenant": (
            Text(64, pattern=TENANT_PATTERN),
            "Optional tenant (brand, business unit) that owns the conversation.",
        ),
    },
    TicketEvent: {"ticket_id": (_ID, "Id of the ticket in the help desk.")},
    ChatEvent: {"chat_id": (_ID, "Id of the chat session.")},
    CallEvent: {"call_id": (_ID, "Id of the call (e.g. Asterisk's uniqueid).")},
    # --- tickets ---
    TicketCreated: {
        "channel": (Choice(*CHANNELS), "Source channel the ticket came from."),
        "priority": (Choice(*PRIORITIES), "Ticket priority."),
        "status": (Choice(*STATUSES), "Status at creation."),
        "opened_by": (
            Choice(*PARTIES),
            "Who opened it. A ticket an agent opens waits for the customer's first message "
            "before a first-reply commitment starts.",
        ),
        "department": (_NAME, "Department the ticket belongs to."),
        "requester": (Text(256), "The customer who asked (id or address)."),
        "customer_group": (_NAME, "The requester's customer group."),
        "assignee": (_NAME, "Agent assigned at creation."),
        "assignee_status": (Choice(*AGENT_STATUSES), "The assigned agent's availability."),
        "tags": (TextList(), "Tags."),
        "custom_fields": (
            CustomFields(),
            "Custom ticket fields (flat: string keys, scalar values).",
        ),
        "referrer_url": (_URL, "Page the customer came from (web and chat)."),
        "created_via_invitation": (Flag(), "Created from a proactive chat invitation."),
    },
    TicketUpdated: {
        "changes": (
            TICKET_CHANGES,
            "The attributes that changed. An absent key is unchanged; null clears a value.",
        ),
    },
    MessageReceived: {
        "message_id": (_ID, "Id of the message."),
        "channel": (Choice(*CHANNELS), "Channel the message came on."),
    },
    MessageSent: {
        "message_id": (_ID, "Id of the message."),
        "agent": (_NAME, "The agent who wrote it."),
        "visibility": (
            Choice(*VISIBILITIES),
            "public: the customer sees it (stops reply timers); internal: a note (never does).",
        ),
    },
    # --- chats ---
    ChatStarted: {
        "priority": (Choice(*PRIORITIES), "Chat priority."),
        "department": (_NAME, "Department the chat was routed to."),
        "customer": (Text(256), "The customer (id or address)."),
        "customer_group": (_NAME, "The customer's group."),
        "tags": (TextList(), "Tags."),
        "custom_fields": (CustomFields(), "Custom fields."),
        "referrer_url": (_URL, "Page the chat started on."),
        "created_via_invitation": (Flag(), "Started from a proactive invitation."),
    },
    ChatMessage: {
        "message_id": (_ID, "Id of the message."),
        "author": (Choice(*PARTIES), "Who wrote it."),
        "agent": (_NAME, "The agent, when an agent wrote it."),
    },
    ChatTransferred: {
        "to_department": (_NAME, "Department it moved to."),
        "to_agent": (_NAME, "Agent it moved to."),
    },
    ChatEnded: {
        "ended_by": (Choice(*CHAT_ENDED_BY), "Who ended it."),
    },
    # --- calls ---
    CallQueued: {
        "queue": (_NAME, "The ACD queue."),
        "priority": (Choice(*PRIORITIES), "Call priority."),
        "caller": (Text(256), "Caller id or customer id."),
        "department": (_NAME, "Department behind the queue."),
        "tags": (TextList(), "Tags (service type, IVR choice)."),
        "custom_fields": (CustomFields(), "Custom fields."),
    },
    CallAnswered: {
        "agent": (_NAME, "The agent who answered."),
        "queue": (_NAME, "The queue it was answered from."),
    },
    CallAbandoned: {
        "queue": (_NAME, "The queue it was waiting in."),
        "position": (Integer(1, 100_000), "Position in the queue at hang-up."),
    },
    CallTransferred: {
        "to_queue": (_NAME, "Queue it moved to."),
        "to_agent": (_NAME, "Agent it moved to."),
    },
    CallEnded: {
        "ended_by": (Choice(*CALL_ENDED_BY), "Who hung up."),
    },
}

#: Event types valid only with at least one of these fields given.
REQUIRE_ONE_OF: Final[Mapping[type[InputEvent], tuple[str, ...]]] = {
    ChatTransferred: ("to_department", "to_agent"),
    CallTransferred: ("to_queue", "to_agent"),
}


def _field_contracts(cls: type[InputEvent]) -> dict[str, FieldContract]:
    contracts: dict[str, FieldContract] = {}
    for base in reversed(cls.__mro__):
        contracts.update(FIELDS.get(base, {}))
    _, doc = contracts["type"]
    contracts["type"] = (Const(cls.TYPE), doc)
    return contracts


#: Event type name -> its class.
EVENT_TYPES: Final[dict[str, type[InputEvent]]] = {cls.TYPE: cls for cls in EVENT_CLASSES}

for _cls in EVENT_CLASSES:
    describe_model(_cls, _field_contracts(_cls), require_one_of=REQUIRE_ONE_OF.get(_cls, ()))
