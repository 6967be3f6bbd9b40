"""The supervisor wallboard: a page on the worker's own web server, fed live.

Routes (mounted on the worker's aiohttp application by :func:`add_wallboard_routes`):

- ``GET /`` and ``GET /wallboard``: the page (static HTML, CSS and JS shipped in the
  package: no CDN, works offline);
- ``GET /wallboard/state``: the centre-wide view now (JSON, :func:`~slawatch.web.live.combine`);
- ``GET /wallboard/events``: server-sent events, one ``view`` event with the same document
  whenever it changes, and at least every ``KEEPALIVE_S``.

One :class:`LiveHub` per worker reads the view from Redis for all its clients: on every
note a publisher sends, and at least once a second while someone watches.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from importlib import resources
from typing import Any

import orjson
import redis.asyncio as aioredis
from aiohttp import web
from mode import Service
from redis.exceptions import RedisError

from slawatch.config.settings import Settings
from slawatch.core.clock import Clock
from slawatch.core.kpi import QueueSettings
from slawatch.web.access import Handler
from slawatch.web.live import combine, live_channel, live_key

log = logging.getLogger(__name__)

#: A view event is sent at least this often, changed or not (proxies drop idle streams).
KEEPALIVE_S = 5.0
#: How often the view is read while someone watches, notes or not.
POLL_S = 1.0
#: A screen whose connection takes no update for this long is disconnected.
WRITE_TIMEOUT_S = 10.0

_STATIC = {
    "wallboard.html": "text/html",
    "wallboard.css": "text/css",
    "wallboard.js": "text/javascript",
}


class LiveHub(Service):
    """The latest centre-wide view, read from Redis for this worker's wallboard clients."""

    def __init__(
        self,
        settings: Settings,
        queue_settings: Callable[[str | None], QueueSettings],
        clock: Clock,
    ) -> None:
        super().__init__()
        self.settings = settings
        self.queue_settings = queue_settings
        self.clock = clock
        self.client: aioredis.Redis | None = None
        self.view: dict[str, Any] | None = None
        self.body = b""
        self.version = 0
        self.watchers = 0
        self._changed = asyncio.Event()
        self._wake = asyncio.Event()
        self._failing = False

    async def on_start(self) -> None:
        self.client = aioredis.Redis.from_url(
            str(self.settings.redis_url), socket_timeout=2.0, socket_connect_timeout=2.0
        )
        self.add_future(self._listen())
        self.add_future(self._poll())

    async def on_stop(self) -> None:
        if self.client is not None:
            await self.client.aclose()

    async def _listen(self) -> None:
        """Wake the reader on every publisher's note (reconnecting when Redis drops)."""
        assert self.client is not None
        while not self.should_stop:
            try:
                async with self.client.pubsub() as pubsub:
                    await pubsub.subscribe(live_channel(self.settings.app_id))
                    while not self.should_stop:
                        message = await pubsub.get_message(
                            ignore_subscribe_messages=True, timeout=POLL_S
                        )
                        if message is not None:
                            self._wake.set()
            except (RedisError, OSError):
                await self.sleep(POLL_S)

    async def _poll(self) -> None:
        while not self.should_stop:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._wake.wait(), POLL_S)
            self._wake.clear()
            if self.watchers:
                try:
                    await self.refresh()
                except Exception:
                    log.exception("wallboard: reading the live view failed; trying again")

    async def refresh(self) -> dict[str, Any]:
        """Read every partition's document and combine them; wake the watchers on change."""
        assert self.client is not None
        now_ms = self.clock.now_ms()
        partitions = self.settings.partitions
        keys = [live_key(self.settings.app_id, p) for p in range(partitions)]
        error = None
        try:
            raw = await self.client.mget(keys)
            documents = [_parse(r) for r in raw]
            if self._failing:
                self._failing = False
                log.info("wallboard: Redis is back")
        except (RedisError, OSError) as exc:
            documents = [None] * partitions
            error = f"Redis unreachable: {exc}"
            if not self._failing:
                self._failing = True
                log.warning("wallboard: cannot read the live view from Redis: %s", exc)
        view = combine(documents, self.queue_settings, now_ms)
        if error is not None:
            view["error"] = error
        stable = orjson.dumps({**view, "at_ms": 0})
        if stable != self.body:
            self.body = stable
            self.version += 1
            self._changed.set()
            self._changed = asyncio.Event()
        self.view = view
        return view

    async def changed(self, version: int, timeout_s: float) -> int:
        """Wait until the view is newer than ``version`` (or the timeout); the version."""
        if self.version == version:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._changed.wait(), timeout_s)
        return self.version


def _parse(raw: bytes | str | None) -> Any:
    """A partition's document, or None (none, or not JSON: counted as missing)."""
    if raw is None:
        return None
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None


def _static(name: str) -> bytes:
    return resources.files("slawatch.web").joinpath("static", name).read_bytes()


@web.middleware
async def root_to_wallboard(request: web.Request, handler: Handler) -> web.StreamResponse:
    """``GET /`` opens the wallboard (Faust's own index only says ``{"status": "OK"}``)."""
    if request.path == "/" and request.method in ("GET", "HEAD"):
        location = request.rel_url.with_path("/wallboard")
        return web.Response(status=302, headers={"Location": str(location)})
    return await handler(request)


def add_wallboard_routes(app: web.Application, hub: LiveHub) -> None:
    """Mount the wallboard's routes on the worker's aiohttp application."""

    async def page(request: web.Request) -> web.StreamResponse:
        return web.Response(body=_static("wallboard.html"), content_type="text/html")

    async def static(request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        if name not in _STATIC:
            raise web.HTTPNotFound()
        return web.Response(body=_static(name), content_type=_STATIC[name])

    async def state(request: web.Request) -> web.StreamResponse:
        view = await hub.refresh()
        return web.json_response(body=orjson.dumps(view))

    streams: set[asyncio.Task[Any]] = set()

    async def events(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(
            headers={
                "Content-Type": "text/event-stream",
                "Cache-Control": "no-cache",
                "X-Accel-Buffering": "no",
            }
        )
        await response.prepare(request)
        task = asyncio.current_task()
        assert task is not None
        streams.add(task)
        hub.watchers += 1
        try:
            view = await hub.refresh()
            version = hub.version
            while True:
                body = b"event: view\ndata: " + orjson.dumps(view) + b"\n\n"
                # A screen that stops reading is let go, not waited for.
                await asyncio.wait_for(response.write(body), WRITE_TIMEOUT_S)
                version = await hub.changed(version, KEEPALIVE_S)
                view = hub.view or await hub.refresh()
        except (TimeoutError, ConnectionResetError):
            pass  # the screen went away, or stopped reading
        finally:
            hub.watchers -= 1
            streams.discard(task)
        return response

    async def close_streams(app: web.Application) -> None:
        """On shutdown, end the open event streams at once (aiohttp would wait for them)."""
        for task in list(streams):
            task.cancel()

    app.on_shutdown.append(close_streams)

    async def slash(request: web.Request) -> web.StreamResponse:
        return web.Response(status=301, headers={"Location": "/wallboard"})

    app.router.add_get("/wallboard", page)
    app.router.add_get("/wallboard/", slash)
    app.router.add_get("/wallboard/static/{name}", static)
    app.router.add_get("/wallboard/state", state)
    app.router.add_get("/wallboard/events", events)
