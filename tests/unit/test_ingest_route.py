"""Routing a polled batch: validation, partitioning by conversation, dead letters."""

from __future__ import annotations

import asyncio
import base64
import json

import orjson
from aiokafka.errors import MessageSizeTooLargeError
from aiokafka.record.default_records import DefaultRecordBatchBuilder
from aiokafka.structs import ConsumerRecord, TopicPartition
from jsonschema import Draft202012Validator
from msgspec.structs import replace
from prometheus_client import CollectorRegistry

from slawatch.agents.ingest import (
    MAX_BATCH_BYTES,
    IngestService,
    encode_normalised,
    route,
)
from slawatch.config.settings import load_settings
from slawatch.core.clock import ManualClock
from slawatch.core.keys import ConversationKind
from slawatch.core.partitioning import partition_for
from slawatch.schemas import EventValidator
from slawatch.schemas.deadletter import (
    MAX_DEAD_LETTER_BYTES,
    MAX_DETAIL_CHARS,
    MAX_KEY_BYTES,
    MAX_ORIGINAL_BYTES,
    DeadLetter,
    dead_letter,
)
from slawatch.schemas.events import TicketCreated
from slawatch.schemas.export import SCHEMA_DIR
from slawatch.schemas.normalised import decode_batch
from slawatch.schemas.reasons import RejectReason
from slawatch.streams.metrics import Metrics
from tests.samples import NOW_MS, event, invalid_examples

#: What the ingest producer admits in one request (agents/ingest.py, on_start).
PRODUCER_MAX_REQUEST = 2 * MAX_BATCH_BYTES
DEAD_LETTER_SCHEMA = Draft202012Validator(
    json.loads((SCHEMA_DIR / "dead-letter.v1.json").read_text())
)


def assert_sendable(key: bytes | None, letter: DeadLetter) -> None:
    """The letter matches its published schema and fits the producer's request size."""
    encoded = letter.encode()
    DEAD_LETTER_SCHEMA.validate(json.loads(encoded))
    assert len(encoded) + len(key or b"") <= MAX_DEAD_LETTER_BYTES
    size = DefaultRecordBatchBuilder.estimate_size_in_bytes(key, encoded, [])
    assert size <= PRODUCER_MAX_REQUEST


KINDS = {"tickets": ConversationKind.TICKET, "calls": ConversationKind.CALL}


def record(
    topic: str, offset: int, value: bytes | None, key: bytes | None = b"k"
) -> ConsumerRecord:
    return ConsumerRecord(
        topic, 0, offset, NOW_MS, 0, key, value, None, len(key or b""), len(value or b""), ()
    )


def run(records, *, max_event_bytes=65536, validator=None):
    validator = validator or EventValidator(
        max_event_bytes=max_event_bytes, max_future_skew_ms=300_000, clock=ManualClock(NOW_MS)
    )
    routed = route(
        records,
        validator=validator,
        kinds=KINDS,
        partitions=4,
        worker="w1",
        clock=ManualClock(NOW_MS),
    )
    for key, letter in routed.dead_letters:  # every dead letter these tests make
        assert_sendable(key, letter)
    return routed


class Exploding(EventValidator):
    """A validator that raises what no contract foresaw on messages saying so."""

    def validate(self, raw, expected_kind):
        if raw == b"recurse":
            raise RecursionError("maximum recursion depth exceeded")
        if raw.startswith(b"boom"):
            raise KeyError(raw * 1000)  # its message quotes a lot of input
        return super().validate(raw, expected_kind)


def exploding() -> Exploding:
    return Exploding(max_event_bytes=65536, max_future_skew_ms=300_000, clock=ManualClock(NOW_MS))


def test_a_conversation_stays_in_one_partition_in_order() -> None:
    records = []
    for n in range(200):
        ticket = f"T-{n % 7}"
        records.append(
            record("tickets", n, orjson.dumps(event("ticket.updated", n, ticket_id=ticket)))
        )
    routed = run(records)
    assert sum(len(v) for v in routed.normalised.values()) == 200
    for partition, events in routed.normalised.items():
        for e in events:
            assert partition_for(e.key, 4) == partition
        for ticket in {e.ticket_id for e in events}:
            ids = [int(e.event_id.rsplit("-", 1)[1]) for e in events if e.ticket_id == ticket]
            assert ids == sorted(ids)
    assert len(routed.normalised) > 1  # 7 tickets spread over the partitions


