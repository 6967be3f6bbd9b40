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
tick, write each touched state once, emit. The changed states go into the table's local
store and, as one batch of sends straight to the app's producer, into the changelog
partition of the message's partition (Faust's ``table[key] = value`` would queue one
coroutine per record in its producer buffer: docs/ARCHITECTURE.md, "Stored state"). Faust
flushes the producer before it commits the input offsets, and a send the broker did not
acknowledge makes that flush fail (:mod:`slawatch.streams.deliveries`), so after a crash the
uncommitted batches are applied again to the states they were applied to.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from asyncio import Future
from collections import OrderedDict, deque
from collections.abc import Sequence
from typing import Any, cast

import faust
import orjson
from aiokafka import TopicPartition
from aiokafka.errors import KafkaError

from slawatch.config.settings import Settings
from slawatch.core.census import CycleCensus
from slawatch.core.clock import Clock
from slawatch.core.effects import SlaEvent
from slawatch.core.events import CallEvent, InputEvent
from slawatch.core.kpi import KpiAccumulator, KpiSnapshot, QueueSettings
from slawatch.core.policy import SlaPolicy
from slawatch.core.scheduler import PartitionScheduler, Tick
from slawatch.core.sla import SlaEventKind
from slawatch.core.timestamps import format_timestamp_ms
from slawatch.core.watermark import InputWatermarks
from slawatch.schemas.normalised import decode_batch
from slawatch.schemas.sla_events import encode, to_record
from slawatch.storage.table_store import TableStore, keys_by_partition, partition_records
from slawatch.streams.committed import committed_offset
from slawatch.streams.compat import (
    faust_acknowledge,
    heartbeat_answered_at,
    heartbeat_refused_at,
)
from slawatch.streams.deliveries import Deliveries
from slawatch.streams.membership import Ownership, PauseWatch
from slawatch.streams.metrics import Metrics
from slawatch.streams.read_back import read_back

log = logging.getLogger(__name__)

#: Breaches each partition keeps for the wallboard's "latest breaches".
BREACH_MEMORY = 20
#: How far back (event time) the calls of a newly assigned partition are read again for its
#: KPIs: the longest window is a calendar day, and late exits of yesterday still count.
KPI_LOOKBACK_MS = 2 * 86_400_000 + 3_600_000


#: The SLA events the wallboard's "latest breaches" follows.
_WALLBOARD_KINDS = (SlaEventKind.BREACHED, SlaEventKind.RETRACTED)
#: The fields of an SLA event record the wallboard reads.
_WALLBOARD_FIELDS = frozenset(
    {"kind", "conversation_key", "conversation_kind", "conversation_id", "metric", "cycle",
     "due_at", "detected_at", "level", "priority"}
)  # fmt: skip


class CorruptBatch(Exception):
    """A normalised message that cannot be decoded."""


