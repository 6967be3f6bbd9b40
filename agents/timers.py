"""The SLA timers: a Faust agent over the normalised stream.

Per normalised partition this worker owns it keeps:

- the conversations' states in a Faust table (``sla-state``, changelog-backed), one
  compact record per conversation (slawatch/storage/state_codec.py);
- a :class:`~slawatch.core.scheduler.PartitionScheduler`: the timer queue, rebuilt from
  the table when the partition is assigned, and the tick that applies a batch and fires
  what is due (the same tick ``slawatch replay`` runs);
- the input watermarks reported by ingest (slawatch/core/watermark.py);
- the ids of the SLA events it emitted recently, reloaded from its ``sla-events``
  partition when the partition is assigned, so a restarted or rebalanced worker does not
  emit again what its predecessor already emitted.

Every normalised message (a batch of events, or an ingest heartbeat) is one tick: decode,
tick, write each touched state once, emit. Writing the table inside the agent is what ties
each state to its changelog partition (the message's partition), and Faust flushes the
producer before it commits the input offsets, so after a crash the uncommitted batches are
applied again to the states they were applied to.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from typing import Any

import faust
from aiokafka import AIOKafkaConsumer, TopicPartition

from slawatch.config.settings import Settings
from slawatch.core.clock import Clock
from slawatch.core.effects import SlaEvent
from slawatch.core.policy import SlaPolicy
from slawatch.core.scheduler import PartitionScheduler
from slawatch.core.sla import SlaEventKind
from slawatch.core.watermark import InputWatermarks
from slawatch.schemas.normalised import decode_batch
from slawatch.schemas.sla_events import encode, to_record
from slawatch.storage.table_store import TableStore
from slawatch.streams.metrics import Metrics

log = logging.getLogger(__name__)

_ALERT_KINDS = (SlaEventKind.AT_RISK, SlaEventKind.BREACHED)


class CorruptBatch(Exception):
    """A normalised message that cannot be decoded."""


class PartitionTimers:
    """The in-memory side of one normalised partition: scheduler, watermarks, emitted ids."""

    __slots__ = ("emitted", "scheduler", "watermarks")

    def __init__(self, scheduler: PartitionScheduler, expected_inputs: list[str]) -> None:
        self.scheduler = scheduler
        self.watermarks = InputWatermarks(expected_inputs)
        #: event id -> wall-clock ms it was emitted (or seen on the output topic).
        self.emitted: OrderedDict[str, int] = OrderedDict()

    def remember(self, event_id: str, at_ms: int, window_ms: int) -> None:
        self.emitted[event_id] = at_ms
        self.emitted.move_to_end(event_id)
        while self.emitted:
            oldest_id, oldest_ms = next(iter(self.emitted.items()))
            if oldest_ms >= at_ms - window_ms:
                break
            del self.emitted[oldest_id]


class SlaTimers:
    """Registers the table and the agent on ``app``; holds the per-partition timers."""

    def __init__(
        self,
        app: faust.App,
        settings: Settings,
        policy: SlaPolicy,
        metrics: Metrics,
        clock: Clock,
    ) -> None:
        self.app = app
        self.settings = settings
        self.policy = policy
        self.metrics = metrics
        self.clock = clock
        self.expected_inputs = [
            f"{topic}/{p}" for topic in settings.input_topics for p in range(settings.partitions)
        ]
        self.partitions: dict[int, PartitionTimers] = {}
        self.table = app.Table(
            "sla-state", partitions=settings.partitions, key_type=bytes, value_type=bytes
        )
        # Raw bytes: Faust's default serializer for topics is JSON.
        self.source = app.topic(
            settings.topic_normalised,
            key_type=bytes,
            value_type=bytes,
            key_serializer="raw",
            value_serializer="raw",
            partitions=settings.partitions,
        )
        app.agent(self.source, name="sla-timers")(self._run)
        app.on_partitions_revoked.connect(self._on_revoked)
        app.on_partitions_assigned.connect(self._on_assigned)

    # --- rebalancing ---------------------------------------------------------------------

    async def _on_revoked(self, sender: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
        self._forget(args[0])  # mode calls receivers with (app, revoked, signal=...)

    async def _on_assigned(self, sender: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
        # Another worker may have moved these partitions' states on: rebuild on first use.
        self._forget(args[0])

    def _forget(self, partitions: set[TopicPartition]) -> None:
        for tp in partitions:
            if tp.topic == self.settings.topic_normalised:
                self.partitions.pop(tp.partition, None)
        self._update_gauges()

    async def _timers_for(self, partition: int) -> PartitionTimers:
        timers = self.partitions.get(partition)
        if timers is None:
            store = TableStore(self.table, partition, self.settings.partitions)
            timers = PartitionTimers(PartitionScheduler(store), self.expected_inputs)
            started = time.perf_counter()
            queued = timers.scheduler.rebuild()  # one pass over the table, never on a tick
            await self._reload_emitted(timers, partition)
            self.partitions[partition] = timers
            log.info(
                "partition %d: %d timers, %d recent SLA events, rebuilt in %.2fs",
                partition, queued, len(timers.emitted), time.perf_counter() - started,
            )  # fmt: skip
            self._update_gauges()
        return timers

    async def _reload_emitted(self, timers: PartitionTimers, partition: int) -> None:
        """Read back what this partition's previous owner emitted within the window."""
        window_ms = int(self.settings.emitted_window_s * 1000)
        tp = TopicPartition(self.settings.topic_sla_events, partition)
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.settings.bootstrap_servers,
            group_id=None,
            enable_auto_commit=False,
            client_id=f"{self.settings.app_id}-emitted-{partition}",
            fetch_max_wait_ms=self.settings.fetch_max_wait_ms,
        )
        await consumer.start()
        try:
            # Offsets first, without an assignment: an assigned partition starts a fetch that
            # stopping the consumer then waits out (a whole fetch wait on the embedded broker).
            end = (await consumer.end_offsets([tp]))[tp]
            since = self.clock.now_ms() - window_ms
            found = await consumer.offsets_for_times({tp: since})
            start = found[tp].offset if found.get(tp) else end
            if start >= end:
                return  # nothing emitted within the window
            consumer.assign([tp])
            consumer.seek(tp, start)
            position = start
            while position < end:
                for record in (await consumer.getmany(tp, timeout_ms=500)).get(tp, []):
                    event_id = record.key.decode() if record.key else ""
                    timers.remember(event_id, record.timestamp, window_ms)
                position = await consumer.position(tp)
        finally:
            await consumer.stop()

    # --- the agent -------------------------------------------------------------------------

    async def _run(self, stream: Any) -> None:
        async for event in stream.events():
            message = event.message
            try:
                await self.on_message(message.partition, event.value)
            except CorruptBatch as exc:
                # Only slawatch writes this topic; a message it cannot read is a bug or a
                # foreign producer. Skipping it keeps the partition's timers running.
                self.metrics.timer_errors.inc()
                log.error(
                    "skipped unreadable normalised message %s/%d@%d: %s",
                    message.topic, message.partition, message.offset, exc,
                )  # fmt: skip

    async def on_message(self, partition: int, value: bytes) -> None:
        """One tick of ``partition``: decode, tick, persist, emit."""
        started = time.perf_counter()
        timers = await self._timers_for(partition)
        try:
            batch = decode_batch(value)
        except (ValueError, KeyError, TypeError) as exc:
            raise CorruptBatch(str(exc)) from exc
        for input_partition, watermark_ms in batch.watermarks.items():
            timers.watermarks.report(input_partition, watermark_ms)
        now_ms = self.clock.now_ms()
        watermark = timers.watermarks.value()
        tick = timers.scheduler.tick(batch.events, watermark, self.policy, now_ms)
        store = timers.scheduler.store
        for key, state, deadline_ms in tick.persist:
            store.put(key, state, deadline_ms)
        for refused in tick.refused:
            self.metrics.timer_errors.inc()
            log.error(
                "skipped event %s of %s on normalised partition %d: %s",
                refused.event.event_id, refused.event.key, partition, refused.reason,
            )  # fmt: skip
        if watermark is not None:
            self.metrics.watermark_lag.set(max(0.0, (now_ms - watermark) / 1000))
        await self._emit(timers, partition, tick.effects, now_ms)
        self.metrics.timer_events.inc(len(batch.events))
        self.metrics.timer_batch_seconds.observe(time.perf_counter() - started)

    async def _emit(
        self, timers: PartitionTimers, partition: int, effects: list[SlaEvent], now_ms: int
    ) -> None:
        window_ms = int(self.settings.emitted_window_s * 1000)
        late_after_ms = int(self.settings.late_after_s * 1000)
        producer = self.app.producer
        topic = self.settings.topic_sla_events
        for effect in effects:
            event_id = effect.event_id
            if event_id in timers.emitted:
                self.metrics.sla_duplicates_suppressed.inc()
                continue
            record = to_record(effect, late_after_ms=late_after_ms)
            # Straight to the app's producer (Topic.send builds a future and a message
            # object per record). Faust flushes this producer before it commits the input
            # offsets, so delivery stays at least once.
            await producer.send(topic, event_id.encode(), encode(record), partition, None, None)
            timers.remember(event_id, now_ms, window_ms)
            self.metrics.sla_events.labels(effect.metric.value, effect.kind.value).inc()
            if effect.kind in _ALERT_KINDS:
                self.metrics.detection_delay.labels(effect.kind.value).observe(
                    max(0, effect.detection_delay_ms) / 1000
                )
        self._update_gauges()

    def _update_gauges(self) -> None:
        self.metrics.timer_queue.set(sum(len(t.scheduler) for t in self.partitions.values()))
        self.metrics.conversations.set(len(self.table.data))
