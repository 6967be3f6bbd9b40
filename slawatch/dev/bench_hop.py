"""``slawatch bench --only hop``: what the normalised topic costs, against validating in
the timers' own consumer (issue 13, item 5). Each mode runs in a child process of its own,
on the backlog the benchmark loaded, with a fresh app id (fresh consumer groups):

``direct``
    The other design's floor: one Faust agent subscribed to the three input topics (the
    timers' consumer, if it read the input itself), validating each message as ingest
    does, and nothing else: no SLA work, no table, no output. Faust delivers each input
    message through its own per-message path (docs/ARCHITECTURE.md, "Why ingest does not
    use a Faust stream").
``hop``
    This design up to the same point: slawatch's real ingest (aiokafka batch reads,
    validation, routing, normalised batches produced with ``acks=all``, offsets committed)
    and one Faust agent over the normalised topic that decodes each batch
    (:func:`~slawatch.schemas.normalised.decode_batch`) and does nothing else.

Both stop at the same place: every event validated and in the hands of the agent that
would apply it. Each reports the wall time and this process's CPU time (every thread)
from the moment it handled its first input record to the moment the agent holds the
last event, written as JSON to the file named on the command line.

Run by :mod:`slawatch.dev.bench`; ``python -m slawatch.dev.bench_hop MODE EVENTS OUT`` with
the settings in the environment (``SLAWATCH_*``), as a worker gets them.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

import faust
from prometheus_client import CollectorRegistry

from slawatch.agents.ingest import IngestService
from slawatch.config.settings import Settings, load_settings
from slawatch.core.clock import SystemClock
from slawatch.schemas.normalised import decode_batch
from slawatch.schemas.validation import EventValidator, Rejection
from slawatch.streams.app import create_app
from slawatch.streams.compat import (
    end_offsets_from_fetch,
    faust_fetch_max_wait,
    leave_group_at_generation_zero,
)
from slawatch.streams.metrics import Metrics
from slawatch.streams.topics import topic_kinds

MODES = ("direct", "hop")


class _Stopwatch:
    """Wall and CPU time from the first input record handled to the last event taken."""

    def __init__(self, events: int, out: Path) -> None:
        self.events = events
        self.out = out
        self.taken = 0
        self.rejected = 0
        self.messages = 0
        self.wall0: float | None = None
        self.cpu0 = 0.0
        self.done = False

    def start(self) -> None:
        if self.wall0 is None:
            self.wall0 = time.perf_counter()
            self.cpu0 = time.process_time()

    def take(self, events: int, rejected: int = 0) -> None:
        self.messages += 1
        self.taken += events
        self.rejected += rejected
        if not self.done and self.taken + self.rejected >= self.events:
            self.done = True
            assert self.wall0 is not None
            seconds = time.perf_counter() - self.wall0
            cpu_s = time.process_time() - self.cpu0
            result = {
                "events": self.taken,
                "rejected": self.rejected,
                "agent_messages": self.messages,
                "seconds": seconds,
                "events_per_s": self.taken / seconds,
                "cpu_s": cpu_s,
                "cpu_us_per_event": cpu_s / self.taken * 1e6 if self.taken else float("nan"),
                "cores": cpu_s / seconds,
            }
            partial = self.out.with_suffix(".partial")
            partial.write_text(json.dumps(result) + "\n")
            partial.rename(self.out)  # the benchmark waits for this name: never half written
            os.kill(os.getpid(), signal.SIGTERM)  # Faust's worker stops on it


def _app(settings: Settings) -> faust.App:
    # The worker's fixes for the embedded broker and Faust's fetch wait, as in a worker.
    leave_group_at_generation_zero()
    faust_fetch_max_wait(settings.fetch_max_wait_ms)
    end_offsets_from_fetch()
    return create_app(settings)


def _validator(settings: Settings) -> EventValidator:
    return EventValidator(
        max_event_bytes=settings.max_event_bytes,
        max_future_skew_ms=int(settings.max_future_skew_s * 1000),
        clock=SystemClock(),
    )


def _direct(settings: Settings, watch: _Stopwatch) -> tuple[faust.App, list[Any]]:
    app = _app(settings)
    validator = _validator(settings)
    kinds = topic_kinds(settings)
    source = app.topic(
        *settings.input_topics,
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
    )

    async def validate(stream: Any) -> None:
        async for event in stream.events():
            watch.start()
            outcome = validator.validate(event.value or b"", kinds.get(event.message.topic))
            rejected = isinstance(outcome, Rejection)
            watch.take(0 if rejected else 1, 1 if rejected else 0)

    app.agent(source, name="bench-direct")(validate)
    return app, []


def _hop(settings: Settings, watch: _Stopwatch) -> tuple[faust.App, list[Any]]:
    app = _app(settings)
    ingest = IngestService(
        settings, Metrics(CollectorRegistry(), settings), _validator(settings), SystemClock()
    )
    process = ingest.process

    async def timed_process(batch: Any) -> None:
        watch.start()
        await process(batch)

    ingest.process = timed_process  # type: ignore[method-assign]
    source = app.topic(
        settings.topic_normalised,
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
    )

    async def decode(stream: Any) -> None:
        async for event in stream.events():
            watch.take(len(decode_batch(event.value).events))

    app.agent(source, name="bench-hop")(decode)
    return app, [ingest]


def main(argv: list[str]) -> int:
    mode, events, out = argv[0], int(argv[1]), Path(argv[2])
    if mode not in MODES:
        raise SystemExit(f"mode must be one of {', '.join(MODES)}")
    settings = load_settings(None)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    watch = _Stopwatch(events, out)
    app, services = (_direct if mode == "direct" else _hop)(settings, watch)
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    worker = faust.Worker(
        app, *services, loop=loop, loglevel="WARNING", redirect_stdouts=False, quiet=True
    )
    worker.spinner = None
    worker.execute_from_commandline()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
