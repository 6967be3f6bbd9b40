"""The worker registry in Redis: each worker's live status, for ``slawatch status``.

Every ``registry_interval_s`` a worker writes one JSON document under
``slawatch:{app_id}:worker:{worker_id}`` with a time-to-live of three intervals, so a
worker that dies drops out of the list by itself. Redis being away does not stop a
worker: the write is retried at the next interval and the failure is logged once. Reading
the list (``slawatch status``) needs Redis: an unreachable one is a one-line error naming
``SLAWATCH_REDIS_URL``.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from typing import Any

import orjson
import redis.asyncio as aioredis
from mode import Service
from redis.exceptions import RedisError

from slawatch.config.settings import Settings
from slawatch.core.clock import Clock
from slawatch.errors import SlawatchError

log = logging.getLogger(__name__)


def worker_key_prefix(app_id: str) -> str:
    return f"slawatch:{app_id}:worker:"


class WorkerRegistry(Service):
    """Publish this worker's status document to Redis at a fixed interval."""

    def __init__(
        self, settings: Settings, status: Callable[[], dict[str, Any]], clock: Clock
    ) -> None:
        super().__init__()
        self.settings = settings
        self.status = status
        self.clock = clock
        self.client: aioredis.Redis | None = None
        self.key = worker_key_prefix(settings.app_id) + settings.worker_id
        self._failing = False

    async def on_start(self) -> None:
        self.client = aioredis.Redis.from_url(
            str(self.settings.redis_url), socket_timeout=2.0, socket_connect_timeout=2.0
        )

    async def on_stop(self) -> None:
        if self.client is not None:
            with contextlib.suppress(RedisError):
                await self.client.delete(self.key)
            await self.client.aclose()

    async def reachable(self) -> bool:
        """True when Redis answers a PING."""
        if self.client is None:
            return False
        try:
            return bool(await self.client.ping())
        except RedisError:
            return False

    async def publish(self) -> None:
        """Write the status document once."""
        assert self.client is not None
        document = {**self.status(), "updated_at_ms": self.clock.now_ms()}
        ttl_ms = int(self.settings.registry_interval_s * 3000)
        try:
            await self.client.set(self.key, orjson.dumps(document), px=ttl_ms)
        except RedisError as exc:
            if not self._failing:
                log.warning("cannot write worker status to Redis: %s", exc)
            self._failing = True
        else:
            if self._failing:
                log.info("worker status reaches Redis again")
            self._failing = False

    @Service.task
    async def _publish_forever(self) -> None:
        while not self.should_stop:
            await self.publish()
            await self.sleep(self.settings.registry_interval_s)


async def read_workers(settings: Settings) -> list[dict[str, Any]]:
    """Return the status documents of every live worker of ``settings.app_id``.

    Raise :class:`SlawatchError` (naming ``SLAWATCH_REDIS_URL``) when Redis does not answer.
    """
    client = aioredis.Redis.from_url(
        str(settings.redis_url), socket_timeout=2.0, socket_connect_timeout=2.0
    )
    try:
        keys = [key async for key in client.scan_iter(worker_key_prefix(settings.app_id) + "*")]
        values = await client.mget(keys) if keys else []
    except (RedisError, OSError) as exc:
        raise SlawatchError(
            f"cannot reach Redis at {settings.redis_url.masked()}: {str(exc).rstrip('.')}; "
            "check SLAWATCH_REDIS_URL (and that Redis runs)"
        ) from None
    finally:
        await client.aclose()
    documents = [orjson.loads(value) for value in values if value]
    return sorted(documents, key=lambda doc: str(doc.get("worker_id")))