class PartitionTimers:
    """The in-memory side of one normalised partition: scheduler, watermarks, emitted ids,
    the census of its open cycles and its calls' KPIs."""

    __slots__ = (
        "breaches", "census", "emitted", "first_offset", "kpi_rebuild", "kpis", "last_applied_ms",
        "last_offset", "scheduler", "watermarks",
    )  # fmt: skip

    def __init__(
        self,
        scheduler: PartitionScheduler,
        expected_inputs: list[str],
        census: CycleCensus,
        kpis: KpiAccumulator,
    ) -> None:
        self.scheduler = scheduler
        self.watermarks = InputWatermarks(expected_inputs)
        self.census = census
        self.kpis = kpis
        #: event id -> wall-clock ms it was emitted (or seen on the output topic).
        self.emitted: OrderedDict[str, int] = OrderedDict()
        #: The latest breaches (published records), for the wallboard.
        self.breaches: deque[dict[str, Any]] = deque(maxlen=BREACH_MEMORY)
        #: The task reading the partition's calls back into :attr:`kpis` after an assignment.
        self.kpi_rebuild: asyncio.Task[None] | None = None
        #: The normalised offsets of the first and the last message applied since the
        #: partition was assigned (logged when it is taken away: who applied what).
        self.first_offset = -1
        self.last_offset = -1
        #: When (wall clock, epoch ms) the last message was applied (-1: none): two workers
        #: must never apply one partition at the same time (``slawatch chaos`` checks it).
        self.last_applied_ms = -1

    def note(self, record: dict[str, Any]) -> None:
        """Keep a published breach for the wallboard; drop one a retraction proved wrong.
        A record without the fields the wallboard shows is ignored."""
        if not isinstance(record, dict) or not record.keys() >= _WALLBOARD_FIELDS:
            return
        if record["kind"] == "breached":
            self.breaches.append(record)
        elif record["kind"] == "retracted":
            cycle = (record["conversation_key"], record["metric"], record["cycle"])
            kept = [
                b for b in self.breaches
                if (b["conversation_key"], b["metric"], b["cycle"]) != cycle
            ]  # fmt: skip
            self.breaches.clear()
            self.breaches.extend(kept)

    def account(self, events: Sequence[InputEvent], tick: Tick) -> None:
        """Bring the census and the KPIs up to date with a tick over ``events``."""
        census, before = self.census, tick.before
        for key, state, _ in tick.persist:
            census.update(before.get(key), state)
        kpis = self.kpis
        for event in events:
            if isinstance(event, CallEvent):
                kpis.apply(event)

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
        #: Per partition held, the offset of the next message to apply (see
        #: :meth:`_missing_before`).
        self._next_offset: dict[int, int] = {}
        #: How long a finished conversation's state is kept (None: for ever).
        self.retention_ms = int(settings.state_retention_s * 1000) or None
        #: The table's keys by partition, for the partitions not built yet since the last
        #: assignment (one pass over the table for all of them; None: not read yet).
        self._keys: dict[int, list[bytes]] | None = None
        #: The group generation of the last assignment (None: none yet).
        self._generation: int | None = None
        self.table = app.Table(
            "sla-state", partitions=settings.partitions, key_type=bytes, value_type=bytes
        )
        self.changelog = self.table.changelog_topic.get_topic_name()
        #: After the process stood still, nothing is applied before the group's word
        #: (streams/membership.py).
        self.pause_watch = PauseWatch(settings.broker_session_timeout_s / 2)
        self.ownership = Ownership(
            self.pause_watch,
            app.conf.id,
            heartbeat_answered_at,
            lambda: app.consumer.assignment(),
            heartbeat_refused_at=heartbeat_refused_at,
            rebalancing=lambda: bool(app.rebalancing),
            on_pause=metrics.stood_still.inc,
            on_drop=metrics.dropped_after_pause.inc,
        )
        #: The sends of this agent that must be acknowledged before Faust commits.
        self.deliveries = Deliveries()
        self.deliveries.guard(app.producer)
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
        app.on_rebalance_complete.connect(self._on_rebalance_complete)

    # --- rebalancing ---------------------------------------------------------------------

    async def _on_revoked(self, sender: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
        # mode calls receivers with (app, revoked, signal=...). Faust revokes every
        # partition at each rebalance; the timers wait for the assignment to know which
        # they keep. Nothing is applied in between.
        self.ownership.rebalanced()

    async def _on_assigned(self, sender: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
        """Keep the timers of the partitions this worker held in the generation just
        before this one: no other generation came in between, so no other worker applied
        them meanwhile, and their states, queue, census and recent SLA events are as this
        worker left them. Every other partition (or every one, after a generation missed,
        as when the group dropped this worker while it stood still) is built again from
        the table once it is recovered (:meth:`_on_rebalance_complete`). Rebuilding every
        partition at every rebalance cost a failover 2 s per 250,000 states, one partition
        after another, for partitions that had not moved."""
        topic = self.settings.topic_normalised
        generation = self.app.consumer_generation_id
        assigned = {tp.partition for tp in args[0] if tp.topic == topic}
        consecutive = self._generation is not None and generation == self._generation + 1
        kept = assigned & set(self.partitions) if consecutive else set()
        self._generation = generation
        self._forget({TopicPartition(topic, p) for p in self.partitions if p not in kept})
        for partition in sorted(kept):
            log.info(
                "partition %d: kept across the rebalance (generation %d), its timers as they "
                "were", partition, generation,
            )  # fmt: skip

    async def _on_rebalance_complete(
        self, sender: Any, /, *args: Any, signal: Any, **kwargs: Any
    ) -> None:
        """The tables are recovered and Faust is about to resume the streams: build the
        timers of every normalised partition assigned now, so the worker is ready with
        every timer queued. (Built on each partition's first message, as before, the
        timers lagged readiness by the time those messages took to come and the builds
        to run one after another: 40 s with 1.2 M states, docs/BENCHMARKS.md.) A build
        that cannot read the broker is left to the partition's first message."""
        topic = self.settings.topic_normalised
        for tp in sorted(self.app.consumer.assignment()):
            if tp.topic != topic or tp.partition in self.partitions:
                continue
            try:
                committed = await committed_offset(
                    self.settings, self.app.conf.id, topic, tp.partition
                )
                await self._timers_for(tp.partition, committed or 0)
            except (KafkaError, OSError) as exc:
                log.warning(
                    "partition %d: timers not built at assignment (%s); they are built on its "
                    "first message", tp.partition, exc,
                )  # fmt: skip

    def timers_built(self) -> bool:
        """Every normalised partition assigned to this worker has its timers queued."""
        topic = self.settings.topic_normalised
        return all(
            tp.partition in self.partitions
            for tp in self.app.consumer.assignment()
            if tp.topic == topic
        )

    def _forget(self, partitions: set[TopicPartition]) -> None:
        self.ownership.rebalanced()
        self._keys = None  # recovery may have moved states in or out: read the table again
        for tp in partitions:
            if tp.topic == self.settings.topic_normalised:
                self._next_offset.pop(tp.partition, None)
                timers = self.partitions.pop(tp.partition, None)
                if timers is None:
                    continue
                if timers.kpi_rebuild is not None:
                    timers.kpi_rebuild.cancel()
                log.info(
                    "partition %d: let go after applying offsets %d to %d, the last at %s",
                    tp.partition, timers.first_offset, timers.last_offset,
                    format_timestamp_ms(timers.last_applied_ms) if timers.last_applied_ms >= 0
                    else "none",
                )  # fmt: skip
        self._update_gauges()

    async def _timers_for(self, partition: int, offset: int) -> PartitionTimers:
        """The partition's timers; built once the tables are recovered after an assignment
        (:meth:`_on_rebalance_complete`, ``offset`` the committed one), else on its first
        message (at ``offset``): the queue and census from the table, the recent SLA
        events from the output topic, and, in the background, the KPIs from the calls
        before ``offset``."""
        timers = self.partitions.get(partition)
        if timers is None:
            keys: list[bytes] | None = None  # RocksDB: each partition has its database
            if partition_records(self.table.data, partition) is None:
                if self._keys is None:  # the first partition built since the assignment
                    self._keys = keys_by_partition(self.table.data, self.settings.partitions)
                keys = self._keys.pop(partition, [])
            store = TableStore(self.table, partition, self.settings.partitions, keys)
            census = CycleCensus(self.metrics.sla_labels)
            kpis = KpiAccumulator()
            scheduler = PartitionScheduler(store, retention_ms=self.retention_ms)
            timers = PartitionTimers(scheduler, self.expected_inputs, census, kpis)
            started = time.perf_counter()
            queued = timers.scheduler.rebuild()  # one pass over the table, never on a tick
            held = 0
            for state in store.states():
                census.add(state)
                held += 1
            store.count_held(held)
            store.forget_keys()
            await self._reload_emitted(timers, partition)
            # The policy in force now (it may have changed during the read-back).
            kpis.reconfigure(self.policy.queue_defaults, self.policy.queues)
            kpis.on_count = self._count_call
            self.partitions[partition] = timers
            timers.kpi_rebuild = asyncio.ensure_future(
                self._rebuild_kpis(timers, partition, before_offset=offset)
            )
            timers.first_offset = offset
            log.info(
                "partition %d: %d timers, %d recent SLA events, rebuilt in %.2fs; applying "
                "from offset %d", partition, queued, len(timers.emitted),
                time.perf_counter() - started, offset,
            )  # fmt: skip
            self._update_gauges()
        return timers

    async def _reload_emitted(self, timers: PartitionTimers, partition: int) -> None:
        """Read back what this partition's previous owner emitted within the window."""
        window_ms = int(self.settings.emitted_window_s * 1000)
        since = self.clock.now_ms() - window_ms
        topic = self.settings.topic_sla_events
        async for record in read_back(self.settings, topic, partition, since, "emitted"):
            event_id = record.key.decode() if record.key else ""
            timers.remember(event_id, record.timestamp, window_ms)
            if event_id.endswith(("|breached", "|retracted")) and record.value:
                with contextlib.suppress(ValueError, KeyError, TypeError):
                    timers.note(orjson.loads(record.value))

    async def _rebuild_kpis(
        self, timers: PartitionTimers, partition: int, before_offset: int
    ) -> None:
        """Read the partition's calls of the last two days, up to ``before_offset`` (the
        first message this worker applies), back from the normalised topic into its KPIs,
        so a partition that moved keeps its day's figures.

        Runs beside the agent, which applies (and counts) from ``before_offset`` on; what
        is read back here was counted by the worker that applied it, so it adds nothing to
        the counters. A call whose exit the agent applied before its entry was read back
        is counted when the entry arrives (the accumulator keeps who was listening).
        """
        started = time.perf_counter()
        since = self.clock.now_ms() - KPI_LOOKBACK_MS
        topic = self.settings.topic_normalised
        kpis = timers.kpis
        calls = 0
        kpis.hold_stale = True  # the snapshots meanwhile are at wall-clock now
        try:
            records = read_back(self.settings, topic, partition, since, "kpis", stop=before_offset)
            async for record in records:
                if not record.value:
                    continue
                try:
                    events = decode_batch(record.value).events
                except (ValueError, KeyError, TypeError):
                    continue  # the agent logs unreadable messages
                listener, kpis.on_count = kpis.on_count, None
                try:
                    calls += kpis.feed(e for e in events if isinstance(e, CallEvent))
                finally:
                    kpis.on_count = listener
        except (KafkaError, OSError) as exc:
            log.warning(
                "partition %d: KPIs not read back (%s); they count from now", partition, exc
            )
            return
        finally:
            kpis.hold_stale = False
        log.info(
            "partition %d: %d call facts read back into the KPIs in %.2fs",
            partition, calls, time.perf_counter() - started,
        )  # fmt: skip

    # --- the agent -------------------------------------------------------------------------

    async def _run(self, stream: Any) -> None:
        self.pause_watch.start()
        async for event in stream.events():
            message = event.message
            if not self.ownership.quiet() and not await self.ownership.holds(message.tp):
                # Its partition went to another worker while this one stood still, or a
                # rebalance is coming: not counted as processed, so not committed (Faust
                # leaves a message marked acked out of its commits); its owner applies it.
                message.acked = True
                continue
            missing = await self._missing_before(message)
            if missing is None:
                # Applied already: not acknowledged again (Faust counts what it commits).
                message.acked = True
                continue
            for record in missing:
                await self._apply(record.partition, record.value or b"", record.offset)
            if missing:
                faust_acknowledge(self.app.consumer, message.tp, range(
                    missing[0].offset, missing[-1].offset + 1))  # fmt: skip
            await self._apply(message.partition, event.value, message.offset)
            if self.ownership.refuses(message.tp):
                message.acked = True  # lost during its tick, which wrote and emitted nothing

    async def _apply(self, partition: int, value: bytes, offset: int) -> None:
        try:
            await self.on_message(partition, value, offset)
        except CorruptBatch as exc:
            # Only slawatch writes this topic; a message it cannot read is a bug or a
            # foreign producer. Skipping it keeps the partition's timers running.
            self.metrics.timer_errors.inc()
            log.error(
                "skipped unreadable normalised message %s/%d@%d: %s",
                self.settings.topic_normalised, partition, offset, exc,
            )  # fmt: skip

    async def _missing_before(self, message: Any) -> list[Any] | None:
        """The messages of ``message``'s partition to apply before it, read from the
        broker ([] when it is the next one; None when it was applied already).

        Each partition is applied in offset order from the group's committed offset,
        whatever Faust delivers. After a rebalance Faust can hand the agent a message
        ahead of the committed offset (one it fetched before the rebalance, or the one
        after a message it skipped as fetched in the old generation), and then counts the
        offsets in between as processed and drops them when they arrive (faust-streaming
        issues 216, 221 and 318). So the first message after an assignment is checked
        against the committed offset the broker holds, and every later one against the
        one before it; what lies between is read from the broker and applied first
        (docs/OPERATIONS.md, Known workarounds)."""
        partition, offset = message.partition, message.offset
        expected = self._next_offset.get(partition)
        if expected is None:
            expected = await committed_offset(
                self.settings, self.app.conf.id, message.topic, partition
            )
            if expected is None or offset < expected:
                # Nothing committed (Faust reads the partition's start), or a message the
                # group committed already, delivered again: reading from it loses nothing.
                expected = offset
        if offset < expected:
            return None
        self._next_offset[partition] = offset + 1
        if offset == expected:
            return []
        self.metrics.timer_offsets_refetched.inc(offset - expected)
        log.warning(
            "partition %d: Faust delivered offset %d, expected %d: reading %d to %d from the "
            "broker first", partition, offset, expected, expected, offset - 1,
        )  # fmt: skip
        topic = self.settings.topic_normalised
        reader = read_back(self.settings, topic, partition, 0, "gap", stop=offset, start=expected)
        return [record async for record in reader]

    async def on_message(self, partition: int, value: bytes, offset: int) -> None:
        """One tick of ``partition`` (the message at ``offset``): decode, tick, persist,
        emit."""
        started = time.perf_counter()
        timers = await self._timers_for(partition, offset)
        try:
            batch = decode_batch(value)
        except (ValueError, KeyError, TypeError) as exc:
            raise CorruptBatch(str(exc)) from exc
        for input_partition, watermark_ms in batch.watermarks.items():
            timers.watermarks.report(input_partition, watermark_ms)
        now_ms = self.clock.now_ms()
        watermark = timers.watermarks.value()
        events = batch.events
        tick = timers.scheduler.tick(events, watermark, self.policy, now_ms)
        tp = TopicPartition(self.settings.topic_normalised, partition)
        if not self.ownership.quiet() and not await self.ownership.holds(tp):
            # Stood still during the tick and lost the partition: nothing of the tick is
            # written (the table keeps the states as they were before it) or emitted; the
            # new owner applies the message again.
            return
        store = cast(TableStore, timers.scheduler.store)
        for key, state, deadline_ms in tick.persist:
            store.put(key, state, deadline_ms)
        for key in tick.expired:
            store.remove(key)  # a tombstone on the changelog
        await self._write_changelog(partition, store.take_changes())
        timers.account(events, tick)
        observe_delay = self.metrics.processing_delay.observe
        for event in events:
            observe_delay(max(0, now_ms - event.occurred_at) / 1000)
        for refused in tick.refused:
            self.metrics.timer_errors.inc()
            log.error(
                "skipped event %s of %s on normalised partition %d: %s",
                refused.event.event_id, refused.event.key, partition, refused.reason,
            )  # fmt: skip
        if tick.expired:
            self.metrics.states_expired.inc(len(tick.expired))
        if tick.too_old:
            self.metrics.events_after_retention.inc(len(tick.too_old))
            first = tick.too_old[0]
            log.warning(
                "refused %d event(s) on normalised partition %d older than the state retention "
                "(%.0fs) about conversations not held, e.g. %s of %s at %d",
                len(tick.too_old), partition, self.settings.state_retention_s, first.event_id,
                first.key, first.occurred_at,
            )  # fmt: skip
        if watermark is not None:
            self.metrics.watermark_lag.set(max(0.0, (now_ms - watermark) / 1000))
        await self._emit(timers, partition, tick.effects, now_ms)
        timers.last_offset, timers.last_applied_ms = offset, time.time_ns() // 1_000_000
        self.metrics.timer_events.inc(len(batch.events))
        self.metrics.timer_batch_seconds.observe(time.perf_counter() - started)

    async def _write_changelog(
        self, partition: int, changes: list[tuple[bytes, bytes | None]]
    ) -> None:
        """Send a tick's changed states (and tombstones: a value of None) to the
        changelog's ``partition``, in order, straight to the producer (one aiokafka batch
        fills up; no Faust buffer, no task per record).
        """
        if not changes:
            return
        send, watch = self.app.producer.send, self.deliveries.watch
        what = f"a record of {self.changelog}[{partition}]"
        for key, value in changes:
            # aiokafka's send answers an asyncio future (Faust types it as an Awaitable).
            future = cast(Future, await send(self.changelog, key, value, partition, None, None))
            watch(future, what)
        # A RocksDB store remembers the last changelog offset it holds (Faust's recovery
        # reads only what comes after it); the memory store ignores it.
        future.add_done_callback(self._persisted)

    def _persisted(self, future: Future[Any]) -> None:
        if not future.cancelled() and future.exception() is None:
            metadata = future.result()
            store = cast(Any, self.table.data)  # a Faust store: memory or RocksDB
            store.set_persisted_offset(metadata.topic_partition, metadata.offset)

    async def _emit(
        self, timers: PartitionTimers, partition: int, effects: list[SlaEvent], now_ms: int
    ) -> None:
        window_ms = int(self.settings.emitted_window_s * 1000)
        late_after_ms = int(self.settings.late_after_s * 1000)
        producer = self.app.producer
        topic = self.settings.topic_sla_events
        tp = TopicPartition(self.settings.topic_normalised, partition)
        for effect in effects:
            if not self.ownership.quiet() and not await self.ownership.holds(tp):
                break  # stood still meanwhile and lost the partition: its new owner emits
            event_id = effect.event_id
            if event_id in timers.emitted:
                self.metrics.sla_duplicates_suppressed.inc()
                continue
            record = to_record(effect, late_after_ms=late_after_ms)
            # Straight to the app's producer (Topic.send builds a future and a message
            # object per record). Faust flushes this producer before it commits the input
            # offsets, and a send that failed fails that flush (streams/deliveries.py), so
            # delivery stays at least once.
            body = encode(record)
            sent = await producer.send(topic, event_id.encode(), body, partition, None, None)
            self.deliveries.watch(cast(Future, sent), f"SLA event {event_id}")
            if effect.kind in _WALLBOARD_KINDS:
                timers.note(orjson.loads(body))
            timers.remember(event_id, now_ms, window_ms)
            self.metrics.count_sla_event(effect)
        self._update_gauges()

    def _count_call(
        self, queue: str, wait_ms: int, answered: bool, settings: QueueSettings
    ) -> None:
        """A call left ``queue``: the KPI counters (each call once, by the worker that
        applied its exit; rebuilt partitions count nothing again)."""
        (label,) = self.metrics.queue_label.labels_of((queue,))
        outcome = "answered" if answered else "abandoned"
        metrics = self.metrics
        metrics.queue_calls.labels(label, outcome).inc()
        metrics.queue_wait.labels(label, outcome).inc(wait_ms / 1000)
        if wait_ms <= settings.target_ms:
            metrics.queue_calls_within.labels(label, outcome).inc()
        if not answered and wait_ms < settings.short_abandon_ms:
            metrics.queue_short_abandoned.labels(label).inc()

    # --- the live views (read by the /metrics collector and the wallboard) ------------------

    def censuses(self) -> list[CycleCensus]:
        return [timers.census for timers in list(self.partitions.values())]

    def kpi_snapshots(self) -> list[KpiSnapshot]:
        now_ms = self.clock.now_ms()
        return [timers.kpis.snapshot(now_ms) for timers in list(self.partitions.values())]

    def queue_settings(self, queue: str | None) -> QueueSettings:
        return self.policy.queue_settings(queue)

    def held(self) -> dict[int, PartitionTimers]:
        """The partitions this worker holds now (the wallboard's publisher reads them)."""
        return dict(self.partitions)

    def measure_lag(self) -> None:
        """Set the timers' consumer lag (normalised messages not yet read) per topic."""
        consumer = self.app.consumer
        topic = self.settings.topic_normalised
        lag = 0
        for tp in consumer.assignment():
            if tp.topic != topic:
                continue
            try:
                highwater = consumer.highwater(tp)
            except Exception:  # noqa: BLE001 - no fetch yet for this partition
                continue
            # Faust's own bookkeeping: the last offset the agent took, else the committed one.
            offsets = cast(Any, consumer)
            read = offsets._read_offset.get(tp)
            position = read + 1 if read is not None else offsets._committed_offset.get(tp)
            if highwater is not None and position is not None:
                lag += max(0, highwater - position)
        self.metrics.consumer_lag.labels(self.app.conf.id, topic).set(lag)

    def reconfigure_kpis(self, policy: SlaPolicy) -> None:
        """A new policy: every partition's KPIs judge calls against its queue settings."""
        for timers in self.partitions.values():
            timers.kpis.reconfigure(policy.queue_defaults, policy.queues)

    def _update_gauges(self) -> None:
        self.metrics.timer_queue.set(sum(len(t.scheduler) for t in self.partitions.values()))
        self.metrics.conversations.set(
            sum(cast(TableStore, t.scheduler.store).held for t in self.partitions.values())
        )
