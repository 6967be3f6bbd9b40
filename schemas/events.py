"""The input event contracts, as the rest of slawatch names them.

The event types (their fields, types, defaults, constraints and descriptions) and the
vocabularies they use are defined once, in the core (slawatch/core/events.py,
slawatch/core/vocabulary.py), as msgspec Structs: msgspec decodes input messages into
them (slawatch/schemas/validation.py) and the JSON Schema files in ``schemas/json/`` are
generated from them (``slawatch schemas export``; a test fails if they differ), so
producers in other languages read the same contract.

``occurred_at`` arrives as RFC 3339 with offset or epoch milliseconds; a decoded event
holds it as epoch milliseconds (UTC).
"""

from __future__ import annotations

from slawatch.core.events import (
    EVENT_CLASSES,
    EVENT_TYPES,
    SCHEMA_VERSION,
    TENANT_PATTERN,
    CallAbandoned,
    CallAnswered,
    CallEnded,
    CallEvent,
    CallQueued,
    CallTransferred,
    Changes,
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
from slawatch.core.vocabulary import AGENT_STATUSES, CHANNELS, PRIORITIES, STATUSES

__all__ = [
    "AGENT_STATUSES",
    "CHANNELS",
    "EVENT_CLASSES",
    "EVENT_TYPES",
    "PRIORITIES",
    "SCHEMA_VERSION",
    "STATUSES",
    "TENANT_PATTERN",
    "CallAbandoned",
    "CallAnswered",
    "CallEnded",
    "CallEvent",
    "CallQueued",
    "CallTransferred",
    "Changes",
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

#: The base class of every input event (the core's :class:`InputEvent`).
Event = InputEvent
