"""Valid and invalid events of every type through the real broker: the valid ones reach
the normalised stream, each invalid one reaches dead-letter with its reason."""

from __future__ import annotations

import orjson
import pytest
from prometheus_client import CollectorRegistry

from slawatch.agents.ingest import IngestService
from slawatch.core.clock import ManualClock
from slawatch.schemas import EventValidator
from slawatch.schemas.deadletter import DeadLetter
from slawatch.schemas.normalised import decode_batch
from slawatch.streams.metrics import Metrics
from slawatch.streams.topics import ensure_topics, topic_kinds
from tests.integration.conftest import run
from tests.integration.kafka_helpers import produce, read_until, wait_for
from tests.samples import NOW_MS, event, invalid_examples, valid_examples

pytestmark = pytest.mark.integration


async def ingest_once(settings, inputs, expect_events, expect_dead, validator_class=None):
    """Run an ingest service over ``inputs`` {topic: [(key, value)]}; return what it wrote:
    (events on the normalised stream, dead letters, metrics, normalised messages)."""
    await ensure_topics(settings)
    clock = ManualClock(NOW_MS)
    metrics = Metrics(CollectorRegistry())
    validator = (validator_class or EventValidator)(
        max_event_bytes=settings.max_event_bytes, max_future_skew_ms=300_000, clock=clock
    )
    service = IngestService(settings, metrics, validator, clock)
    await service.start()
    try:
        for topic, messages in inputs.items():
            await produce(settings, topic, messages)
        sent = sum(len(messages) for messages in inputs.values())
        await wait_for(lambda: total(metrics, "slawatch_input_messages_total") >= sent)
        assert not service.crashed, service.crash_reason
    finally:
        await service.stop()
    normalised = await read_until(
        settings,
        settings.topic_normalised,
        lambda records: sum(len(decode_batch(r.value).events) for r in records) >= expect_events,
    )
    dead = await read_until(
        settings, settings.topic_dead_letter, lambda records: len(records) >= expect_dead
    )
    events = [e for r in normalised for e in decode_batch(r.value).events]
    return events, [DeadLetter.decode(r.value) for r in dead], metrics, normalised


def total(metrics, name):
    return sum(
        sample.value
        for family in metrics.registry.collect()
        for sample in family.samples
        if sample.name == name
    )


def test_every_valid_type_is_normalised_and_every_invalid_one_dead_lettered(settings_factory):
    settings = settings_factory()
    by_kind = {kind: topic for topic, kind in topic_kinds(settings).items()}
    inputs: dict[str, list[tuple[bytes | None, bytes | None]]] = {}
    for kind, example in valid_examples():
        inputs.setdefault(by_kind[kind], []).append((b"k", orjson.dumps(example)))
    for _, kind, raw, _ in invalid_examples():
        inputs.setdefault(by_kind[kind], []).append((b"bad", raw))

    events, letters, metrics, _ = run(
        ingest_once(settings, inputs, len(valid_examples()), len(invalid_examples()))
    )

    assert sorted(e.event_id for e in events) == sorted(x["event_id"] for _, x in valid_examples())
    assert sorted((letter.reason, letter.original()) for letter in letters) == sorted(
        (reason.value, raw) for _, _, raw, reason in invalid_examples()
    )
    for letter in letters:
        assert letter.source_topic in settings.input_topics
        assert letter.detail
    dead_total = total(metrics, "slawatch_dead_letters_total")
    assert dead_total == len(invalid_examples())


def test_one_conversations_events_stay_in_order_across_batches(settings_factory):
    settings = settings_factory(ingest_max_records=7)
    messages = [
        (
            b"T-1",
            orjson.dumps(event("ticket.updated", n, ticket_id="T-1", changes={"priority": "high"})),
        )
        for n in range(60)
    ]
    events, letters, _, normalised = run(
        ingest_once(settings, {settings.topic_tickets: messages}, 60, 0)
    )
    assert not letters
    assert [e.event_id for e in events] == [f"evt-ticket.updated-{n}" for n in range(60)]
    with_events = [r for r in normalised if decode_batch(r.value).events]
    assert len({r.partition for r in with_events}) == 1
    assert len(with_events) > 1  # small polls: several batches, order kept across them


def test_offsets_are_committed_so_a_restart_does_not_reread(settings_factory):
    settings = settings_factory()
    first = [(b"k", orjson.dumps(event("call.queued", n))) for n in range(5)]
    run(ingest_once(settings, {settings.topic_calls: first}, 5, 0))
    second = [(b"k", orjson.dumps(event("call.queued", n))) for n in range(5, 8)]
    events, *_ = run(ingest_once(settings, {settings.topic_calls: second}, 8, 0))
    ids = [e.event_id for e in events]
    assert sorted(ids) == sorted(f"evt-call.queued-{n}" for n in range(8))  # each once


