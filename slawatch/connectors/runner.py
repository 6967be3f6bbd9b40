"""``slawatch connect asterisk``: read a queue_log file (once, or following it) and produce
its call events to the calls topic, keyed by call id.

Each batch of lines is parsed (slawatch/connectors/queue_log.py), mapped
(slawatch/connectors/asterisk.py) and checked against the contracts with the workers' own
validator; call events go to ``topic_calls``, lines that cannot be read or whose event the
contract refuses go to ``topic_dead_letter`` (the line's bytes, the reason and the detail;
``source_topic`` names the file as ``file:<path>`` and ``source_offset`` is the line's
byte offset in it). Only when the broker has acknowledged every record of the batch is
the position after its last line saved (slawatch/connectors/offsets.py).

So a restart neither loses a line nor repeats one: a stop by signal finishes the batch
and saves its position; a crash between the acknowledgement and the save sends the batch
again, with the same event ids (made from each line's content), and the workers drop
those as duplicates.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import orjson
from aiokafka import AIOKafkaProducer

from slawatch.config.kafka_security import kafka_client_options
from slawatch.config.settings import Settings
from slawatch.connectors.asterisk import Ignored, to_event
from slawatch.connectors.follow import FileFollower, Line
from slawatch.connectors.offsets import load_position, save_position
from slawatch.connectors.queue_log import Layout, UnreadableLine, parse_line
from slawatch.core.clock import Clock
from slawatch.core.keys import ConversationKind
from slawatch.schemas.deadletter import dead_letter
from slawatch.schemas.validation import EventValidator, Rejection
from slawatch.streams.topics import ensure_topics

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True, kw_only=True)
class ConnectorOptions:
    """What ``slawatch connect asterisk`` was asked to do."""

    path: Path
    state_file: Path
    layout: Layout = Layout.AUTO
    #: Keep reading as the file grows (and rotates); else stop at its end.
    follow: bool = False
    #: With no saved position, start at the file's end instead of its start.
    from_end: bool = False
    poll_interval_s: float = 0.5
    progress_interval_s: float = 10.0
    batch_lines: int = 5000
    #: The tenant every event is given (None: none).
    tenant: str | None = None


@dataclass(slots=True)
class Progress:
    """What the connector did since it started."""

    lines: int = 0
    calls: int = 0
    events: int = 0
    ignored: int = 0
    dead_letters: int = 0
    bytes_behind: int = 0
    by_type: dict[str, int] = field(default_factory=dict)

    def line(self, path: Path) -> str:
        """The progress line."""
        return (
            f"asterisk {path}: {self.lines} lines read, {self.calls} calls published "
            f"({self.events} events), {self.ignored} lines ignored, "
            f"{self.dead_letters} dead letters, {self.bytes_behind} bytes behind the file"
        )


@dataclass(frozen=True, slots=True)
class _Outcome:
    """A line's fate: an event to send (its type, id and bytes), a dead letter, or neither."""

    key: bytes | None = None
    value: bytes | None = None
    event_type: str | None = None
    refused: Rejection | None = None


