"""What the move of the input contracts to msgspec Structs must not have changed: found by
comparing the old validator (hand-written specs) with the new one on many inputs."""

from __future__ import annotations

import json

import orjson
import pytest
from jsonschema import Draft202012Validator, FormatChecker

from slawatch.core.clock import ManualClock
from slawatch.schemas import EventValidator, Rejection
from slawatch.schemas.events import CallQueued, ChatStarted, TicketCreated, TicketUpdated
from slawatch.schemas.export import SCHEMA_DIR
from slawatch.schemas.normalised import decode_batch, encode_batches
from slawatch.schemas.reasons import RejectReason
from tests.samples import NOW_MS, event


@pytest.fixture
def validator() -> EventValidator:
    return EventValidator(
        max_event_bytes=65536, max_future_skew_ms=300_000, clock=ManualClock(NOW_MS)
    )


# --- event times before 2000 ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "epoch_ms"),
    [("1999-12-31T23:59:59Z", 946_684_799_000), ("1970-01-01T00:00:00Z", 0)],
)
def test_an_rfc3339_time_before_2000_passes_ingest_and_the_normalised_stream(
    validator, text, epoch_ms
) -> None:
    result = validator.validate(orjson.dumps(event("ticket.created", occurred_at=text)), None)
    assert isinstance(result, TicketCreated) and result.occurred_at == epoch_ms
    (message,) = encode_batches([result], max_bytes=1 << 20)
    assert decode_batch(message).events == [result]


@pytest.mark.parametrize(
    "value", [946_684_799_999, 1_795_348_800, 0, -1, 4_102_444_800_000, 2**63, 2**70]
)
def test_epoch_milliseconds_stay_within_2000_to_2100(validator, value) -> None:
    raw = json.dumps(event("ticket.created", occurred_at=value)).encode()
    result = validator.validate(raw, None)
    assert isinstance(result, Rejection) and result.reason is RejectReason.BAD_TIMESTAMP
    assert result.detail == (
        f"field 'occurred_at': epoch milliseconds {value} is outside 2000-01-01..2100-01-01 "
        "(seconds or microseconds sent by mistake?)"
    )


def test_the_published_integer_range_of_occurred_at_is_unchanged() -> None:
    for path in SCHEMA_DIR.glob("*.v1.json"):
        document = json.loads(path.read_text())
        if "occurred_at" not in document.get("properties", {}):
            continue
        branches = document["properties"]["occurred_at"]["anyOf"]
        assert {"type": "integer", "minimum": 946684800000, "maximum": 4102444799999} in branches


# --- custom field integers beyond 64 bits --------------------------------------------------


def _custom(type_: str, values: str) -> bytes:
    raw = orjson.dumps(event(type_, custom_fields={"PLACEHOLDER": 0}))
    return raw.replace(b'{"PLACEHOLDER":0}', values.encode())


def _changes_custom(values: str) -> bytes:
    raw = orjson.dumps(event("ticket.updated", changes={"custom_fields": {"PLACEHOLDER": 0}}))
    return raw.replace(b'{"PLACEHOLDER":0}', values.encode())


BIG = (
    '{"u":18446744073709551616,"l":-9223372036854775809,"top":18446744073709551615,'
    '"bottom":-9223372036854775808,"f":2.0,"s":"18446744073709551616"}'
)


def _as_orjson_reads(custom: dict[str, object]) -> None:
    assert custom == orjson.loads(BIG)
    assert [type(v) for v in custom.values()] == [type(v) for v in orjson.loads(BIG).values()]
    orjson.dumps(custom)  # what the timers' state encoder does with it: no TypeError


@pytest.mark.parametrize("type_", ["ticket.created", "chat.started", "call.queued"])
def test_a_custom_field_integer_beyond_64_bits_is_the_float_orjson_reads(validator, type_) -> None:
    result = validator.validate(_custom(type_, BIG), None)
    assert isinstance(result, TicketCreated | ChatStarted | CallQueued), result
    assert result.custom_fields is not None
    _as_orjson_reads(result.custom_fields)
    (message,) = encode_batches([result], max_bytes=1 << 20)
    assert decode_batch(message).events == [result]


def test_a_changed_custom_field_integer_beyond_64_bits_is_the_float_orjson_reads(
    validator,
) -> None:
    result = validator.validate(_changes_custom(BIG), None)
    assert isinstance(result, TicketUpdated), result
    _as_orjson_reads(result.changes["custom_fields"])


@pytest.mark.parametrize("digits", [310, 400])
def test_a_custom_field_integer_too_large_for_a_float_is_not_json(validator, digits) -> None:
    for raw in (
        _custom("ticket.created", '{"n":1' + "0" * digits + "}"),
        _changes_custom('{"n":-1' + "0" * digits + "}"),
    ):
        result = validator.validate(raw, None)
        assert isinstance(result, Rejection) and result.reason is RejectReason.NOT_JSON


# --- a batch an older build wrote ----------------------------------------------------------

