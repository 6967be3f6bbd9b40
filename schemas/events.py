"""The input event contracts: one frozen dataclass per event type.

Every event has ``schema_version``, ``event_id``, ``type``, ``occurred_at``, the id of
its ticket, chat or call, and an optional ``tenant``. The JSON Schema files in
``schemas/json/`` are generated from these classes (``slawatch schemas export``) and a
test fails if they differ, so producers in other languages read the same contract.

``occurred_at`` arrives as RFC 3339 with offset or epoch milliseconds; a parsed event
holds it as epoch milliseconds (UTC).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from slawatch.core.keys import ConversationKind, conversation_key
from slawatch.schemas.fields import (
    Choice,
    Const,
    CustomFields,
    Flag,
    Integer,
    Nullable,
    Spec,
    Text,
    TextList,
    Timestamp,
    spec_field,
)
from slawatch.schemas.model import Record
from slawatch.schemas.reasons import RejectReason

SCHEMA_VERSION = 1

CHANNELS = ("email", "web", "chat", "phone", "social", "api")
PRIORITIES = ("low", "normal", "high", "urgent")
STATUSES = ("new", "open", "pending", "on_hold", "solved", "closed")
AGENT_STATUSES = ("online", "away", "busy", "offline")
TENANT_PATTERN = r"^[A-Za-z0-9_.\-]{1,64}$"

_ID = Text(128)
_NAME = Text(128)
_URL = Text(2048)


@dataclass(frozen=True, slots=True, kw_only=True)
class Event:
    """Fields every input event carries."""

    TYPE: ClassVar[str] = ""
    KIND: ClassVar[ConversationKind]
    ID_FIELD: ClassVar[str]
    DESCRIPTION: ClassVar[str] = ""
    SPEC_OVERRIDES: ClassVar[dict[str, Spec]] = {}
    REQUIRE_ONE_OF: ClassVar[tuple[str, ...]] = ()

    schema_version: int = spec_field(
        Const(SCHEMA_VERSION, RejectReason.UNSUPPORTED_SCHEMA_VERSION),
        "Version of this contract; this build reads version 1.",
    )
    event_id: str = spec_field(
        _ID, "Unique id of this event. A second event with the same id is a duplicate."
    )
    type: str = spec_field(Text(64), "The event type.")
    occurred_at: int = spec_field(
        Timestamp(),
        "When it happened at the source: RFC 3339 with offset, or epoch milliseconds. "
        "SLA arithmetic runs on this time, not on when slawatch reads the event.",
    )
    tenant: str | None = spec_field(
        Text(64, pattern=TENANT_PATTERN),
        "Optional tenant (brand, business unit) that owns the conversation.",
        default=None,
    )

    @property
    def conversation_id(self) -> str:
        """The ticket, chat or call id."""
        value: str = getattr(self, self.ID_FIELD)
        return value

    @property
    def key(self) -> str:
        """The conversation key that partitions the normalised stream."""
        return conversation_key(self.KIND, self.conversation_id, self.tenant)


@dataclass(frozen=True, slots=True, kw_only=True)
class TicketEvent(Event):
    KIND = ConversationKind.TICKET
    ID_FIELD = "ticket_id"
    ticket_id: str = spec_field(_ID, "Id of the ticket in the help desk.")


@dataclass(frozen=True, slots=True, kw_only=True)
class ChatEvent(Event):
    KIND = ConversationKind.CHAT
    ID_FIELD = "chat_id"
    chat_id: str = spec_field(_ID, "Id of the chat session.")


@dataclass(frozen=True, slots=True, kw_only=True)
class CallEvent(Event):
    KIND = ConversationKind.CALL
    ID_FIELD = "call_id"
    call_id: str = spec_field(_ID, "Id of the call (e.g. Asterisk's uniqueid).")


# --- tickets ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class TicketCreated(TicketEvent):
    TYPE = "ticket.created"
    DESCRIPTION = "A ticket was created in the help desk."

    channel: str = spec_field(Choice(*CHANNELS), "Source channel the ticket came from.")
    priority: str = spec_field(Choice(*PRIORITIES), "Ticket priority.", default="normal")
    status: str = spec_field(Choice(*STATUSES), "Status at creation.", default="new")
    opened_by: str = spec_field(
        Choice("customer", "agent"),
        "Who opened it. A ticket an agent opens waits for the customer's first message "
        "before a first-reply commitment starts.",
        default="customer",
    )
    department: str | None = spec_field(_NAME, "Department the ticket belongs to.", default=None)
    requester: str | None = spec_field(
        Text(256), "The customer who asked (id or address).", default=None
    )
    customer_group: str | None = spec_field(_NAME, "The requester's customer group.", default=None)
    assignee: str | None = spec_field(_NAME, "Agent assigned at creation.", default=None)
    assignee_status: str | None = spec_field(
        Choice(*AGENT_STATUSES), "The assigned agent's availability.", default=None
    )
    tags: tuple[str, ...] = spec_field(TextList(), "Tags.", default=())
    custom_fields: dict[str, Any] | None = spec_field(
        CustomFields(), "Custom ticket fields (flat: string keys, scalar values).", default=None
    )
    referrer_url: str | None = spec_field(
        _URL, "Page the customer came from (web and chat).", default=None
    )
    created_via_invitation: bool = spec_field(
        Flag(), "Created from a proactive chat invitation.", default=False
    )


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


@dataclass(frozen=True, slots=True, kw_only=True)
class TicketUpdated(TicketEvent):
    TYPE = "ticket.updated"
    DESCRIPTION = "Attributes of a ticket changed; only the changed ones are sent."

    changes: dict[str, Any] = spec_field(
        TICKET_CHANGES,
        "The attributes that changed. An absent key is unchanged; null clears a value.",
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class MessageReceived(TicketEvent):
    TYPE = "message.received"
    DESCRIPTION = "The customer wrote on the ticket."

    message_id: str = spec_field(_ID, "Id of the message.")
    channel: str | None = spec_field(
        Choice(*CHANNELS), "Channel the message came on.", default=None
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class MessageSent(TicketEvent):
    TYPE = "message.sent"
    DESCRIPTION = "An agent wrote on the ticket: a public reply or an internal note."

    message_id: str = spec_field(_ID, "Id of the message.")
    agent: str = spec_field(_NAME, "The agent who wrote it.")
    visibility: str = spec_field(
        Choice("public", "internal"),
        "public: the customer sees it (stops reply timers); internal: a note (never does).",
    )


# --- chats --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class ChatStarted(ChatEvent):
    TYPE = "chat.started"
    DESCRIPTION = "A customer started a chat."

    priority: str = spec_field(Choice(*PRIORITIES), "Chat priority.", default="normal")
    department: str | None = spec_field(_NAME, "Department the chat was routed to.", default=None)
    customer: str | None = spec_field(Text(256), "The customer (id or address).", default=None)
    customer_group: str | None = spec_field(_NAME, "The customer's group.", default=None)
    tags: tuple[str, ...] = spec_field(TextList(), "Tags.", default=())
    custom_fields: dict[str, Any] | None = spec_field(
        CustomFields(), "Custom fields.", default=None
    )
    referrer_url: str | None = spec_field(_URL, "Page the chat started on.", default=None)
    created_via_invitation: bool = spec_field(
        Flag(), "Started from a proactive invitation.", default=False
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class ChatMessage(ChatEvent):
    TYPE = "chat.message"
    DESCRIPTION = "A chat message from the customer or an agent."

    message_id: str = spec_field(_ID, "Id of the message.")
    author: str = spec_field(Choice("customer", "agent"), "Who wrote it.")
    agent: str | None = spec_field(_NAME, "The agent, when an agent wrote it.", default=None)


@dataclass(frozen=True, slots=True, kw_only=True)
class ChatTransferred(ChatEvent):
    TYPE = "chat.transferred"
    DESCRIPTION = "A chat moved to another department or agent."
    REQUIRE_ONE_OF = ("to_department", "to_agent")

    to_department: str | None = spec_field(_NAME, "Department it moved to.", default=None)
    to_agent: str | None = spec_field(_NAME, "Agent it moved to.", default=None)


@dataclass(frozen=True, slots=True, kw_only=True)
class ChatEnded(ChatEvent):
    TYPE = "chat.ended"
    DESCRIPTION = "A chat ended."

    ended_by: str = spec_field(Choice("customer", "agent", "system"), "Who ended it.")


# --- calls --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class CallQueued(CallEvent):
    TYPE = "call.queued"
    DESCRIPTION = "A call entered a queue (the call-answer clock starts)."

    queue: str = spec_field(_NAME, "The ACD queue.")
    priority: str = spec_field(Choice(*PRIORITIES), "Call priority.", default="normal")
    caller: str | None = spec_field(Text(256), "Caller id or customer id.", default=None)
    department: str | None = spec_field(_NAME, "Department behind the queue.", default=None)
    tags: tuple[str, ...] = spec_field(TextList(), "Tags (service type, IVR choice).", default=())
    custom_fields: dict[str, Any] | None = spec_field(
        CustomFields(), "Custom fields.", default=None
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class CallAnswered(CallEvent):
    TYPE = "call.answered"
    DESCRIPTION = "An agent answered the queued call."

    agent: str = spec_field(_NAME, "The agent who answered.")
    queue: str | None = spec_field(_NAME, "The queue it was answered from.", default=None)


@dataclass(frozen=True, slots=True, kw_only=True)
class CallAbandoned(CallEvent):
    TYPE = "call.abandoned"
    DESCRIPTION = "The caller hung up while waiting in the queue."

    queue: str | None = spec_field(_NAME, "The queue it was waiting in.", default=None)
    position: int | None = spec_field(
        Integer(1, 100_000), "Position in the queue at hang-up.", default=None
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class CallTransferred(CallEvent):
    TYPE = "call.transferred"
    DESCRIPTION = "The call moved to another queue or agent."
    REQUIRE_ONE_OF = ("to_queue", "to_agent")

    to_queue: str | None = spec_field(_NAME, "Queue it moved to.", default=None)
    to_agent: str | None = spec_field(_NAME, "Agent it moved to.", default=None)


@dataclass(frozen=True, slots=True, kw_only=True)
class CallEnded(CallEvent):
    TYPE = "call.ended"
    DESCRIPTION = "The call ended after being answered."

    ended_by: str | None = spec_field(
        Choice("caller", "agent", "system"), "Who hung up.", default=None
    )


EVENT_TYPES: dict[str, type[Event]] = {
    cls.TYPE: cls
    for cls in (
        TicketCreated,
        TicketUpdated,
        MessageReceived,
        MessageSent,
        ChatStarted,
        ChatMessage,
        ChatTransferred,
        ChatEnded,
        CallQueued,
        CallAnswered,
        CallAbandoned,
        CallTransferred,
        CallEnded,
    )
}

for _cls in EVENT_TYPES.values():
    # The "type" field of each concrete class accepts exactly its own name.
    _cls.SPEC_OVERRIDES = {"type": Const(_cls.TYPE)}
