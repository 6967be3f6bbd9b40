"""Routing a polled batch: validation, partitioning by conversation, dead letters."""

from __future__ import annotations

import base64

import orjson
from aiokafka.structs import ConsumerRecord

from slawatch.agents.ingest import MAX_DEAD_LETTER_ORIGINAL_BYTES, route
from slawatch.core.clock import ManualClock
from slawatch.core.keys import ConversationKind
from slawatch.core.partitioning import partition_for
from slawatch.schemas import EventValidator
from slawatch.schemas.reasons import RejectReason
from tests.samples import NOW_MS, event, invalid_examples

KINDS = {"tickets": ConversationKind.TICKET, "calls": ConversationKind.CALL}


def record(
    topic: str, offset: int, value: bytes | None, key: bytes | None = b"k"
) -> ConsumerRecord:
    return ConsumerRecord(
        topic, 0, offset, NOW_MS, 0, key, value, None, len(key or b""), len(value or b""), ()
    )


def run(records, *, max_event_bytes=65536):
    validator = EventValidator(
        max_event_bytes=max_event_bytes, max_future_skew_ms=300_000, clock=ManualClock(NOW_MS)
    )
    return route(
        records,
        validator=validator,
        kinds=KINDS,
        partitions=4,
        worker="w1",
        clock=ManualClock(NOW_MS),
    )


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
    huge = b"x" * (MAX_DEAD_LETTER_ORIGINAL_BYTES + 10)
    routed = run([record("tickets", 5, huge, key=None)], max_event_bytes=10**7)
    ((_, letter),) = routed.dead_letters
    assert letter.reason == RejectReason.NOT_JSON.value
    assert letter.original_truncated and letter.original_bytes == len(huge)
    assert len(base64.b64decode(letter.original_b64)) == MAX_DEAD_LETTER_ORIGINAL_BYTES
    assert letter.original_key_b64 is None