#: What d147853's ingest wrote (orjson.dumps of its event dataclasses) for inputs that said
#: ``"schema_version": 1.0``, ``"occurred_at": 1795316400000.0``, ``"position": 3.0`` and a
#: custom field integer of 2**64.
OLD_BATCH = (
    b'{"v":1,"wm":{"tickets/0":5},"events":[{"schema_version":1.0,"event_id":"e1",'
    b'"type":"ticket.created","occurred_at":1795341600000,"tenant":null,"ticket_id":"T-1",'
    b'"channel":"email","priority":"normal","status":"new","opened_by":"customer",'
    b'"department":null,"requester":null,"customer_group":null,"assignee":null,'
    b'"assignee_status":null,"tags":["a"],"custom_fields":{"n":1.8446744073709552e+19,'
    b'"f":2.0},"referrer_url":null,"created_via_invitation":false},{"schema_version":1.0,'
    b'"event_id":"e2","type":"ticket.updated","occurred_at":1795316400000,"tenant":null,'
    b'"ticket_id":"T-1","changes":{"status":"open","tags":["x"]}},{"schema_version":1.0,'
    b'"event_id":"e3","type":"call.abandoned","occurred_at":1795341600000,"tenant":null,'
    b'"call_id":"C-1","queue":null,"position":3}]}'
)


def test_a_batch_an_older_build_wrote_is_read() -> None:
    batch = decode_batch(OLD_BATCH)
    assert batch.watermarks == {"tickets/0": 5}
    created, updated, abandoned = batch.events
    assert isinstance(created, TicketCreated) and created.schema_version == 1
    assert type(created.schema_version) is int
    assert created.custom_fields == {"n": 1.8446744073709552e19, "f": 2.0}
    assert type(created.custom_fields["f"]) is float and created.tags == ("a",)
    assert isinstance(updated, TicketUpdated)
    assert updated.changes == {"status": "open", "tags": ("x",)}
    assert abandoned.occurred_at == 1_795_341_600_000 and abandoned.position == 3  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "raw",
    [
        OLD_BATCH.replace(b'"schema_version":1.0', b'"schema_version":2', 1),
        OLD_BATCH.replace(b'"schema_version":1.0', b'"schema_version":1.5', 1),
        OLD_BATCH.replace(b'"channel":"email"', b'"channel":5'),
        OLD_BATCH[:-1],
    ],
)
def test_a_batch_that_is_not_one_is_still_refused(raw) -> None:
    with pytest.raises(ValueError, match="not a normalised batch"):
        decode_batch(raw)


# --- several faults in changes -------------------------------------------------------------


@pytest.mark.parametrize(
    "changes",
    [
        '{"status":5,"colour":1}',
        '{"assignee":5,"colour":"x"}',
        '{"status":null,"colour":"x"}',
        '{"deleted":null,"zz":1}',
        '{"custom_fields":{"bad key":1},"zz":1}',
    ],
)
def test_unknown_keys_of_changes_are_the_reason_whatever_their_place(validator, changes) -> None:
    raw = orjson.dumps(event("ticket.updated", changes="PLACEHOLDER"))
    result = validator.validate(raw.replace(b'"PLACEHOLDER"', changes.encode()), None)
    assert isinstance(result, Rejection) and result.reason is RejectReason.INVALID_VALUE
    assert "unknown keys" in result.detail, result.detail


# --- numbers orjson refuses in fields msgspec skips -----------------------------------------


@pytest.mark.parametrize(
    "number",
    [
        "1" + "0" * 220 + "e99",
        "-1" + "0" * 210 + "e99",
        "1" + "0" * 220 + ".5e+99",
        "1e400",
        "1E+0400",
        "-2.5e309",
        "1" + "0" * 309,
    ],
)
def test_a_number_out_of_range_in_an_unknown_field_is_not_json(validator, number) -> None:
    for at in ('"colour":{}', '"colour":[1,{}]', '"colour":[{}]', '"colour":\n {}'):
        raw = orjson.dumps(event("call.queued", colour="PLACEHOLDER"))
        raw = raw.replace(b'"colour":"PLACEHOLDER"', at.format(number).encode())
        result = validator.validate(raw, None)
        assert isinstance(result, Rejection) and result.reason is RejectReason.NOT_JSON, at


def test_ids_that_look_like_numbers_are_not_read_twice(validator, monkeypatch) -> None:
    reads = []
    monkeypatch.setattr(orjson, "loads", lambda raw: reads.append(raw))
    ids = ["3e456789-0123-4567-8901-234567890123", "12345678-1234-4e12-9e00-1e2345678901"]
    for event_id in ids:
        raw = orjson.dumps(event("call.queued", event_id=event_id, call_id=event_id, n="1" * 300))
        assert not isinstance(validator.validate(raw, None), Rejection)
    assert reads == []


# --- the published schemas ------------------------------------------------------------------


def test_occurred_at_is_published_without_a_format() -> None:
    document = json.loads((SCHEMA_DIR / "ticket.created.v1.json").read_text())
    assert "format" not in json.dumps(document["properties"]["occurred_at"])
    checker = Draft202012Validator(document, format_checker=FormatChecker())
    checker.validate(event("ticket.created", occurred_at="2026-11-22 10:00:00Z"))


def test_a_custom_field_key_is_refused_with_the_published_pattern(validator) -> None:
    result = validator.validate(
        orjson.dumps(event("ticket.created", custom_fields={"a b": 1})), None
    )
    assert isinstance(result, Rejection) and result.reason is RejectReason.INVALID_VALUE
    assert r"^[A-Za-z0-9_.\-]{1,64}$" in result.detail and r"\Z" not in result.detail
