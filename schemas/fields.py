"""Field specifications: each one both checks a decoded JSON value and describes itself
as JSON Schema, so the Python models and the published schema files share one source.

A spec's ``parse`` returns the value to store (possibly normalised, e.g. a timestamp
becomes epoch milliseconds) or raises :class:`~slawatch.schemas.reasons.Invalid` naming the field.
An error message never holds more of the input than :func:`preview` gives (a value nested
a thousand levels deep would make ``repr`` raise ``RecursionError``, a long one would make
the dead letter's ``detail`` overflow).

A pattern is written once, in the dialect the published schemas use (ECMA-262, as JSON
Schema says), and :func:`compile_pattern` gives the Python regular expression that means
the same: Python's ``$`` also matches before a trailing newline and its ``.`` matches a
carriage return, ECMA-262's do not (tests/unit/test_patterns.py runs every published
pattern through both engines).
"""

from __future__ import annotations

import re
from dataclasses import MISSING, Field, field
from typing import Any, Protocol

from slawatch.core.timestamps import RFC3339_PATTERN, InvalidTimestamp, parse_timestamp_ms
from slawatch.schemas.reasons import Invalid, RejectReason

JsonSchema = dict[str, Any]


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


#: Most characters of an input value quoted in an error message.
PREVIEW_CHARS = 64


def preview(value: object, limit: int = PREVIEW_CHARS) -> str:
    """A short description of ``value`` for an error message: at most about ``limit``
    characters of a string or number, only the size of an array or object (never their
    contents, which may be nested deeper than ``repr`` can go)."""
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


def _escape_end(pattern: str, i: int) -> int:
    """Index just past the escape that starts at ``pattern[i]`` (a backslash)."""
    if i + 1 >= len(pattern):
        raise ValueError(f"pattern {pattern!r} ends with a lone backslash")
    char = pattern[i + 1]
    if char.isalnum() and char not in "nrtfv":
        raise ValueError(
            f"pattern {pattern!r}: \\{char} means different things in Python and "
            "ECMA-262 (or exists in only one); spell the characters out, e.g. [0-9]"
        )
    return i + 2


def compile_pattern(pattern: str) -> re.Pattern[str]:
    """Compile a published (ECMA-262) pattern into a Python regex with the same meaning
    under ``search``: ``$`` becomes ``\\Z`` and ``.`` excludes every ECMA-262 line
    terminator. Escapes whose meaning differs (``\\d``, ``\\s``, ``\\w``, ``\\b``,
    ``\\Z``, …) and Python-only groups are refused. That covers the contracts' own
    patterns, which tests/unit/test_patterns.py runs through both dialects; it is not a
    general translator (``a{,2}`` and possessive quantifiers still differ)."""
    out: list[str] = []
    i, in_class = 0, False
    while i < len(pattern):
        char = pattern[i]
        if char == "\\":
            end = _escape_end(pattern, i)
            out.append(pattern[i:end])
            i = end
            continue
        if in_class:
            in_class = char != "]"
            out.append(char)
        elif char == "[":
            in_class = True
            out.append(char)
            if pattern.startswith("^", i + 1):  # a negated class: keep its caret
                out.append("^")
                i += 1
            if pattern.startswith("]", i + 1):
                raise ValueError(f"pattern {pattern!r}: [] and [^] differ between dialects")
        elif char == "$":
            out.append(r"\Z")
        elif char == ".":
            out.append(r"[^\n\r\u2028\u2029]")
        elif char == "(" and pattern.startswith("?", i + 1):
            if not pattern.startswith(("(?:", "(?=", "(?!", "(?<=", "(?<!"), i):
                raise ValueError(f"pattern {pattern!r}: a group ECMA-262 does not have")
            out.append(char)
        else:
            out.append(char)
        i += 1
    return re.compile("".join(out))


def _wrong_type(path: str, expected: str, value: object) -> Invalid:
    return Invalid(
        RejectReason.WRONG_TYPE, f"field {path!r}: expected {expected}, got {json_type_name(value)}"
    )


class Spec(Protocol):
    """What every field specification offers."""

    def parse(self, value: object, path: str) -> object: ...

    def json_schema(self) -> JsonSchema: ...


