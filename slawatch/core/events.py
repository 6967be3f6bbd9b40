"""The input events the core reads: one frozen ``msgspec.Struct`` per event type, and their
contract.

These are the only definition of each event's fields, their types, defaults and
constraints (lengths, patterns, ranges, the vocabularies of slawatch/core/vocabulary.py)
and descriptions. msgspec decodes an input message straight into one of these classes
(the union is tagged by ``type``: slawatch/schemas/validation.py), the published JSON
Schemas are generated from them (slawatch/schemas/export.py), and the state machine
dispatches on the class (slawatch/core/handlers.py).

Every event has ``schema_version``, ``event_id``, ``type`` (its :attr:`InputEvent.TYPE`,
the union's tag: a property, not a field), ``occurred_at`` (epoch milliseconds, UTC; it
arrives as RFC 3339 with offset or epoch milliseconds and is converted on decoding), the id
of its ticket, chat or call, and an optional ``tenant``.

What a type annotation cannot say is said here as class data and checked by the
validator: :attr:`InputEvent.REQUIRE_ONE_OF`. That an optional field given as null means
"not given" (its default) is the validator's rule too.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Final, Literal, TypedDict, get_args

import msgspec
from msgspec import UNSET, Meta, UnsetType

from slawatch.core.keys import ConversationKind, conversation_key
from slawatch.core.patterns import pattern_meta
from slawatch.core.timestamps import (
    MAX_EPOCH_MS,
    MIN_EPOCH_MS,
    RFC3339_PATTERN,
    InvalidTimestamp,
    parse_timestamp_ms,
)
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

#: The contract version this build reads.
SCHEMA_VERSION: Final = 1
TENANT_PATTERN: Final = r"^[A-Za-z0-9_.\-]{1,64}$"
CUSTOM_FIELD_KEY_PATTERN: Final = r"^[A-Za-z0-9_.\-]{1,64}$"
#: Longer than any RFC 3339 date-time the pattern admits (35 characters).
MAX_TIMESTAMP_CHARS: Final = 64


def _text(max_length: int, description: str | None = None) -> Meta:
    return Meta(min_length=1, max_length=max_length, description=description)


# --- the value types the fields are built of ----------------------------------------------

Id = Annotated[str, _text(128)]
Name = Annotated[str, _text(128)]
LongName = Annotated[str, _text(256)]
Url = Annotated[str, _text(2048)]
Tag = Annotated[str, _text(64)]
Tags = Annotated[tuple[Tag, ...], Meta(max_length=64)]
Tenant = Annotated[str, pattern_meta(TENANT_PATTERN, min_length=1, max_length=64)]
CustomFieldKey = Annotated[str, pattern_meta(CUSTOM_FIELD_KEY_PATTERN)]
CustomFieldValue = Annotated[str, Meta(max_length=1024)] | int | float | bool | None
CustomFields = Annotated[dict[CustomFieldKey, CustomFieldValue], Meta(max_length=64)]
Position = Annotated[int, Meta(ge=1, le=100_000)]

#: The latest instant an RFC 3339 string the pattern admits can name.
LATEST_TEXT_MS: Final = parse_timestamp_ms("9999-12-31T23:59:59.999-23:59")

if TYPE_CHECKING:
    #: Epoch milliseconds once decoded (see :meth:`InputEvent.__post_init__`).
    EventTime = int
else:
    #: What msgspec reads: epoch milliseconds, or a string that
    #: :func:`~slawatch.core.timestamps.parse_timestamp_ms` turns into them. The integer
    #: branch takes every instant a string can become (1970 on), because the normalised
    #: stream holds the converted time and is read with these classes too; the contract's
    #: narrower range for integers given as input (2000..2100, which catches seconds sent
    #: by mistake) is checked by the validator (slawatch/schemas/validation.py) and is what
    #: the schemas publish (``x-published`` replaces msgspec's bounds on export,
    #: slawatch/schemas/export.py).
    EventTime = (
        Annotated[
            int,
            Meta(
                ge=0,
                le=LATEST_TEXT_MS,
                extra_json_schema={
                    "x-published": {"minimum": MIN_EPOCH_MS, "maximum": MAX_EPOCH_MS - 1}
                },
            ),
        ]
        | Annotated[
            str,
            Meta(max_length=MAX_TIMESTAMP_CHARS, extra_json_schema={"pattern": RFC3339_PATTERN}),
        ]
    )

#: orjson, which read input messages before msgspec did, reads an integer outside
#: -2**63..2**64-1 as a float; msgspec keeps it a Python int, which no 64-bit encoder (the
#: timers' state) can write. A custom field value keeps orjson's meaning:
#: :func:`as_orjson_reads`.
_INT_MIN: Final = -(2**63)
_INT_MAX: Final = 2**64 - 1


def as_orjson_reads(custom_fields: dict[str, Any]) -> None:
    """Turn, in place, every integer value of ``custom_fields`` beyond 64 bits into the
    float orjson reads for it; one too large for a float is refused (``ValueError``: orjson
    refuses the message as not JSON). A loop over the values, on events that have custom
    fields only."""
    for key, value in custom_fields.items():
        if type(value) is int and not _INT_MIN <= value <= _INT_MAX:
            try:
                custom_fields[key] = float(value)
            except OverflowError:
                raise ValueError(f"custom field {key!r}: number out of range") from None


def _doc(description: str) -> Meta:
    return Meta(description=description)


_CAMEL = re.compile(r"(?<!^)(?=[A-Z])")


def type_name(class_name: str) -> str:
    """The event type of a class: ``TicketCreated`` -> ``ticket.created``."""
    return _CAMEL.sub(".", class_name).lower()


class InputEvent(
    msgspec.Struct, frozen=True, kw_only=True, gc=False, tag_field="type", tag=type_name
):
    """Fields every input event carries."""

    #: The event type (the value of ``type``), e.g. ``ticket.created``.
    TYPE: ClassVar[str] = ""
    #: The kind of conversation it happens to.
    KIND: ClassVar[ConversationKind]
    #: The field holding the ticket, chat or call id.
    ID_FIELD: ClassVar[str]
    #: What it says happened (the contract's description).
    DESCRIPTION: ClassVar[str] = ""
    #: Fields of which at least one must be given (not null).
    REQUIRE_ONE_OF: ClassVar[tuple[str, ...]] = ()

    schema_version: Annotated[
        Literal[1], _doc("Version of this contract; this build reads version 1.")
    ]
    event_id: Annotated[
        str,
        _text(128, "Unique id of this event. A second event with the same id is a duplicate."),
    ]
    occurred_at: Annotated[
        EventTime,
        _doc(
            "When it happened at the source: RFC 3339 with offset, or epoch milliseconds. "
            "SLA arithmetic runs on this time, not on when slawatch reads the event."
        ),
    ]
    tenant: Annotated[
        Tenant | None, _doc("Optional tenant (brand, business unit) that owns the conversation.")
    ] = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.TYPE = type_name(cls.__name__)

    def __post_init__(self) -> None:
        # An event time given as text becomes epoch milliseconds, once, here.
        if type(self.occurred_at) is not int:
            try:
                epoch_ms = parse_timestamp_ms(self.occurred_at)
            except InvalidTimestamp as exc:
                raise ValueError(f"occurred_at: {exc}") from None
            msgspec.structs.force_setattr(self, "occurred_at", epoch_ms)

    @property
    def type(self) -> str:
        """The event type (the message's ``type``)."""
        return self.TYPE

    @property
    def conversation_id(self) -> str:
        """The ticket, chat or call id."""
        raise NotImplementedError

    @property
    def key(self) -> str:
        """The conversation key that partitions the normalised stream."""
        return conversation_key(self.KIND, self.conversation_id, self.tenant)


class TicketEvent(InputEvent, frozen=True, kw_only=True, gc=False):
    """Something that happened to a ticket (or on it: a message)."""

    KIND = ConversationKind.TICKET
    ID_FIELD = "ticket_id"
    ticket_id: Annotated[str, _text(128, "Id of the ticket in the help desk.")]

    @property
    def conversation_id(self) -> str:
        return self.ticket_id


class ChatEvent(InputEvent, frozen=True, kw_only=True, gc=False):
    """Something that happened in a chat."""

    KIND = ConversationKind.CHAT
    ID_FIELD = "chat_id"
    chat_id: Annotated[str, _text(128, "Id of the chat session.")]

    @property
    def conversation_id(self) -> str:
        return self.chat_id


class CallEvent(InputEvent, frozen=True, kw_only=True, gc=False):
    """Something that happened to a phone call."""

    KIND = ConversationKind.CALL
    ID_FIELD = "call_id"
    call_id: Annotated[str, _text(128, "Id of the call (e.g. Asterisk's uniqueid).")]

    @property
    def conversation_id(self) -> str:
        return self.call_id


# --- tickets ------------------------------------------------------------------------------


class TicketCreated(TicketEvent, frozen=True, kw_only=True, gc=False):
    DESCRIPTION = "A ticket was created in the help desk."

    channel: Annotated[Channel, _doc("Source channel the ticket came from.")]
    priority: Annotated[Priority, _doc("Ticket priority.")] = "normal"
    status: Annotated[Status, _doc("Status at creation.")] = "new"
    opened_by: Annotated[
        Party,
        _doc(
            "Who opened it. A ticket an agent opens waits for the customer's first message "
            "before a first-reply commitment starts."
        ),
    ] = "customer"
    department: Annotated[Name | None, _doc("Department the ticket belongs to.")] = None
    requester: Annotated[LongName | None, _doc("The customer who asked (id or address).")] = None
    customer_group: Annotated[Name | None, _doc("The requester's customer group.")] = None
    assignee: Annotated[Name | None, _doc("Agent assigned at creation.")] = None
    assignee_status: Annotated[AgentStatus | None, _doc("The assigned agent's availability.")] = (
        None
    )
    tags: Annotated[Tags, _doc("Tags.")] = ()
    custom_fields: Annotated[
        CustomFields | None, _doc("Custom ticket fields (flat: string keys, scalar values).")
    ] = None
    referrer_url: Annotated[Url | None, _doc("Page the customer came from (web and chat).")] = None
    created_via_invitation: Annotated[bool, _doc("Created from a proactive chat invitation.")] = (
        False
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.custom_fields is not None:
            as_orjson_reads(self.custom_fields)


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


class Changes(msgspec.Struct, frozen=True, gc=False, forbid_unknown_fields=True):
    """How a ticket.updated's ``changes`` object is read: exactly the keys of
    :class:`TicketChanges` (an unknown one is refused), at least one of them; an absent
    key stays absent (``UNSET``), apart from a null. :class:`TicketUpdated` holds it as the
    plain :class:`TicketChanges` dict of the keys given."""

    status: Annotated[Status, _doc("New status.")] | UnsetType = UNSET
    priority: Annotated[Priority, _doc("New priority.")] | UnsetType = UNSET
    channel: Annotated[Channel, _doc("Corrected source channel.")] | UnsetType = UNSET
    department: Annotated[Name | None, _doc("New department, or null for none.")] | UnsetType = (
        UNSET
    )
    assignee: Annotated[Name | None, _doc("New assignee, or null for unassigned.")] | UnsetType = (
        UNSET
    )
    assignee_status: (
        Annotated[AgentStatus | None, _doc("The assignee's availability.")] | UnsetType
    ) = UNSET
    customer_group: Annotated[Name | None, _doc("New customer group, or null.")] | UnsetType = UNSET
    tags: Annotated[Tags, _doc("The full new tag list (replaces the old one).")] | UnsetType = UNSET
    custom_fields: (
        Annotated[CustomFields, _doc("Custom fields that changed (merged into the old).")]
        | UnsetType
    ) = UNSET
    referrer_url: Annotated[Url | None, _doc("New referrer URL.")] | UnsetType = UNSET
    deleted: (
        Annotated[bool, _doc("True when the ticket was deleted (cancels its timers).")] | UnsetType
    ) = UNSET

    def __post_init__(self) -> None:
        if self.custom_fields is not UNSET:
            as_orjson_reads(self.custom_fields)
        elif all(getattr(self, name) is UNSET for name in self.__struct_fields__):
            raise ValueError("needs at least 1 key")

    def given(self) -> TicketChanges:
        """The keys given, as the core reads them."""
        return {  # type: ignore[return-value]
            name: value
            for name in self.__struct_fields__
            if (value := getattr(self, name)) is not UNSET
        }


if sorted(Changes.__struct_fields__) != sorted(TICKET_CHANGE_KEYS):
    raise TypeError(
        f"Changes fields {sorted(Changes.__struct_fields__)} differ from "
        f"{TicketChanges.__name__} {sorted(TICKET_CHANGE_KEYS)}"
    )

if TYPE_CHECKING:
    ChangesField = TicketChanges
else:
    #: Read as :class:`Changes`, held as :class:`TicketChanges`.
    ChangesField = Annotated[Changes, Meta(extra_json_schema={"minProperties": 1})]


class TicketUpdated(TicketEvent, frozen=True, kw_only=True, gc=False):
    DESCRIPTION = "Attributes of a ticket changed; only the changed ones are sent."

    changes: Annotated[
        ChangesField,
        _doc("The attributes that changed. An absent key is unchanged; null clears a value."),
    ]

    def __post_init__(self) -> None:
        super().__post_init__()
        changes: object = self.changes
        if isinstance(changes, Changes):
            msgspec.structs.force_setattr(self, "changes", changes.given())


class MessageReceived(TicketEvent, frozen=True, kw_only=True, gc=False):
    DESCRIPTION = "The customer wrote on the ticket."

    message_id: Annotated[str, _text(128, "Id of the message.")]
    channel: Annotated[Channel | None, _doc("Channel the message came on.")] = None


class MessageSent(TicketEvent, frozen=True, kw_only=True, gc=False):
    DESCRIPTION = "An agent wrote on the ticket: a public reply or an internal note."

    message_id: Annotated[str, _text(128, "Id of the message.")]
    agent: Annotated[str, _text(128, "The agent who wrote it.")]
    visibility: Annotated[
        Visibility,
        _doc("public: the customer sees it (stops reply timers); internal: a note (never does)."),
    ]


# --- chats --------------------------------------------------------------------------------


class ChatStarted(ChatEvent, frozen=True, kw_only=True, gc=False):
    DESCRIPTION = "A customer started a chat."

    priority: Annotated[Priority, _doc("Chat priority.")] = "normal"
    department: Annotated[Name | None, _doc("Department the chat was routed to.")] = None
    customer: Annotated[LongName | None, _doc("The customer (id or address).")] = None
    customer_group: Annotated[Name | None, _doc("The customer's group.")] = None
    tags: Annotated[Tags, _doc("Tags.")] = ()
    custom_fields: Annotated[CustomFields | None, _doc("Custom fields.")] = None
    referrer_url: Annotated[Url | None, _doc("Page the chat started on.")] = None
    created_via_invitation: Annotated[bool, _doc("Started from a proactive invitation.")] = False

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.custom_fields is not None:
            as_orjson_reads(self.custom_fields)


class ChatMessage(ChatEvent, frozen=True, kw_only=True, gc=False):
    DESCRIPTION = "A chat message from the customer or an agent."

    message_id: Annotated[str, _text(128, "Id of the message.")]
    author: Annotated[Party, _doc("Who wrote it.")]
    agent: Annotated[Name | None, _doc("The agent, when an agent wrote it.")] = None


class ChatTransferred(ChatEvent, frozen=True, kw_only=True, gc=False):
    DESCRIPTION = "A chat moved to another department or agent."
    REQUIRE_ONE_OF = ("to_department", "to_agent")

    to_department: Annotated[Name | None, _doc("Department it moved to.")] = None
    to_agent: Annotated[Name | None, _doc("Agent it moved to.")] = None


class ChatEnded(ChatEvent, frozen=True, kw_only=True, gc=False):
    DESCRIPTION = "A chat ended."

    ended_by: Annotated[ChatEndedBy, _doc("Who ended it.")]


# --- calls --------------------------------------------------------------------------------


class CallQueued(CallEvent, frozen=True, kw_only=True, gc=False):
    DESCRIPTION = "A call entered a queue (the call-answer clock starts)."

    queue: Annotated[str, _text(128, "The ACD queue.")]
    priority: Annotated[Priority, _doc("Call priority.")] = "normal"
    caller: Annotated[LongName | None, _doc("Caller id or customer id.")] = None
    department: Annotated[Name | None, _doc("Department behind the queue.")] = None
    tags: Annotated[Tags, _doc("Tags (service type, IVR choice).")] = ()
    custom_fields: Annotated[CustomFields | None, _doc("Custom fields.")] = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.custom_fields is not None:
            as_orjson_reads(self.custom_fields)


class CallAnswered(CallEvent, frozen=True, kw_only=True, gc=False):
    DESCRIPTION = "An agent answered the queued call."

    agent: Annotated[str, _text(128, "The agent who answered.")]
    queue: Annotated[Name | None, _doc("The queue it was answered from.")] = None


class CallAbandoned(CallEvent, frozen=True, kw_only=True, gc=False):
    DESCRIPTION = "The caller hung up while waiting in the queue."

    queue: Annotated[Name | None, _doc("The queue it was waiting in.")] = None
    position: Annotated[Position | None, _doc("Position in the queue at hang-up.")] = None


class CallTransferred(CallEvent, frozen=True, kw_only=True, gc=False):
    DESCRIPTION = "The call moved to another queue or agent."
    REQUIRE_ONE_OF = ("to_queue", "to_agent")

    to_queue: Annotated[Name | None, _doc("Queue it moved to.")] = None
    to_agent: Annotated[Name | None, _doc("Agent it moved to.")] = None


class CallEnded(CallEvent, frozen=True, kw_only=True, gc=False):
    DESCRIPTION = "The call ended after being answered."

    ended_by: Annotated[CallEndedBy | None, _doc("Who hung up.")] = None


#: Any input event: the tagged union msgspec decodes a message into.
AnyInputEvent = (
    TicketCreated
    | TicketUpdated
    | MessageReceived
    | MessageSent
    | ChatStarted
    | ChatMessage
    | ChatTransferred
    | ChatEnded
    | CallQueued
    | CallAnswered
    | CallAbandoned
    | CallTransferred
    | CallEnded
)
#: Every input event type, in the contracts' order.
EVENT_CLASSES: Final[tuple[type[InputEvent], ...]] = get_args(AnyInputEvent)

#: Event type name -> its class.
EVENT_TYPES: Final[dict[str, type[InputEvent]]] = {cls.TYPE: cls for cls in EVENT_CLASSES}
