"""The compact, immutable state of one conversation's SLA timers.

One :class:`ConversationState` per ticket, chat or call; it is what the table stores and
what a restarted worker rebuilds its timers from. Everything in it is event time, epoch
milliseconds. Low-cardinality strings (priorities, queues, agents) are interned so a
million states share them.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Any, TypeVar

from slawatch.core.keys import ConversationKind
from slawatch.core.sla import Metric, SlaEventKind

_T = TypeVar("_T")

#: How many recent events a conversation remembers (as 32-bit hashes of their ids) to drop
#: duplicates. Older duplicates are absorbed by the machine's rules (docs/SLA.md).
DEDUP_WINDOW = 16
#: An instant that never comes: what a paused cycle has as the due or at-risk instant it
#: has not reached yet (unknown until it resumes). Beyond any real time, within 64 bits.
NEVER = 1 << 62
#: How many recent agent reply times a conversation remembers (for late customer messages).
REPLY_WINDOW = 8


@dataclass(frozen=True, slots=True)
class Context:
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
    #: Custom fields as sorted (name, value) pairs (immutable, and cheap when empty).
    custom_fields: tuple[tuple[str, Any], ...] = ()
    created_via_invitation: bool = False
    created_ms: int | None = None
    changed_ms: int | None = None
    deleted: bool = False
    last_message_author: str | None = None
    last_message_ms: int | None = None
    #: Who asked: a ticket's requester, a chat's customer, a call's caller.
    requester: str | None = None


@dataclass(frozen=True, slots=True)
class Cycle:
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


@dataclass(frozen=True, slots=True)
class StoppedCycle:
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


@dataclass(frozen=True, slots=True)
class ConversationState:
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


_EVOLVERS: dict[type, Callable[[Any, dict[str, Any]], Any]] = {}


def _make_evolver(cls: type) -> Callable[[Any, dict[str, Any]], Any]:
    """Generated code that copies a frozen slotted record with some fields changed.

    It fills a new instance through the slots' own descriptors (C code, and a frozen
    dataclass only guards ``__setattr__``), skipping ``__init__``: half the cost of
    rebuilding through the constructor, which was a tenth of the worker's time. Only for
    records without ``__post_init__`` checks (the state records here).
    """
    names = [f.name for f in fields(cls)]
    defaults = ", ".join(f"_set_{n}=_set_{n}" for n in names)
    lines = [f"def evolve(obj, changes, _new=_new, _cls=_cls, {defaults}):"]
    lines.append("    o = _new(_cls)")
    for n in names:
        lines.append(f"    _set_{n}(o, changes['{n}'] if '{n}' in changes else obj.{n})")
    lines.append("    return o")
    namespace: dict[str, Any] = {"_new": object.__new__, "_cls": cls}
    namespace.update({f"_set_{n}": getattr(cls, n).__set__ for n in names})
    # Built from the class's own field names. Compiled first: CPython 3.11 marks a
    # KeyboardInterrupt that leaves exec() *of a string* as unhandled even when it is
    # caught, and `python -m` then exits by SIGINT (docs/OPERATIONS.md, known workarounds).
    exec(compile("\n".join(lines), f"<evolve {cls.__qualname__}>", "exec"), namespace)
    evolver: Callable[[Any, dict[str, Any]], Any] = namespace["evolve"]
    return evolver


def evolve(obj: _T, **changes: Any) -> _T:
    """``dataclasses.replace`` for these frozen slotted records, without its per-call field
    inspection and without ``__init__`` (see :func:`_make_evolver`)."""
    evolver = _EVOLVERS.get(type(obj))
    if evolver is None:
        evolver = _EVOLVERS[type(obj)] = _make_evolver(type(obj))
    result: _T = evolver(obj, changes)
    return result


def event_id_hash(event_id: str) -> int:
    """A 32-bit hash of an event id: 4 bytes instead of a 36-character UUID per event."""
    return zlib.crc32(event_id.encode())
