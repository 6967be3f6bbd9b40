"""Ingest: read the input topics, validate, and write the normalised stream or dead-letter.

This adapter reads with aiokafka's batch API instead of a Faust stream. Faust delivers
each message through its own per-message machinery (measured at ~13,700 messages/s for an
agent that does nothing, see docs/ARCHITECTURE.md), which is below the throughput slawatch
needs before any SLA work is done; a raw batch read and decode ran at 233,000 messages/s
(docs/BENCHMARKS.md). The downstream Faust agent then receives one normalised message per
destination partition and batch, so Faust's per-message cost is paid per batch.

Ingest also reports event-time watermarks (slawatch/core/watermark.py): every normalised
message carries the watermark of each input partition this worker reads, and every
``timer_tick_ms`` a message with no events goes to each normalised partition, so the timers
downstream know how far the input has been read even when it is quiet. Only accepted
records move a watermark, and none goes past the worker's clock, whatever the records'
timestamps say.

No input message can stop ingest: whatever goes wrong while one message is decoded,
validated, routed or dead-lettered is that message's problem. It goes to ``dead-letter``
(``internal_error`` with the exception's type when the contract did not foresee it) and
the partition moves on. Every dead letter is bounded (slawatch/schemas/deadletter.py) so
that it fits the producer's request size; one the broker still refuses as too large is
sent again without its original bytes.

Delivery is at least once: a batch's offsets are committed only after every normalised
and dead-letter message it produced is acknowledged by the broker. A crash or rebalance
in between re-reads the batch; downstream deduplicates by ``event_id``.
"""

from __future__ import annotations

import asyncio
import logging
import time
import traceback
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
from aiokafka.errors import CommitFailedError, KafkaError, MessageSizeTooLargeError
from mode import Service

from slawatch.config.kafka_security import kafka_client_options
from slawatch.config.settings import Settings
from slawatch.core.clock import Clock
from slawatch.core.keys import ConversationKind
from slawatch.core.partitioning import partition_for
from slawatch.core.watermark import ReadProgress
from slawatch.schemas.deadletter import DeadLetter, dead_letter
from slawatch.schemas.events import Event
from slawatch.schemas.normalised import encode_batches
from slawatch.schemas.reasons import RejectReason
from slawatch.schemas.validation import EventValidator, Rejection
from slawatch.streams.compat import leave_group_at_generation_zero
from slawatch.streams.metrics import Metrics
from slawatch.streams.topics import topic_kinds

log = logging.getLogger(__name__)

#: Largest normalised batch message, well under the broker's 1 MiB default.
MAX_BATCH_BYTES = 512 * 1024
#: Largest input message ingest forwards, whatever ``max_event_bytes`` says: a bigger one
#: could make a normalised message (an event alone, plus the watermarks) larger than the
#: producer's 1 MiB request size; it is refused as ``oversized``.
MAX_FORWARDED_EVENT_BYTES = MAX_BATCH_BYTES
#: Most original bytes a dead letter carries (base64 makes it a third larger). A bigger
#: input could not be written to the dead-letter topic at all; its record says it was cut
#: and names the source offset, where the whole message stays while the topic retains it.

Source = tuple[str, int]


@dataclass(slots=True)
class RoutedBatch:
    """What one polled batch of input becomes."""

    normalised: dict[int, list[Event]] = field(default_factory=dict)
    #: The input record of each event in ``normalised``, in the same order.
    sources: dict[int, list[ConsumerRecord]] = field(default_factory=dict)
    dead_letters: list[tuple[bytes | None, DeadLetter]] = field(default_factory=list)
    read_by_topic: Tally[str] = field(default_factory=Tally)
    valid_by_type: Tally[str] = field(default_factory=Tally)
    #: Latest ``occurred_at`` of the valid events, per input (topic, partition).
    event_time: dict[Source, int] = field(default_factory=dict)
    #: Latest Kafka timestamp of the records accepted, per input (topic, partition).
    record_time: dict[Source, int] = field(default_factory=dict)


