"""Event contracts: the input events, their JSON Schemas, and validation.

``schemas/json/`` holds one JSON Schema per event type for producers in other languages;
:mod:`slawatch.schemas.events` holds the contracts they are generated from: how each field
of the core's event classes (:mod:`slawatch.core.events`) is parsed and described.
"""

from slawatch.schemas.events import EVENT_TYPES, SCHEMA_VERSION, Event
from slawatch.schemas.reasons import Invalid, RejectReason
from slawatch.schemas.validation import EventValidator, Rejection

__all__ = [
    "EVENT_TYPES",
    "SCHEMA_VERSION",
    "Event",
    "EventValidator",
    "Invalid",
    "RejectReason",
    "Rejection",
]