def test_partitioner_is_stable_and_spreads_keys() -> None:
    # Stable across processes and versions: ingest and the timers' rebuild must agree.
    assert [partition_for(f"ticket::T-{n}", 4) for n in range(8)] == [
        partition_for(f"ticket::T-{n}", 4) for n in range(8)
    ]
    assert partition_for("ticket::T-1", 4) == 1  # zlib.crc32(b"ticket::T-1") % 4
    spread = [partition_for(f"ticket::T-{n}", 4) for n in range(4000)]
    assert all(900 < spread.count(p) < 1100 for p in range(4))


def test_invalid_records_become_dead_letters_with_their_origin() -> None:
    cases = invalid_examples()
    records = [
        record("tickets" if kind.value == "ticket" else "calls", i, raw)
        for i, (_, kind, raw, _) in enumerate(cases)
    ]
    routed = run(records)
    assert not routed.normalised
    assert [letter.reason for _, letter in routed.dead_letters] == [c[3].value for c in cases]
    for (_, letter), original in zip(routed.dead_letters, records, strict=True):
        assert letter.original() == original.value
        assert letter.source_offset == original.offset
        assert letter.source_topic == original.topic
        assert letter.original_bytes == len(original.value)
        assert letter.worker == "w1" and letter.dead_lettered_at_ms == NOW_MS


def test_valid_and_invalid_interleaved_lose_nothing() -> None:
    records = [
        record("tickets", 0, orjson.dumps(event("ticket.created", 1))),
        record("tickets", 1, b"{oops"),
        record("calls", 2, orjson.dumps(event("call.queued", 2))),
        record("calls", 3, None),  # a tombstone is not an event
    ]
    routed = run(records)
    assert sorted(e.event_id for v in routed.normalised.values() for e in v) == [
        "evt-call.queued-2",
        "evt-ticket.created-1",
    ]
    assert [letter.source_offset for _, letter in routed.dead_letters] == [1, 3]
    assert routed.read_by_topic == {"tickets": 2, "calls": 2}
    assert routed.valid_by_type == {"ticket.created": 1, "call.queued": 1}


def test_huge_input_is_cut_in_the_dead_letter_and_says_so() -> None:
    huge = b"x" * (MAX_ORIGINAL_BYTES + 10)
    routed = run([record("tickets", 5, huge, key=None)], max_event_bytes=10**7)
    ((_, letter),) = routed.dead_letters
    assert letter.reason == RejectReason.NOT_JSON.value
    assert letter.original_truncated and letter.original_bytes == len(huge)
    assert len(base64.b64decode(letter.original_b64)) == MAX_ORIGINAL_BYTES
    assert letter.original_key_b64 is None


def test_what_no_contract_foresaw_is_an_internal_error_and_the_rest_goes_on() -> None:
    records = [
        record("tickets", 0, b"recurse"),
        record("tickets", 1, orjson.dumps(event("ticket.created", 1))),
        record("tickets", 2, b"boom" * 100),
        record("tickets", 3, orjson.dumps(event("ticket.created", 3))),
    ]
    routed = run(records, validator=exploding())
    assert sorted(e.event_id for v in routed.normalised.values() for e in v) == [
        "evt-ticket.created-1",
        "evt-ticket.created-3",
    ]
    first, second = (letter for _, letter in routed.dead_letters)
    assert (first.reason, second.reason) == ("internal_error", "internal_error")
    assert first.detail.startswith("RecursionError while validating")
    assert second.detail.startswith("KeyError while validating") and len(second.detail) < 300
    assert [first.source_offset, second.source_offset] == [0, 2]
    assert second.original() == b"boom" * 100


def test_a_record_whose_bytes_are_the_trouble_is_dead_lettered_without_them() -> None:
    odd = record("tickets", 4, None)
    odd.value = 12345  # not bytes: len() and slicing fail
    ((key, letter),) = run([odd]).dead_letters
    assert letter.reason == "internal_error" and letter.detail.startswith("TypeError")
    assert (key, letter.original_b64, letter.original_key_b64) == (None, "", None)


