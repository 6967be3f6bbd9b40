"""The compact state of one conversation's SLA timers, changed in place.

One :class:`ConversationState` per ticket, chat or call; it is what the table stores and
what a restarted worker rebuilds its timers from. Everything in it is event time, epoch
milliseconds.

The records are mutable :class:`msgspec.Struct` classes (C slots, no ``__dict__``, not
tracked by the garbage collector: they never take part in a reference cycle). The state
machine changes a state in place, event after event (:mod:`slawatch.core.machine`): a
conversation's state is read once per tick, changed by every event of the batch and
written once. Whoever needs a state as it was keeps a copy (:func:`copy_state`); an SLA
event carries a copy of the context as it was when it was said. The sequence fields are
tuples, replaced (never changed) when they change, so a shallow copy shares them safely.
``array_like`` makes each record a positional array in the stored format
(:mod:`slawatch.storage.state_codec`).
"""

from __future__ import annotations

import zlib
from typing import TYPE_CHECKING, Any, Self

from msgspec import Struct

from slawatch.core.keys import ConversationKind
from slawatch.core.sla import Metric, SlaEventKind

#: How many recent events a conversation remembers (as 32-bit hashes of their ids) to drop
#: duplicates. Older duplicates are absorbed by the machine's rules (docs/SLA.md).
DEDUP_WINDOW = 16
#: An instant that never comes: what a paused cycle has as the due or at-risk instant it
#: has not reached yet (unknown until it resumes). Beyond any real time, within 64 bits.
NEVER = 1 << 62
#: How many recent agent reply times a conversation remembers (for late customer messages).
REPLY_WINDOW = 8


class Record(Struct, array_like=True, gc=False):
    """What the stored records share: mutable, slotted, positional when encoded."""

    if TYPE_CHECKING:  # msgspec's own (a shallow copy, in C); its stubs do not say so

        def __copy__(self) -> Self: ...


class Context(Record):
    """What an SLA event says about its conversation."""

    kind: ConversationKind
    conversation_id: str
    tenant: str | None = None
    channel: str | None = None
    priority: str = "normal"
    department: str | None = None
    assignee: str | None = None
    queue: str | None = None
    customer_group: str | None = None
    status: str | None = None
    level: str = "default"
    # What the SLA rules look at besides the above (slacore/rules.py).
    assignee_status: str | None = None
    referrer_url: str | None = None
    tags: tuple[str, ...] = ()
    #: Custom fields as sorted (name, value) pairs (a tuple, replaced when it changes).
    custom_fields: tuple[tuple[str, Any], ...] = ()
    created_via_invitation: bool = False
    created_ms: int | None = None
    changed_ms: int | None = None
    deleted: bool = False
    last_message_author: str | None = None
    last_message_ms: int | None = None
    #: Who asked: a ticket's requester, a chat's customer, a call's caller.
    requester: str | None = None


class Cycle(Record):
    """One open commitment: a metric waiting for its stop.

    ``used_ms`` is the working time consumed before the current run, which started at
    ``run_started_ms`` (for a paused cycle: the pause). ``due_ms`` and ``at_risk_ms`` are
    the instants the working time reaches the target and the at-risk threshold: scheduled
    while the cycle runs; while it is paused, those it has already reached keep their
    instant and the others are :data:`NEVER` (they are scheduled again when it resumes).
    """

    metric: Metric
    number: int
    started_ms: int
    target_ms: int
    run_started_ms: int
    due_ms: int
    at_risk_ms: int
    used_ms: int = 0
    paused: bool = False
    at_risk_sent: bool = False
    breach_sent: bool = False
    #: The policy version that set ``target_ms`` (a reload applies at the next rule
    #: evaluation; until then the cycle keeps the version it was scheduled under).
    policy_version: str = ""
    #: How many SLA events have been said of this cycle (each carries its number).
    said: int = 0


class StoppedCycle(Record):
    """The last stopped cycle of a metric: enough to retract a missed verdict that a
    late, earlier stop proves wrong, and to absorb stale duplicates."""

    metric: Metric
    number: int
    started_ms: int
    target_ms: int
    due_ms: int
    stopped_ms: int
    elapsed_ms: int
    outcome: SlaEventKind
    breach_sent: bool
    retracted: bool = False
    at_risk_ms: int = 0
    policy_version: str = ""
    said: int = 0


class ConversationState(Record):
    """Everything the timers know about one conversation."""

    key: str
    context: Context
    open_cycles: tuple[Cycle, ...] = ()
    stopped: tuple[StoppedCycle, ...] = ()
    #: Cycles started so far, per metric, in :class:`Metric` order.
    started_counts: tuple[int, int, int, int, int] = (0, 0, 0, 0, 0)
    created: bool = False
    #: An agent opened the ticket: first reply waits for the customer's first message.
    awaiting_customer: bool = False
    #: The earliest customer message seen before the ticket's creation event arrived.
    early_customer_ms: int | None = None
    #: Recent agent reply (or agent chat message) times, ascending.
    reply_times: tuple[int, ...] = ()
    closed: bool = False
    recent_event_hashes: tuple[int, ...] = ()

    def open_cycle(self, metric: Metric) -> Cycle | None:
        for cycle in self.open_cycles:
            if cycle.metric is metric:
                return cycle
        return None

    def last_stopped(self, metric: Metric) -> StoppedCycle | None:
        for cycle in self.stopped:
            if cycle.metric is metric:
                return cycle
        return None

    def started_count(self, metric: Metric) -> int:
        return self.started_counts[_METRIC_INDEX[metric]]


_METRIC_INDEX = {metric: i for i, metric in enumerate(Metric)}


def metric_index(metric: Metric) -> int:
    return _METRIC_INDEX[metric]


def copy_context(context: Context) -> Context:
    """A copy of ``context`` that later changes to it do not reach."""
    return context.__copy__()


def copy_cycle(cycle: Cycle) -> Cycle:
    return cycle.__copy__()


def copy_state(state: ConversationState) -> ConversationState:
    """A copy of ``state`` that later changes to it do not reach (its records copied; its
    tuples shared, since they are replaced, never changed)."""
    copied = state.__copy__()
    copied.context = state.context.__copy__()
    if state.open_cycles:
        copied.open_cycles = tuple([cycle.__copy__() for cycle in state.open_cycles])
    if state.stopped:
        copied.stopped = tuple([cycle.__copy__() for cycle in state.stopped])
    return copied


def event_id_hash(event_id: str) -> int:
    """A 32-bit hash of an event id: 4 bytes instead of a 36-character UUID per event."""
    return zlib.crc32(event_id.encode())
