"""``/healthz``, ``/readyz`` and ``/metrics`` of a process that runs one service alone (a
notifier, a log sink), on the worker's web host and port settings, so an orchestrator
probes it and Prometheus scrapes it like a worker."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import mode
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from slawatch.config.settings import Settings


class ServicePages(mode.Service):
    """The three pages. ``readiness()`` returns the ``/readyz`` document, whose ``ready``
    says 200 or 503."""

    def __init__(
        self,
        settings: Settings,
        registry: CollectorRegistry,
        readiness: Callable[[], dict[str, Any]],
        routes: Callable[[web.Application], None] | None = None,
    ) -> None:
        super().__init__()
        self.settings = settings
        self.registry = registry
        self.readiness = readiness
        #: Adds the service's own routes (``slawatch ingest-http``: ``/ingest/*``).
        self.routes = routes
        self.runner: web.AppRunner | None = None

    async def on_start(self) -> None:
        app = web.Application()
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/readyz", self._readyz)
        app.router.add_get("/metrics", self._metrics)
        if self.routes is not None:
            self.routes(app)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        site = web.TCPSite(self.runner, self.settings.web_host, self.settings.web_port)
        await site.start()

    async def on_stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()

    async def _healthz(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "alive", "worker_id": self.settings.worker_id})

    async def _readyz(self, request: web.Request) -> web.Response:
        body = self.readiness()
        return web.json_response(body, status=200 if body["ready"] else 503)

    async def _metrics(self, request: web.Request) -> web.Response:
        return web.Response(
            body=generate_latest(self.registry), headers={"Content-Type": CONTENT_TYPE_LATEST}
        )
