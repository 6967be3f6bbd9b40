"""Compatibility fixes between aiokafka, Faust and the embedded broker (Tansu), and one
fact aiokafka keeps to itself (when the group last answered a heartbeat).

Each wraps a private method of a library pinned in constraints.txt, checks that the
method still has what it relies on, and does nothing otherwise (with a warning).

The first: aiokafka sends LeaveGroup on close only when ``generation > 0``: Kafka numbers
a group's first generation 1. Tansu numbers it 0, so a member of a new group that stops
cleanly is never removed, and the next member to join waits for the departed one's session
to expire (an 11 s rejoin instead of 3 s, measured; docs/OPERATIONS.md). The fix sends the
LeaveGroup aiokafka would have sent when the generation is 0. On Kafka a joined member is
never at generation 0, so there it changes nothing.
"""

from __future__ import annotations

import inspect
import logging
import time
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


_END_MARK = "_slawatch_end_offsets_from_fetch"


def end_offsets_from_fetch() -> bool:
    """Make aiokafka's ``end_offsets`` right on the embedded broker.

    Tansu answers ListOffsets(latest) with the base offset of the partition's last record
    batch plus one (docs/OPERATIONS.md, known workarounds), so a batch of 1,000 records at
    offsets 0-999 reads as end offset 1; a Fetch answers the right high watermark. Faust's
    table recovery reads a changelog up to ``end_offsets``: with the timers' changelog
    records sent as one batch per tick, a recovering worker stopped inside the last batch
    and lost the states after its first record. The fix asks the leader for a fetch of the
    partitions it just answered, from the offset it answered (the reply carries the high
    watermark, and at most the last batch's records), and keeps the larger of the two. On
    Kafka the two agree and it costs one round trip per ``end_offsets`` call, which only
    recovery and read-backs make. Idempotent; returns True when in place.
    """
    from aiokafka.consumer.fetcher import Fetcher, OffsetResetStrategy
    from aiokafka.protocol.fetch import FetchRequest
    from aiokafka.structs import TopicPartition

    original = Fetcher._proc_offset_request
    if getattr(original, _END_MARK, None) is not None:
        return True
    if "OffsetRequest(" not in inspect.getsource(original):
        log.warning("aiokafka changed _proc_offset_request; end offsets fix not applied")
        return False

    async def _proc_offset_request(self: Any, node_id: int, topic_data: Any) -> Any:
        offsets = await original(self, node_id, topic_data)
        asked: dict[str, list[tuple[int, int, int]]] = {}
        for topic, partitions in topic_data.items():
            for partition, timestamp in partitions:
                answer = offsets.get(TopicPartition(topic, partition))
                if timestamp == OffsetResetStrategy.LATEST and answer and answer[0] >= 0:
                    asked.setdefault(topic, []).append((partition, answer[0], 1))
        if not asked:
            return offsets
        # Tansu answers a fetch with no wait with no partitions at all: wait 10 ms at most.
        request = FetchRequest(10, 1, 1, self._isolation_level, list(asked.items()))
        response = await self._client.send(node_id, request)
        for topic, partitions in response.topics:
            for partition, error_code, highwater, *_ in partitions:
                tp = TopicPartition(topic, partition)
                if error_code == 0 and tp in offsets and highwater > offsets[tp][0]:
                    offsets[tp] = (highwater, offsets[tp][1])
        return offsets

    setattr(_proc_offset_request, _END_MARK, original)  # the broker's own answer, for tests
    Fetcher._proc_offset_request = _proc_offset_request
    return True


_SEEK_MARK = "_slawatch_seek_before_resume"


