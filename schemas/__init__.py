"""Event contracts: the input events, their JSON Schemas, and validation.

``schemas/json/`` holds one JSON Schema per event type for producers in other languages,
generated (:mod:`slawatch.schemas.export`) from the core's event classes
(:mod:`slawatch.core.events`), which msgspec decodes input messages into
(:mod:`slawatch.schemas.validation`).
"""

from slawatch.schemas.events import EVENT_TYPES, SCHEMA_VERSION, Event
from slawatch.schemas.reasons import RejectReason
from slawatch.schemas.validation import EventValidator, Rejection

__all__ = [
    "EVENT_TYPES",
    "SCHEMA_VERSION",
    "Event",
    "EventValidator",
    "RejectReason",
    "Rejection",
]
