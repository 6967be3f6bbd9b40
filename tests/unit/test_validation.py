from __future__ import annotations

from typing import Annotated, Literal

import msgspec
import orjson
import pytest

from slawatch.core.clock import ManualClock
from slawatch.core.keys import ConversationKind
from slawatch.schemas import EVENT_TYPES, EventValidator, Rejection
from slawatch.schemas.events import Changes, MessageSent, TicketCreated, TicketUpdated
from slawatch.schemas.normalised import decode_batch, encode_batches, event_from_normalised
from slawatch.schemas.reasons import RejectReason
from slawatch.schemas.validation import reason_of
from tests.samples import NOW_MS, event, invalid_examples, valid_examples


@pytest.fixture
def validator() -> EventValidator:
    return EventValidator(
        max_event_bytes=65536, max_future_skew_ms=300_000, clock=ManualClock(NOW_MS)
    )


def test_every_type_has_a_valid_example() -> None:
    assert {e["type"] for _, e in valid_examples()} == set(EVENT_TYPES)


@pytest.mark.parametrize(("kind", "example"), valid_examples(), ids=lambda v: str(v)[:30])
def test_valid_examples_pass(validator, kind, example) -> None:
    result = validator.validate(orjson.dumps(example), kind)
    assert not isinstance(result, Rejection), result
    assert result.type == example["type"]
    assert result.event_id == example["event_id"]
    assert result.KIND is kind


@pytest.mark.parametrize(
    ("label", "kind", "raw", "reason"), invalid_examples(), ids=[x[0] for x in invalid_examples()]
)
def test_invalid_examples_are_refused_with_their_reason(validator, label, kind, raw, reason):
    result = validator.validate(raw, kind)
    assert isinstance(result, Rejection)
    assert result.reason is reason, result.detail
    assert result.detail


def test_every_reason_code_is_exercised() -> None:
    # internal_error is ingest's, for what no contract foresaw (tests/unit/test_ingest_route.py)
    assert {reason for *_, reason in invalid_examples()} == set(RejectReason) - {
        RejectReason.INTERNAL_ERROR
    }


def _nested(depth: int, kind: str) -> bytes:
    """A JSON value ``depth`` levels deep (orjson reads up to 1,024)."""
    if kind == "array":
        return b"[" * depth + b"]" * depth
    return b'{"a":' * (depth - 1) + b"{}" + b"}" * (depth - 1)


def _fields_of(example: dict) -> list[str]:
    names = {f.name for f in msgspec.structs.fields(EVENT_TYPES[example["type"]])} | {"type"}
    return [*sorted(set(example) | names), "not_a_field"]


@pytest.mark.parametrize("kind", ["array", "object"])
def test_a_value_nested_a_thousand_deep_in_any_field_is_refused_not_raised(validator, kind):
    deep = _nested(1_000, kind)
    assert orjson.loads(deep) is not None  # orjson accepts it: validation must cope
    for topic_kind, example in valid_examples():
        for name in _fields_of(example):
            raw = orjson.dumps({**example, name: "PLACEHOLDER"}).replace(b'"PLACEHOLDER"', deep)
            result = validator.validate(raw, topic_kind)  # never RecursionError
            if name == "not_a_field":
                assert not isinstance(result, Rejection), result
            else:
                assert isinstance(result, Rejection), (example["type"], name)
                assert len(result.detail) < 600, result.detail
            if name in ("changes", "custom_fields") and isinstance(result, Rejection):
                # nested inside an object field too
                inner = b'{"status":' + deep + b"}" if name == "changes" else b'{"k":' + deep + b"}"
                raw = orjson.dumps({**example, name: "P"}).replace(b'"P"', inner)
                assert isinstance(validator.validate(raw, topic_kind), Rejection)


def test_error_messages_quote_at_most_a_short_preview_of_any_value() -> None:
    validator = EventValidator(
        max_event_bytes=1 << 20, max_future_skew_ms=300_000, clock=ManualClock(NOW_MS)
    )
    long = "x" * 50_000
    for topic_kind, example in valid_examples():
        for name in _fields_of(example):
            for value in (long, {long: 1}, [long] * 100, {f"{long}{n}": 1 for n in range(9)}):
                result = validator.validate(orjson.dumps({**example, name: value}), topic_kind)
                if isinstance(result, Rejection):
                    assert len(result.detail) < 600, (name, result.detail[:200])
    unknown_keys = event("ticket.updated", changes={f"{long}{n}": 1 for n in range(9)})
    result = validator.validate(orjson.dumps(unknown_keys), None)
    assert isinstance(result, Rejection) and result.reason is RejectReason.INVALID_VALUE
    assert "unknown keys" in result.detail and len(result.detail) < 600


def test_a_trailing_newline_is_not_part_of_a_pattern(validator) -> None:
    # Python's $ matches before a final newline; the published (ECMA-262) schema does not.
    for value in ("acme\n", "acme\r", "\nacme", "acme\u2028"):
        result = validator.validate(orjson.dumps(event("ticket.created", tenant=value)), None)
        assert isinstance(result, Rejection) and result.reason is RejectReason.INVALID_VALUE
        custom = event("ticket.created", custom_fields={value: 1})
        result = validator.validate(orjson.dumps(custom), None)
        assert isinstance(result, Rejection) and result.reason is RejectReason.INVALID_VALUE
    late = validator.validate(orjson.dumps(event("ticket.created", tenant="acme")), None)
    assert isinstance(late, TicketCreated) and late.key == "ticket:acme:T-1"


