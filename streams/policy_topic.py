"""Hot reload: SLA policies published to a compacted topic, followed by every worker.

``slawatch policy publish FILE`` checks the file exactly as a worker will and, only if it
is valid, writes it to the policy topic (one partition, key ``policy``, compacted so the
newest version is what a new worker finds). Every worker reads that topic from the start
when it starts and then follows it: each valid version replaces the one in force, a
version that does not load is rejected (logged with its errors, counted, shown by
``slawatch status``) and the one in force stays. A worker reports ready only once it has
read the topic to its end, so workers never run different versions for long.

A record holds the policy file's text, not a compiled form, so a worker of another
slawatch version checks it with its own rules.

Parsing a record runs in a thread (:func:`asyncio.to_thread`), never on the worker's
event loop: ingest, the timers and ``/healthz`` keep running while a large or hostile
record is read. Reading is bounded anyway (:mod:`slawatch.policy`: size, nesting, aliases,
RE2 patterns), and whatever the bytes, a record is either a policy or a rejection.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import KafkaError
from mode import Service

from slawatch.config.kafka_security import kafka_client_options
from slawatch.config.settings import Settings
from slawatch.core.clock import Clock
from slawatch.core.policy import SlaPolicy, builtin_policy
from slawatch.policy import PolicyFileError, Problem, load_policy, parse_policy
from slawatch.streams.metrics import Metrics
from slawatch.streams.topics import broker_unreachable, ensure_topics, topic_specs

log = logging.getLogger(__name__)

POLICY_KEY = b"policy"
RECORD_VERSION = 1
#: The most problems of a rejected record logged and shown by ``slawatch status``
#: (``check-config`` lists them all).
MAX_SHOWN_PROBLEMS = 20


def initial_policy(settings: Settings) -> SlaPolicy:
    """The policy a worker starts with: the policy file, or the built-in policy."""
    policy = load_policy(Path(settings.policy_file)) if settings.policy_file else builtin_policy()
    return policy.scaled(settings.sla_time_scale)


def encode_record(text: str, source: str, published_at_ms: int) -> bytes:
    return orjson.dumps(
        {"v": RECORD_VERSION, "source": source, "published_at_ms": published_at_ms, "text": text}
    )


def decode_record(value: bytes, where: str) -> SlaPolicy:
    """The policy in a policy-topic record; :class:`PolicyFileError` when it does not load."""
    try:
        record = orjson.loads(value)
        text, source = record["text"], record.get("source")
        if not isinstance(text, str):
            raise TypeError("text is not a string")
    except (orjson.JSONDecodeError, KeyError, TypeError, AttributeError) as exc:
        raise PolicyFileError(
            where, [Problem(0, "(record)", f"not a policy record: {str(exc)[:200]}")]
        ) from None
    # Only ever quoted, and bounded: a record is anybody's bytes.
    source = source[:200] if isinstance(source, str) else "?"
    return parse_policy(text, f"{where} ({source})")


async def publish_policy(settings: Settings, path: Path, text: str, clock: Clock) -> None:
    """Publish the policy file ``path`` (its ``text``, already checked with
    :func:`~slawatch.policy.parse_policy`) to the policy topic."""
    await ensure_topics(
        settings, [s for s in topic_specs(settings) if s.name == settings.topic_policy]
    )
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.bootstrap_servers,
        **kafka_client_options(settings),
        client_id=f"{settings.app_id}-policy-publish",
        acks="all",
    )
    try:
        await producer.start()
    except KafkaError as exc:
        raise broker_unreachable(settings, exc) from None
    try:
        await producer.send_and_wait(
            settings.topic_policy,
            encode_record(text, path.name, clock.now_ms()),
            key=POLICY_KEY,
            partition=0,
        )
    finally:
        await producer.stop()


@dataclass(frozen=True, slots=True)
class Rejection:
    """A published policy that did not load."""

    offset: int
    errors: list[str]


class PolicyFollower(Service):
    """Follows the policy topic and hands every valid new version to ``on_change``."""

    def __init__(
        self,
        settings: Settings,
        initial: SlaPolicy,
        on_change: Callable[[SlaPolicy], None],
        metrics: Metrics,
    ) -> None:
        super().__init__()
        self.settings = settings
        self.current = initial
        self.on_change = on_change
        self.metrics = metrics
        self.caught_up = False
        self.last_rejection: Rejection | None = None
        self.consumer: AIOKafkaConsumer | None = None
        metrics.policy_info.labels(initial.version).set(1)

    async def on_start(self) -> None:
        settings = self.settings
        self.consumer = AIOKafkaConsumer(
            bootstrap_servers=settings.bootstrap_servers,
            **kafka_client_options(settings),
            group_id=None,
            enable_auto_commit=False,
            client_id=f"{settings.app_id}-policy-{settings.worker_id}",
            auto_offset_reset="earliest",
            fetch_max_wait_ms=settings.fetch_max_wait_ms,
        )
        await self.consumer.start()

    async def on_stop(self) -> None:
        if self.consumer is not None:
            await self.consumer.stop()

    @Service.task
    async def _follow(self) -> None:
        consumer = self.consumer
        assert consumer is not None
        tp = TopicPartition(self.settings.topic_policy, 0)
        end = (await consumer.end_offsets([tp]))[tp]
        consumer.assign([tp])
        await consumer.seek_to_beginning(tp)
        self.caught_up = end == 0
        while not self.should_stop:
            try:
                batches = await consumer.getmany(tp, timeout_ms=1000)
            except KafkaError as exc:
                log.warning("reading the policy topic: %s", exc)
                await self.sleep(1.0)
                continue
            for record in batches.get(tp, []):
                await self.receive(record.value or b"", record.offset)
            if not self.caught_up and await consumer.position(tp) >= end:
                self.caught_up = True

    async def receive(self, value: bytes, offset: int) -> None:
        """Take the policy in one record, or reject it: read in a thread, off the event
        loop, which goes on serving ingest, the timers and ``/healthz`` meanwhile."""
        outcome = await asyncio.to_thread(self.load, value, offset)
        self.take(outcome, offset)

    def offer(self, value: bytes, offset: int) -> None:
        """Take the policy in one record, or reject it and keep the one in force (here, on
        the calling thread; the follower itself reads in a thread: :meth:`load`)."""
        self.take(self.load(value, offset), offset)

    def load(self, value: bytes, offset: int) -> SlaPolicy | PolicyFileError:
        """The policy in one record, or why it does not load. Touches nothing of the
        follower's, so it may run in any thread."""
        where = f"{self.settings.topic_policy}@{offset}"
        try:
            return decode_record(value, where).scaled(self.settings.sla_time_scale)
        except PolicyFileError as exc:
            return exc
        except Exception as exc:  # noqa: BLE001 - no record may stop the follower
            problem = Problem(0, "(record)", f"cannot be read ({type(exc).__name__})")
            return PolicyFileError(where, [problem])

    def take(self, outcome: SlaPolicy | PolicyFileError, offset: int) -> None:
        """Put a loaded policy in force, or record its rejection."""
        where = f"{self.settings.topic_policy}@{offset}"
        if isinstance(outcome, PolicyFileError):
            lines = outcome.lines()
            if len(lines) > MAX_SHOWN_PROBLEMS:
                more = len(lines) - MAX_SHOWN_PROBLEMS
                lines = [*lines[:MAX_SHOWN_PROBLEMS], f"(and {more} more: slawatch check-config)"]
            self.last_rejection = Rejection(offset, lines)
            self.metrics.policy_rejected.inc()
            log.error(
                "policy at %s rejected; version %s stays in force:\n  %s",
                where, self.current.version, "\n  ".join(lines),
            )  # fmt: skip
            return
        policy = outcome
        previous = self.current
        self.current = policy
        self.metrics.policy_info.labels(previous.version).set(0)
        self.metrics.policy_info.labels(policy.version).set(1)
        self.metrics.policy_reloads.inc()
        log.info("policy %s in force (was %s), from %s", policy.version, previous.version, where)
        self.on_change(policy)

    def status(self) -> dict[str, Any]:
        rejection = self.last_rejection
        return {
            "policy_version": self.current.version,
            "policy_topic_read": self.caught_up,
            "policy_last_rejected": None
            if rejection is None
            else {"offset": rejection.offset, "errors": rejection.errors},
        }
