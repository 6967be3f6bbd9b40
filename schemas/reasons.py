"""Why an input message was refused: the closed set of dead-letter reason codes."""

from __future__ import annotations

from enum import StrEnum


class RejectReason(StrEnum):
    """A dead-letter reason code. Bounded, so it is safe as a metric label."""

    NOT_JSON = "not_json"
    """The bytes are not UTF-8 JSON."""
    NOT_OBJECT = "not_object"
    """The JSON is valid but not an object."""
    OVERSIZED = "oversized"
    """The message is larger than ``max_event_bytes``."""
    MISSING_FIELD = "missing_field"
    """A required field is absent (or null where null is not allowed)."""
    WRONG_TYPE = "wrong_type"
    """A field has the wrong JSON type."""
    INVALID_VALUE = "invalid_value"
    """A field has the right type but a value outside its contract."""
    UNKNOWN_TYPE = "unknown_type"
    """The ``type`` names no known event type."""
    WRONG_TOPIC = "wrong_topic"
    """A known event type published on another family's topic (a call event on tickets)."""
    UNSUPPORTED_SCHEMA_VERSION = "unsupported_schema_version"
    """``schema_version`` is not one this build reads."""
    BAD_TIMESTAMP = "bad_timestamp"
    """``occurred_at`` is neither RFC 3339 with offset nor epoch milliseconds in range."""
    FUTURE_TIMESTAMP = "future_timestamp"
    """``occurred_at`` is further in the future than ``max_future_skew_s`` allows."""
    INTERNAL_ERROR = "internal_error"
    """Something the contract did not foresee went wrong while ingest decoded, validated,
    routed or dead-lettered the message (the detail names the exception's type); the
    message is set aside so that its partition moves on."""