class Text:
    """A string of bounded length, optionally matching a regular expression."""

    def __init__(
        self, max_length: int = 256, pattern: str | None = None, min_length: int = 1
    ) -> None:
        self.min_length = min_length
        self.max_length = max_length
        self.pattern = pattern
        self._regex = compile_pattern(pattern) if pattern else None

    def parse(self, value: object, path: str) -> object:
        if not isinstance(value, str):
            raise _wrong_type(path, "a string", value)
        if not self.min_length <= len(value) <= self.max_length:
            raise Invalid(
                RejectReason.INVALID_VALUE,
                f"field {path!r}: length {len(value)} is outside "
                f"{self.min_length}..{self.max_length}",
            )
        if self._regex is not None and self._regex.search(value) is None:
            raise Invalid(
                RejectReason.INVALID_VALUE,
                f"field {path!r}: {preview(value)} does not match {self.pattern}",
            )
        return value

    def json_schema(self) -> JsonSchema:
        schema: JsonSchema = {
            "type": "string",
            "minLength": self.min_length,
            "maxLength": self.max_length,
        }
        if self.pattern:
            schema["pattern"] = self.pattern
        return schema


class Choice:
    """One string out of a closed set."""

    def __init__(self, *values: str) -> None:
        self.values = values
        self._set = frozenset(values)

    def parse(self, value: object, path: str) -> object:
        if not isinstance(value, str):
            raise _wrong_type(path, f"one of {list(self.values)}", value)
        if value not in self._set:
            raise Invalid(
                RejectReason.INVALID_VALUE,
                f"field {path!r}: {preview(value)} is not one of {list(self.values)}",
            )
        return value

    def json_schema(self) -> JsonSchema:
        return {"type": "string", "enum": list(self.values)}


class Const:
    """Exactly one value (``type`` and ``schema_version`` of an event)."""

    def __init__(self, value: str | int, reason: RejectReason = RejectReason.INVALID_VALUE) -> None:
        self.value = value
        self.reason = reason

    def parse(self, value: object, path: str) -> object:
        if value != self.value or isinstance(value, bool):
            raise Invalid(
                self.reason, f"field {path!r}: expected {self.value!r}, got {preview(value)}"
            )
        return value

    def json_schema(self) -> JsonSchema:
        return {"const": self.value}


def _within(value: float, minimum: float, maximum: float, path: str) -> float:
    if not minimum <= value <= maximum:
        raise Invalid(
            RejectReason.INVALID_VALUE, f"field {path!r}: {value} is outside {minimum}..{maximum}"
        )
    return value


class Integer:
    """A whole number within bounds."""

    def __init__(self, minimum: int = 0, maximum: int = 2**53) -> None:
        self.minimum = minimum
        self.maximum = maximum

    def parse(self, value: object, path: str) -> object:
        if isinstance(value, float) and value.is_integer():
            value = int(value)  # JSON does not tell 1 from 1.0; neither does JSON Schema
        if isinstance(value, bool) or not isinstance(value, int):
            raise _wrong_type(path, "an integer", value)
        return _within(value, self.minimum, self.maximum, path)

    def json_schema(self) -> JsonSchema:
        return {"type": "integer", "minimum": self.minimum, "maximum": self.maximum}


class Number:
    """A number (integer or fraction) within bounds."""

    def __init__(self, minimum: float = 0, maximum: float = 2**53) -> None:
        self.minimum = minimum
        self.maximum = maximum

    def parse(self, value: object, path: str) -> object:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise _wrong_type(path, "a number", value)
        return _within(value, self.minimum, self.maximum, path)

    def json_schema(self) -> JsonSchema:
        return {"type": "number", "minimum": self.minimum, "maximum": self.maximum}


class Flag:
    """A boolean."""

    def parse(self, value: object, path: str) -> object:
        if not isinstance(value, bool):
            raise _wrong_type(path, "a boolean", value)
        return value

    def json_schema(self) -> JsonSchema:
        return {"type": "boolean"}