def faust_seek_before_resume() -> bool:
    """Make Faust seek a rebalance's stream partitions to their committed offsets before it
    resumes fetching them, not after.

    Faust's recovery ends (``Recovery._resume_streams``) by resuming the stream partitions,
    then seeking them to the committed offsets. In between the fetcher can fetch a
    partition from where it stood before the rebalance, and hand a message ahead of the
    committed offset to the agent; Faust's consumer then takes the offsets in between for
    a gap in the topic (as a compacted topic leaves), counts them as processed and drops
    them when they arrive (faust-streaming issues #216 and #221: messages lost, seen under
    ``slawatch chaos``, docs/OPERATIONS.md, Known workarounds). The fix runs the same
    steps with the seek first. Idempotent; returns True when in place.
    """
    from faust.tables.recovery import Recovery

    original = Recovery._resume_streams
    if getattr(original, _SEEK_MARK, False):
        return True
    source = inspect.getsource(original)
    resume_at, seek_at = source.find("consumer.resume_partitions("), source.find("perform_seek()")
    if not 0 <= resume_at < seek_at:
        log.warning("faust changed _resume_streams; seek-before-resume fix not applied")
        return False

    async def _resume_streams(self: Any, generation_id: int = 0) -> None:
        app = self.app
        consumer = app.consumer
        await app.on_rebalance_complete.send()
        assignment = consumer.assignment()
        if app.consumer_generation_id != generation_id:
            self.log.warning("Recovery rebalancing again")
            return
        if assignment:
            self.log.info("Seek stream partitions to committed offsets.")
            await self._wait(consumer.perform_seek(), timeout=app.conf.broker_request_timeout)
            consumer.resume_partitions({tp for tp in assignment if not self._is_changelog_tp(tp)})
        else:
            self.log.info("Resuming streams with empty assignment")
        self.completed.set()
        self.log.info("Resuming flow...")
        app.flow_control.resume()
        consumer.resume_flow()
        await app._fetcher.maybe_start()
        self.tables.on_actives_ready()
        self.tables.on_standbys_ready()
        app.on_rebalance_end()
        self.log.info("Worker ready")

    setattr(_resume_streams, _SEEK_MARK, True)
    Recovery._resume_streams = _resume_streams  # type: ignore[method-assign]
    return True


_RESTART_MARK = "_slawatch_recovery_restarts_on_rebalance"


def faust_recovery_restarts_on_rebalance() -> bool:
    """Make a Faust table recovery that a new rebalance overtook start again instead of
    going on with the new assignment's partitions.

    Faust's recovery loop (``Recovery._restart_recovery``) waits for the active changelogs
    to be read inside ``try: ... except Exception``, which also swallows the
    ``RebalanceAgain`` its ``_wait`` raises when a rebalance arrives meanwhile
    (faust-streaming #44, #54, PR #57 added that ``except``). The overtaken iteration then
    goes on with the partition sets the new rebalance has just refilled: it seeks the new
    standby partitions to offsets it never built (``None`` with the memory store) and
    aiokafka's ``seek`` raises "Offset must be a positive integer", which crashes the
    Recovery service and stops the worker (seen under ``slawatch chaos``: a worker given
    partitions 1 s after an assignment exited with code 1). Without standbys it goes on to
    complete the recovery of partitions not yet read.

    The fix: ``Recovery._seek_offsets`` and ``Recovery.on_recovery_completed`` raise
    ``RebalanceAgain`` first thing while a newer rebalance is waiting
    (``signal_recovery_start`` set: the loop clears it when it starts an iteration), which
    the loop answers by starting over with the new assignment, as ``_wait`` would have
    had. Idempotent; returns True when in place.
    """
    from faust.tables import recovery

    task = recovery.Recovery._restart_recovery  # a mode ServiceTask around the function
    loop = inspect.getsource(getattr(task, "fun", task))
    if (
        "self.signal_recovery_end.wait()" not in loop
        or "except RebalanceAgain" not in loop
        or not hasattr(recovery, "RebalanceAgain")
    ):
        log.warning("faust changed _restart_recovery; restart-on-rebalance fix not applied")
        return False
    for name in ("_seek_offsets", "on_recovery_completed"):
        original = getattr(recovery.Recovery, name)
        if getattr(original, _RESTART_MARK, False):
            continue
        setattr(recovery.Recovery, name, _overtaken_raises(original, recovery.RebalanceAgain))
    return True