def test_a_huge_key_is_cut_in_the_dead_letter_and_says_so() -> None:
    key = b"k" * 450_000  # Kafka's default limits admit it
    routed = run([record("tickets", 7, b"{oops", key=key)])
    ((sent_key, letter),) = routed.dead_letters
    assert sent_key == key[:MAX_KEY_BYTES]
    assert base64.b64decode(letter.original_key_b64) == key[:MAX_KEY_BYTES]
    assert letter.original_key_truncated and letter.original_key_bytes == len(key)
    assert letter.reason == "not_json" and letter.original() == b"{oops"


def test_keys_empty_absent_and_small_are_told_apart() -> None:
    routed = run(
        [
            record("tickets", 0, b"{", key=b""),
            record("tickets", 1, b"{", key=None),
            record("tickets", 2, b"{", key=b"T-1"),
        ]
    )
    letters = [letter for _, letter in routed.dead_letters]
    assert [(x.original_key_b64, x.original_key_bytes) for x in letters] == [
        ("", 0),
        (None, None),
        (base64.b64encode(b"T-1").decode(), 3),
    ]
    assert [key for key, _ in routed.dead_letters] == [b"", None, b"T-1"]
    assert not any(x.original_key_truncated for x in letters)


def test_event_ids_the_dead_letter_schema_refuses_are_left_out() -> None:
    for bad_id, kept in (("", None), ("x" * 129, None), ("x" * 128, "x" * 128)):
        body = orjson.dumps(event("ticket.created", event_id=bad_id, priority="critical"))
        ((_, letter),) = run([record("tickets", 0, body)]).dead_letters
        assert letter.reason == "invalid_value" and letter.event_id == kept


def test_the_worst_dead_letter_still_fits_its_schema_and_the_producer() -> None:
    key, letter = dead_letter(
        reason="internal_error",
        detail="\U0001f4a5" * 100_000,  # four UTF-8 bytes each
        source_topic="t" * 300,
        source_partition=999_999,
        source_offset=2**63 - 1,
        source_timestamp_ms=-1,  # a record without a timestamp
        value=b"\xff" * (1 << 24),
        key=b"\xfe" * (1 << 20),
        dead_lettered_at_ms=NOW_MS,
        worker="\U0001f4a5" * 1000,
        event_type="e" * 65,
        event_id="\U0001f4a5" * 128,
    )
    assert_sendable(key, letter)
    assert len(letter.detail) == MAX_DETAIL_CHARS and letter.detail.endswith("…")
    assert letter.source_timestamp_ms is None and letter.event_type is None
    assert letter.original_truncated and letter.original_key_truncated
    slim = letter.without_originals()
    assert_sendable(None, slim)
    assert (slim.original_b64, slim.original_key_b64) == ("", "")


def test_refused_records_do_not_count_for_the_watermark() -> None:
    future = NOW_MS + 30 * 86_400_000
    records = [
        record("tickets", 0, orjson.dumps(event("ticket.created", 1))),
        record("tickets", 1, b"{garbage"),
        record("calls", 2, b"{garbage"),
    ]
    records[1].timestamp = records[2].timestamp = future
    routed = run(records)
    assert routed.record_time == {("tickets", 0): NOW_MS}
    assert set(routed.event_time) == {("tickets", 0)}


def test_an_event_that_cannot_be_encoded_becomes_a_dead_letter() -> None:
    body = [orjson.dumps(event("ticket.created", n, ticket_id="T-1")) for n in range(3)]
    routed = run([record("tickets", n, raw) for n, raw in enumerate(body)])
    ((partition, events),) = routed.normalised.items()  # one conversation: one partition
    broken = replace(events[0], custom_fields={"x": object()})
    assert isinstance(broken, TicketCreated)
    routed.normalised[partition] = [broken, *events[1:]]
    encoded = encode_normalised(routed, {"tickets/0": 1}, worker="w1", clock=ManualClock(NOW_MS))
    sent = [e.event_id for m in encoded.get(partition, []) for e in decode_batch(m).events]
    assert sent == [e.event_id for e in events[1:]]
    ((_, letter),) = routed.dead_letters
    assert letter.reason == "internal_error"
    assert letter.detail.startswith("TypeError while encoding")
    assert letter.source_offset == routed.sources[partition][0].offset
    assert routed.valid_by_type["ticket.created"] == len(events) - 1