def refusal(
    record: ConsumerRecord,
    reason: str,
    detail: str,
    *,
    worker: str,
    clock: Clock,
    event_type: str | None = None,
    event_id: str | None = None,
    originals: bool = True,
) -> tuple[bytes | None, DeadLetter]:
    """The dead letter of ``record`` and the Kafka key to send it with (without the
    original key and value when not ``originals``)."""
    return dead_letter(
        reason=reason,
        detail=detail,
        source_topic=record.topic,
        source_partition=record.partition,
        source_offset=record.offset,
        source_timestamp_ms=record.timestamp,
        value=record.value if originals else None,
        key=record.key if originals else None,
        dead_lettered_at_ms=clock.now_ms(),
        worker=worker,
        event_type=event_type,
        event_id=event_id,
    )


def internal_error(
    record: ConsumerRecord, exc: BaseException, stage: str, *, worker: str, clock: Clock
) -> tuple[bytes | None, DeadLetter]:
    """The dead letter of a record that raised ``exc`` while ``stage``: the exception's
    type and the start of its message, never a ``repr`` of the input."""
    try:
        message = str(exc)[:200]
    except Exception:  # noqa: BLE001 (any error in making it: leave the message out)
        message = ""
    detail = f"{type(exc).__name__} while {stage}" + (f": {message}" if message else "")
    # The innermost frames, for whoever fixes the bug; not the message, which may quote
    # the input at any length.
    frames = "".join(traceback.format_tb(exc.__traceback__, limit=-12))
    log.error(
        "ingest: %s on %s/%d@%d; dead-lettered as internal_error\n%s",
        detail,
        record.topic,
        record.partition,
        record.offset,
        frames,
    )
    reason = RejectReason.INTERNAL_ERROR.value
    try:
        return refusal(record, reason, detail, worker=worker, clock=clock)
    except Exception:  # noqa: BLE001 (the originals are the trouble: leave them out)
        return refusal(record, reason, detail, worker=worker, clock=clock, originals=False)


