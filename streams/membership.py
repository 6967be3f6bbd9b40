"""Whether this worker still owns its partitions after its process stood still.

A consumer group gives a member's partitions to another member when the member's session
times out: no heartbeat for ``broker_session_timeout_s``. A worker process stopped for that
long (SIGSTOP, a paused VM or container, a host starved of CPU, a debugger) learns of it
only from its next heartbeat after it resumes. Until then its fetch buffer and its fetches
go on (Kafka does not fence fetches by group membership), and its timers apply messages
the partitions' new owner applies too: both write the changelog and both emit. Seen under
``slawatch chaos``: a worker resumed after 8 s applied offsets 88-196 of a partition while
the worker the group had given it to applied 92-278 (docs/OPERATIONS.md, Several workers).
Kafka's own fencing of such a member is a transactional producer per partition; slawatch's
is this:

- :class:`PauseWatch`: a thread notes the time about ten times a second; a gap longer than
  half the session timeout (a heartbeat interval is at most a third of it) means the whole
  process stood still long enough to lose its session. A busy event loop does not stop a
  thread: only the process standing still (or the interpreter held for that long) does.
- :class:`Ownership`: after such a pause the timers apply nothing until the group has
  answered a heartbeat sent after the pause without error (so it still counts this worker
  in the generation that assigned its partitions) or a rebalance has happened; then a
  message of a partition no longer assigned is dropped, not applied.

What the worker had handed to its producer before it stopped can still reach the broker
after it resumes: at most the records of the tick it was in.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Collection
from typing import Any

log = logging.getLogger(__name__)

Clock = Callable[[], float]


class PauseWatch:
    """Notices that this process stood still for longer than ``threshold_s``.

    ``start`` runs a daemon thread calling :meth:`beat` every ``every_s``;
    :meth:`pause_ended` also notices a pause the thread has not seen yet (when the caller
    runs first after the process resumes). ``clock`` is monotonic seconds.
    """

    def __init__(self, threshold_s: float, clock: Clock = time.monotonic, every_s: float = 0.1):
        if threshold_s <= every_s:
            raise ValueError("the threshold must be longer than the beat")
        self.threshold_s = threshold_s
        self.every_s = every_s
        self._clock = clock
        self._lock = threading.Lock()
        self._last_beat = clock()
        #: When the last pause not confirmed yet was noticed (None: none), and how long it was.
        self._noticed: float | None = None
        self.stood_still_s = 0.0
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is None:
            self._last_beat = self._clock()
            self._thread = threading.Thread(target=self._run, name="pause-watch", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while True:  # a daemon thread: it ends with the process
            time.sleep(self.every_s)
            self.beat()

    def beat(self) -> None:
        with self._lock:
            self._note(self._clock())

    def pause_ended(self) -> float | None:
        """When the last pause not cleared yet was noticed, on ``clock`` (None: none): no
        heartbeat sent before that instant says anything about the group after it."""
        if self._noticed is None and self._clock() - self._last_beat <= self.threshold_s:
            return None  # the fast path, taken on every message: no lock
        with self._lock:
            self._note(self._clock())
            return self._noticed

    def clear(self, noticed: float) -> None:
        """The pause noticed at ``noticed`` is settled (another one since stays)."""
        with self._lock:
            if self._noticed == noticed:
                self._noticed = None

    def _note(self, now: float) -> None:
        gap = now - self._last_beat
        self._last_beat = now
        if gap > self.threshold_s:
            # A second pause before the first was settled waits for later news too.
            self._noticed = now
            self.stood_still_s = gap
            log.warning(
                "this worker stood still for %.1fs, longer than %.1fs (half the session "
                "timeout): the group may have given its partitions to another worker; its "
                "timers apply nothing more until the group answers", gap, self.threshold_s,
            )  # fmt: skip


class Ownership:
    """Answers whether the worker may apply a message of a partition, after a pause.

    ``heartbeat_answered_at(group)`` is when (on ``watch``'s clock) the group's coordinator
    was last sent a heartbeat it answered without error (None: not known;
    :func:`slawatch.streams.compat.record_heartbeats`); ``assignment()`` the partitions
    the group assigns this worker now; ``on_pause`` is called for each pause settled,
    ``on_drop`` for each message refused after one. When heartbeats are not recorded
    (``fallback_s`` not None), that long after the pause the session has either been
    renewed or has expired and been noticed, and the assignment is the group's word again.

    ``heartbeat_refused_at(group)`` is when the coordinator last answered a heartbeat by
    asking the member to rejoin (it dropped the member when its session expired, or is
    rebalancing), and ``rebalancing()`` whether a rebalance of this worker has begun:
    either way a rebalance is on its way, and until it ends nothing is applied. That
    cannot wait for the rebalance: Faust's begins by waiting for the message the timers
    hold.

    After a pause, until the next rebalance, only the partitions assigned when it was
    settled are applied: the messages of the others still in Faust's buffers are dropped,
    and the agent leaves them uncounted (not committed) for their next owner.
    """

    def __init__(
        self,
        watch: PauseWatch,
        group: str,
        heartbeat_answered_at: Callable[[str], float | None],
        assignment: Callable[[], Collection[Any]],
        heartbeat_refused_at: Callable[[str], float | None] = lambda group: None,
        rebalancing: Callable[[], bool] = lambda: False,
        fallback_s: float | None = None,
        clock: Clock = time.monotonic,
        poll_s: float = 0.05,
        on_pause: Callable[[], object] = lambda: None,
        on_drop: Callable[[], object] = lambda: None,
    ) -> None:
        self.watch = watch
        self.group = group
        self._answered_at = heartbeat_answered_at
        self._refused_at = heartbeat_refused_at
        self._rebalancing = rebalancing
        self._assignment = assignment
        self.fallback_s = fallback_s
        self._clock = clock
        self.poll_s = poll_s
        self._on_pause, self._on_drop = on_pause, on_drop
        self._rebalanced_at = float("-inf")
        #: After a pause, until the next rebalance: the partitions assigned when it settled.
        self._held: set[Any] | None = None
        #: After a pause: the group asked to rejoin or a rebalance began; until it ends
        #: (:meth:`rebalanced`) every message is refused, the pause still to settle.
        self._awaiting_rebalance = False

    def rebalanced(self) -> None:
        """Partitions were revoked or assigned: what this worker holds is the group's word."""
        self._rebalanced_at = self._clock()
        self._held = None
        self._awaiting_rebalance = False

    def quiet(self) -> bool:
        """No pause to settle and no partition refused: every message may be applied (the
        check on every message, with no coroutine)."""
        return self._held is None and self.watch.pause_ended() is None

    def refuses(self, tp: Any) -> bool:
        """``tp`` was refused after a pause and the next rebalance has not come yet (no
        coroutine: for the agent, after a message, to leave it uncounted)."""
        return self._awaiting_rebalance or (self._held is not None and tp not in self._held)

    async def holds(self, tp: Any) -> bool:
        """Whether ``tp`` is this worker's to apply; waits for the group after a pause."""
        noticed = self.watch.pause_ended()
        if noticed is not None:
            if not await self._settle(noticed):
                self._on_drop()  # a rebalance is on its way: nothing applied before it
                return False
        elif self._held is None:
            return True
        if self._held is not None and tp not in self._held:
            self._on_drop()
            return False
        return True

    async def _settle(self, noticed: float) -> bool:
        """Wait for the group's word on the pause noticed at ``noticed``; True once it is
        settled (``_held`` set), False while a rebalance is on its way (the pause stays
        to settle by it)."""
        while True:
            answered = self._answered_at(self.group)
            if answered is not None and answered > noticed:
                how = "the group answered a heartbeat sent after it"
                break
            if self._rebalanced_at > noticed:
                how = "a rebalance since"
                break
            # The group asked this worker to rejoin, or a rebalance has begun: nothing is
            # applied before it ends. Not waited for here: Faust's rebalance begins by
            # waiting for the message in hand (wait_empty), and both would wait forever.
            refused_at = self._refused_at(self.group)
            if (refused_at is not None and refused_at > noticed) or self._rebalancing():
                if not self._awaiting_rebalance:
                    log.warning(
                        "after standing still for %.1fs: a rebalance is on its way; nothing "
                        "is applied before it", self.watch.stood_still_s,
                    )  # fmt: skip
                self._awaiting_rebalance = True
                return False
            if self.fallback_s is not None and self._clock() - noticed > self.fallback_s:
                how = f"no heartbeat news in {self.fallback_s:.1f}s"
                break
            await asyncio.sleep(self.poll_s)
        self._awaiting_rebalance = False
        self.watch.clear(noticed)
        self._on_pause()
        held = set(self._assignment())
        log.warning(
            "after standing still for %.1fs: %s; applying the partitions assigned now: %s",
            self.watch.stood_still_s, how, sorted(str(tp) for tp in held),
        )  # fmt: skip
        # Until the next rebalance, only these: a message of another partition still in
        # Faust's buffers is of an assignment this worker lost.
        self._held = held
        return True
