"""The centre-wide live view behind the wallboard, shared through Redis.

Each worker knows only the partitions it holds. Twice a second (``wallboard_publish_ms``)
it writes one document per held partition to Redis, ``slawatch:{app_id}:live:{partition}``,
with a short time-to-live, and publishes a note on ``slawatch:{app_id}:live``. A wallboard
served by any worker reads every partition's document, adds them up and shows the whole
centre; the note wakes it at once, so a change is on screen within a second.

Why Redis rather than a compacted topic: the view is a small, ever-replaced snapshot that
every reader wants whole and now. Redis gives that in one ``MGET`` and a pub/sub note;
a topic would make every wallboard consume and keep up with every partition's updates,
for a view nobody needs to replay. The worker already depends on Redis (the registry,
the notifier); losing it stops only the wallboard (it says so), never the timers.

A partition's document is written by whoever holds it; a worker stops writing the ones it
gave up, and a document not refreshed within ``LIVE_TTL_S`` expires (its worker died), so
the wallboard never adds a partition twice nor keeps a dead worker's figures. It reports
the partitions it has no document for.

A document (:func:`part_document`) holds, for one partition: per queue the calls waiting,
the longest current wait and the figures of each window (sums, so partitions add up); the
open cycles at risk or breached, soonest due first (at most ``WATCH_LIMIT``); the latest
breaches (at most ``BREACH_LIMIT``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, fields
from typing import Any, Protocol

import orjson
import redis.asyncio as aioredis
from mode import Service
from redis.exceptions import RedisError

from slawatch.config.settings import Settings
from slawatch.core.census import CycleCensus, Watched, soonest
from slawatch.core.clock import Clock
from slawatch.core.kpi import KpiAccumulator, QueueSettings, WindowKpis
from slawatch.core.timestamps import parse_timestamp_ms

log = logging.getLogger(__name__)

#: A partition's document lives this many publish intervals (at least 5 s) unless
#: refreshed: its worker died or left.
LIVE_TTL_INTERVALS = 10
#: Open cycles at risk or breached kept per partition document and shown.
WATCH_LIMIT = 50
#: Latest breaches kept per partition document and shown.
BREACH_LIMIT = 20
#: A document is rewritten at least every this many publish intervals when unchanged.
REFRESH_INTERVALS = 4

#: Delete a key only if it still holds what this worker wrote (its new owner may have
#: written since): compare and delete in one step.
_DELETE_IF_MINE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


def live_key(app_id: str, partition: int) -> str:
    return f"slawatch:{app_id}:live:{partition}"


def live_channel(app_id: str) -> str:
    return f"slawatch:{app_id}:live"


class HeldPartition(Protocol):
    """What the publisher reads of a partition the worker holds."""

    @property
    def census(self) -> CycleCensus: ...

    @property
    def kpis(self) -> KpiAccumulator: ...

    @property
    def breaches(self) -> Iterable[Mapping[str, Any]]:
        """The latest published breach records, oldest first."""
        ...


class PartitionSource(Protocol):
    def held(self) -> Mapping[int, HeldPartition]:
        """The partitions this worker holds now."""
        ...

    def queue_settings(self, queue: str | None) -> QueueSettings:
        """The policy's settings of ``queue``."""
        ...


def _watched(item: Watched) -> dict[str, Any]:
    return {
        "kind": item.kind.value,
        "id": item.conversation_id,
        "metric": item.metric.value,
        "due_ms": item.due_ms,
        "breached": item.breached,
        "level": item.level,
        "priority": item.priority,
        "department": item.department,
        "queue": item.queue,
        "assignee": item.assignee,
        "customer_group": item.customer_group,
        "tenant": item.tenant,
    }


def _breach(record: Mapping[str, Any]) -> dict[str, Any]:
    """The wallboard's line for a published breach record (``sla-events``)."""
    return {
        "kind": record["conversation_kind"],
        "id": record["conversation_id"],
        "metric": record["metric"],
        "due_ms": parse_timestamp_ms(record["due_at"]),
        "detected_ms": parse_timestamp_ms(record["detected_at"]),
        "level": record["level"],
        "priority": record["priority"],
        "department": record.get("department"),
        "queue": record.get("queue"),
        "assignee": record.get("assignee"),
        "customer_group": record.get("customer_group"),
    }


