"""Small clients for tests: produce raw messages, read a whole topic."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition

from slawatch.config.settings import Settings


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
        return records
    finally:
        await consumer.stop()


async def wait_for(predicate, timeout_s: float = 30.0, interval_s: float = 0.05) -> None:
    """Poll ``predicate`` (a plain callable) until it is true; fail after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout_s}s")
        await asyncio.sleep(interval_s)