def _overtaken_raises(original: Any, rebalance_again: type[Exception]) -> Any:
    async def method(self: Any, *args: Any, **kwargs: Any) -> Any:
        if self.signal_recovery_start.is_set():
            self.log.info("Recovery overtaken by a new rebalance: starting again")
            raise rebalance_again()
        return await original(self, *args, **kwargs)

    setattr(method, _RESTART_MARK, True)
    method.__name__ = original.__name__
    return method


def faust_acknowledge(consumer: Any, tp: Any, offsets: range) -> None:
    """Count ``offsets`` of ``tp`` as processed in Faust's consumer, as if its stream had
    delivered and acknowledged them: for messages the timers read from the broker and
    applied themselves because Faust skipped them after a rebalance (``agents/timers.py:
    SlaTimers._missing_before``). Without it Faust's commit of ``tp`` never passes the
    first of them (it commits only offsets it counted), and the partition's lag grows for
    ever (seen under ``slawatch chaos``: "Has not committed TP ... at all since worker
    start"). Faust's gap for ``tp`` is dropped too: its offsets are these, now counted."""
    from faust.types.tuples import ack_lock

    with ack_lock:
        consumer._gap.pop(tp, None)
        index, acked = consumer._acked_index[tp], consumer._acked[tp]
        committed = consumer._committed_offset[tp]
        for offset in offsets:
            if (committed is None or offset >= committed) and offset not in index:
                index.add(offset)
                acked.append(offset)


_HEARTBEAT_MARK = "_slawatch_heartbeat_answered"
#: Per consumer group id: when (``time.monotonic``) the last heartbeat its coordinator
#: answered without error was sent.
_heartbeats_answered: dict[str, float] = {}
_heartbeats_refused: dict[str, float] = {}


def record_heartbeats() -> bool:
    """Record, per consumer group, when the last heartbeat the coordinator answered without
    error was sent (:func:`heartbeat_answered_at`): the coordinator still counted the member
    in its generation then. aiokafka keeps this to itself; the timers' check after the
    process stood still needs it (:mod:`slawatch.streams.membership`). A heartbeat answered
    "rebalance in progress" is not counted (aiokafka answers True for it too, and asks to
    rejoin); it and the other answers that ask the member to rejoin are recorded apart
    (:func:`heartbeat_refused_at`). Idempotent; returns True when in place."""
    original = GroupCoordinator._do_heartbeat
    if getattr(original, _HEARTBEAT_MARK, False):
        return True
    source = inspect.getsource(original)
    if "Errors.NoError" not in source or "self.request_rejoin()" not in source:
        log.warning("aiokafka changed _do_heartbeat; heartbeats not recorded")
        return False

    async def _do_heartbeat(self: Any) -> bool:
        sent = time.monotonic()
        answered: bool = await original(self)
        if self._rejoin_needed_fut.done():  # unknown member, old generation, rebalancing
            # When the answer came, not when it was sent: one sent before a pause and
            # refused after it says the group dropped the member during the pause.
            _heartbeats_refused[self.group_id] = time.monotonic()
        elif answered:
            _heartbeats_answered[self.group_id] = sent
        return answered

    setattr(_do_heartbeat, _HEARTBEAT_MARK, True)
    GroupCoordinator._do_heartbeat = _do_heartbeat
    return True


def heartbeat_answered_at(group_id: str) -> float | None:
    """When (``time.monotonic``) the last heartbeat of ``group_id`` answered without error
    was sent, in this process (None: none, or not recorded)."""
    return _heartbeats_answered.get(group_id)


def heartbeat_refused_at(group_id: str) -> float | None:
    """When (``time.monotonic``) the coordinator last answered a heartbeat of ``group_id``
    by asking the member to rejoin (it no longer knows the member, its generation is over,
    or the group is rebalancing): a rebalance of this member follows. None: none, or not
    recorded."""
    return _heartbeats_refused.get(group_id)