class AsteriskConnector:
    """Read ``options.path`` and produce its call events; :meth:`run` until ``stop`` is set
    (following) or the file's end (not following)."""

    def __init__(self, settings: Settings, options: ConnectorOptions, clock: Clock) -> None:
        self.settings = settings
        self.options = options
        self.clock = clock
        self.progress = Progress()
        self.validator = EventValidator(
            max_event_bytes=settings.max_event_bytes,
            max_future_skew_ms=int(settings.max_future_skew_s * 1000),
            clock=clock,
        )
        self._source = f"file:{options.path}"[:249]

    def outcome(self, raw: bytes) -> _Outcome:
        """What becomes of one line (pure but for the validator's clock)."""
        try:
            line = parse_line(raw, self.options.layout)
            if line is None:
                return _Outcome()
            mapped = to_event(line, self.options.tenant)
        except UnreadableLine as exc:
            return _Outcome(refused=Rejection(exc.reason, exc.detail))
        if isinstance(mapped, Ignored):
            return _Outcome(event_type=mapped.event)
        value = orjson.dumps(mapped)
        checked = self.validator.validate(value, ConversationKind.CALL)
        if isinstance(checked, Rejection):
            detail = f"{line.event} as {mapped['type']}: {checked.detail}"
            return _Outcome(
                refused=Rejection(checked.reason, detail, mapped["type"], mapped["event_id"])
            )
        return _Outcome(line.callid.encode(), value, mapped["type"])

    async def run(self, stop: asyncio.Event) -> Progress:
        options, settings = self.options, self.settings
        start = load_position(options.state_file, options.path)
        await ensure_topics(settings)
        follower = FileFollower(options.path, start, from_end=options.from_end)
        producer = AIOKafkaProducer(
            bootstrap_servers=settings.bootstrap_servers,
            client_id=f"{settings.app_id}-connect-asterisk",
            acks="all",
            linger_ms=5,
            **kafka_client_options(settings),
        )
        await producer.start()
        log.info(
            "asterisk: reading %s from %s", options.path,
            f"byte {start.offset} (saved)" if start else ("its end" if options.from_end
                                                          else "its start"),
        )  # fmt: skip
        next_progress = time.monotonic() + options.progress_interval_s
        try:
            while not stop.is_set():
                lines = follower.read(options.batch_lines)
                if not lines and not options.follow:
                    lines = follower.finish()  # a last line without its newline
                for switch in follower.switches:
                    log.warning("asterisk: %s", switch.what)
                follower.switches.clear()
                if lines:
                    await self._send(producer, lines)
                    save_position(
                        options.state_file, options.path, lines[-1].after, self.clock.now_ms()
                    )
                self.progress.bytes_behind = follower.bytes_behind()
                if time.monotonic() >= next_progress:
                    log.info("%s", self.progress.line(options.path))
                    next_progress = time.monotonic() + options.progress_interval_s
                if not lines:
                    if not options.follow:
                        break
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), options.poll_interval_s)
        finally:
            follower.close()
            await producer.stop()
        return self.progress

    async def _send(self, producer: AIOKafkaProducer, lines: list[Line]) -> None:
        """Produce the batch's events and dead letters; return once all are acknowledged."""
        pending = []
        progress = self.progress
        for line in lines:
            progress.lines += 1
            outcome = self.outcome(line.raw)
            if outcome.refused is not None:
                pending.append(await self._dead_letter(producer, line, outcome.refused))
                progress.dead_letters += 1
            elif outcome.value is not None:
                pending.append(
                    await producer.send(self.settings.topic_calls, outcome.value, key=outcome.key)
                )
                progress.events += 1
                progress.calls += outcome.event_type == "call.queued"
                kind = outcome.event_type or "?"
                progress.by_type[kind] = progress.by_type.get(kind, 0) + 1
            elif outcome.event_type is not None:
                progress.ignored += 1
        await asyncio.gather(*pending)

    async def _dead_letter(
        self, producer: AIOKafkaProducer, line: Line, refused: Rejection
    ) -> asyncio.Future[object]:
        key, letter = dead_letter(
            reason=refused.reason.value,
            detail=refused.detail,
            source_topic=self._source,
            source_partition=0,
            source_offset=line.start,
            source_timestamp_ms=None,
            value=line.raw,
            key=None,
            dead_lettered_at_ms=self.clock.now_ms(),
            worker=self.settings.worker_id,
            event_type=refused.event_type,
            event_id=refused.event_id,
        )
        log.warning(
            "asterisk: line at byte %d of %s to %s: %s: %s", line.start, self.options.path,
            self.settings.topic_dead_letter, refused.reason.value, refused.detail,
        )  # fmt: skip
        future: asyncio.Future[object] = await producer.send(
            self.settings.topic_dead_letter, letter.encode(), key=key
        )
        return future
