"""Decode and validate one input message: bytes in, an event or a rejection out."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from slawatch.core.clock import Clock
from slawatch.core.events import InputEvent
from slawatch.core.keys import ConversationKind
from slawatch.schemas.events import EVENT_TYPES
from slawatch.schemas.fields import preview
from slawatch.schemas.model import parse_model
from slawatch.schemas.reasons import Invalid, RejectReason


@dataclass(frozen=True, slots=True)
class Rejection:
    """Why a message was refused: a bounded reason code and a precise, human message."""

    reason: RejectReason
    detail: str
    event_type: str | None = None
    event_id: str | None = None


class EventValidator:
    """Turn raw input bytes into a validated event: an instance of one of the core's event
    classes (:mod:`slawatch.core.events`).

    ``max_event_bytes`` caps a message's size; ``max_future_skew_ms`` is how far ahead of
    ``clock`` an ``occurred_at`` may be before it counts as a producer's clock error (an
    event from the future would make every SLA on it look met).
    """

    def __init__(self, *, max_event_bytes: int, max_future_skew_ms: int, clock: Clock) -> None:
        self.max_event_bytes = max_event_bytes
        self.max_future_skew_ms = max_future_skew_ms
        self.clock = clock

    def validate(
        self, raw: bytes, expected_kind: ConversationKind | None
    ) -> InputEvent | Rejection:
        """Validate one message read from the topic of ``expected_kind`` (None: any)."""
        if len(raw) > self.max_event_bytes:
            return Rejection(
                RejectReason.OVERSIZED,
                f"message is {len(raw)} bytes, the limit is {self.max_event_bytes}",
            )
        try:
            obj = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            return Rejection(RejectReason.NOT_JSON, f"not valid UTF-8 JSON: {str(exc)[:200]}")
        if not isinstance(obj, dict):
            return Rejection(
                RejectReason.NOT_OBJECT, f"expected a JSON object, got {type(obj).__name__}"
            )
        return self.validate_object(obj, expected_kind)

    def validate_object(
        self, obj: dict[str, Any], expected_kind: ConversationKind | None
    ) -> InputEvent | Rejection:
        """Validate an already decoded JSON object."""
        type_name = obj.get("type")
        event_id = obj.get("event_id") if isinstance(obj.get("event_id"), str) else None
        if type_name is None:
            return Rejection(RejectReason.MISSING_FIELD, "field 'type' is required", None, event_id)
        if not isinstance(type_name, str):
            return Rejection(
                RejectReason.WRONG_TYPE, "field 'type': expected a string", None, event_id
            )
        cls = EVENT_TYPES.get(type_name)
        if cls is None:
            return Rejection(
                RejectReason.UNKNOWN_TYPE,
                f"unknown event type {preview(type_name)}; known: {sorted(EVENT_TYPES)}",
                None,
                event_id,
            )
        if expected_kind is not None and cls.KIND is not expected_kind:
            return Rejection(
                RejectReason.WRONG_TOPIC,
                f"{type_name} is a {cls.KIND.value} event; it was published on the "
                f"{expected_kind.value}s topic",
                type_name,
                event_id,
            )
        try:
            event = parse_model(cls, obj)
        except Invalid as exc:
            return Rejection(exc.reason, exc.message, type_name, event_id)
        now_ms = self.clock.now_ms()
        if event.occurred_at > now_ms + self.max_future_skew_ms:
            ahead_s = (event.occurred_at - now_ms) / 1000
            return Rejection(
                RejectReason.FUTURE_TIMESTAMP,
                f"field 'occurred_at' is {ahead_s:.0f}s in the future; at most "
                f"{self.max_future_skew_ms / 1000:.0f}s of clock skew is accepted",
                type_name,
                event_id,
            )
        return event
