"""Event contracts: the input events, their JSON Schemas, and validation.

``schemas/json/`` holds one JSON Schema per event type for producers in other languages;
:mod:`schemas.events` holds the Python models they are generated from.
"""

from schemas.events import EVENT_TYPES, SCHEMA_VERSION, Event
from schemas.reasons import Invalid, RejectReason
from schemas.validation import EventValidator, Rejection

__all__ = [
    "EVENT_TYPES",
    "SCHEMA_VERSION",
    "Event",
    "EventValidator",
    "Invalid",
    "RejectReason",
    "Rejection",
]