def _check(
    record: ConsumerRecord, validator: EventValidator, kinds: Mapping[str, ConversationKind]
) -> Event | Rejection:
    raw = record.value if record.value is not None else b""
    if len(raw) > MAX_FORWARDED_EVENT_BYTES:
        return Rejection(
            RejectReason.OVERSIZED,
            f"message is {len(raw)} bytes; ingest forwards at most "
            f"{MAX_FORWARDED_EVENT_BYTES} whatever max_event_bytes says",
        )
    return validator.validate(raw, kinds.get(record.topic))


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
    destination partition, so one conversation's events stay in order. Nothing one record
    holds makes this raise: whatever goes wrong with it makes it a dead letter.
    """
    routed = RoutedBatch()
    for record in records:
        routed.read_by_topic[record.topic] += 1
        try:
            outcome = _check(record, validator, kinds)
            if isinstance(outcome, Rejection):
                routed.dead_letters.append(
                    refusal(
                        record,
                        outcome.reason.value,
                        outcome.detail,
                        worker=worker,
                        clock=clock,
                        event_type=outcome.event_type,
                        event_id=outcome.event_id,
                    )
                )
                continue
            destination = partition_for(outcome.key, partitions)
        except Exception as exc:  # noqa: BLE001 (RecursionError, a bug: the message's problem)
            routed.dead_letters.append(
                internal_error(record, exc, "validating", worker=worker, clock=clock)
            )
            continue
        routed.valid_by_type[outcome.type] += 1
        source = (record.topic, record.partition)
        if outcome.occurred_at > routed.event_time.get(source, -(2**63)):
            routed.event_time[source] = outcome.occurred_at
        if record.timestamp > routed.record_time.get(source, -(2**63)):
            routed.record_time[source] = record.timestamp
        routed.normalised.setdefault(destination, []).append(outcome)
        routed.sources.setdefault(destination, []).append(record)
    return routed


def encode_normalised(
    routed: RoutedBatch, watermarks: Mapping[str, int], *, worker: str, clock: Clock
) -> dict[int, list[bytes]]:
    """The normalised messages of every destination partition. An event that cannot be
    encoded (it passed validation, so only a bug does that) becomes a dead letter."""
    encoded: dict[int, list[bytes]] = {}
    for partition, events in routed.normalised.items():
        try:
            encoded[partition] = encode_batches(events, MAX_BATCH_BYTES, watermarks)
            continue
        except Exception:  # noqa: BLE001 (find the culprits one by one)
            pass
        kept = []
        for event, record in zip(events, routed.sources[partition], strict=True):
            try:
                encode_batches([event], MAX_BATCH_BYTES, watermarks)
            except Exception as exc:  # noqa: BLE001 (the message's problem)
                routed.valid_by_type[event.type] -= 1
                routed.dead_letters.append(
                    internal_error(record, exc, "encoding", worker=worker, clock=clock)
                )
            else:
                kept.append(event)
        routed.normalised[partition] = kept
        if kept:
            encoded[partition] = encode_batches(kept, MAX_BATCH_BYTES, watermarks)
    return encoded


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
        #: The latest accepted record and event time of each input partition.
        self.progress = ReadProgress(clock, grace_ms=settings.watermark_grace_ms)
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
            **kafka_client_options(s),
            client_id=f"{s.app_id}-ingest-{s.worker_id}",
            acks="all",
            linger_ms=5,
            max_request_size=2 * MAX_BATCH_BYTES,
        )
        self.consumer = AIOKafkaConsumer(
            bootstrap_servers=s.bootstrap_servers,
            **kafka_client_options(s),
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
        for (topic, partition), record_ms in routed.record_time.items():
            self.progress.accepted(
                TopicPartition(topic, partition),
                record_ms=record_ms,
                event_ms=routed.event_time[(topic, partition)],
            )
        watermarks = await self.watermarks()
        encoded = encode_normalised(
            routed, watermarks, worker=self.settings.worker_id, clock=self.clock
        )
        sends = []
        for partition, messages in encoded.items():
            self._sent_since_tick.add(partition)
            for message in messages:
                sends.append(
                    await self.producer.send(
                        self.settings.topic_normalised, message, partition=partition
                    )
                )
        letters = [
            (letter, await self._send_dead_letter(key, letter))
            for key, letter in routed.dead_letters
        ]
        # At least once: the offsets move only when the broker holds every output.
        await asyncio.gather(*sends)
        for letter, ack in letters:
            await self._confirm_dead_letter(letter, ack)
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

    async def _send_dead_letter(self, key: bytes | None, letter: DeadLetter) -> asyncio.Future:
        """Queue a dead letter; one the producer finds too large goes without its originals
        (it cannot be: every letter is bounded, but a refused letter must not stop ingest)."""
        assert self.producer is not None
        topic = self.settings.topic_dead_letter
        try:
            return await self.producer.send(topic, letter.encode(), key=key)
        except MessageSizeTooLargeError:
            log.warning(
                "dead letter of %s too large to send; sending it without originals",
                _where(letter),
            )
            return await self.producer.send(topic, letter.without_originals().encode())

    async def _confirm_dead_letter(self, letter: DeadLetter, ack: asyncio.Future) -> None:
        """Wait for the broker to hold a dead letter; one it refuses as too large (its
        limit may be below the producer's) is sent again without its originals."""
        assert self.producer is not None
        try:
            await ack
        except MessageSizeTooLargeError:
            log.warning(
                "broker refused the dead letter of %s as too large; sending it without originals",
                _where(letter),
            )
            slim = letter.without_originals().encode()
            await (await self.producer.send(self.settings.topic_dead_letter, slim))

    async def watermarks(self) -> dict[str, int]:
        """The watermark of every input partition this worker reads and can vouch for."""
        assert self.consumer is not None
        reported = {}
        for tp in self.consumer.assignment():
            highwater = self.consumer.highwater(tp)
            if highwater is None:
                continue  # not fetched yet: nothing to vouch for
            caught_up = await self.consumer.position(tp) >= highwater
            watermark = self.progress.watermark(
                tp,
                caught_up=caught_up,
                # when the fetch response that told us the end offset arrived
                end_observed_ms=self.consumer.last_poll_timestamp(tp),
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
            self.metrics.consumer_lag.labels(self.group_id, topic).set(lag[topic])


def _where(letter: DeadLetter) -> str:
    return f"{letter.source_topic}/{letter.source_partition}@{letter.source_offset}"
