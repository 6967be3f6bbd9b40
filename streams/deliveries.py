"""No commit past a record the broker refused.

The timers agent sends the states it changed (to the ``sla-state`` changelog) and the SLA
events it decided straight to the app's producer, without Faust's per-record buffer
(docs/ARCHITECTURE.md, "Stored state"). Faust flushes that producer before it commits the
input offsets, so every such record has been *answered* before the offsets that produced it
are committed; but aiokafka's flush waits for failed sends too, without raising. A record
whose send failed (the broker refused it, or aiokafka gave up after its retries) would then
be lost behind a commit: a state missing from the changelog comes back stale after a
restart.

:class:`Deliveries` watches those sends and makes the app's producer ``flush`` raise
:class:`DeliveryFailed` from the first failure on: the commit that follows the flush never
happens, the worker stops with that error, and whoever takes the partitions over re-reads
the input from the last commit (at least once; duplicates are dropped by event id).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any


class DeliveryFailed(Exception):
    """A record the worker sent was never acknowledged; its input must not be committed."""


class Deliveries:
    """The failures among the sends handed to :meth:`watch`; :meth:`guard` the producer
    whose ``flush`` comes before every commit."""

    __slots__ = ("failure",)

    def __init__(self) -> None:
        self.failure: DeliveryFailed | None = None

    def watch(self, future: asyncio.Future[Any], what: str) -> None:
        """Remember it if ``future`` (an aiokafka send) fails; ``what`` names the record."""

        def done(future: asyncio.Future[Any]) -> None:
            if self.failure is not None:
                return
            if future.cancelled():
                self.failure = DeliveryFailed(f"the send of {what} was cancelled")
            elif (error := future.exception()) is not None:
                self.failure = DeliveryFailed(f"the broker did not acknowledge {what}: {error!r}")

        future.add_done_callback(done)

    def check(self) -> None:
        """Raise the first failure seen, if any."""
        if self.failure is not None:
            raise self.failure

    def guard(self, producer: Any) -> None:
        """Make ``producer.flush()`` raise after it waited if any watched send failed."""
        flush: Callable[[], Awaitable[None]] = producer.flush

        async def guarded_flush() -> None:
            await flush()
            self.check()

        producer.flush = guarded_flush
