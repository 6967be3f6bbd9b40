"""The notifier as a process of its own (``slawatch notifier``), and the part of a worker
that decides whether it runs one.

A standalone notifier serves ``/healthz``, ``/readyz`` and ``/metrics`` on the worker's
web host and port settings, so Prometheus scrapes it like a worker.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import mode
from prometheus_client import CollectorRegistry

from slawatch.alerting.config import RoutingConfig, load_routing
from slawatch.alerting.metrics import NotifierMetrics
from slawatch.alerting.notifier import Notifier
from slawatch.config.settings import Settings
from slawatch.core.clock import Clock, SystemClock
from slawatch.errors import ConfigError
from slawatch.worker.pages import ServicePages

log = logging.getLogger(__name__)


def routing_of(settings: Settings) -> tuple[Path, RoutingConfig] | None:
    """The routing file the settings name, read (None when none is named); a file with
    problems raises :class:`~slawatch.alerting.config.RoutingFileError`."""
    if not settings.alert_routing_file:
        return None
    path = Path(settings.alert_routing_file)
    return path, load_routing(path)


def build_notifier(
    settings: Settings,
    registry: CollectorRegistry,
    clock: Clock | None = None,
    routing: tuple[Path, RoutingConfig] | None = None,
) -> Notifier | None:
    """The notifier a worker runs inside itself, or None (no routing file, or
    ``notifier_in_worker`` off). ``routing``: the file already read by the caller."""
    if not settings.notifier_in_worker:
        return None
    routing = routing or routing_of(settings)
    if routing is None:
        return None
    path, config = routing
    return Notifier(
        settings, config, NotifierMetrics(registry), clock or SystemClock(), routing_path=path
    )


def notifier_readiness(notifier: Notifier) -> dict[str, Any]:
    """A standalone notifier is ready once its group is joined and Redis answers."""
    consumer = notifier.consumer
    joined = consumer is not None and bool(consumer.assignment())
    redis_ok = not notifier.redis_failing
    return {"ready": joined and redis_ok, "group_joined": joined, "redis": redis_ok}


def run_notifier(settings: Settings) -> None:
    """Run a notifier alone until SIGINT or SIGTERM."""
    from slawatch.streams.topics import ensure_topics
    from slawatch.worker.runtime import check_web_port

    routing = routing_of(settings)
    if routing is None:
        raise ConfigError(
            "not set: a notifier needs a routing file (README, Alert routing)",
            source="SLAWATCH_ALERT_ROUTING_FILE",
            field="alert_routing_file",
        )
    check_web_port(settings.web_host, settings.web_port)
    path, config = routing
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    loop.run_until_complete(ensure_topics(settings))
    registry = CollectorRegistry()
    notifier = Notifier(
        settings, config, NotifierMetrics(registry), SystemClock(), routing_path=path
    )
    worker = mode.Worker(
        notifier,
        ServicePages(settings, registry, lambda: notifier_readiness(notifier)),
        loop=loop,
        loglevel=settings.log_level.upper(),
        redirect_stdouts=False,
        quiet=True,
    )
    worker.execute_from_commandline()
