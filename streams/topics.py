"""The topics slawatch uses, and creating them before anything produces.

A topic auto-created by a producer gets the broker's default partition count (4 on the
embedded broker), which need not match the configured count; a table over it then fails
with ``PartitionsMismatch``. So every topic is created explicitly, with the configured
count, by ``slawatch topics create`` and again (idempotently) when a worker starts, and
an existing topic with another count stops the worker with a clear error.

This is also every command's first contact with the broker, so it reports an unreachable
broker itself: one :class:`SlawatchError` naming ``SLAWATCH_BROKER_URL``, with the reason
aiokafka logged; that log line is held back meanwhile so that it is not printed before
slawatch's own (it is passed on if the broker answers after all).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError

from slawatch.config.kafka_security import kafka_client_options
from slawatch.config.settings import Settings, mask_url
from slawatch.core.keys import ConversationKind
from slawatch.errors import SlawatchError, TopicMismatch

TOPIC_ALREADY_EXISTS = 36


def broker_unreachable(settings: Settings, reason: object) -> SlawatchError:
    """The one-line error of a command that cannot reach the broker."""
    return SlawatchError(
        f"cannot reach the broker at {mask_url(settings.broker_url)}: {reason}; "
        "check SLAWATCH_BROKER_URL and SLAWATCH_KAFKA_SECURITY_PROTOCOL (and that the broker runs)"
    )


class _Held(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@contextlib.contextmanager
def _holding_client_logs() -> Iterator[_Held]:
    """Hold back aiokafka's log records inside the block (they are the caller's to
    report); pass them on afterwards unless the caller cleared them."""
    logger = logging.getLogger("aiokafka")
    if _HOLDING:
        # Not re-entrant: each command makes its first broker contact once. A second hold
        # would save the first's propagate=False and restore it, silencing aiokafka.
        raise RuntimeError("aiokafka's log records are already held")
    held = _Held()
    propagate = logger.propagate
    _HOLDING.append(held)
    logger.addHandler(held)
    logger.propagate = False
    try:
        yield held
    finally:
        logger.removeHandler(held)
        logger.propagate = propagate
        _HOLDING.clear()
        for record in held.records:
            logger.handle(record)


#: The hold in force, if any.
_HOLDING: list[_Held] = []


@dataclass(frozen=True, slots=True)
class TopicSpec:
    """One topic: its name, role, partition count and broker config."""

    name: str
    role: str
    partitions: int
    replication_factor: int
    config: dict[str, str] = field(default_factory=dict)


def topic_specs(settings: Settings) -> list[TopicSpec]:
    """Every topic slawatch reads or writes (Faust's own table changelogs aside)."""
    n, r = settings.partitions, settings.replication_factor
    return [
        TopicSpec(settings.topic_tickets, "input: ticket events", n, r),
        TopicSpec(settings.topic_chats, "input: chat events", n, r),
        TopicSpec(settings.topic_calls, "input: call events", n, r),
        TopicSpec(settings.topic_normalised, "internal: validated events by conversation", n, r),
        TopicSpec(settings.topic_sla_events, "output: SLA events", n, r),
        TopicSpec(settings.topic_dead_letter, "output: refused input messages", n, r),
        # One partition: every worker reads all of it, and the order of versions is total.
        TopicSpec(
            settings.topic_policy,
            "control: published SLA policies (compacted)",
            1,
            r,
            {"cleanup.policy": "compact"},
        ),
    ]


def topic_kinds(settings: Settings) -> dict[str, ConversationKind]:
    """Which conversation kind each input topic carries."""
    return {
        settings.topic_tickets: ConversationKind.TICKET,
        settings.topic_chats: ConversationKind.CHAT,
        settings.topic_calls: ConversationKind.CALL,
    }


async def ensure_topics(settings: Settings, specs: list[TopicSpec] | None = None) -> list[str]:
    """Create the missing topics; check existing ones. Return the names created.

    Raise :class:`TopicMismatch` when an existing topic has another partition count.
    """
    specs = topic_specs(settings) if specs is None else specs
    admin = AIOKafkaAdminClient(
        bootstrap_servers=settings.bootstrap_servers,
        client_id=f"{settings.app_id}-admin",
        **kafka_client_options(settings),
    )
    with _holding_client_logs() as held:
        try:
            await admin.start()
        except KafkaError as exc:
            errors = [r.getMessage() for r in held.records if r.levelno >= logging.ERROR]
            held.records.clear()  # said in the error instead
            reason = errors[-1].rstrip() if errors else str(exc)
            if reason.endswith(":"):  # a timeout's message is empty
                reason += " no answer in time"
            raise broker_unreachable(settings, reason) from None
    try:
        existing = set(await admin.list_topics())
        missing = [spec for spec in specs if spec.name not in existing]
        created = []
        if missing:
            response = await admin.create_topics(
                [
                    NewTopic(
                        spec.name,
                        spec.partitions,
                        spec.replication_factor,
                        topic_configs=spec.config,
                    )
                    for spec in missing
                ]
            )
            for name, code, message in response.topic_errors:
                if code == 0:
                    created.append(name)
                elif code != TOPIC_ALREADY_EXISTS:  # another worker raced us: fine
                    raise SlawatchError(f"cannot create topic {name!r}: {message} (error {code})")
        present = [spec for spec in specs if spec.name in existing]
        if present:
            described = await admin.describe_topics([spec.name for spec in present])
            counts = {item["topic"]: len(item["partitions"]) for item in described}
            for spec in present:
                if counts.get(spec.name) != spec.partitions:
                    raise TopicMismatch(
                        f"topic {spec.name!r} has {counts.get(spec.name)} partitions, "
                        f"configured: {spec.partitions} (SLAWATCH_PARTITIONS); "
                        "set the configured count to match or recreate the topic"
                    )
        return created
    except KafkaError as exc:  # the broker went away, or is not a Kafka broker
        raise broker_unreachable(settings, f"{type(exc).__name__}: {exc}") from None
    finally:
        await admin.close()
