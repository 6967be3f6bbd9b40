"""The notifier: SLA events in, notifications out, each to its receiver once.

It reads ``sla-events`` in its own consumer group (``<app_id>-notifier``), so it never
holds back the SLA timers and can run inside ``slawatch worker`` or alone
(``slawatch notifier``), as many as there are partitions. Three kinds of loop:

1. **Plan** (one per process): a polled batch of SLA events is planned against the
   stored alert states (slawatch/alerting/escalation.py); the new states, their wake
   times and the notifications go to Redis at once (one script; slawatch/alerting/
   store.py), and only then are the batch's offsets committed. A crash before the write
   re-reads the batch and plans it again; a crash after it re-reads a batch whose
   notifications the states already hold, so nothing is queued twice. A partition given
   to another notifier meanwhile is not written (its new holder plans it).
2. **Wake** (one per process): every ``TICK_S`` the cycles of this process's partitions
   whose delayed step or repeat is due are ticked, and written back the same way.
3. **Deliver** (one per receiver): due notifications are claimed from the receiver's
   outbox with a lease (renewed while the round runs), sent through its sender
   (slawatch/alerting/senders/) in planning order, a resolve never before its trigger,
   and logged as delivered; a claim skips anything already logged. A failed attempt is
   retried with exponential backoff and jitter, and dead-lettered after the receiver's
   ``max_attempts`` or at once when the receiver refuses it for good (a batch refused
   for good is retried one notification at a time). A token bucket per receiver (in
   Redis, so shared by every notifier) keeps to its rate: when more is due than the
   bucket allows, Slack and e-mail get one digest, PagerDuty one digest incident
   (resolved by the last of its cycles to end); the others wait for tokens.

Redis down: nothing is committed, claimed or dropped; every loop retries with backoff,
``slawatch_notifier_redis_up`` reads 0 and one log line says so (and one when it is back).
A delivery whose "delivered" mark cannot be written is kept in memory and written when
Redis returns. The one window left: a process killed between a receiver's
acknowledgement and the mark re-sends what its round held for that receiver (one claim),
after the lease (``timeout`` + 5 s). Alertmanager, PagerDuty and signed webhooks deduplicate
by alert, ``dedup_key`` and ``Idempotency-Key``; Slack and e-mail may show it twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar

import orjson
import redis.asyncio as aioredis
from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import CommitFailedError, KafkaError
from mode import Service
from redis.exceptions import RedisError

from slawatch.alerting.channels.pagerduty import digest_key
from slawatch.alerting.codec import CodecError, decode_note, encode_note, record_from
from slawatch.alerting.config import RoutingConfig, RoutingFileError, load_routing
from slawatch.alerting.escalation import (
    ENDING_KINDS,
    AlertState,
    Notification,
    Plan,
    cycle_id_of,
    plan,
    tick,
)
from slawatch.alerting.metrics import NotifierMetrics
from slawatch.alerting.receivers import Receiver
from slawatch.alerting.senders import sender_for
from slawatch.alerting.senders.base import Outcome, Sender
from slawatch.alerting.senders.pagerduty import PagerDutySender
from slawatch.alerting.store import AlertStore, PlannedCycle
from slawatch.config.kafka_security import kafka_client_options
from slawatch.config.settings import Settings
from slawatch.core.clock import Clock
from slawatch.core.timestamps import parse_timestamp_ms
from slawatch.schemas.sla_events import SlaEventRecord
from slawatch.streams.compat import leave_group_at_generation_zero

log = logging.getLogger(__name__)
T = TypeVar("T")

#: How often due delayed steps and repeats are looked for.
TICK_S = 0.25
#: How often the routing file is checked for changes.
RELOAD_S = 2.0
#: Most SLA events planned in one transaction.
MAX_POLL_RECORDS = 1000
#: Most notifications one claim takes (a digest holds at most this many).
MAX_CLAIM = 100
#: Sends in flight to one receiver at once.
MAX_IN_FLIGHT = 16
#: Backoff between attempts: from 1 s, doubling, to 5 minutes, with jitter.
BACKOFF_BASE_S = 1.0
BACKOFF_CAP_S = 300.0
#: Seconds without a Redis failure before an outage is declared over.
REDIS_SETTLE_S = 1.0
#: A claim's lease beyond the receiver's timeout.
LEASE_MARGIN_MS = 5_000


def backoff_s(attempts: int, rng: random.Random) -> float:
    """The wait after ``attempts`` failed attempts: half of the doubled base, plus up to
    as much again at random (so notifiers that failed together do not retry together)."""
    base = min(BACKOFF_CAP_S, BACKOFF_BASE_S * 2 ** max(attempts - 1, 0))
    return base / 2 + rng.uniform(0, base / 2)


def bucket_capacity(rate_per_minute: int) -> int:
    """A receiver's burst: five seconds' worth of its rate, at least one message."""
    return max(1, rate_per_minute // 12)


class _Partitions(ConsumerRebalanceListener):
    """The ``sla-events`` partitions this notifier holds."""

    def __init__(self) -> None:
        self.held: set[int] = set()

    async def on_partitions_revoked(self, revoked: Any) -> None:
        self.held -= {tp.partition for tp in revoked}

    async def on_partitions_assigned(self, assigned: Any) -> None:
        self.held = {tp.partition for tp in assigned}


class Notifier(Service):
    """One notifier: the plan, wake and deliver loops over a routing file."""

    def __init__(
        self,
        settings: Settings,
        routing: RoutingConfig,
        metrics: NotifierMetrics,
        clock: Clock,
        *,
        routing_path: Path | None = None,
        senders: Callable[[Receiver, str | None], Sender] | None = None,
        rng: random.Random | None = None,
    ) -> None:
        super().__init__()
        self.settings = settings
        self.routing = routing
        self.routing_path = routing_path
        self.metrics = metrics
        self.clock = clock
        self.rng = rng or random.Random()
        self._make_sender = senders or (lambda r, link: sender_for(r, link_template=link))
        self.partitions = _Partitions()
        self.consumer: AIOKafkaConsumer | None = None
        self.client: aioredis.Redis | None = None
        self.store: AlertStore | None = None
        self.senders: dict[str, Sender] = {}
        self._deliverers: dict[str, asyncio.Task[None]] = {}
        #: True while the service runs its delivery loops (from start to stop): a reload
        #: starts a loop for a new receiver only then. A notifier whose steps are called
        #: by hand (tests, benchmarks) gets the sender and delivers itself.
        self._delivering = False
        self._kicks: dict[str, asyncio.Event] = defaultdict(asyncio.Event)
        #: Per receiver: what the current round gave back (its lease is not renewed).
        self._released: dict[str, set[str]] = defaultdict(set)
        #: Per receiver: what the current round must send alone (its batch failed).
        self._alone: dict[str, set[str]] = defaultdict(set)
        self._lock = asyncio.Lock()
        self._redis_failing = False
        self._last_redis_failure = 0.0
        self._routing_mtime: float | None = None
        self.planned_batches = 0

    @property
    def group_id(self) -> str:
        return f"{self.settings.app_id}-notifier"

    def holds(self, partition: int) -> bool:
        """True while this notifier holds ``partition`` of ``sla-events`` (always, when it
        reads no topic: the steps driven by a test or a benchmark). A plan or tick of a
        partition taken away meanwhile is not written: its new holder plans it again
        from the stored states, and a late write would undo its work."""
        return self.consumer is None or partition in self.partitions.held

    @property
    def redis_failing(self) -> bool:
        """True while Redis is unreachable (everything waits)."""
        return self._redis_failing

    # --- life -----------------------------------------------------------------------------

    async def on_start(self) -> None:
        leave_group_at_generation_zero()
        s = self.settings
        self.connect_redis()
        self.consumer = AIOKafkaConsumer(
            bootstrap_servers=s.bootstrap_servers,
            **kafka_client_options(s),
            group_id=self.group_id,
            client_id=f"{s.app_id}-notifier-{s.worker_id}",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_records=MAX_POLL_RECORDS,
            fetch_max_wait_ms=s.fetch_max_wait_ms,
            session_timeout_ms=int(s.broker_session_timeout_s * 1000),
            heartbeat_interval_ms=int(s.broker_heartbeat_interval_s * 1000),
            rebalance_timeout_ms=int(s.broker_rebalance_timeout_s * 1000),
        )
        await self.consumer.start()
        self.consumer.subscribe([s.topic_sla_events], listener=self.partitions)
        if self.routing_path is not None:
            with contextlib.suppress(OSError):
                self._routing_mtime = self.routing_path.stat().st_mtime
        self.build_senders()
        for name in self.senders:
            self._deliverers[name] = asyncio.ensure_future(self._deliver_forever(name))
        self._delivering = True
        log.info("notifier: %s", self.routing.summary())

    def connect_redis(self) -> None:
        """Make the Redis client and the store (connections open on first use)."""
        s = self.settings
        self.client = aioredis.Redis.from_url(
            str(s.redis_url), socket_timeout=5.0, socket_connect_timeout=2.0
        )
        self.store = AlertStore(self.client, s.app_id, retention_s=int(s.alert_retention_s))
        self.metrics.redis_up.set(1)

    def build_senders(self) -> None:
        """One sender per receiver of the routing in use."""
        for name, receiver in self.routing.receivers.items():
            self.senders[name] = self._make_sender(receiver, self.routing.link_template)

    async def on_stop(self) -> None:
        self._delivering = False
        for task in self._deliverers.values():
            task.cancel()
        for task in self._deliverers.values():
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for sender in self.senders.values():
            with contextlib.suppress(Exception):
                await sender.close()
        if self.consumer is not None:
            await self.consumer.stop()
        await self.close_redis()

    async def close_redis(self) -> None:
        if self.client is not None:
            await self.client.aclose()
            self.client = None

    async def _stop_deliverer(self, name: str) -> None:
        task = self._deliverers.pop(name, None)
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        sender = self.senders.pop(name, None)
        if sender is not None:
            with contextlib.suppress(Exception):
                await sender.close()

    # --- Redis, retried -------------------------------------------------------------------

    async def _redis(self, what: str, call: Callable[[], Awaitable[T]]) -> T:
        """``call()`` until it succeeds: Redis errors are waited out, never skipped.

        The first failure says Redis is unreachable (one log line, the gauge to 0); only
        the gauges loop says it is back, after a second without failures, so a Redis
        going down or coming up, with some connections answering and some not, makes
        one line each way."""
        delay = 0.1
        while True:
            try:
                return await call()
            except (RedisError, OSError) as exc:
                self._last_redis_failure = time.monotonic()
                if not self._redis_failing:
                    self._redis_failing = True
                    self.metrics.redis_up.set(0)
                    log.error(
                        "notifier: Redis unreachable (%s while %s): SLA events and "
                        "notifications wait until it returns",
                        type(exc).__name__,
                        what,
                    )
                if self.should_stop:
                    raise
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)

    async def _check_redis_back(self) -> None:
        """After an outage: Redis answers, and nothing failed for a second."""
        client = self.client
        if not self._redis_failing or client is None:
            return
        if time.monotonic() - self._last_redis_failure < REDIS_SETTLE_S:
            return
        try:
            await client.ping()
        except (RedisError, OSError):
            self._last_redis_failure = time.monotonic()
            return
        self._redis_failing = False
        self.metrics.redis_up.set(1)
        log.info("notifier: Redis reachable again; waiting notifications go out")

    # --- plan -----------------------------------------------------------------------------

    @Service.task
    async def _plan_forever(self) -> None:
        assert self.consumer is not None
        consumer = self.consumer
        while not self.should_stop:
            try:
                batch = await consumer.getmany(timeout_ms=100, max_records=MAX_POLL_RECORDS)
            except KafkaError as exc:
                log.warning("notifier: cannot read %s: %s", self.settings.topic_sla_events, exc)
                await self.sleep(1.0)
                continue
            if not batch:
                continue
            records: list[tuple[int, SlaEventRecord]] = []
            for tp, messages in batch.items():
                for message in messages:
                    record = self._decode(message.value, tp, message.offset)
                    if record is not None:
                        records.append((tp.partition, record))
            try:
                await self.plan_records(records)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("notifier: planning a batch failed; reading it again in 1 s")
                for tp, messages in batch.items():
                    with contextlib.suppress(Exception):
                        consumer.seek(tp, messages[0].offset)
                await self.sleep(1.0)
                continue
            offsets = {tp: messages[-1].offset + 1 for tp, messages in batch.items()}
            try:
                await consumer.commit(offsets)
            except (CommitFailedError, KafkaError) as exc:
                # A rebalance took the partitions: their new holder plans the batch again,
                # against the states written above, so it sends nothing twice.
                log.info("notifier: offsets not committed (%s)", type(exc).__name__)
            self.planned_batches += 1

    def _decode(
        self, value: bytes | None, tp: TopicPartition, offset: int
    ) -> SlaEventRecord | None:
        try:
            record = record_from(orjson.loads(value or b""))
            _check_record(record)
            return record
        except Exception as exc:  # noqa: BLE001 - whatever is wrong, the record is skipped
            self.metrics.sla_events.labels("unreadable").inc()
            log.warning(
                "notifier: %s/%d@%d is not an SLA event record (%s); skipped",
                tp.topic,
                tp.partition,
                offset,
                type(exc).__name__,
            )
            return None

    async def plan_records(self, records: Sequence[tuple[int, SlaEventRecord]]) -> None:
        """Plan ``records`` (partition, record) in order and store the outcome."""
        if not records:
            return
        async with self._lock:
            store = self.store
            assert store is not None
            cycles = list(dict.fromkeys(cycle_id_of(r.event_id) for _, r in records))
            states: dict[str, AlertState | None] = dict(
                await self._redis("reading alert states", lambda: store.states(cycles))
            )
            records = self._recent(records, states)
            now_ms = self.clock.now_ms()
            notes: dict[str, list[Notification]] = defaultdict(list)
            partition_of: dict[str, int] = {}
            for partition, record in records:
                cycle = cycle_id_of(record.event_id)
                try:
                    planned = plan(self.routing, states.get(cycle), record, now_ms)
                except Exception:  # one record never stops the notifier
                    self.metrics.sla_events.labels("failed").inc()
                    log.exception("notifier: cannot plan %s; skipped", record.event_id)
                    continue
                self.metrics.sla_events.labels("routed").inc()
                states[cycle] = planned.state
                notes[cycle].extend(planned.notifications)
                partition_of[cycle] = partition
            await self._commit(
                [
                    PlannedCycle(state, partition_of[cycle], notes[cycle])
                    for cycle, state in states.items()
                    if state is not None
                    and cycle in partition_of
                    and self.holds(partition_of[cycle])
                ],
                now_ms,
            )

    def _recent(
        self,
        records: Sequence[tuple[int, SlaEventRecord]],
        states: Mapping[str, AlertState | None],
    ) -> Sequence[tuple[int, SlaEventRecord]]:
        """``records`` less those decided longer than ``alert_max_age_s`` ago (a first
        start, or a return from a long outage, reads history): none of them raises an
        alert, and only the end of a cycle that did raise one is planned (its resolve)."""
        oldest_ms = self.clock.now_ms() - int(self.settings.alert_max_age_s * 1000)
        kept = [
            (p, r)
            for p, r in records
            if parse_timestamp_ms(r.detected_at) >= oldest_ms
            or (r.kind in ENDING_KINDS and states.get(cycle_id_of(r.event_id)) is not None)
        ]
        if len(kept) < len(records):
            self.metrics.sla_events.labels("too_old").inc(len(records) - len(kept))
            log.info(
                "notifier: %d SLA event(s) decided more than %gs ago not alerted (alert_max_age_s)",
                len(records) - len(kept),
                self.settings.alert_max_age_s,
            )
        return kept

    async def _commit(self, planned: list[PlannedCycle], now_ms: int) -> None:
        store = self.store
        assert store is not None
        if not planned:
            return
        await self._redis("writing alert states", lambda: store.commit(planned, now_ms))
        for p in planned:
            for note in p.notifications:
                receiver = self.routing.receivers.get(note.receiver)
                channel = receiver.type if receiver else "unknown"
                self.metrics.queued.labels(note.receiver, channel, note.kind).inc()
                self._kicks[note.receiver].set()

    # --- wake -----------------------------------------------------------------------------

    @Service.task
    async def _wake_forever(self) -> None:
        while not self.should_stop:
            await self.sleep(TICK_S)
            for partition in sorted(self.partitions.held):
                try:
                    await self.wake(partition)
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.exception("notifier: waking partition %d failed", partition)

    async def wake(self, partition: int) -> None:
        """Tick every cycle of ``partition`` whose wake time has come."""
        store = self.store
        assert store is not None
        async with self._lock:
            now_ms = self.clock.now_ms()
            due = await self._redis(
                "reading due alerts", lambda: store.due_cycles(partition, now_ms, 1000)
            )
            if not due:
                return
            states = await self._redis("reading alert states", lambda: store.states(due))
            planned = []
            gone = []  # expired or unreadable states: nothing waits for them
            for cycle in due:
                state = states.get(cycle)
                if state is None:
                    gone.append(cycle)
                    continue
                try:
                    result = tick(self.routing, state, now_ms)
                except Exception:
                    log.exception("notifier: cannot tick %s; its timers are dropped", cycle)
                    result = Plan(replace(state, timers=()), ())
                planned.append(PlannedCycle(result.state, partition, result.notifications))
            if not self.holds(partition):  # taken meanwhile: its new holder ticks it
                return
            await self._commit(planned, now_ms)
            if gone:
                await self._redis(
                    "dropping wake times",
                    lambda: store.redis.zrem(store.wake_key(partition), *gone),
                )

    # --- deliver --------------------------------------------------------------------------

    async def _deliver_forever(self, name: str) -> None:
        kick = self._kicks[name]
        unmarked: list[tuple[str, list[str]]] = []  # delivered, not yet logged
        while True:
            try:
                if unmarked:
                    await self._mark(name, unmarked)
                wait_s = await self.deliver_once(name, unmarked)
            except asyncio.CancelledError:
                raise
            except Exception:  # a bug in one receiver's path never stops the others
                log.exception("notifier: delivery to %r failed; trying again", name)
                wait_s = 1.0
            if wait_s > 0:
                kick.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(kick.wait(), wait_s)

    async def deliver_once(
        self, name: str, unmarked: list[tuple[str, list[str]]] | None = None
    ) -> float:
        """One round for receiver ``name``: claim what is due, send it, log it. Returns
        how long to wait before the next round (0: go on at once)."""
        store = self.store
        assert store is not None
        sender = self.senders[name]
        receiver = sender.receiver
        channel = receiver.type
        delivery = receiver.delivery
        now_ms = self.clock.now_ms()
        limit = MAX_CLAIM if sender.digests else sender.batch_size * MAX_IN_FLIGHT
        lease_ms = int(delivery.timeout_s * 1000) + LEASE_MARGIN_MS
        claimed = await self._redis(
            f"claiming notifications for {name}", lambda: store.claim(name, now_ms, limit, lease_ms)
        )
        if claimed.already_logged:
            self.metrics.notifications.labels(name, channel, "deduplicated").inc(
                claimed.already_logged
            )
        if not claimed.items:
            due = await self._redis(f"reading {name}'s outbox", lambda: store.next_due_ms(name))
            return 1.0 if due is None else min(1.0, max(0.01, (due - now_ms) / 1000))
        notes: list[tuple[Notification, int]] = []
        broken: list[str] = []
        self._alone[name] = set()
        for note_id, body in claimed.items:
            try:
                note, attempts, _queued, alone = decode_note(body)
            except CodecError as exc:
                broken.append(note_id)
                log.error("notifier: notification %s for %s unreadable: %s", note_id, name, exc)
                continue
            notes.append((note, attempts))
            if alone:
                self._alone[name].add(note.id)
        if broken:
            letters = [_letter(i, name, "unreadable notification", 0, None) for i in broken]
            await self._redis("dead-lettering", lambda: store.dead(name, broken, letters))
            self.metrics.notifications.labels(name, channel, "failed").inc(len(broken))
        if not notes:
            return 0.0
        # A cycle's resolve is the last thing its receiver gets: after its triggers in this
        # claim (times put back for the rate limit may have put it first), and behind
        # any still waiting in the outbox.
        notes.sort(key=lambda item: item[0].kind == "resolve")
        notes = await self._hold_overtaking(name, notes)
        if not notes:
            return 0.0
        done: list[str] = []  # delivered: logged together at the end of the round
        self._released[name] = set()
        held = [n.id for n, _ in notes]
        renewer = asyncio.create_task(self._renew_leases(name, held, lease_ms))
        try:
            if isinstance(sender, PagerDutySender):
                notes = await self._follow_digests(name, sender, notes, done)
            return await self._send_claimed(name, sender, notes, now_ms, done)
        finally:
            renewer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await renewer
            await self._log_delivered(name, done, unmarked)

    async def _renew_leases(self, name: str, ids: list[str], lease_ms: int) -> None:
        """While a round runs, keep the lease on what it still holds (sent or not, until
        the round logs it), so that no other notifier claims it meanwhile."""
        store = self.store
        assert store is not None
        while True:
            await asyncio.sleep(lease_ms / 3000)
            released = self._released[name]
            held = [i for i in ids if i not in released]
            with contextlib.suppress(RedisError, OSError):  # the lease runs out: retried
                await store.renew(name, held, self.clock.now_ms() + lease_ms)

    async def _send_claimed(
        self,
        name: str,
        sender: Sender,
        notes: list[tuple[Notification, int]],
        now_ms: int,
        done: list[str],
    ) -> float:
        """Send ``notes`` within the receiver's rate: alone, in batches, or as one digest
        when the rate would hold them back; put back what must wait for tokens."""
        store = self.store
        assert store is not None
        if not notes:
            return 0.0
        delivery = sender.receiver.delivery
        alone = self._alone[name]
        groups = _groups(notes, sender.batch_size, alone)
        capacity = bucket_capacity(delivery.rate_per_minute)
        granted, wait_ms = await self._redis(
            f"rate limit of {name}",
            lambda: store.take_tokens(
                name, len(groups), now_ms, delivery.rate_per_minute, capacity
            ),
        )
        digest = False
        if granted < len(groups) and sender.digests and granted >= 1:
            if isinstance(sender, PagerDutySender):
                # A PagerDuty digest is a trigger: resolves wait for tokens of their own.
                later = [n for n, _ in notes if n.kind == "resolve"]
                notes = [item for item in notes if item[0].kind != "resolve"]
                await self._put_back(name, later, now_ms + max(wait_ms, 1))
            together = [item for item in notes if item[0].id not in alone]
            groups = [[item] for item in notes if item[0].id in alone]
            groups, digest = ([*groups, together] if together else groups), True
        elif granted < len(groups):
            later = [n for group in groups[granted:] for n, _ in group]
            groups = groups[:granted]
            await self._put_back(name, later, now_ms + max(wait_ms, 1))
        if not groups:
            return max(wait_ms, 10) / 1000
        await self._send_round(name, sender, groups, digest, done)
        return 0.0

    async def _follow_digests(
        self,
        name: str,
        sender: PagerDutySender,
        notes: list[tuple[Notification, int]],
        done: list[str],
    ) -> list[tuple[Notification, int]]:
        """``notes`` less those of cycles that went to PagerDuty in a digest: a trigger or
        a repeat of one is already in the digest's open incident; its resolve takes the
        cycle out of the digest, and the last one out resolves the digest's incident."""
        store = self.store
        assert store is not None
        cycles = list(dict.fromkeys(n.cycle_id for n, _ in notes))
        threads = await self._redis(
            f"reading {name}'s digests", lambda: store.threads(name, cycles)
        )
        if not threads:
            return notes
        kept = []
        for note, attempts in notes:
            found = threads.get(note.cycle_id)
            if found is None:
                kept.append((note, attempts))
                continue
            if note.kind == "resolve":
                key, cycle = found, note.cycle_id

                async def leave(key: str = key, cycle: str = cycle) -> int:
                    return await store.leave_digest(name, key, cycle)

                async def reopen(key: str = key, cycle: str = cycle) -> None:
                    await store.open_digest(name, key, [cycle])

                if await self._redis("leaving a digest", leave) == 0:
                    outcome = await sender.resolve(key)
                    self.metrics.messages.labels(name, "pagerduty", outcome.status).inc()
                    if not outcome.delivered:  # the digest stays open, the cycle in it
                        await self._redis("reopening a digest", reopen)
                        await self._after_failure(name, sender, [(note, attempts)], outcome)
                        continue
            done.append(note.id)
            self.metrics.notifications.labels(name, "pagerduty", "digested").inc()
        return kept

    async def _send_round(
        self,
        name: str,
        sender: Sender,
        groups: list[list[tuple[Notification, int]]],
        digest: bool,
        done: list[str],
    ) -> None:
        if digest or sender.batch_size > 1:
            # One request at a time (a cycle's notifications may span two batches); what
            # follows a batch that must wait waits behind it.
            for i, group in enumerate(groups):
                retry_at = await self._attempt(name, sender, group, digest and len(group) > 1, done)
                if retry_at is not None:
                    rest = [n for later in groups[i + 1 :] for n, _ in later]
                    await self._put_back(name, rest, retry_at + 1)
                    return
            return
        # One notification a request: several cycles at once, each cycle's in order, and
        # what follows a notification that must wait waits behind it.
        chains: dict[str, list[tuple[Notification, int]]] = defaultdict(list)
        for group in groups:
            chains[group[0][0].cycle_id].append(group[0])
        semaphore = asyncio.Semaphore(MAX_IN_FLIGHT)

        async def run(chain: list[tuple[Notification, int]]) -> None:
            for i, item in enumerate(chain):
                async with semaphore:
                    retry_at = await self._attempt(name, sender, [item], digest, done)
                if retry_at is not None:
                    await self._put_back(name, [n for n, _ in chain[i + 1 :]], retry_at + 1)
                    return

        await asyncio.gather(*(run(chain) for chain in chains.values()))

    async def _log_delivered(
        self, name: str, done: list[str], unmarked: list[tuple[str, list[str]]] | None
    ) -> None:
        """Write ``done`` to the notification log; when Redis cannot take it, keep it in
        ``unmarked`` (written before the next claim) or, without one, wait for Redis."""
        store = self.store
        assert store is not None
        if not done:
            return
        if unmarked is None:
            await self._redis("logging deliveries", lambda: store.delivered(name, done))
            return
        try:
            await store.delivered(name, done)
        except (RedisError, OSError):
            unmarked.append((name, list(done)))  # written when Redis is back

    async def _put_back(self, name: str, notes: Sequence[Notification], at_ms: int) -> None:
        """Claimed notifications back to the outbox from ``at_ms``, in their order."""
        store = self.store
        assert store is not None
        back = [(n.id, None, at_ms + i / 1000) for i, n in enumerate(notes)]
        if back:
            self._released[name].update(n.id for n in notes)
            await self._redis(f"releasing {name}'s claims", lambda: store.reschedule(name, back))

    async def _hold_overtaking(
        self, name: str, notes: list[tuple[Notification, int]]
    ) -> list[tuple[Notification, int]]:
        """``notes`` without those that would overtake a notification still waiting in
        the outbox (a resolve whose trigger waits for a retry): those go back, to just
        after it."""
        store = self.store
        assert store is not None
        claimed = {n.id for n, _ in notes}
        awaited = sorted({a for n, _ in notes for a in n.after if a not in claimed})
        if not awaited:
            return notes
        waiting = await self._redis(
            f"reading {name}'s outbox", lambda: store.waiting_at(name, awaited)
        )
        if not waiting:
            return notes
        kept = []
        for note, attempts in notes:
            behind = [waiting[a] for a in note.after if a in waiting]
            if behind:
                await self._put_back(name, [note], int(max(behind)) + 1)
            else:
                kept.append((note, attempts))
        return kept

    async def _attempt(
        self,
        name: str,
        sender: Sender,
        group: list[tuple[Notification, int]],
        digest: bool,
        done: list[str],
    ) -> int | None:
        """One attempt at ``group`` (delivered ids go to ``done``); when it is to be
        tried again, the time of that."""
        store = self.store
        assert store is not None
        channel = sender.receiver.type
        now_ms = self.clock.now_ms()
        try:
            outcome = await sender.send([n for n, _ in group], now_ms)
        except Exception as exc:  # noqa: BLE001 - a sender's bug fails the attempt, not the loop
            # The type only: a library's message could hold a URL with a secret in it.
            log.error("notifier: sender for %r raised %s", name, type(exc).__name__)
            outcome = Outcome("retry", f"sender raised {type(exc).__name__}")
        self.metrics.messages.labels(name, channel, outcome.status).inc()
        ids = [n.id for n, _ in group]
        if outcome.delivered:
            done_ms = self.clock.now_ms()
            for note, _ in group:
                with contextlib.suppress(ValueError):
                    delay = done_ms - parse_timestamp_ms(note.record.detected_at)
                    self.metrics.delivery_seconds.labels(channel).observe(max(delay, 0) / 1000)
            self.metrics.notifications.labels(name, channel, "digested" if digest else "sent").inc(
                len(group)
            )
            if digest and isinstance(sender, PagerDutySender):
                key = digest_key(name, ids)
                cycles = list(dict.fromkeys(n.cycle_id for n, _ in group if n.kind != "notice"))
                await self._redis(
                    "recording a digest", lambda: store.open_digest(name, key, cycles)
                )
            done.extend(ids)
            return None
        return await self._after_failure(name, sender, group, outcome)

    async def _after_failure(
        self,
        name: str,
        sender: Sender,
        group: list[tuple[Notification, int]],
        outcome: Outcome,
    ) -> int | None:
        """Retry ``group`` after a backoff, or dead-letter it; the retry's time, if any."""
        store = self.store
        assert store is not None
        self._released.setdefault(name, set()).update(n.id for n, _ in group)
        channel = sender.receiver.type
        now_ms = self.clock.now_ms()
        if len(group) > 1 and (
            outcome.status == "failed" or outcome.detail.startswith("sender raised")
        ):
            # One of them may be what the receiver (or the sender) cannot take: each is
            # tried again alone, so the others are not dead-lettered with it.
            log.warning(
                "notifier: a batch of %d to %r failed (%s); each is tried alone",
                len(group),
                name,
                outcome.detail,
            )
            alone = [
                (n.id, encode_note(n, attempts=a, queued_ms=now_ms, alone=True), now_ms + i / 1000)
                for i, (n, a) in enumerate(group)
            ]
            await self._redis(f"rescheduling for {name}", lambda: store.reschedule(name, alone))
            self.metrics.notifications.labels(name, channel, "retried").inc(len(group))
            return now_ms
        retry: list[tuple[str, bytes | None, float]] = []
        dead: list[tuple[Notification, int]] = []
        tried = max(attempts for _, attempts in group) + 1
        wait_s = backoff_s(tried, self.rng)  # one wait for the group: it stays in order
        if outcome.retry_after_s is not None:
            wait_s = max(wait_s, outcome.retry_after_s)
        retry_at = now_ms + int(wait_s * 1000)
        for note, attempts in group:
            if outcome.status == "failed" or attempts + 1 >= sender.receiver.delivery.max_attempts:
                dead.append((note, attempts + 1))
                continue
            body = encode_note(note, attempts=attempts + 1, queued_ms=now_ms)
            retry.append((note.id, body, retry_at + len(retry) / 1000))
        if retry:
            log.warning(
                "notifier: %d notification(s) to %r not delivered (%s); retrying",
                len(retry),
                name,
                outcome.detail,
            )
            self.metrics.notifications.labels(name, channel, "retried").inc(len(retry))
            await self._redis(f"rescheduling for {name}", lambda: store.reschedule(name, retry))
        if dead:
            log.error(
                "notifier: %d notification(s) to %r dead-lettered after %d attempt(s): %s",
                len(dead),
                name,
                max(t for _, t in dead),
                outcome.detail,
            )
            letters = [_letter(n.id, name, outcome.detail, t, n) for n, t in dead]
            dead_ids = [n.id for n, _ in dead]
            await self._redis("dead-lettering", lambda: store.dead(name, dead_ids, letters))
            self.metrics.notifications.labels(name, channel, "failed").inc(len(dead))
        return retry_at if retry else None

    async def _mark(self, name: str, unmarked: list[tuple[str, list[str]]]) -> None:
        store = self.store
        assert store is not None
        while unmarked:
            receiver, ids = unmarked[0]

            async def log_them(receiver: str = receiver, ids: list[str] = ids) -> None:
                await store.delivered(receiver, ids)

            await self._redis("logging deliveries", log_them)
            unmarked.pop(0)

    # --- gauges and reload ----------------------------------------------------------------

    @Service.task
    async def _gauges_forever(self) -> None:
        store = self.store
        assert store is not None
        while not self.should_stop:
            await self.sleep(1.0)
            await self._check_redis_back()
            if self._redis_failing:
                continue
            try:
                counts = await store.waiting(self.routing.receivers)
            except (RedisError, OSError):
                continue
            for name, count in counts.items():
                self.metrics.waiting.labels(name, self.routing.receivers[name].type).set(count)

    @Service.task
    async def _reload_forever(self) -> None:
        while not self.should_stop:
            await self.sleep(RELOAD_S)
            if self.routing_path is not None:
                try:
                    await self.reload_if_changed()
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.exception("notifier: reloading the routing failed; keeping it")

    async def reload_if_changed(self) -> bool:
        """Read the routing file again when it changed; a file with problems is refused
        (one log line each) and the routing in use stays. True when a new one applies."""
        path = self.routing_path
        if path is None:
            return False
        try:
            mtime = path.stat().st_mtime
        except OSError as exc:
            if self._routing_mtime is not None:
                log.error("notifier: routing file %s: %s; keeping the routing in use", path, exc)
                self._routing_mtime = None
                self.metrics.routing_reloads.labels("refused").inc()
            return False
        if mtime == self._routing_mtime:
            return False
        self._routing_mtime = mtime
        try:
            routing = await asyncio.to_thread(load_routing, path)
        except RoutingFileError as exc:
            self.metrics.routing_reloads.labels("refused").inc()
            for line in exc.lines():
                log.error("notifier: routing not reloaded: %s", line)
            return False
        async with self._lock:
            old = self.routing
            for name in list(self.senders):
                if routing.receivers.get(name) != old.receivers.get(name) or (
                    routing.link_template != old.link_template
                ):
                    await self._stop_deliverer(name)
            self.routing = routing
            for name, receiver in routing.receivers.items():
                if name not in self.senders:
                    self.senders[name] = self._make_sender(receiver, routing.link_template)
                    if self._delivering:
                        self._deliverers[name] = asyncio.ensure_future(self._deliver_forever(name))
        removed = sorted(set(old.receivers) - set(routing.receivers))
        if removed:
            log.warning(
                "notifier: receivers %s are gone from the routing; what waits for them stays "
                "in Redis until they come back",
                ", ".join(removed),
            )
        self.metrics.routing_reloads.labels("loaded").inc()
        log.info("notifier: routing reloaded from %s: %s", path, routing.summary())
        return True