def test_rejection_names_the_field(validator) -> None:
    result = validator.validate(orjson.dumps(event("ticket.created", priority="critical")), None)
    assert isinstance(result, Rejection)
    assert "'priority'" in result.detail and "critical" in result.detail
    assert result.event_type == "ticket.created"
    assert result.event_id == "evt-ticket.created-1"


def test_timestamps_are_normalised_to_epoch_ms(validator) -> None:
    rfc = validator.validate(orjson.dumps(event("ticket.created")), None)
    millis = validator.validate(
        orjson.dumps(event("ticket.created", occurred_at=1_795_316_400_000)), None
    )
    assert isinstance(rfc, TicketCreated) and isinstance(millis, TicketCreated)
    assert rfc.occurred_at == millis.occurred_at == 1_795_316_400_000


def test_future_skew_is_a_boundary(validator) -> None:
    at_limit = validator.validate(
        orjson.dumps(event("ticket.created", occurred_at=NOW_MS + 300_000)), None
    )
    beyond = validator.validate(
        orjson.dumps(event("ticket.created", occurred_at=NOW_MS + 300_001)), None
    )
    assert isinstance(at_limit, TicketCreated)
    assert isinstance(beyond, Rejection) and beyond.reason is RejectReason.FUTURE_TIMESTAMP


def test_changes_keep_absent_apart_from_null(validator) -> None:
    result = validator.validate(
        orjson.dumps(event("ticket.updated", changes={"assignee": None})), None
    )
    assert isinstance(result, TicketUpdated)
    assert result.changes == {"assignee": None}
    assert "department" not in result.changes


def test_optional_null_is_the_default(validator) -> None:
    result = validator.validate(
        orjson.dumps(event("ticket.created", priority=None, tags=None, referrer_url=None)), None
    )
    assert isinstance(result, TicketCreated)
    assert (result.priority, result.tags, result.referrer_url) == ("normal", (), None)


def test_unknown_top_level_fields_are_ignored(validator) -> None:
    result = validator.validate(orjson.dumps(event("call.queued", colour="red")), None)
    assert not isinstance(result, Rejection)


def test_key_separates_kinds_and_tenants(validator) -> None:
    ticket = validator.validate(orjson.dumps(event("ticket.created", ticket_id="7")), None)
    call = validator.validate(orjson.dumps(event("call.queued", call_id="7")), None)
    other = validator.validate(
        orjson.dumps(event("ticket.created", ticket_id="7", tenant="acme")), None
    )
    assert len({ticket.key, call.key, other.key}) == 3
    assert ticket.key == "ticket::7" and other.key == "ticket:acme:7"


def test_normalised_batches_round_trip_and_respect_the_size_limit(validator) -> None:
    events = [
        validator.validate(orjson.dumps(example), kind) for kind, example in valid_examples()
    ] * 20
    watermarks = {"tickets/0": 1, "calls/3": 2}
    messages = encode_batches(events, max_bytes=4096, watermarks=watermarks)
    assert len(messages) > 1
    assert all(len(m) <= 4096 for m in messages)
    assert all(decode_batch(m).watermarks == watermarks for m in messages)
    (heartbeat,) = encode_batches([], max_bytes=4096, watermarks=watermarks)
    assert decode_batch(heartbeat).events == [] and decode_batch(heartbeat).watermarks == watermarks
    decoded = [e for m in messages for e in decode_batch(m).events]
    assert decoded == events


def test_normalised_form_is_the_event() -> None:
    kind, example = valid_examples()[0]
    validator = EventValidator(
        max_event_bytes=65536, max_future_skew_ms=1, clock=ManualClock(NOW_MS)
    )
    parsed = validator.validate(orjson.dumps(example), kind)
    assert event_from_normalised(orjson.loads(msgspec.json.encode(parsed))) == parsed
    assert kind is ConversationKind.TICKET


@pytest.mark.parametrize(
    ("value", "type_", "reason", "detail"),
    [
        (7, str, RejectReason.WRONG_TYPE, "field 'f': expected `str`, got `int`"),
        (["a", 1], tuple[str, ...], RejectReason.WRONG_TYPE, "field 'f[1]': expected `str`"),
        ({}, MessageSent, RejectReason.MISSING_FIELD, "object missing required field"),
        ("", Annotated[str, msgspec.Meta(min_length=1)], RejectReason.INVALID_VALUE,
         "field 'f': expected `str` of length >= 1"),
        (0, Annotated[int, msgspec.Meta(ge=1)], RejectReason.INVALID_VALUE, "`int` >= 1"),
        ("x", Literal["a", "b"], RejectReason.INVALID_VALUE, "invalid enum value 'x'"),
        ("a\n", Annotated[str, msgspec.Meta(pattern=r"^a\Z")], RejectReason.INVALID_VALUE,
         "matching regex"),
        ({"colour": 1}, Changes, RejectReason.INVALID_VALUE, "unknown keys: `colour`"),
        ({}, Changes, RejectReason.INVALID_VALUE, "field 'f': needs at least 1 key"),
        ("x" * 5000, Literal["a"], RejectReason.INVALID_VALUE, "invalid enum value"),
    ],
)  # fmt: skip
def test_reason_of_maps_each_kind_of_msgspec_refusal(value, type_, reason, detail) -> None:
    with pytest.raises(msgspec.ValidationError) as refused:
        msgspec.convert(value, type_)
    got_reason, got_detail = reason_of(refused.value, "f")
    assert got_reason is reason
    assert detail in got_detail and len(got_detail) < 400, got_detail
