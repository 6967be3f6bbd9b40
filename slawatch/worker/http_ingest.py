"""HTTP ingest as a process of its own (``slawatch ingest-http``): ``POST /ingest/*``
with ``/healthz``, ``/readyz``, ``/metrics`` and ``/openapi.json``, on the worker's web
host and port settings, for deployments that keep webhooks apart from the workers. The
same handler and producer as a worker's (:mod:`slawatch.web.ingest`)."""

from __future__ import annotations

import asyncio
from typing import Any

import mode
import orjson
from aiohttp import web
from prometheus_client import CollectorRegistry

from slawatch.config.settings import Settings
from slawatch.core.clock import SystemClock
from slawatch.schemas.validation import EventValidator
from slawatch.web.ingest import KafkaSink, add_ingest_routes, build_http_ingest
from slawatch.web.openapi import openapi_document
from slawatch.worker.pages import ServicePages


def ingest_readiness(sink: KafkaSink) -> dict[str, Any]:
    """Ready once the producer has reached the broker (until then every post is 503)."""
    return {"ready": sink.connected, "broker": "ok" if sink.connected else "unreachable"}


def build_ingest_pages(settings: Settings) -> tuple[KafkaSink, ServicePages]:
    """The producer service and the web server of ``slawatch ingest-http``."""
    registry = CollectorRegistry()
    clock = SystemClock()
    validator = EventValidator(
        max_event_bytes=settings.max_event_bytes,
        max_future_skew_ms=int(settings.max_future_skew_s * 1000),
        clock=clock,
    )
    ingest, sink = build_http_ingest(settings, registry, validator, clock, create_topics=True)
    document = orjson.dumps(
        openapi_document(default_time_zone=settings.report_time_zone, reports=False, ingest=True)
    )

    async def openapi(request: web.Request) -> web.StreamResponse:
        return web.Response(body=document, content_type="application/json")

    def routes(app: web.Application) -> None:
        add_ingest_routes(app, ingest)
        app.router.add_get("/openapi.json", openapi)

    return sink, ServicePages(settings, registry, lambda: ingest_readiness(sink), routes)


def run_ingest_http(settings: Settings) -> None:
    """Serve HTTP ingest until SIGINT or SIGTERM. A broker down at the start is no
    failure: requests are 503 until it answers."""
    from slawatch.worker.runtime import check_web_port

    check_web_port(settings.web_host, settings.web_port)
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    sink, pages = build_ingest_pages(settings)
    worker = mode.Worker(
        sink,
        pages,
        loop=loop,
        loglevel=settings.log_level.upper(),
        redirect_stdouts=False,
        quiet=True,
    )
    worker.execute_from_commandline()
