"""One tick of a partition's SLA timers: the loop the stream and replay both run.

A partition's conversations live in a :class:`StateStore` (a Faust table in a worker, a
dict in ``replay`` and in tests); its timers are a priority queue of (next deadline, key)
held by a :class:`PartitionScheduler`. One :meth:`PartitionScheduler.tick`:

1. applies each event to its conversation's state, read once per tick from the store and
   changed in place by every event of the tick (no copy per event);
2. if a watermark is known, advances every touched state to it, then pops from the queue
   only the entries due at or before it, skipping *stale* ones (the deadline stored with
   the state no longer matches the queued one: the state moved on since), and advances
   those states too;
3. returns the SLA events, the states to persist with their next deadline (each touched
   state once per tick), the events the machine refused, and, with a retention, the
   finished states to remove (:mod:`slawatch.core.retention`); the queue already holds
   the new deadlines.

With a retention, a finished state's next deadline is the instant it expires: it waits in
the queue like any deadline, and the tick whose watermark passes it names the state in
:attr:`Tick.expired` instead of advancing it.

The caller persists (and removes) before the next tick (the next tick reads the store). Nothing here
scans the whole store: only :meth:`PartitionScheduler.rebuild`, once per assignment.

The tick changes the states the store hands it: a store that keeps objects
(:class:`MemoryStore`) sees its states change during the tick, before ``put``; one that
keeps bytes (the worker's table) decodes a fresh object on every ``get``. Either way,
nothing else may hold a state across a tick expecting it to stay as it was: the states
as they were before the tick are in :attr:`Tick.before` (copies), when asked for.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from slawatch.core.effects import SlaEvent
from slawatch.core.events import InputEvent
from slawatch.core.machine import (
    IllegalTransition,
    advance_in_place,
    apply_in_place,
    next_deadline,
)
from slawatch.core.policy import SlaPolicy
from slawatch.core.retention import expires_at
from slawatch.core.state import ConversationState, copy_state


class StateStore(Protocol):
    """Where one partition's conversation states are kept, with their next deadlines."""

    def get(self, key: str) -> tuple[ConversationState, int | None] | None:
        """The state of ``key`` and the deadline stored with it (None: no state yet)."""
        ...

    def deadline(self, key: str) -> int | None:
        """The deadline stored with ``key``, without reading the state (None: none)."""
        ...

    def put(self, key: str, state: ConversationState, deadline_ms: int | None) -> None:
        """Store ``state`` with its next deadline."""
        ...

    def remove(self, key: str) -> None:
        """Forget ``key``'s state (a finished conversation past its retention)."""
        ...

    def deadlines(self) -> Iterable[tuple[str, int]]:
        """(key, deadline) of every state of the partition that has a deadline."""
        ...


class MemoryStore:
    """A :class:`StateStore` in a dict: for ``replay`` and tests."""

    __slots__ = ("_states",)

    def __init__(self) -> None:
        self._states: dict[str, tuple[ConversationState, int | None]] = {}

    def get(self, key: str) -> tuple[ConversationState, int | None] | None:
        return self._states.get(key)

    def deadline(self, key: str) -> int | None:
        stored = self._states.get(key)
        return None if stored is None else stored[1]

    def put(self, key: str, state: ConversationState, deadline_ms: int | None) -> None:
        self._states[key] = (state, deadline_ms)

    def remove(self, key: str) -> None:
        self._states.pop(key, None)

    def deadlines(self) -> Iterator[tuple[str, int]]:
        for key, (_, deadline) in self._states.items():
            if deadline is not None:
                yield key, deadline

    def states(self) -> Iterator[ConversationState]:
        """Every state, in the order the conversations were first stored."""
        for state, _ in self._states.values():
            yield state

    def __len__(self) -> int:
        return len(self._states)


@dataclass(frozen=True, slots=True)
class Refused:
    """An event the state machine refused (it cannot belong to its conversation)."""

    event: InputEvent
    reason: str


@dataclass(slots=True)
class Tick:
    """What one tick produced."""

    #: SLA events, in the order they were decided.
    effects: list[SlaEvent] = field(default_factory=list)
    #: (key, state, next deadline) of every state the tick touched: persist each.
    persist: list[tuple[str, ConversationState, int | None]] = field(default_factory=list)
    #: Events the machine refused; the rest of the tick went on without them.
    refused: list[Refused] = field(default_factory=list)
    #: Queue entries found stale (their state had moved on) and dropped.
    stale: int = 0
    #: Keys of finished states past their retention: remove each (none without a
    #: retention). The tick did not touch them: none is in ``persist``.
    expired: list[str] = field(default_factory=list)
    #: Events about conversations the store does not hold, older than the retention
    #: before the watermark: refused (see :mod:`slawatch.core.retention`).
    too_old: list[InputEvent] = field(default_factory=list)
    #: The stored state of every key in ``persist`` before the tick (None: it had none), a
    #: copy the tick did not change; empty unless the scheduler keeps them (``keep_before``).
    before: dict[str, ConversationState | None] = field(default_factory=dict)


