"""The SLA log sink: folds the ``sla-events`` topic into the SLA log store, a row per cycle.

It reads ``sla-events`` in a consumer group of its own (``<app_id>-log-sink``), so it
keeps its own place in the topic whatever the notifier does. Per polled batch:

1. decode each record with the SLA event contract (a record that is not one is skipped,
   counted and logged: the topic is slawatch's own, there is no dead-letter for it);
2. fold the batch per cycle (:class:`~slawatch.schemas.cycle_log.CycleRecord`), read the
   rows the store already holds for those cycles, fold them in, and write the result in
   one transaction;
3. only then commit the batch's offsets (the next batch is read and decoded meanwhile).

The fold is order-free and idempotent, so a batch written twice (a crash between the
write and the commit, a rebalance, a replay of the topic from its start) changes
nothing. The store is synchronous (SQLAlchemy) and runs in one thread of its own, never
on the event loop. While the database is unreachable the sink retries the same batch with
a growing pause: one log line when it goes, one when it is back, and
``slawatch_log_sink_store_up`` at 0 meanwhile. Nothing is committed that is not stored.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TypeVar

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import CommitFailedError, KafkaError
from mode import Service

from slawatch.config.kafka_security import kafka_client_options
from slawatch.config.settings import Settings
from slawatch.core.clock import Clock
from slawatch.logsink.metrics import LogSinkMetrics
from slawatch.reports.errors import LogStoreError
from slawatch.reports.folding import write_cycles
from slawatch.reports.store import LogStore
from slawatch.schemas.cycle_log import CycleKey, CycleRecord
from slawatch.schemas.sla_events import SlaEventRecord, decode_sla_event

log = logging.getLogger(__name__)
T = TypeVar("T")

#: The longest pause between two attempts at a batch the database refused.
MAX_RETRY_S = 5.0


def fold_batch(
    records: Sequence[SlaEventRecord], refused: Callable[[SlaEventRecord, Exception], None]
) -> list[CycleRecord]:
    """The cycles ``records`` speak of, each folded from its records; a record the fold
    cannot read (a time that is no time, say) goes to ``refused`` and is left out."""
    folded: dict[CycleKey, CycleRecord] = {}
    for record in records:
        key = (record.conversation_key, record.metric, record.cycle)
        cycle = folded.get(key)
        try:
            if cycle is None:
                folded[key] = CycleRecord.of_event(record)
            else:
                cycle.add(record)
        except (ValueError, TypeError, KeyError) as exc:
            refused(record, exc)
    return list(folded.values())


@dataclass(slots=True)
class _Write:
    """A batch being written: the write, the offsets to commit after it, when it began."""

    done: asyncio.Future[bool]
    offsets: dict[TopicPartition, int]
    started: float


class LogSink(Service):
    """One sink: a consumer of ``sla-events`` and a :class:`LogStore`."""

    def __init__(self, settings: Settings, metrics: LogSinkMetrics, clock: Clock) -> None:
        super().__init__()
        self.settings = settings
        self.metrics = metrics
        self.clock = clock
        self.group_id = f"{settings.app_id}-log-sink"
        self.consumer: AIOKafkaConsumer | None = None
        self.store: LogStore | None = None
        self.store_failing = False
        self.written_batches = 0
        #: The write in progress, if any (on_stop waits for it before closing the store).
        self._writing: asyncio.Future[bool] | None = None
        #: One thread: the store's calls run one after another, off the event loop.
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="log-store")

    async def on_start(self) -> None:
        s = self.settings
        self.store = await self._in_thread(
            lambda: LogStore.open(str(s.log_store), migrate=s.log_store_migrate)
        )
        self.metrics.store_up.set(1)
        self.consumer = AIOKafkaConsumer(
            bootstrap_servers=s.bootstrap_servers,
            **kafka_client_options(s),
            group_id=self.group_id,
            client_id=f"{s.app_id}-log-sink-{s.worker_id}",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_records=s.log_sink_max_records,
            fetch_max_wait_ms=s.fetch_max_wait_ms,
            session_timeout_ms=int(s.broker_session_timeout_s * 1000),
            heartbeat_interval_ms=int(s.broker_heartbeat_interval_s * 1000),
            rebalance_timeout_ms=int(s.broker_rebalance_timeout_s * 1000),
        )
        await self.consumer.start()
        self.consumer.subscribe([s.topic_sla_events])
        log.info("log sink: SLA events into %s", self.store.url)

    async def on_stop(self) -> None:
        if self._writing is not None:  # let the last write end (it commits nothing now)
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await self._writing
        if self.consumer is not None:
            await self.consumer.stop()
        if self.store is not None:
            store, self.store = self.store, None
            await self._in_thread(store.close)
        self._thread.shutdown(wait=True)

    async def _in_thread(self, call: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._thread, call)

    @Service.task
    async def _sink_forever(self) -> None:
        """Read, decode, write, commit; the next batch is read and decoded while the last
        one is written (the store's thread mostly waits on the database then), and its
        offsets are committed only once that write is done."""
        assert self.consumer is not None
        consumer = self.consumer
        topic = self.settings.topic_sla_events
        writing: _Write | None = None
        while not self.should_stop:
            try:
                batch = await consumer.getmany(
                    timeout_ms=200 if writing is None else 0,
                    max_records=self.settings.log_sink_max_records,
                )
            except KafkaError as exc:
                log.warning("log sink: cannot read %s: %s", topic, exc)
                batch = {}
                if writing is None:
                    await self.sleep(1.0)
            if batch:
                started = time.perf_counter()
                records = [
                    record
                    for tp, messages in batch.items()
                    for message in messages
                    if (record := self._decode(message.value, tp, message.offset)) is not None
                ]
                offsets = {tp: messages[-1].offset + 1 for tp, messages in batch.items()}
            if writing is not None:
                if not await writing.done:
                    return  # stopping: nothing committed that is not written
                await self._commit(consumer, writing)
                writing = None
            if batch:
                done = self._writing = asyncio.ensure_future(self._write(records))
                writing = _Write(done, offsets, started)

    async def _commit(self, consumer: AIOKafkaConsumer, written: _Write) -> None:
        try:
            await consumer.commit(written.offsets)
        except (CommitFailedError, KafkaError) as exc:
            # A rebalance took the partitions: their new holder writes the batch again,
            # folded into what is stored, which changes nothing.
            log.info("log sink: offsets not committed (%s)", type(exc).__name__)
        self.written_batches += 1
        self.metrics.batch_seconds.observe(time.perf_counter() - written.started)
        await self._measure_lag(consumer)

    def _decode(
        self, value: bytes | None, tp: TopicPartition, offset: int
    ) -> SlaEventRecord | None:
        try:
            return decode_sla_event(value)
        except Exception as exc:  # noqa: BLE001 - whatever is wrong, the record is skipped
            self.metrics.records.labels("unreadable").inc()
            log.warning(
                "log sink: %s/%d@%d is not an SLA event record (%s: %s); skipped",
                tp.topic, tp.partition, offset, type(exc).__name__, exc,
            )  # fmt: skip
            return None

    async def _write(self, records: list[SlaEventRecord]) -> bool:
        """Fold ``records`` into the store, retrying until it takes them; False when the
        sink stops first."""
        store = self.store
        assert store is not None
        pause = 0.1
        while not self.should_stop:
            try:
                written, refused = await self._in_thread(
                    lambda: self._fold_and_upsert(store, records)
                )
            except LogStoreError as exc:
                if not self.store_failing:
                    self.store_failing = True
                    self.metrics.store_up.set(0)
                    log.error("log sink: %s; SLA events wait until it answers", exc)
                await self.sleep(pause)
                pause = min(pause * 2, MAX_RETRY_S)
                continue
            if self.store_failing:
                self.store_failing = False
                self.metrics.store_up.set(1)
                log.info("log sink: %s answers again; waiting SLA events written", store.url)
            for record, error in refused:
                self.metrics.records.labels("unreadable").inc()
                log.warning(
                    "log sink: %s cannot be folded (%s: %s); skipped",
                    record.event_id, type(error).__name__, error,
                )  # fmt: skip
            self.metrics.records.labels("stored").inc(len(records) - len(refused))
            self.metrics.rows.inc(written)
            return True
        return False

    def _fold_and_upsert(
        self, store: LogStore, records: list[SlaEventRecord]
    ) -> tuple[int, list[tuple[SlaEventRecord, Exception]]]:
        """In the store's thread: fold, write; the rows written and the records refused."""
        refused: list[tuple[SlaEventRecord, Exception]] = []
        cycles = fold_batch(records, lambda record, exc: refused.append((record, exc)))
        now_ms = self.clock.now_ms()
        try:
            return write_cycles(store, cycles, now_ms), refused
        except LogStoreError:
            raise  # the database is away: the whole batch waits
        except Exception:  # a row the database refuses must not stall the rest
            log.exception("log sink: the database refused a batch; writing it cycle by cycle")
        written = 0
        for cycle in cycles:
            try:
                written += write_cycles(store, [cycle], now_ms)
            except LogStoreError:
                raise
            except Exception as exc:  # noqa: BLE001 - this cycle's records are skipped
                refused += [(r, exc) for r in records if (r.conversation_key, r.metric,
                                                          r.cycle) == cycle.key]  # fmt: skip
        return written, refused

    async def _measure_lag(self, consumer: AIOKafkaConsumer) -> None:
        """SLA events on the partitions held not yet written: the last fetch's high
        watermark (what the broker said with the data) minus the position."""
        self.metrics.lag.clear()  # partitions a rebalance took are not this sink's to show
        for tp in consumer.assignment():
            highwater = consumer.highwater(tp)
            if highwater is None:
                continue
            with contextlib.suppress(Exception):  # revoked meanwhile: shown next time
                position = await consumer.position(tp)
                self.metrics.lag.labels(str(tp.partition)).set(max(0, highwater - position))