DEEP = b"[" * 1_000 + b"]" * 1_000  # orjson reads it; repr() of it raises RecursionError


def poison() -> list[tuple[str, bytes | None, bytes | None, str]]:
    """(label, key, value, reason) of messages that each stopped ingest once, in a loop."""
    ok = event("ticket.created", 99)
    return [
        ("deep schema_version", b"k", orjson.dumps({**ok, "schema_version": "X"}).replace(
            b'"X"', DEEP), "unsupported_schema_version"),
        ("deep unknown change", b"k", orjson.dumps(event("ticket.updated", 98, changes="X")
            ).replace(b'"X"', b'{"k":' + DEEP + b"}"), "invalid_value"),
        ("450 KB key", b"K" * 450_000, b"{oops 1", "not_json"),
        ("empty key", b"", b"{oops 2", "not_json"),
        ("empty event_id", b"k", orjson.dumps({**ok, "event_id": "", "priority": "x"}),
         "invalid_value"),
        ("long event_id", b"k", orjson.dumps({**ok, "event_id": "e" * 300, "priority": "x"}),
         "invalid_value"),
        ("long unknown keys", b"k", orjson.dumps(event("ticket.updated", 97, changes={
            f"{'k' * 5_000}{n}": 1 for n in range(9)})), "invalid_value"),
        ("tenant with a newline", b"k", orjson.dumps({**ok, "tenant": "acme\n"}),
         "invalid_value"),
    ]  # fmt: skip


def test_no_single_message_stops_ingest_and_every_dead_letter_fits_its_schema(
    settings_factory,
):
    settings = settings_factory(max_event_bytes=200_000)
    messages: list[tuple[bytes | None, bytes | None]] = []
    for n, (_, key, value, _) in enumerate(poison()):
        messages.append((key, value))
        messages.append((b"T-1", orjson.dumps(event("ticket.updated", n, ticket_id="T-1"))))
    events, letters, _, _ = run(
        ingest_once(settings, {settings.topic_tickets: messages}, len(poison()), len(poison()))
    )
    # Every good message after a bad one got through: the partition moved on each time.
    assert [e.event_id for e in events] == [f"evt-ticket.updated-{n}" for n in range(len(poison()))]
    # Dead letters keep the original key, so they spread over the topic's partitions.
    by_value = {letter.original(): letter for letter in letters}
    by_label = {label: by_value[value] for label, _, value, _ in poison()}
    assert {label: x.reason for label, x in by_label.items()} == {
        label: reason for label, _, _, reason in poison()
    }
    big = by_label["450 KB key"]
    assert big.original_key_truncated and big.original_key_bytes == 450_000
    assert by_label["empty key"].original_key_b64 == ""
    assert by_label["empty event_id"].event_id is None
    assert by_label["long event_id"].event_id is None
    assert all(len(letter.detail) < 1_000 for letter in letters)
    # And the batch was committed: a second run reads only what is new.
    more = [(b"T-1", orjson.dumps(event("ticket.updated", 100, ticket_id="T-1")))]
    events, letters, *_ = run(ingest_once(settings, {settings.topic_tickets: more}, 1, 0))
    assert len(letters) == len(poison())  # the same dead letters, none read again


class Haywire(EventValidator):
    """Raises what no contract foresaw on the messages that ask for it."""

    def validate(self, raw, expected_kind):
        if raw.startswith(b"!recurse"):
            raise RecursionError("maximum recursion depth exceeded")
        if raw.startswith(b"!bug"):
            raise ZeroDivisionError("division by zero")
        return super().validate(raw, expected_kind)


def test_an_unforeseen_error_is_an_internal_error_dead_letter(settings_factory):
    settings = settings_factory()
    messages = [
        (b"T-1", b"!recurse"),
        (b"T-1", orjson.dumps(event("ticket.created", 1, ticket_id="T-1"))),
        (b"T-1", b"!bug"),
        (b"T-1", orjson.dumps(event("ticket.updated", 2, ticket_id="T-1"))),
    ]
    events, letters, metrics, _ = run(
        ingest_once(settings, {settings.topic_tickets: messages}, 2, 2, validator_class=Haywire)
    )
    assert [e.event_id for e in events] == ["evt-ticket.created-1", "evt-ticket.updated-2"]
    letters.sort(key=lambda x: x.source_offset)  # one key: one partition
    assert [(x.reason, x.detail.split(" ")[0]) for x in letters] == [
        ("internal_error", "RecursionError"),
        ("internal_error", "ZeroDivisionError"),
    ]
    assert [x.original() for x in letters] == [b"!recurse", b"!bug"]
    assert total(metrics, "slawatch_dead_letters_total") == 2
