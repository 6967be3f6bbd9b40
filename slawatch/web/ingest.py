"""HTTP ingest: ``POST /ingest/tickets``, ``/ingest/chats``, ``/ingest/calls``.

A webhook sender posts one event (a JSON object) or several (a JSON array of objects) of
the path's family. Each is validated by the same :class:`EventValidator` the topics' ingest
runs, with the path's family as the expected kind, and the events are produced, their bytes
as sent, to the same input topic, keyed by the conversation id (what every producer does),
with ``acks=all``. The answer, in this order:

- 401 no credential, 403 a wrong one (:mod:`slawatch.web.ingest_auth`);
- 413 a body over ``http_ingest_max_body_bytes``: refused on its ``Content-Length`` before
  anything is read, and a body without one is read only up to the limit;
- 400 when the body is not one object or an array of objects, or when **any** event is
  refused: ``refused`` lists each refused event's ``index``, ``reason`` (the dead-letter
  reason codes), ``field`` and ``detail``, and **nothing is produced**. All or nothing, so a
  sender that fixes and resends the request never duplicates the events that were fine;
- 503 with ``Retry-After`` when the broker does not acknowledge every event within
  ``http_ingest_produce_timeout_s`` (down, unreachable, too slow): the request is not
  accepted. Some of its events may still reach the topic; a retry resends them and the
  worker drops the repeats by ``event_id``;
- 202 once the broker acknowledged every event: ``accepted`` and the ``event_ids``.

The routes check their own credential: the web token (:mod:`slawatch.web.access`) does not
apply to them.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final

import msgspec
import orjson
from aiohttp import web
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from mode import Service
from prometheus_client import CollectorRegistry, Counter, Histogram, disable_created_metrics

from slawatch.config.kafka_security import kafka_client_options
from slawatch.config.settings import Settings
from slawatch.core.clock import Clock
from slawatch.core.events import InputEvent
from slawatch.core.keys import ConversationKind
from slawatch.errors import SlawatchError
from slawatch.schemas.validation import EventValidator, Rejection
from slawatch.streams.topics import ensure_topics
from slawatch.web.access import INGEST_PREFIX
from slawatch.web.ingest_auth import Credentials, Verdict, credentials_from

log = logging.getLogger(__name__)

#: The path's last segment and the family of events it takes.
FAMILIES: Final[dict[str, ConversationKind]] = {
    "tickets": ConversationKind.TICKET,
    "chats": ConversationKind.CHAT,
    "calls": ConversationKind.CALL,
}
PATH_PREFIX: Final = INGEST_PREFIX
#: Seconds a 503 asks the sender to wait before retrying.
RETRY_AFTER_S: Final = 5
#: Status codes the metrics count (a closed set).
STATUSES: Final = ("202", "400", "401", "403", "413", "503")

_FIELD = re.compile(r"field '([^']*)'")


class HttpIngestMetrics:
    """The HTTP ingest's metric bundle, against the worker's (or the standalone's) registry."""

    def __init__(self, registry: CollectorRegistry) -> None:
        disable_created_metrics()
        self.requests = Counter(
            "slawatch_http_ingest_requests",
            "Requests to /ingest/*, by family (tickets, chats, calls) and answer status.",
            ["family", "status"],
            registry=registry,
        )
        self.events = Counter(
            "slawatch_http_ingest_events",
            "Events posted to /ingest/*, by family and outcome: accepted (acknowledged by the "
            "broker, answered 202), refused (by the contract, in a 400), unavailable (in a 503).",
            ["family", "outcome"],
            registry=registry,
        )
        self.seconds = Histogram(
            "slawatch_http_ingest_request_seconds",
            "Time from a request's start to its answer, by family.",
            ["family"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
            registry=registry,
        )


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why one posted event (``index`` in the array; 0 for a single object; None for the
    body as a whole) was refused."""

    index: int | None
    reason: str
    detail: str
    field: str | None = None
    event_id: str | None = None
    type: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "reason": self.reason,
            "field": self.field,
            "detail": self.detail,
            "event_id": self.event_id,
            "type": self.type,
        }


def _refusal(index: int, rejection: Rejection) -> Refusal:
    found = _FIELD.search(rejection.detail)
    return Refusal(
        index,
        rejection.reason.value,
        rejection.detail,
        found.group(1) if found else None,
        rejection.event_id,
        rejection.event_type,
    )


def split_events(body: bytes) -> list[bytes] | Refusal:
    """The events of a body, each as its bytes as sent: the body itself when it is one
    object, the elements of an array otherwise (an empty array refused)."""
    start = body.lstrip()[:1]
    if start == b"{":
        return [body]
    if start != b"[":
        return Refusal(None, "not_object", "the body must be a JSON object or an array of them")
    try:
        items = msgspec.json.decode(body, type=list[msgspec.Raw])
    except msgspec.DecodeError as exc:
        return Refusal(None, "not_json", f"the body is not a JSON array: {str(exc)[:200]}")
    if not items:
        return Refusal(None, "missing_field", "the array holds no event")
    return [bytes(item) for item in items]


def validate_all(
    raws: Sequence[bytes], kind: ConversationKind, validator: EventValidator
) -> tuple[list[InputEvent], list[Refusal]]:
    """Every event validated as the topic of ``kind`` would; the refusals, in order."""
    events: list[InputEvent] = []
    refusals: list[Refusal] = []
    for index, raw in enumerate(raws):
        result = validator.validate(raw, kind)
        if isinstance(result, Rejection):
            refusals.append(_refusal(index, result))
        else:
            events.append(result)
    return events, refusals


class BrokerUnavailable(SlawatchError):
    """The broker did not acknowledge every event in time."""


class KafkaSink(Service):
    """The producer behind HTTP ingest: ``acks=all``, started when the service starts and
    again on the next request whenever it could not be (the broker was down), so a server
    started before its broker answers 503 until it is up, then 202."""

    def __init__(self, settings: Settings, *, create_topics: bool = False) -> None:
        super().__init__()
        self.settings = settings
        #: Create the missing topics before the first produce (``slawatch ingest-http``:
        #: a topic auto-created by a producer gets the broker's partition count).
        self.create_topics = create_topics
        self.producer: AIOKafkaProducer | None = None
        self._starting: asyncio.Lock | None = None

    @property
    def connected(self) -> bool:
        return self.producer is not None

    async def on_start(self) -> None:
        try:
            await self._producer()
        except BrokerUnavailable as exc:
            log.warning("HTTP ingest: %s; answering 503 until it is reachable", exc)

    async def on_stop(self) -> None:
        if self.producer is not None:
            await self.producer.stop()
            self.producer = None

    async def _producer(self) -> AIOKafkaProducer:
        if self.producer is not None:
            return self.producer
        if self._starting is None:
            self._starting = asyncio.Lock()
        async with self._starting:
            if self.producer is not None:
                return self.producer
            s = self.settings
            if self.create_topics:
                try:
                    await ensure_topics(s)
                except SlawatchError as exc:
                    raise BrokerUnavailable(str(exc)) from None
                self.create_topics = False
            timeout_ms = int(s.http_ingest_produce_timeout_s * 1000)
            producer = AIOKafkaProducer(
                bootstrap_servers=s.bootstrap_servers,
                **kafka_client_options(s),
                client_id=f"{s.app_id}-http-ingest-{s.worker_id}",
                acks="all",
                linger_ms=2,
                # Buffered events fail at about the time the request gives up on them.
                request_timeout_ms=timeout_ms,
            )
            try:
                await producer.start()
            except (KafkaError, OSError) as exc:
                await producer.stop()
                raise BrokerUnavailable(f"the broker is unreachable: {exc}") from None
            except asyncio.CancelledError:  # the request's produce timeout: close it, then go
                await producer.stop()
                raise
            self.producer = producer
            return producer

    async def send_all(self, topic: str, records: Sequence[tuple[bytes, bytes]]) -> None:
        """Produce ``(key, value)`` records and wait until the broker acknowledged them all;
        :class:`BrokerUnavailable` if it did not within the produce timeout."""
        try:
            async with asyncio.timeout(self.settings.http_ingest_produce_timeout_s):
                producer = await self._producer()
                futures = [await producer.send(topic, value, key=key) for key, value in records]
                await asyncio.gather(*futures)
        except TimeoutError:
            raise BrokerUnavailable("the broker did not acknowledge in time") from None
        except KafkaError as exc:
            raise BrokerUnavailable(f"the broker refused: {exc}") from None


Sender = Callable[[str, Sequence[tuple[bytes, bytes]]], Awaitable[None]]


class HttpIngest:
    """The request handling: credentials, size, contract, produce; one per server."""

    def __init__(
        self,
        settings: Settings,
        credentials: Credentials,
        validator: EventValidator,
        send: Sender,
        metrics: HttpIngestMetrics,
        clock: Clock,
    ) -> None:
        self.settings = settings
        self.credentials = credentials
        self.validator = validator
        self.send = send
        self.metrics = metrics
        self.clock = clock
        self.topics = {
            ConversationKind.TICKET: settings.topic_tickets,
            ConversationKind.CHAT: settings.topic_chats,
            ConversationKind.CALL: settings.topic_calls,
        }

    async def handle(self, request: web.Request) -> web.Response:
        family = request.match_info["family"]
        started = time.perf_counter()
        response, outcome, count = await self._answer(request, FAMILIES[family])
        self.metrics.requests.labels(family, str(response.status)).inc()
        if outcome is not None and count:
            self.metrics.events.labels(family, outcome).inc(count)
        self.metrics.seconds.labels(family).observe(time.perf_counter() - started)
        return response

    async def _answer(
        self, request: web.Request, kind: ConversationKind
    ) -> tuple[web.Response, str | None, int]:
        check = self.credentials.before_body(request.headers)
        if check.verdict is Verdict.MISSING:
            return _error(401, check.why, {"WWW-Authenticate": 'Bearer realm="slawatch-ingest"'})
        if check.verdict is Verdict.REFUSED:
            return _error(403, check.why)
        limit = self.settings.http_ingest_max_body_bytes
        if request.content_length is not None and request.content_length > limit:
            return _too_large(limit)
        body = await _read_at_most(request, limit)
        if body is None:
            return _too_large(limit)
        if check.verdict is Verdict.NEEDS_BODY:
            signed = self.credentials.with_body(request.headers, body, self.clock.now_ms() / 1000)
            if signed.verdict is not Verdict.ACCEPTED:
                return _error(403, signed.why)
        split = split_events(body)
        if isinstance(split, Refusal):
            return _refused(0, [split]), None, 0
        events, refusals = validate_all(split, kind, self.validator)
        if refusals:
            return _refused(len(split), refusals), "refused", len(refusals)
        pairs = zip(events, split, strict=True)
        records = [(event.conversation_id.encode(), raw) for event, raw in pairs]
        try:
            await self.send(self.topics[kind], records)
        except BrokerUnavailable as exc:
            log.warning("HTTP ingest: %d %s event(s) not accepted: %s", len(records), kind, exc)
            response = web.json_response(
                {"error": f"{exc}; nothing was accepted, retry later", "accepted": 0},
                status=503,
                headers={"Retry-After": str(RETRY_AFTER_S)},
                dumps=_dumps,
            )
            return response, "unavailable", len(records)
        body_out = {"accepted": len(events), "event_ids": [event.event_id for event in events]}
        return web.json_response(body_out, status=202, dumps=_dumps), "accepted", len(events)


def _dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


def _error(
    status: int, why: str, headers: dict[str, str] | None = None
) -> tuple[web.Response, None, int]:
    return web.json_response({"error": why}, status=status, headers=headers, dumps=_dumps), None, 0


def _too_large(limit: int) -> tuple[web.Response, None, int]:
    return _error(413, f"the body is larger than {limit} bytes (http_ingest_max_body_bytes)")


def _refused(count: int, refusals: Sequence[Refusal]) -> web.Response:
    what = "the body" if refusals[0].index is None else f"{len(refusals)} of {count} event(s)"
    return web.json_response(
        {
            "error": f"{what} refused by the contract; nothing was accepted",
            "accepted": 0,
            "refused": [refusal.as_json() for refusal in refusals],
        },
        status=400,
        dumps=_dumps,
    )


async def _read_at_most(request: web.Request, limit: int) -> bytes | None:
    """The body, or None as soon as it passes ``limit`` bytes (the rest is never read)."""
    chunks: list[bytes] = []
    size = 0
    while True:
        chunk = await request.content.readany()
        if not chunk:
            return b"".join(chunks)
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)


def add_ingest_routes(app: web.Application, ingest: HttpIngest) -> None:
    """Mount ``POST /ingest/{tickets,chats,calls}`` on an aiohttp application."""
    for family in FAMILIES:
        app.router.add_post(PATH_PREFIX + "{family:" + family + "}", ingest.handle)


def build_http_ingest(
    settings: Settings,
    registry: CollectorRegistry,
    validator: EventValidator,
    clock: Clock,
    *,
    create_topics: bool = False,
) -> tuple[HttpIngest, KafkaSink]:
    """The handler and its producer service, as a worker and ``slawatch ingest-http`` both
    run them (the secrets' files read now)."""
    sink = KafkaSink(settings, create_topics=create_topics)
    ingest = HttpIngest(
        settings,
        credentials_from(settings),
        validator,
        sink.send_all,
        HttpIngestMetrics(registry),
        clock,
    )
    return ingest, sink
