"""The offset a consumer group has committed for one partition, asked of the broker."""

from __future__ import annotations

from aiokafka import TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from slawatch.config.kafka_security import kafka_client_options
from slawatch.config.settings import Settings


async def committed_offset(
    settings: Settings, group: str, topic: str, partition: int
) -> int | None:
    """The next offset ``group`` will read of ``topic``/``partition`` by its commits (None:
    it has committed none)."""
    admin = AIOKafkaAdminClient(
        bootstrap_servers=settings.bootstrap_servers,
        **kafka_client_options(settings),
        client_id=f"{settings.app_id}-committed-{partition}",
    )
    await admin.start()
    try:
        tp = TopicPartition(topic, partition)
        found = await admin.list_consumer_group_offsets(group, partitions=[tp])
    finally:
        await admin.close()
    offset = found.get(tp)
    return None if offset is None or offset.offset < 0 else offset.offset
