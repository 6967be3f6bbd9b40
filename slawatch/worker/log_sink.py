"""The SLA log sink as a process of its own (``slawatch log-sink``), and the part of a
worker that decides whether it runs one; ``slawatch log-sink --migrate`` applies the SLA
log database's schema migrations and exits."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import mode
from prometheus_client import CollectorRegistry

from slawatch.config.settings import Settings
from slawatch.core.clock import Clock, SystemClock
from slawatch.logsink.metrics import LogSinkMetrics
from slawatch.logsink.sink import LogSink
from slawatch.reports.store import LogStore
from slawatch.worker.pages import ServicePages

log = logging.getLogger(__name__)


def build_log_sink(
    settings: Settings, registry: CollectorRegistry, clock: Clock | None = None
) -> LogSink | None:
    """The sink a worker runs inside itself, or None (``log_sink_in_worker`` off)."""
    if not settings.log_sink_in_worker:
        return None
    return LogSink(settings, LogSinkMetrics(registry), clock or SystemClock())


def log_sink_readiness(sink: LogSink) -> dict[str, Any]:
    """A standalone sink is ready once its group is joined and its database answers."""
    consumer = sink.consumer
    joined = consumer is not None and bool(consumer.assignment())
    store_ok = sink.store is not None and not sink.store_failing
    return {"ready": joined and store_ok, "group_joined": joined, "store": store_ok}


def migrate_log_store(settings: Settings) -> list[str]:
    """Apply the pending migrations of the database ``log_store_url`` names."""
    with LogStore.open(str(settings.log_store), migrate=False) as store:
        return store.migrate()


def run_log_sink(settings: Settings) -> None:
    """Run a log sink alone until SIGINT or SIGTERM."""
    from slawatch.streams.topics import ensure_topics
    from slawatch.worker.runtime import check_web_port

    check_web_port(settings.web_host, settings.web_port)
    # The database first: a sink that cannot write never joins the group.
    LogStore.open(str(settings.log_store), migrate=settings.log_store_migrate).close()
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    loop.run_until_complete(ensure_topics(settings))
    registry = CollectorRegistry()
    sink = LogSink(settings, LogSinkMetrics(registry), SystemClock())
    worker = mode.Worker(
        sink,
        ServicePages(settings, registry, lambda: log_sink_readiness(sink)),
        loop=loop,
        loglevel=settings.log_level.upper(),
        redirect_stdouts=False,
        quiet=True,
    )
    worker.execute_from_commandline()