class PartitionScheduler:
    """The timers of one partition: a queue of (next deadline, key) over a store.

    ``keep_before``: fill :attr:`Tick.before` (a copy of each touched state as it was,
    which the worker's census needs); replay, which does not, saves the copies.

    ``retention_ms``: how long a finished conversation's state is kept after it finished
    (None: for ever, as replay keeps them)."""

    __slots__ = ("_queue", "_watermark_ms", "keep_before", "retention_ms", "store")

    def __init__(
        self, store: StateStore, *, keep_before: bool = True, retention_ms: int | None = None
    ) -> None:
        self.store = store
        self.keep_before = keep_before
        self.retention_ms = retention_ms
        self._queue: list[tuple[int, str]] = []
        #: The watermark of the last tick that had one: what the partition had seen before
        #: the events of the next tick (which may move it on themselves).
        self._watermark_ms: int | None = None

    def rebuild(self) -> int:
        """Queue every stored deadline (after an assignment; never on a tick)."""
        self._queue = [(deadline, key) for key, deadline in self.store.deadlines()]
        heapq.heapify(self._queue)
        return len(self._queue)

    def __len__(self) -> int:
        """Entries in the queue (stale ones included until they are popped)."""
        return len(self._queue)

    def tick(
        self,
        events: Sequence[InputEvent],
        watermark_ms: int | None,
        policy: SlaPolicy,
        now_ms: int,
    ) -> Tick:
        """Apply ``events``, fire what ``watermark_ms`` makes due, and say what to persist.

        ``watermark_ms`` is None until every input has reported one: then nothing is
        declared at risk or breached, however late it is (docs/SLA.md, "Watermarks").
        """
        store = self.store
        result = Tick()
        effects = result.effects
        touched: dict[str, ConversationState] = {}
        old_deadlines: dict[str, int | None] = {}
        before = result.before
        keep_before = self.keep_before
        retention_ms = self.retention_ms
        # Events before this instant about conversations not held are refused: older than
        # the retention when they arrived, against the watermark before this tick (a
        # backlog read in one batch moves the watermark past its own first events).
        seen_ms = self._watermark_ms
        oldest_ms = None if retention_ms is None or seen_ms is None else seen_ms - retention_ms

        for event in events:
            key = event.key
            state = touched.get(key)
            if state is None:
                stored = store.get(key)
                if stored is None and oldest_ms is not None and event.occurred_at < oldest_ms:
                    result.too_old.append(event)
                    continue
                state, old_deadlines[key] = (None, None) if stored is None else stored
                if keep_before:
                    before[key] = None if state is None else copy_state(state)
            try:
                touched[key], fired = apply_in_place(state, event, policy, now_ms, key)
            except IllegalTransition as exc:
                result.refused.append(Refused(event, str(exc)))
                continue
            if fired:
                effects += fired

        if watermark_ms is not None:
            for state in touched.values():
                _, fired = advance_in_place(state, watermark_ms, policy, now_ms)
                if fired:
                    effects += fired
            queue = self._queue
            while queue and queue[0][0] <= watermark_ms:
                deadline, key = heapq.heappop(queue)
                if key in touched:
                    continue  # advanced above, and requeued below if still pending
                if store.deadline(key) != deadline:
                    result.stale += 1
                    continue  # the state moved on since this entry was queued
                stored = store.get(key)
                if stored is None:
                    continue
                state = stored[0]
                if retention_ms is not None and state.closed and not state.open_cycles:
                    # Its expiry (recomputed: the retention may have changed since).
                    expiry = expires_at(state, retention_ms)
                    if expiry is not None and expiry <= watermark_ms:
                        result.expired.append(key)
                        continue
                old_deadlines[key] = deadline
                if keep_before:
                    before[key] = copy_state(state)
                touched[key], fired = advance_in_place(state, watermark_ms, policy, now_ms)
                effects += fired
            self._watermark_ms = watermark_ms

        for key, state in touched.items():
            next_ms = next_deadline(state)
            if next_ms is None and retention_ms is not None and state.closed:
                next_ms = expires_at(state, retention_ms)
            result.persist.append((key, state, next_ms))
            if next_ms is not None and next_ms != old_deadlines.get(key):
                heapq.heappush(self._queue, (next_ms, key))
        return result