class TextList:
    """A list of distinct-or-not short strings (tags); stored as a tuple."""

    def __init__(self, max_items: int = 64, max_length: int = 64) -> None:
        self.max_items = max_items
        self.item = Text(max_length)

    def parse(self, value: object, path: str) -> object:
        if not isinstance(value, list):
            raise _wrong_type(path, "an array of strings", value)
        if len(value) > self.max_items:
            raise Invalid(
                RejectReason.INVALID_VALUE,
                f"field {path!r}: {len(value)} items, at most {self.max_items} allowed",
            )
        return tuple(self.item.parse(item, f"{path}[{i}]") for i, item in enumerate(value))

    def json_schema(self) -> JsonSchema:
        return {"type": "array", "maxItems": self.max_items, "items": self.item.json_schema()}


class CustomFields:
    """A flat object of custom ticket fields: string keys, scalar values."""

    KEY_PATTERN = r"^[A-Za-z0-9_.\-]{1,64}$"

    def __init__(self, max_properties: int = 64, max_value_length: int = 1024) -> None:
        self.max_properties = max_properties
        self.max_value_length = max_value_length
        self._key = compile_pattern(self.KEY_PATTERN)

    def parse(self, value: object, path: str) -> object:
        if not isinstance(value, dict):
            raise _wrong_type(path, "an object", value)
        if len(value) > self.max_properties:
            raise Invalid(
                RejectReason.INVALID_VALUE,
                f"field {path!r}: {len(value)} fields, at most {self.max_properties} allowed",
            )
        for key, item in value.items():
            if self._key.search(key) is None:
                raise Invalid(
                    RejectReason.INVALID_VALUE,
                    f"field {path!r}: key {preview(key)} does not match {self.KEY_PATTERN}",
                )
            if isinstance(item, str):
                if len(item) > self.max_value_length:
                    raise Invalid(
                        RejectReason.INVALID_VALUE,
                        f"field '{path}.{key}': longer than {self.max_value_length} characters",
                    )
            elif item is not None and not isinstance(item, bool | int | float):
                raise _wrong_type(f"{path}.{key}", "a string, number, boolean or null", item)
        return value

    def json_schema(self) -> JsonSchema:
        return {
            "type": "object",
            "maxProperties": self.max_properties,
            "propertyNames": {"pattern": self.KEY_PATTERN},
            "additionalProperties": {
                "anyOf": [
                    {"type": "string", "maxLength": self.max_value_length},
                    {"type": ["number", "boolean", "null"]},
                ]
            },
        }


class Timestamp:
    """An event time: RFC 3339 with offset, or epoch milliseconds; stored as epoch ms."""

    #: Longer than any RFC 3339 date-time the pattern admits (35 characters).
    MAX_CHARS = 64

    def parse(self, value: object, path: str) -> object:
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, str) and len(value) > self.MAX_CHARS:
            raise Invalid(
                RejectReason.BAD_TIMESTAMP,
                f"field {path!r}: {preview(value)} ({len(value)} characters) is not an "
                "RFC 3339 date-time with offset",
            )
        try:
            return parse_timestamp_ms(value)
        except InvalidTimestamp as exc:
            raise Invalid(RejectReason.BAD_TIMESTAMP, f"field {path!r}: {exc}") from None

    def json_schema(self) -> JsonSchema:
        return {
            "oneOf": [
                {"type": "string", "pattern": RFC3339_PATTERN},
                {"type": "integer", "minimum": 946684800000, "maximum": 4102444799999},
            ]
        }


class Nullable:
    """The wrapped spec, or null (an explicit 'none', e.g. a ticket unassigned)."""

    def __init__(self, inner: Spec) -> None:
        self.inner = inner

    def parse(self, value: object, path: str) -> object:
        return None if value is None else self.inner.parse(value, path)

    def json_schema(self) -> JsonSchema:
        return {"anyOf": [self.inner.json_schema(), {"type": "null"}]}


def spec_field(spec: Spec, doc: str, *, default: Any = MISSING) -> Any:
    """Declare a model field checked by ``spec`` and documented by ``doc``.

    A field without a default is required. Mutable defaults are not allowed: models are
    frozen, and every default here is a scalar, ``None`` or an empty tuple.
    """
    return field(default=default, metadata={"spec": spec, "doc": doc})


def field_spec(model_field: Field[Any]) -> Spec:
    """Return the spec attached to a model field by :func:`spec_field`."""
    spec: Spec = model_field.metadata["spec"]
    return spec
