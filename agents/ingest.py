"""Ingest: read the input topics, validate, and write the normalised stream or dead-letter.

This adapter reads with aiokafka's batch API instead of a Faust stream. Faust delivers
each message through its own per-message machinery (measured at ~13,700 messages/s for an
agent that does nothing, see docs/ARCHITECTURE.md), which is below the throughput slawatch
needs before any SLA work is done; a raw batch read and decode ran at 233,000 messages/s
(docs/BENCHMARKS.md). The downstream Faust agent then receives one normalised message per
destination partition and batch, so Faust's per-message cost is paid per batch.

Ingest also reports event-time watermarks (slacore/watermark.py): every normalised message
carries the watermark of each input partition this worker reads, and every
``timer_tick_ms`` a message with no events goes to each normalised partition, so the timers
downstream know how far the input has been read even when it is quiet.

Delivery is at least once: a batch's offsets are committed only after every normalised
and dead-letter message it produced is acknowledged by the broker. A crash or rebalance
in between re-reads the batch; downstream deduplicates by ``event_id``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter as Tally
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from aiokafka import (
    AIOKafkaConsumer,
    AIOKafkaProducer,
    ConsumerRebalanceListener,
    ConsumerRecord,
    TopicPartition,
)
from aiokafka.errors import CommitFailedError, KafkaError
from mode import Service

from slawatch.config.settings import Settings
from slawatch.core.clock import Clock
from slawatch.core.keys import ConversationKind
from slawatch.core.partitioning import partition_for
from slawatch.core.watermark import partition_watermark
from slawatch.schemas.deadletter import DEAD_LETTER_VERSION, DeadLetter, b64
from slawatch.schemas.events import Event
from slawatch.schemas.normalised import encode_batches
from slawatch.schemas.validation import EventValidator, Rejection
from slawatch.streams.compat import leave_group_at_generation_zero
from slawatch.streams.metrics import Metrics
from slawatch.streams.topics import topic_kinds

log = logging.getLogger(__name__)

#: Largest normalised batch message, well under the broker's 1 MiB default.
MAX_BATCH_BYTES = 512 * 1024
#: Most original bytes a dead letter carries (base64 makes it a third larger). A bigger
#: input could not be written to the dead-letter topic at all; its record says it was cut
#: and names the source offset, where the whole message stays while the topic retains it.
MAX_DEAD_LETTER_ORIGINAL_BYTES = 256 * 1024


@dataclass(slots=True)
class RoutedBatch:
    """What one polled batch of input becomes."""

    normalised: dict[int, list[Event]] = field(default_factory=dict)
    dead_letters: list[tuple[bytes | None, DeadLetter]] = field(default_factory=list)
    read_by_topic: Tally[str] = field(default_factory=Tally)
    valid_by_type: Tally[str] = field(default_factory=Tally)
    #: Latest ``occurred_at`` of the valid events, per input (topic, partition).
    event_time: dict[tuple[str, int], int] = field(default_factory=dict)


def route(
    records: Iterable[ConsumerRecord],
    *,
    validator: EventValidator,
    kinds: Mapping[str, ConversationKind],
    partitions: int,
    worker: str,
    clock: Clock,
) -> RoutedBatch:
    """Validate records and sort them into normalised partitions and dead letters.

    Order is kept: events of one input partition stay in read order within their
    destination partition, so one conversation's events stay in order.
    """
    routed = RoutedBatch()
    for record in records:
        routed.read_by_topic[record.topic] += 1
        raw = record.value if record.value is not None else b""
        outcome = validator.validate(raw, kinds.get(record.topic))
        if isinstance(outcome, Rejection):
            letter = DeadLetter(
                schema_version=DEAD_LETTER_VERSION,
                reason=outcome.reason.value,
                detail=outcome.detail,
                source_topic=record.topic,
                source_partition=record.partition,
                source_offset=record.offset,
                source_timestamp_ms=record.timestamp,
                event_type=outcome.event_type,
                event_id=outcome.event_id,
                original_b64=b64(raw[:MAX_DEAD_LETTER_ORIGINAL_BYTES]) or "",
                original_bytes=len(raw),
                original_truncated=len(raw) > MAX_DEAD_LETTER_ORIGINAL_BYTES,
                original_key_b64=b64(record.key),
                dead_lettered_at_ms=clock.now_ms(),
                worker=worker,
            )
            routed.dead_letters.append((record.key, letter))
            continue
        routed.valid_by_type[outcome.type] += 1
        source = (record.topic, record.partition)
        if outcome.occurred_at > routed.event_time.get(source, -(2**63)):
            routed.event_time[source] = outcome.occurred_at
        destination = partition_for(outcome.key, partitions)
        routed.normalised.setdefault(destination, []).append(outcome)
    return routed


class IngestService(Service):
    """The ingest consumer group of a worker: input topics in, normalised stream out."""

    def __init__(
        self,
        settings: Settings,
        metrics: Metrics,
        validator: EventValidator,
        clock: Clock,
        listener: ConsumerRebalanceListener | None = None,
    ) -> None:
        super().__init__()
        self.listener = listener
        self.settings = settings
        self.metrics = metrics
        self.validator = validator
        self.clock = clock
        self.kinds = topic_kinds(settings)
        self.consumer: AIOKafkaConsumer | None = None
        self.producer: AIOKafkaProducer | None = None
        #: Kafka timestamp of the last record read, per input partition.
        self.last_record_ms: dict[TopicPartition, int] = {}
        self.last_event_ms: dict[TopicPartition, int] = {}
        self._last_tick = 0.0
        self._sent_since_tick: set[int] = set()

    @property
    def group_id(self) -> str:
        return f"{self.settings.app_id}-ingest"

    @property
    def assigned(self) -> bool:
        """True once the ingest group gave this worker its partitions (maybe none)."""
        return self.consumer is not None and bool(self.consumer.assignment())

    async def on_start(self) -> None:
        leave_group_at_generation_zero()
        s = self.settings
        self.producer = AIOKafkaProducer(
            bootstrap_servers=s.bootstrap_servers,
            client_id=f"{s.app_id}-ingest-{s.worker_id}",
            acks="all",
            linger_ms=5,
            max_request_size=2 * MAX_BATCH_BYTES,
        )
        self.consumer = AIOKafkaConsumer(
            bootstrap_servers=s.bootstrap_servers,
            group_id=self.group_id,
            client_id=f"{s.app_id}-ingest-{s.worker_id}",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_records=s.ingest_max_records,
            # An empty fetch waits this long at the broker: it bounds how stale "caught up"
            # can be, and so how long a breach waits (slacore/watermark.py).
            fetch_max_wait_ms=s.fetch_max_wait_ms,
            session_timeout_ms=int(s.broker_session_timeout_s * 1000),
            heartbeat_interval_ms=int(s.broker_heartbeat_interval_s * 1000),
            rebalance_timeout_ms=int(s.broker_rebalance_timeout_s * 1000),
        )
        await self.producer.start()
        await self.consumer.start()
        self.consumer.subscribe(list(s.input_topics), listener=self.listener)

    async def on_stop(self) -> None:
        if self.consumer is not None:
            await self.consumer.stop()
        if self.producer is not None:
            await self.producer.stop()

    @Service.task
    async def _ingest(self) -> None:
        assert self.consumer is not None
        while not self.should_stop:
            batch = await self.consumer.getmany(
                timeout_ms=self.settings.ingest_poll_timeout_ms,
                max_records=self.settings.ingest_max_records,
            )
            if batch:
                await self.process(batch)
            await self._record_lag()
            if time.monotonic() - self._last_tick >= self.settings.timer_tick_ms / 1000:
                await self.heartbeat()

    async def process(self, batch: Mapping[TopicPartition, list[ConsumerRecord]]) -> None:
        """Route one polled batch, wait for the broker to take every output, commit."""
        assert self.producer is not None and self.consumer is not None
        started = time.perf_counter()
        routed = route(
            (record for records in batch.values() for record in records),
            validator=self.validator,
            kinds=self.kinds,
            partitions=self.settings.partitions,
            worker=self.settings.worker_id,
            clock=self.clock,
        )
        for tp, records in batch.items():
            if records:
                self.last_record_ms[tp] = max(self.last_record_ms.get(tp, 0), records[-1].timestamp)
            event_ms = routed.event_time.get((tp.topic, tp.partition))
            if event_ms is not None and event_ms > self.last_event_ms.get(tp, -(2**63)):
                self.last_event_ms[tp] = event_ms
        watermarks = await self.watermarks()
        sends = []
        for partition, events in routed.normalised.items():
            self._sent_since_tick.add(partition)
            for message in encode_batches(events, MAX_BATCH_BYTES, watermarks):
                sends.append(
                    await self.producer.send(
                        self.settings.topic_normalised, message, partition=partition
                    )
                )
        for key, letter in routed.dead_letters:
            sends.append(
                await self.producer.send(self.settings.topic_dead_letter, letter.encode(), key=key)
            )
        # At least once: the offsets move only when the broker holds every output.
        await asyncio.gather(*sends)
        offsets = {tp: records[-1].offset + 1 for tp, records in batch.items() if records}
        try:
            await self.consumer.commit(offsets)
        except (CommitFailedError, KafkaError) as exc:
            # A rebalance took a partition away; its new owner re-reads from the last
            # committed offset and the duplicates are dropped by event_id downstream.
            self.metrics.ingest_commit_failures.inc()
            log.warning("ingest commit failed, input will be re-read: %s", exc)
        self._record(routed)
        self.metrics.ingest_batch_seconds.observe(time.perf_counter() - started)

    async def watermarks(self) -> dict[str, int]:
        """The watermark of every input partition this worker reads and can vouch for."""
        assert self.consumer is not None
        reported = {}
        for tp in self.consumer.assignment():
            highwater = self.consumer.highwater(tp)
            if highwater is None:
                continue  # not fetched yet: nothing to vouch for
            caught_up = await self.consumer.position(tp) >= highwater
            watermark = partition_watermark(
                caught_up=caught_up,
                last_record_ms=self.last_record_ms.get(tp),
                last_event_ms=self.last_event_ms.get(tp),
                # when the fetch response that told us the end offset arrived
                end_observed_ms=self.consumer.last_poll_timestamp(tp),
                grace_ms=self.settings.watermark_grace_ms,
            )
            if watermark is not None:
                reported[f"{tp.topic}/{tp.partition}"] = watermark
        return reported

    async def heartbeat(self) -> None:
        """Send the watermarks to every normalised partition that got nothing this tick."""
        assert self.producer is not None
        self._last_tick = time.monotonic()
        watermarks = await self.watermarks()
        quiet = set(range(self.settings.partitions)) - self._sent_since_tick
        self._sent_since_tick = set()
        if not watermarks or not quiet:
            return
        (message,) = encode_batches((), MAX_BATCH_BYTES, watermarks)
        sends = [
            await self.producer.send(self.settings.topic_normalised, message, partition=p)
            for p in sorted(quiet)
        ]
        await asyncio.gather(*sends)

    def _record(self, routed: RoutedBatch) -> None:
        for topic, count in routed.read_by_topic.items():
            self.metrics.input_messages.labels(topic).inc(count)
        for event_type, count in routed.valid_by_type.items():
            self.metrics.valid_events.labels(event_type).inc(count)
        if routed.normalised:
            self.metrics.normalised_batches.inc(len(routed.normalised))
        for _, letter in routed.dead_letters:
            self.metrics.dead_letters.labels(letter.source_topic, letter.reason).inc()

    async def _record_lag(self) -> None:
        assert self.consumer is not None
        lag: Tally[str] = Tally()
        for tp in self.consumer.assignment():
            highwater = self.consumer.highwater(tp)
            if highwater is not None:
                lag[tp.topic] += max(0, highwater - await self.consumer.position(tp))
        for topic in self.settings.input_topics:
            self.metrics.ingest_lag.labels(topic).set(lag[topic])
