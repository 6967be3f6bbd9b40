"""Decode and validate one input message: bytes in, an event or a rejection out.

msgspec decodes a message into one of the core's event classes (slawatch/core/events.py)
in one pass: the union is tagged by ``type``, every field's type and constraints are
checked on the way, ``occurred_at`` becomes epoch milliseconds. What no type says is
checked after it (the topic's family, :attr:`~slawatch.core.events.InputEvent.REQUIRE_ONE_OF`,
the clock skew), in the order the contract has always given.

A message msgspec refuses, and only such a message, is read a second time to say exactly
why (:meth:`EventValidator.validate_object`): as JSON by orjson, so that "not JSON" means
what it always meant; then ``type`` (missing, not a string, unknown), the topic,
``schema_version``, and each field in the class's order, the first broken one giving the
reason. That keeps the dead-letter reason of a message with several faults the one the
declaration order gives, not whichever msgspec met first in the bytes, and it is where an
optional field given as null takes its default (the contract says null means "not
given"; a type cannot). msgspec's messages become reason codes in one place:
:func:`reason_of`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Final, NamedTuple

import msgspec
import orjson

from slawatch.core.clock import Clock
from slawatch.core.events import (
    EVENT_CLASSES,
    EVENT_TYPES,
    MAX_TIMESTAMP_CHARS,
    SCHEMA_VERSION,
    AnyInputEvent,
    InputEvent,
)
from slawatch.core.keys import ConversationKind
from slawatch.core.patterns import PUBLISHED
from slawatch.core.timestamps import (
    MAX_EPOCH_MS,
    MIN_EPOCH_MS,
    InvalidTimestamp,
    parse_timestamp_ms,
)
from slawatch.schemas.reasons import RejectReason

#: The one decoder of input messages (building one costs; it is reused).
DECODER: Final = msgspec.json.Decoder(AnyInputEvent)

#: Most characters of an input value quoted in a detail.
PREVIEW_CHARS: Final = 64
#: Most characters of a msgspec message quoted in a detail.
_MESSAGE_CHARS: Final = 300

#: What msgspec does not read when it skips an unknown field, orjson does (and refuses the
#: message as not JSON): invalid UTF-8, and a number out of range (``1e400``; ``1`` and
#: 220 zeros ``e99``; 310 digits). A message that may hold either is read by orjson too
#: (:func:`_orjson_refuses`): any non-ASCII byte, or, with digits read as ``0`` and ``E`` as
#: ``e``, a run of 210 digits (enough to overflow with a two-digit exponent) or a number
#: token (after ``:``, ``[`` or ``,``) with an exponent of three digits or more. An id such
#: as ``3e456789-…`` has such an exponent, but no token starts before it. Of the messages
#: ``slawatch simulate`` writes (each with a UUID v4 event id), none takes the extra read
#: (28 % did when any three-digit exponent counted).
_NUMBERISH: Final = bytes.maketrans(b"123456789E", b"000000000e")
_LONG_NUMBER: Final = b"0" * 210
_EXPONENTS: Final = (b"e000", b"e+000")


def _starts_a_number(cheap: bytes, at: int) -> bool:
    """Whether the digits before ``cheap[at]`` (translated: ``0``) begin at a number token's
    start: after ``:``, ``[`` or ``,``, blanks and a minus sign."""
    start = at
    while start and cheap[start - 1] in b"0.":
        start -= 1
    if start == at:
        return False
    if start and cheap[start - 1] == ord("-"):
        start -= 1
    while start and cheap[start - 1] in b" \t\n\r":
        start -= 1
    return start > 0 and cheap[start - 1] in b":[,"


def _may_overflow(raw: bytes) -> bool:
    """Whether an ASCII message may hold a number orjson finds out of range."""
    cheap = raw.translate(_NUMBERISH)
    if _LONG_NUMBER in cheap:
        return True
    for exponent in _EXPONENTS:
        at = cheap.find(exponent)
        while at != -1:
            if _starts_a_number(cheap, at):
                return True
            at = cheap.find(exponent, at + 1)
    return False


def _orjson_refuses(raw: bytes) -> bool:
    """Whether orjson, which decides what is JSON, refuses a message msgspec decoded."""
    if raw.isascii() and not _may_overflow(raw):
        return False
    try:
        orjson.loads(raw)
    except orjson.JSONDecodeError:
        return True
    return False


@dataclass(frozen=True, slots=True)
class Rejection:
    """Why a message was refused: a bounded reason code and a precise, human message."""

    reason: RejectReason
    detail: str
    event_type: str | None = None
    event_id: str | None = None


def json_type_name(value: object) -> str:
    """Name ``value``'s JSON type, as a producer would say it."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def preview(value: object, limit: int = PREVIEW_CHARS) -> str:
    """A short description of ``value`` for a detail: at most about ``limit`` characters of
    a string or number, only the size of an array or object (never their contents, which
    may be nested deeper than ``repr`` can go)."""
    if isinstance(value, str):
        return repr(value[:limit]) + ("…" if len(value) > limit else "")
    if value is None or isinstance(value, bool | int | float):
        try:
            text = repr(value)
        except ValueError:  # an integer with more digits than Python will print
            return "a very large number"
        return text if len(text) <= limit else text[:limit] + "…"
    if isinstance(value, list):
        return f"an array of {len(value)} item(s)"
    if isinstance(value, dict):
        return f"an object with {len(value)} key(s)"
    return type(value).__name__


_AT = re.compile(r" - at `\$(?P<path>[^`]*)`$")


def reason_of(error: msgspec.ValidationError, field: str) -> tuple[RejectReason, str]:
    """The reason code and detail of msgspec's refusal of field ``field``'s value (checked
    on its own, so msgspec's path starts at the field): the one mapping from msgspec's
    messages to the contract's reasons.

    ``Expected `str`, got `int``` is a wrong type; a missing required key of a nested
    object is a missing field; everything else msgspec refuses in a value of the right type
    (a length, a range, a pattern, an enum value, an unknown key, what a ``__post_init__``
    refuses) is an invalid value.
    """
    message = str(error)
    match = _AT.search(message)
    path = field
    if match is not None:
        message = message[: match.start()]
        inner = match.group("path")
        path = field + inner if inner.startswith("[") or not inner else f"{field}{inner}"
    if len(message) > _MESSAGE_CHARS:
        message = message[: _MESSAGE_CHARS - 1] + "…"
    if message.startswith("Expected `") and "`, got `" in message:
        reason = RejectReason.WRONG_TYPE
    elif message.startswith("Object missing required field"):
        reason = RejectReason.MISSING_FIELD
    else:
        reason = RejectReason.INVALID_VALUE
    if message.startswith("Object contains unknown field"):
        message = "unknown keys: " + message.removeprefix("Object contains unknown field ")
    elif " matching regex " in message:  # the pattern as published, not its translation
        for translated, published in PUBLISHED.items():
            message = message.replace(repr(translated), f"'{published}'")
    return reason, f"field {path!r}: {message[:1].lower()}{message[1:]}"


class _Field(NamedTuple):
    name: str
    type: Any
    required: bool
    #: The keys of an object with a closed set of them (``changes``), else None.
    closed_keys: frozenset[str] | None


def _closed_keys(type_: Any) -> frozenset[str] | None:
    info = msgspec.inspect.type_info(type_)
    if isinstance(info, msgspec.inspect.Metadata):
        info = info.type
    if isinstance(info, msgspec.inspect.StructType) and info.forbid_unknown_fields:
        return frozenset(f.encode_name for f in info.fields)
    return None


#: Per event class: its fields in declaration order, those the slow path checks one by one.
_FIELDS: Final[dict[type[InputEvent], tuple[_Field, ...]]] = {
    cls: tuple(
        _Field(f.name, f.type, f.required, _closed_keys(f.type))
        for f in msgspec.structs.fields(cls)
        if f.name not in ("schema_version", "occurred_at")
    )
    for cls in EVENT_CLASSES
}
_OPTIONAL: Final[dict[type[InputEvent], frozenset[str]]] = {
    cls: frozenset(f.name for f in msgspec.structs.fields(cls) if not f.required)
    for cls in EVENT_CLASSES
}


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
            event: InputEvent = DECODER.decode(raw)
        except (msgspec.DecodeError, RecursionError, UnicodeDecodeError):
            # (ValidationError is a DecodeError.) msgspec's depth limit is below orjson's
            # (1,024), and invalid UTF-8 in a field it reads is a UnicodeDecodeError: orjson
            # decides.
            return self._slow(raw, expected_kind)
        if _orjson_refuses(raw) or not MIN_EPOCH_MS <= event.occurred_at < MAX_EPOCH_MS:
            # (msgspec reads any instant since 1970 as an integer, the range an RFC 3339
            # string may give; given as an integer, it must be in 2000..2100.)
            return self._slow(raw, expected_kind)
        return self._checked(event, expected_kind)

    def _checked(
        self, event: InputEvent, expected_kind: ConversationKind | None
    ) -> InputEvent | Rejection:
        """What the types do not say, in the contract's order, of a decoded event."""
        if expected_kind is not None and event.KIND is not expected_kind:
            return _wrong_topic(event.TYPE, event.KIND, expected_kind, event.event_id)
        if event.REQUIRE_ONE_OF and all(
            getattr(event, name) is None for name in event.REQUIRE_ONE_OF
        ):
            return Rejection(
                RejectReason.MISSING_FIELD,
                f"at least one of {list(event.REQUIRE_ONE_OF)} is required",
                event.TYPE,
                event.event_id,
            )
        now_ms = self.clock.now_ms()
        if event.occurred_at > now_ms + self.max_future_skew_ms:
            ahead_s = (event.occurred_at - now_ms) / 1000
            return Rejection(
                RejectReason.FUTURE_TIMESTAMP,
                f"field 'occurred_at' is {ahead_s:.0f}s in the future; at most "
                f"{self.max_future_skew_ms / 1000:.0f}s of clock skew is accepted",
                event.TYPE,
                event.event_id,
            )
        return event

    def _slow(self, raw: bytes, expected_kind: ConversationKind | None) -> InputEvent | Rejection:
        """A message msgspec refused (or may have read too leniently): say exactly why, or
        build the event when the contract allows what the types do not (null for an
        optional field, ``1.0`` for an integer)."""
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
        """Validate an already decoded JSON object, field by field in the contract's order."""
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
            return _wrong_topic(type_name, cls.KIND, expected_kind, event_id)
        given = _given(obj, _OPTIONAL[cls])
        problem = _first_problem(cls, given)
        if problem is not None:
            reason, detail = problem
            return Rejection(reason, detail, type_name, event_id)
        try:
            event = msgspec.convert(given, cls)
        except msgspec.ValidationError as exc:  # not foreseen: every field passed alone
            reason, detail = reason_of(exc, type_name)
            return Rejection(reason, detail, type_name, event_id)
        return self._checked(event, None)


def _wrong_topic(
    type_name: str, kind: ConversationKind, expected: ConversationKind, event_id: str | None
) -> Rejection:
    return Rejection(
        RejectReason.WRONG_TOPIC,
        f"{type_name} is a {kind.value} event; it was published on the {expected.value}s topic",
        type_name,
        event_id,
    )


def _given(obj: dict[str, Any], optional: frozenset[str]) -> dict[str, Any]:
    """The object as the types read it: an optional field given as null is not given (its
    default), and a whole number written as a fraction (``1.0``) is the whole number (JSON
    does not tell them apart, nor does JSON Schema)."""
    given = {}
    for name, value in obj.items():
        if value is None and name in optional:
            continue
        if type(value) is float and value.is_integer():
            value = int(value)
        given[name] = value
    return given


def _first_problem(cls: type[InputEvent], given: dict[str, Any]) -> tuple[RejectReason, str] | None:
    """The first field of ``cls``, in its order, that ``given`` breaks, and how."""
    version = given.get("schema_version")
    if version is None:
        return RejectReason.MISSING_FIELD, "field 'schema_version' is required"
    if version != SCHEMA_VERSION or isinstance(version, bool):
        return (
            RejectReason.UNSUPPORTED_SCHEMA_VERSION,
            f"field 'schema_version': expected {SCHEMA_VERSION}, got {preview(version)}",
        )
    for field in _FIELDS[cls]:
        if field.name == "tenant":  # occurred_at comes before it
            problem = _timestamp_problem(given)
            if problem is not None:
                return problem
        value = given.get(field.name)
        if value is None:
            if field.required:
                return RejectReason.MISSING_FIELD, f"field {field.name!r} is required"
            continue
        if field.closed_keys is not None and isinstance(value, dict):
            # An unknown key is the reason before any value, wherever it stands (msgspec
            # reports the first fault in the object's order).
            unknown = [key for key in value if key not in field.closed_keys]
            if unknown:
                value = {**dict.fromkeys(unknown), **value}
        try:
            msgspec.convert(value, field.type)
        except msgspec.ValidationError as exc:
            return reason_of(exc, field.name)
    return None


def _timestamp_problem(given: dict[str, Any]) -> tuple[RejectReason, str] | None:
    value = given.get("occurred_at")
    if value is None:
        return RejectReason.MISSING_FIELD, "field 'occurred_at' is required"
    if isinstance(value, str) and len(value) > MAX_TIMESTAMP_CHARS:
        return (
            RejectReason.BAD_TIMESTAMP,
            f"field 'occurred_at': {preview(value)} ({len(value)} characters) is not an "
            "RFC 3339 date-time with offset",
        )
    try:
        parse_timestamp_ms(value)
    except InvalidTimestamp as exc:
        return RejectReason.BAD_TIMESTAMP, f"field 'occurred_at': {exc}"
    return None
