"""Reading a partition back from a point in time, outside any consumer group: what the
timers do when they take a partition over (the SLA events its previous owner emitted, the
calls its KPIs count)."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition

from slawatch.config.kafka_security import kafka_client_options
from slawatch.config.settings import Settings
from slawatch.streams.compat import end_offsets_from_fetch


async def read_back(
    settings: Settings,
    topic: str,
    partition: int,
    since_ms: int,
    purpose: str,
    stop: int | None = None,
    start: int | None = None,
) -> AsyncIterator[ConsumerRecord[bytes, bytes]]:
    """The records of ``topic``/``partition`` with a timestamp from ``since_ms`` on (from
    offset ``start`` on, when given), to its end as it is now, or to offset ``stop``
    (excluded), read by a consumer of its own (no group; ``purpose`` names it in the
    client id).

    The end is ``end_offsets``, which :func:`~slawatch.streams.compat.end_offsets_from_fetch`
    makes right on the embedded broker, raised to the fetch high watermark as fetches come
    in. A read with nothing in it fetches nothing: a fetch of a partition with nothing to
    read waits out the whole ``getmany`` timeout, which took half a second per partition
    before its first tick. The embedded broker answers ``offsets_for_times`` with the
    partition's first offset whatever the time, so records older than ``since_ms`` are
    skipped here (docs/OPERATIONS.md, Known workarounds).
    """
    end_offsets_from_fetch()  # idempotent; a worker has it in place already
    tp = TopicPartition(topic, partition)
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.bootstrap_servers,
        **kafka_client_options(settings),
        group_id=None,
        enable_auto_commit=False,
        client_id=f"{settings.app_id}-{purpose}-{partition}",
        fetch_max_wait_ms=settings.fetch_max_wait_ms,
    )
    await consumer.start()
    try:
        # Offsets first, without an assignment: an assigned partition starts a fetch that
        # stopping the consumer then waits out (a whole fetch wait on the embedded broker).
        if start is None:
            found = (await consumer.offsets_for_times({tp: since_ms})).get(tp)
            if found is None:
                return  # no record since then
            start = found.offset
        end = (await consumer.end_offsets([tp]))[tp]
        if stop is not None:
            end = min(end, stop)
        if start >= end:
            return
        consumer.assign([tp])
        consumer.seek(tp, start)
        position = start
        while position < end:
            batch = (await consumer.getmany(tp, timeout_ms=500)).get(tp, [])
            highwater = consumer.highwater(tp)
            if highwater is not None:
                end = highwater if stop is None else min(highwater, stop)
            for record in batch:
                if record.offset < end and record.timestamp >= since_ms:
                    yield record
            position = await consumer.position(tp)
    finally:
        await consumer.stop()
