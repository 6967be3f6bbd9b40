"""Small clients for tests: produce raw messages, read a whole topic, and check that every
dead letter read matches its published schema."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Iterable, Sequence

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from jsonschema import Draft202012Validator

from slawatch.config.settings import Settings
from slawatch.schemas.export import SCHEMA_DIR

DEAD_LETTER_SCHEMA = Draft202012Validator(
    json.loads((SCHEMA_DIR / "dead-letter.v1.json").read_text())
)


def check_dead_letters(records: Iterable[ConsumerRecord]) -> int:
    """Fail unless every record is a dead letter that matches dead-letter.v1.json; return
    how many were checked."""
    count = 0
    for record in records:
        document = orjson.loads(record.value)
        problems = sorted(e.message[:200] for e in DEAD_LETTER_SCHEMA.iter_errors(document))
        assert not problems, (
            f"dead letter {record.topic}/{record.partition}@{record.offset} breaks its schema",
            problems,
        )
        count += 1
    return count


async def produce(
    settings: Settings, topic: str, messages: Sequence[tuple[bytes | None, bytes | None]]
) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=settings.bootstrap_servers)
    await producer.start()
    try:
        for key, value in messages:
            await producer.send(topic, value, key=key)
        await producer.flush()
    finally:
        await producer.stop()


async def read_until(
    settings: Settings,
    topic: str,
    enough: Callable[[list[ConsumerRecord]], bool],
    timeout_s: float = 30.0,
) -> list[ConsumerRecord]:
    """Read ``topic`` from the start until ``enough(records)`` (or time runs out), then
    read what else is already there, so a test also sees what it did not expect."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.bootstrap_servers, group_id=None, enable_auto_commit=False
    )
    await consumer.start()
    try:
        consumer.assign([TopicPartition(topic, p) for p in range(settings.partitions)])
        await consumer.seek_to_beginning()
        records: list[ConsumerRecord] = []
        deadline = time.monotonic() + timeout_s
        while not enough(records) and time.monotonic() < deadline:
            for part in (await consumer.getmany(timeout_ms=100)).values():
                records.extend(part)
        for part in (await consumer.getmany(timeout_ms=200)).values():
            records.extend(part)
    finally:
        await consumer.stop()
    if topic == settings.topic_dead_letter:
        check_dead_letters(records)
    return records


async def read_topics(
    bootstrap_servers: str, topics: Iterable[str], timeout_s: float = 30.0
) -> list[ConsumerRecord]:
    """Everything the existing ones of ``topics`` hold (none that does not exist)."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap_servers, group_id=None, enable_auto_commit=False
    )
    await consumer.start()
    try:
        existing = await consumer.topics()
        partitions = [
            TopicPartition(topic, p)
            for topic in sorted(set(topics) & existing)
            for p in sorted(consumer.partitions_for_topic(topic) or ())
        ]
        if not partitions:
            return []
        consumer.assign(partitions)
        await consumer.seek_to_beginning()
        records: list[ConsumerRecord] = []
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for part in (await consumer.getmany(timeout_ms=200)).values():
                records.extend(part)
            ends = {tp: consumer.highwater(tp) for tp in partitions}
            if all(end is not None for end in ends.values()) and all(
                [await consumer.position(tp) >= end for tp, end in ends.items()]
            ):
                return records
        raise AssertionError(f"could not read {len(partitions)} partitions within {timeout_s}s")
    finally:
        await consumer.stop()


async def wait_for(predicate, timeout_s: float = 30.0, interval_s: float = 0.05) -> None:
    """Poll ``predicate`` (a plain callable) until it is true; fail after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout_s}s")
        await asyncio.sleep(interval_s)