def part_document(partition: int, held: HeldPartition, now_ms: int) -> dict[str, Any]:
    """One partition's share of the live view at ``now_ms`` (JSON-ready)."""
    snapshot = held.kpis.snapshot(now_ms)
    queues = {
        name: {
            "waiting": kpis.waiting,
            "longest_wait_ms": kpis.longest_wait_ms,
            "windows": {window: asdict(figures) for window, figures in kpis.windows.items()},
        }
        for name, kpis in snapshot.queues.items()
    }
    return {
        "partition": partition,
        "queues": queues,
        "watched": [_watched(w) for w in soonest([held.census], WATCH_LIMIT)],
        "breaches": [_breach(e) for e in list(held.breaches)[-BREACH_LIMIT:]],
    }


class LivePublisher(Service):
    """Writes this worker's partition documents to Redis (see the module docstring)."""

    def __init__(self, settings: Settings, source: PartitionSource, clock: Clock) -> None:
        super().__init__()
        self.settings = settings
        self.source = source
        self.clock = clock
        self.client: aioredis.Redis | None = None
        self._written: dict[int, tuple[bytes, float]] = {}
        self._failing = False
        self.interval_s = settings.wallboard_publish_ms / 1000
        self.ttl_s = max(5, math.ceil(LIVE_TTL_INTERVALS * self.interval_s))

    async def on_start(self) -> None:
        self.client = aioredis.Redis.from_url(
            str(self.settings.redis_url), socket_timeout=2.0, socket_connect_timeout=2.0
        )
        self._delete_if_mine = self.client.register_script(_DELETE_IF_MINE)
        self.add_future(self._publish_loop())

    async def on_stop(self) -> None:
        # The publish loop has stopped with the service (mode cancels its futures first).
        if self.client is not None:
            with contextlib.suppress(RedisError, OSError):
                await self.withdraw(set(self._written))
            await self.client.aclose()

    async def _publish_loop(self) -> None:
        interval = self.interval_s
        while not self.should_stop:
            try:
                await self.publish_once()
                if self._failing:
                    self._failing = False
                    log.info("wallboard: Redis is back; publishing the live view again")
            except (RedisError, OSError) as exc:
                if not self._failing:
                    self._failing = True
                    log.warning("wallboard: cannot write the live view to Redis: %s", exc)
            except Exception:
                log.exception("wallboard: building the live view failed; trying again")
            await self.sleep(interval)

    async def publish_once(self) -> int:
        """Write the documents that changed (or are due for a refresh); return how many."""
        assert self.client is not None
        now_ms = self.clock.now_ms()
        loop_now = asyncio.get_running_loop().time()
        held = dict(self.source.held())
        gone = set(self._written) - set(held)
        if gone:
            await self.withdraw(gone)
        pipe = self.client.pipeline(transaction=False)
        written: dict[int, tuple[bytes, float]] = {}
        refresh_s = REFRESH_INTERVALS * self.interval_s
        for partition, part in held.items():
            body = orjson.dumps(
                {**part_document(partition, part, now_ms), "worker": self.settings.worker_id}
            )
            previous = self._written.get(partition)
            if previous is not None and previous[0] == body and loop_now - previous[1] < refresh_s:
                continue
            pipe.set(live_key(self.settings.app_id, partition), body, ex=self.ttl_s)
            written[partition] = (body, loop_now)
        if written:
            pipe.publish(live_channel(self.settings.app_id), b"changed")
            await pipe.execute()
            self._written.update(written)  # only once Redis has them
        return len(written)

    async def withdraw(self, partitions: Iterable[int]) -> None:
        """Stop showing ``partitions`` from here (given up): delete what this worker wrote,
        unless their new owner has written since."""
        for partition in list(partitions):
            written = self._written.pop(partition, None)
            if written is not None:
                key = live_key(self.settings.app_id, partition)
                await self._delete_if_mine(keys=[key], args=[written[0]])


_WINDOW_FIELDS = frozenset(f.name for f in fields(WindowKpis))


