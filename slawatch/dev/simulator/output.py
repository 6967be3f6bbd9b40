"""Where simulated traffic goes: the input topics, paced in real time, or a JSONL file."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from aiokafka import AIOKafkaProducer

from slawatch.config.kafka_security import kafka_client_options
from slawatch.config.settings import Settings
from slawatch.core.keys import ConversationKind
from slawatch.dev.simulator.traffic import SimulatedMessage


@dataclass
class SimulationReport:
    """What a simulation sent: messages per topic and malformed ones by kind."""

    by_topic: Counter[str] = field(default_factory=Counter)
    malformed: Counter[str] = field(default_factory=Counter)

    @property
    def total(self) -> int:
        return sum(self.by_topic.values())

    def summary(self) -> str:
        topics = ", ".join(f"{topic} {count}" for topic, count in sorted(self.by_topic.items()))
        return f"{self.total} messages ({topics}); {sum(self.malformed.values())} malformed"


def write_jsonl(messages: Iterable[SimulatedMessage], path: Path) -> SimulationReport:
    """Write one message per line (each is single-line JSON, or the broken bytes)."""
    report = SimulationReport()
    with path.open("wb") as out:
        for message in messages:
            out.write(message.value)
            out.write(b"\n")
            report.by_topic[f"{message.kind.value}s"] += 1
            if message.malformed:
                report.malformed[message.malformed.value] += 1
    return report


async def publish(
    messages: Iterable[SimulatedMessage],
    *,
    settings: Settings,
    topics: Mapping[ConversationKind, str],
    realtime: bool = True,
    should_stop: asyncio.Event | None = None,
) -> SimulationReport:
    """Send messages to their input topics, each when the wall clock reaches its time.

    With ``realtime=False`` everything is sent as fast as the producer takes it (for
    loading a backlog). Stops early when ``should_stop`` is set.
    """
    report = SimulationReport()
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.bootstrap_servers,
        client_id="slawatch-simulator",
        linger_ms=5,
        **kafka_client_options(settings),
    )
    await producer.start()
    try:
        pending = []
        for message in messages:
            if should_stop is not None and should_stop.is_set():
                break
            if realtime:
                delay_s = message.at_ms / 1000 - time.time()
                if delay_s > 0:
                    await asyncio.sleep(delay_s)
            topic = topics[message.kind]
            pending.append(await producer.send(topic, message.value, key=message.key))
            report.by_topic[topic] += 1
            if message.malformed:
                report.malformed[message.malformed.value] += 1
            if len(pending) >= 10_000:
                await asyncio.gather(*pending)
                pending.clear()
        await asyncio.gather(*pending)
    finally:
        await producer.stop()
    return report
