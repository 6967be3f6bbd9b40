"""The input events the core reads: one frozen dataclass per event type.

These are the only definition of each event's fields, their types and defaults. The
contracts (slawatch/schemas/events.py) say how each field is parsed from JSON and
published as JSON Schema, and parse into these classes; the state machine dispatches on
the class (slawatch/core/handlers.py).

Every event has ``schema_version``, ``event_id``, ``type`` (its :attr:`InputEvent.TYPE`),
``occurred_at`` (epoch milliseconds, UTC), the id of its ticket, chat or call, and an
optional ``tenant``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Final, TypedDict

from slawatch.core.keys import ConversationKind, conversation_key
from slawatch.core.vocabulary import (
    AgentStatus,
    CallEndedBy,
    Channel,
    ChatEndedBy,
    Party,
    Priority,
    Status,
    Visibility,
)


@dataclass(frozen=True, slots=True, kw_only=True)
class InputEvent:
    """Fields every input event carries."""

    #: The event type (the value of ``type``), e.g. ``ticket.created``.
    TYPE: ClassVar[str] = ""
    #: The kind of conversation it happens to.
    KIND: ClassVar[ConversationKind]
    #: The field holding the ticket, chat or call id.
    ID_FIELD: ClassVar[str]
    #: What it says happened (the contract's description).
    DESCRIPTION: ClassVar[str] = ""

    schema_version: int
    event_id: str
    type: str
    occurred_at: int
    tenant: str | None = None

    @property
    def conversation_id(self) -> str:
        """The ticket, chat or call id."""
        raise NotImplementedError

    @property
    def key(self) -> str:
        """The conversation key that partitions the normalised stream."""
        return conversation_key(self.KIND, self.conversation_id, self.tenant)


@dataclass(frozen=True, slots=True, kw_only=True)
class TicketEvent(InputEvent):
    """Something that happened to a ticket (or on it: a message)."""

    KIND = ConversationKind.TICKET
    ID_FIELD = "ticket_id"
    ticket_id: str

    @property
    def conversation_id(self) -> str:
        return self.ticket_id


@dataclass(frozen=True, slots=True, kw_only=True)
class ChatEvent(InputEvent):
    """Something that happened in a chat."""

    KIND = ConversationKind.CHAT
    ID_FIELD = "chat_id"
    chat_id: str

    @property
    def conversation_id(self) -> str:
        return self.chat_id


@dataclass(frozen=True, slots=True, kw_only=True)
class CallEvent(InputEvent):
    """Something that happened to a phone call."""

    KIND = ConversationKind.CALL
    ID_FIELD = "call_id"
    call_id: str

    @property
    def conversation_id(self) -> str:
        return self.call_id


# --- tickets ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class TicketCreated(TicketEvent):
    TYPE = "ticket.created"
    DESCRIPTION = "A ticket was created in the help desk."

    channel: Channel
    priority: Priority = "normal"
    status: Status = "new"
    opened_by: Party = "customer"
    department: str | None = None
    requester: str | None = None
    customer_group: str | None = None
    assignee: str | None = None
    assignee_status: AgentStatus | None = None
    tags: tuple[str, ...] = ()
    custom_fields: dict[str, Any] | None = None
    referrer_url: str | None = None
    created_via_invitation: bool = False


class ContextChanges(TypedDict, total=False):
    """The changes of a ticket.updated that the conversation's context takes as they are
    (each key is a field of :class:`~slawatch.core.state.Context`)."""

    priority: Priority
    channel: Channel
    department: str | None
    assignee: str | None
    assignee_status: AgentStatus | None
    customer_group: str | None
    referrer_url: str | None


class TicketChanges(ContextChanges, total=False):
    """What a ticket.updated changed: an absent key is unchanged, None clears the value.

    Its keys are the one list of what an update can change."""

    status: Status
    tags: tuple[str, ...]
    #: Only the custom fields that changed (merged into the old ones; None removes one).
    custom_fields: dict[str, Any]
    deleted: bool


#: The keys of :class:`ContextChanges` and of :class:`TicketChanges`, in declaration order.
CONTEXT_CHANGE_KEYS: Final[tuple[str, ...]] = tuple(ContextChanges.__annotations__)
TICKET_CHANGE_KEYS: Final[tuple[str, ...]] = tuple(TicketChanges.__annotations__)


@dataclass(frozen=True, slots=True, kw_only=True)
class TicketUpdated(TicketEvent):
    TYPE = "ticket.updated"
    DESCRIPTION = "Attributes of a ticket changed; only the changed ones are sent."

    changes: TicketChanges


@dataclass(frozen=True, slots=True, kw_only=True)
class MessageReceived(TicketEvent):
    TYPE = "message.received"
    DESCRIPTION = "The customer wrote on the ticket."

    message_id: str
    channel: Channel | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class MessageSent(TicketEvent):
    TYPE = "message.sent"
    DESCRIPTION = "An agent wrote on the ticket: a public reply or an internal note."

    message_id: str
    agent: str
    visibility: Visibility


# --- chats --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class ChatStarted(ChatEvent):
    TYPE = "chat.started"
    DESCRIPTION = "A customer started a chat."

    priority: Priority = "normal"
    department: str | None = None
    customer: str | None = None
    customer_group: str | None = None
    tags: tuple[str, ...] = ()
    custom_fields: dict[str, Any] | None = None
    referrer_url: str | None = None
    created_via_invitation: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class ChatMessage(ChatEvent):
    TYPE = "chat.message"
    DESCRIPTION = "A chat message from the customer or an agent."

    message_id: str
    author: Party
    agent: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ChatTransferred(ChatEvent):
    TYPE = "chat.transferred"
    DESCRIPTION = "A chat moved to another department or agent."

    to_department: str | None = None
    to_agent: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ChatEnded(ChatEvent):
    TYPE = "chat.ended"
    DESCRIPTION = "A chat ended."

    ended_by: ChatEndedBy


# --- calls --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class CallQueued(CallEvent):
    TYPE = "call.queued"
    DESCRIPTION = "A call entered a queue (the call-answer clock starts)."

    queue: str
    priority: Priority = "normal"
    caller: str | None = None
    department: str | None = None
    tags: tuple[str, ...] = ()
    custom_fields: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class CallAnswered(CallEvent):
    TYPE = "call.answered"
    DESCRIPTION = "An agent answered the queued call."

    agent: str
    queue: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class CallAbandoned(CallEvent):
    TYPE = "call.abandoned"
    DESCRIPTION = "The caller hung up while waiting in the queue."

    queue: str | None = None
    position: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class CallTransferred(CallEvent):
    TYPE = "call.transferred"
    DESCRIPTION = "The call moved to another queue or agent."

    to_queue: str | None = None
    to_agent: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class CallEnded(CallEvent):
    TYPE = "call.ended"
    DESCRIPTION = "The call ended after being answered."

    ended_by: CallEndedBy | None = None


#: Every input event type, in the contracts' order.
EVENT_CLASSES: Final[tuple[type[InputEvent], ...]] = (
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