class _Share:
    """One partition's document, read and checked whole before anything is added up (a
    damaged one raises, and adds nothing)."""

    __slots__ = ("breaches", "queues", "watched", "worker")

    def __init__(self, document: Mapping[str, Any]) -> None:
        self.worker = str(document["worker"])
        self.queues: dict[str, tuple[dict[str, WindowKpis], int, int | None]] = {}
        for name, queue in document["queues"].items():
            windows = {
                # Fields this version does not know (a newer worker's) are left out.
                window: WindowKpis(**{k: v for k, v in f.items() if k in _WINDOW_FIELDS})
                for window, f in queue["windows"].items()
            }
            wait = queue["longest_wait_ms"]
            self.queues[str(name)] = (
                windows,
                int(queue["waiting"]),
                None if wait is None else int(wait),
            )
        self.watched = [dict(w) for w in document["watched"] if int(w["due_ms"]) >= 0]
        self.breaches = [dict(b) for b in document["breaches"] if int(b["detected_ms"]) >= 0]


def _window_view(figures: WindowKpis) -> dict[str, Any]:
    def seconds(ms: float | None) -> float | None:
        return None if ms is None else round(ms / 1000, 1)

    return {
        "offered": figures.offered,
        "answered": figures.answered,
        "answered_within": figures.answered_within,
        "abandoned": figures.abandoned,
        "short_abandoned": figures.short_abandoned,
        "service_level": figures.service_levels(),
        "asa_s": seconds(figures.asa_ms),
        "avg_abandon_s": seconds(figures.avg_abandon_ms),
        "max_abandon_s": seconds(figures.max_abandon_wait_ms),
        "abandonment_rate": figures.abandonment_rate,
    }


def combine(
    documents: Sequence[dict[str, Any] | None],
    queue_settings: Any,
    now_ms: int,
) -> dict[str, Any]:
    """The wallboard's view: the partitions' documents (None: missing) added up."""
    windows: dict[str, dict[str, WindowKpis]] = {}
    waiting: dict[str, int] = {}
    longest: dict[str, int | None] = {}
    watched: list[dict[str, Any]] = []
    breaches: list[dict[str, Any]] = []
    missing = []
    workers = set()
    unreadable = []
    for partition, document in enumerate(documents):
        share = None
        if document is not None:
            try:
                share = _Share(document)
            except (KeyError, TypeError, AttributeError, ValueError):
                unreadable.append(partition)  # another version's, or damaged: not added
        if share is None:
            missing.append(partition)
            continue
        workers.add(share.worker)
        for name, (queue_windows, queue_waiting, wait) in share.queues.items():
            into = windows.setdefault(name, {})
            for window, figures in queue_windows.items():
                into[window] = into[window] + figures if window in into else figures
            waiting[name] = waiting.get(name, 0) + queue_waiting
            if wait is not None and (longest.get(name) or -1) < wait:
                longest[name] = wait
            else:
                longest.setdefault(name, None)
        watched += share.watched
        breaches += share.breaches
    if unreadable:
        log.warning("wallboard: unreadable live view of partitions %s", unreadable)
    queues = []
    overall: dict[str, WindowKpis] = {}
    for name in sorted(windows):
        settings: QueueSettings = queue_settings(name)
        for window, figures in windows[name].items():
            overall[window] = overall[window] + figures if window in overall else figures
        wait = longest.get(name)
        queues.append(
            {
                "queue": name,
                "waiting": waiting[name],
                "longest_wait_s": None if wait is None else round(wait / 1000, 1),
                "target_s": settings.target_ms / 1000,
                "goal": settings.goal,
                "windows": {w: _window_view(f) for w, f in windows[name].items()},
            }
        )
    waits = [w for w in longest.values() if w is not None]
    watched.sort(key=lambda w: (w["due_ms"], w["id"], w["metric"]))
    breaches.sort(key=lambda b: b["detected_ms"], reverse=True)
    return {
        "at_ms": now_ms,
        "partitions": len(documents),
        "missing_partitions": missing,
        "workers": len(workers),
        "queues": queues,
        "overall": {
            "waiting": sum(waiting.values()),
            "longest_wait_s": round(max(waits) / 1000, 1) if waits else None,
            "windows": {w: _window_view(f) for w, f in overall.items()},
        },
        "watched": watched[:WATCH_LIMIT],
        "breaches": breaches[:BREACH_LIMIT],
    }