_TEXT_FIELDS = ("event_id", "kind", "metric", "conversation_key", "conversation_kind",
                "conversation_id", "priority", "level", "policy_version", "started_at",
                "due_at", "at_risk_at", "at", "detected_at")  # fmt: skip
_OPTIONAL_TEXT = ("tenant", "channel", "department", "assignee", "queue", "customer_group",
                  "reason", "previous_level")  # fmt: skip


def _check_record(record: SlaEventRecord) -> None:
    """Raise unless the record's fields have the contract's types (the notifier reads
    them as such; the contract's full check is the worker's, which wrote them)."""
    for name in _TEXT_FIELDS:
        if not isinstance(getattr(record, name), str):
            raise TypeError(f"{name} is not text")
    for name in _OPTIONAL_TEXT:
        value = getattr(record, name)
        if value is not None and not isinstance(value, str):
            raise TypeError(f"{name} is not text")
    if not isinstance(record.cycle, int) or isinstance(record.cycle, bool):
        raise TypeError("cycle is not a whole number")
    if record.event_id.count("|") < 3:
        raise ValueError("event_id is not key|metric|cycle|kind")
    for name in ("due_at", "at_risk_at", "at", "detected_at"):
        parse_timestamp_ms(getattr(record, name))


def _groups(
    notes: list[tuple[Notification, int]], size: int, alone: set[str] | frozenset[str] = frozenset()
) -> list[list[tuple[Notification, int]]]:
    """``notes`` in order, ``size`` to a group; one in ``alone`` in a group of its own."""
    groups: list[list[tuple[Notification, int]]] = []
    current: list[tuple[Notification, int]] = []
    for item in notes:
        if item[0].id in alone:
            if current:
                groups.append(current)
                current = []
            groups.append([item])
            continue
        current.append(item)
        if len(current) >= max(size, 1):
            groups.append(current)
            current = []
    if current:
        groups.append(current)
    return groups


def _letter(
    note_id: str, receiver: str, reason: str, attempts: int, note: Notification | None
) -> dict[str, Any]:
    """A dead letter: what could not be delivered, to whom, and why (no secrets: the
    reason comes from a sender's ``detail``)."""
    letter: dict[str, Any] = {
        "notification_id": note_id,
        "receiver": receiver,
        "reason": reason,
        "attempts": attempts,
    }
    if note is not None:
        letter.update(kind=note.kind, step=note.step, event_id=note.record.event_id)
    return letter