class FakeConsumer:
    """What IngestService.process and watermarks() ask of aiokafka's consumer."""

    def __init__(self, partitions, observed_ms):
        self.partitions = partitions
        self.observed_ms = observed_ms
        self.committed = {}

    def assignment(self):
        return set(self.partitions)

    def highwater(self, tp):
        return 10

    async def position(self, tp):
        return 10  # caught up

    def last_poll_timestamp(self, tp):
        return self.observed_ms

    async def commit(self, offsets):
        self.committed.update(offsets)


class FakeProducer:
    """Takes every message, except that the "broker" refuses values over ``limit`` bytes
    (when it acknowledges them, as a broker whose limit is below the producer's does)."""

    def __init__(self, limit):
        self.limit = limit
        self.sent = []

    async def send(self, topic, value, key=None, partition=None):
        ack = asyncio.get_running_loop().create_future()
        if len(value) > self.limit:
            ack.set_exception(MessageSizeTooLargeError("refused by the broker"))
        else:
            self.sent.append((topic, key, value, partition))
            ack.set_result(None)
        return ack


def fake_service(clock, *, limit=1 << 20, observed_ms=NOW_MS):
    settings = load_settings(None, environ={}, watermark_grace_ms=500)
    validator = EventValidator(max_event_bytes=65536, max_future_skew_ms=300_000, clock=clock)
    service = IngestService(settings, Metrics(CollectorRegistry()), validator, clock)
    tps = [TopicPartition(settings.topic_tickets, p) for p in range(2)]
    service.consumer = FakeConsumer(tps, observed_ms)
    service.producer = FakeProducer(limit)
    return service, settings, tps


def test_a_dead_letter_the_broker_refuses_goes_again_without_its_originals() -> None:
    clock = ManualClock(NOW_MS)
    service, settings, (tp, _) = fake_service(clock, limit=10_000)
    big = record(settings.topic_tickets, 3, b"{" * 20_000)
    asyncio.run(service.process({tp: [big]}))
    ((topic, key, value, _),) = service.producer.sent
    letter = DeadLetter.decode(value)
    assert topic == settings.topic_dead_letter and key is None
    assert letter.reason == "not_json" and letter.original_b64 == ""
    assert letter.original_truncated and letter.original_key_truncated
    assert service.consumer.committed == {tp: 4}  # the partition moved on
    DEAD_LETTER_SCHEMA.validate(json.loads(value))


def test_future_record_timestamps_never_carry_the_watermark_past_the_clock() -> None:
    clock = ManualClock(NOW_MS)
    # The end offsets were seen (by the consumer's own clock) a month ahead of ours, too.
    month = 30 * 86_400_000
    service, settings, (tp0, tp1) = fake_service(clock, observed_ms=NOW_MS + month)
    accepted = record(settings.topic_tickets, 0, orjson.dumps(event("ticket.created", 1)))
    refused = record(settings.topic_tickets, 0, b"{garbage")
    accepted.timestamp = refused.timestamp = NOW_MS + month
    refused.partition = 1
    asyncio.run(service.process({tp0: [accepted], tp1: [refused]}))
    normalised = [v for t, _, v, _ in service.producer.sent if t == settings.topic_normalised]
    (marks,) = {tuple(decode_batch(v).watermarks.items()) for v in normalised}
    assert dict(marks) == {f"{tp0.topic}/0": NOW_MS - 500, f"{tp1.topic}/1": NOW_MS - 500}
    clock.advance(60_000)  # later, the bound moves with the clock, not with the records
    marks_later = asyncio.run(service.watermarks())
    assert set(marks_later.values()) == {NOW_MS + 60_000 - 500}
    assert service.progress.last_record_ms(tp0) == NOW_MS  # cut when read
    assert service.progress.last_record_ms(tp1) is None  # refused: not counted
