"""A compatibility fix between aiokafka and the embedded broker (Tansu).

aiokafka sends LeaveGroup on close only when ``generation > 0``: Kafka numbers a group's
first generation 1. Tansu numbers it 0, so a member of a new group that stops cleanly is
never removed, and the next member to join waits for the departed one's session to expire
(an 11 s rejoin instead of 3 s, measured; docs/OPERATIONS.md). The fix sends the
LeaveGroup aiokafka would have sent when the generation is 0. On Kafka a joined member is
never at generation 0, so there it changes nothing.

It wraps a private aiokafka method, so it checks that the method still has the condition
it corrects and does nothing otherwise (aiokafka is pinned in constraints.txt).
"""

from __future__ import annotations

import inspect
import logging
from typing import Any

from aiokafka.consumer.group_coordinator import GroupCoordinator
from aiokafka.errors import KafkaError
from aiokafka.protocol.group import LeaveGroupRequest

log = logging.getLogger(__name__)

_MARK = "_slawatch_leave_generation_zero"


def leave_group_at_generation_zero() -> bool:
    """Install the fix (idempotent). Return True when it is in place."""
    original = GroupCoordinator._maybe_leave_group
    if getattr(original, _MARK, False):
        return True
    if "self.generation > 0" not in inspect.getsource(original):
        log.warning("aiokafka changed _maybe_leave_group; generation-0 LeaveGroup fix not applied")
        return False

    async def _maybe_leave_group(self: Any) -> None:
        if self.generation == 0 and self._group_instance_id is None and self.member_id:
            try:
                await self._send_req(LeaveGroupRequest(self.group_id, self.member_id))
            except KafkaError as err:
                log.error("LeaveGroup request failed: %s", err)
        await original(self)

    setattr(_maybe_leave_group, _MARK, True)
    GroupCoordinator._maybe_leave_group = _maybe_leave_group
    return True


_FAUST_MARK = "_slawatch_fetch_max_wait"


def faust_fetch_max_wait(fetch_max_wait_ms: int) -> bool:
    """Make Faust's worker consumer wait at most ``fetch_max_wait_ms`` on an empty fetch.

    Faust builds its consumer with ``fetch_max_wait_ms=1500`` written into the call. Kafka
    answers a fetch as soon as data arrives, so there that is only an idle bound; the
    embedded broker (Tansu) holds every fetch for the whole wait (measured: a record
    produced 0.3 s into a 2 s wait arrived 0.7 s later, with 100 ms it arrived in 2-6 ms),
    which made each Faust hop cost up to 1.5 s. The consumer is built, not started, when
    this sets the value its fetcher will read at start. Idempotent; returns True when in
    place.
    """
    from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread

    original = AIOKafkaConsumerThread._create_worker_consumer
    current = getattr(original, _FAUST_MARK, None)
    if current is not None:
        original = current
    elif "fetch_max_wait_ms=1500" not in inspect.getsource(original):
        log.warning("faust changed its consumer; fetch_max_wait_ms fix not applied")
        return False

    def _create_worker_consumer(self: Any, transport: Any) -> Any:
        consumer = original(self, transport)
        consumer._fetch_max_wait_ms = fetch_max_wait_ms
        return consumer

    setattr(_create_worker_consumer, _FAUST_MARK, original)
    AIOKafkaConsumerThread._create_worker_consumer = _create_worker_consumer  # type: ignore[method-assign]
    return True
