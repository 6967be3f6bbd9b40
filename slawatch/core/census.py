"""What a partition's open commitments add up to, by bounded labels, kept as states change.

Two pieces, both framework-free:

- :class:`LabelFolder` turns a conversation's attributes (level, channel, department,
  queue, priority, tenant, customer group) into a tuple of label values with a bound on
  how many distinct tuples can ever come out: a value outside the configured allowed set,
  or new once a label already has ``cap_per_label`` values, becomes ``other``; a missing
  value is ``none``; a combination new once ``max_combinations`` exist becomes all
  ``other``. So a label set yields at most ``max_combinations + 1`` tuples, whatever the
  traffic. Decisions are stable: a value or tuple admitted once stays admitted, one folded
  once stays folded, so counting a state in and later out uses the same labels. Caps are
  per process: once a label reaches its cap, which values kept their own name depends on
  the order each worker saw them, so a label with more values than its cap should be given
  its allowed values (the worker says so in its log when a cap is reached).
- :class:`CycleCensus` counts one partition's open cycles by (metric, labels): open, at
  risk now (at-risk declared, not yet breached) and breached-and-still-open, and keeps the
  open cycles at risk or breached (the wallboard's list). :meth:`CycleCensus.update` moves
  a conversation from its old state to its new one; :meth:`CycleCensus.add` counts a state
  in when a partition is rebuilt. The states change in place (slawatch/core/state.py), so
  the old state it is given is a copy made before the change (the tick's
  :attr:`~slawatch.core.scheduler.Tick.before`), and labels are looked up by the context's
  values, never by its identity. A worker exports the sum over the partitions it holds,
  so several workers add up and a moved partition is counted by its new owner only.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass

from slawatch.core.keys import ConversationKind
from slawatch.core.sla import Metric
from slawatch.core.state import ConversationState, Cycle

#: The conversation attributes a label may be made of (fields of ``Context``).
LABEL_ATTRIBUTES = (
    "level", "channel", "department", "queue", "priority", "tenant", "customer_group"
)  # fmt: skip
#: The value of a label whose attribute is not set.
NONE = "none"
#: The value of a label folded away (outside the allowed set or beyond a cap).
OTHER = "other"
#: A label value longer than this is folded (no one reads a 200-character label).
MAX_VALUE_CHARS = 64


class LabelError(ValueError):
    """A label set that cannot work (an unknown attribute, a cap below 1)."""


class LabelFolder:
    """Bounded label values for one label set (see the module docstring)."""

    __slots__ = (
        "_admitted",
        "_all_other",
        "_allowed",
        "_cache",
        "_cap",
        "_full",
        "_max_combinations",
        "_values",
        "names",
        "on_full",
    )

    def __init__(
        self,
        names: Iterable[str],
        *,
        allowed: Mapping[str, Collection[str]] | None = None,
        cap_per_label: int = 30,
        max_combinations: int = 1000,
        on_full: Callable[[str], None] | None = None,
    ) -> None:
        self.names = tuple(names)
        #: Told, once each, the name of a label whose cap was reached ("" for the cap on
        #: combinations): from then on this process folds new values into ``other``.
        self.on_full = on_full
        self._full: set[str] = set()
        unknown = [n for n in self.names if n not in LABEL_ATTRIBUTES]
        if unknown:
            raise LabelError(
                f"unknown label {unknown[0]!r}; labels are made of {', '.join(LABEL_ATTRIBUTES)}"
            )
        if len(set(self.names)) != len(self.names):
            raise LabelError("a label is named twice")
        if cap_per_label < 1 or max_combinations < 1:
            raise LabelError("the caps must be at least 1")
        extra = [n for n in (allowed or {}) if n not in self.names]
        if extra:
            raise LabelError(f"allowed values given for {extra[0]!r}, which is not a label")
        self._allowed = {n: frozenset(v) for n, v in (allowed or {}).items()}
        self._cap = cap_per_label
        self._max_combinations = max_combinations
        #: Per label: the values admitted so far (at most the cap).
        self._values: list[set[str]] = [set() for _ in self.names]
        self._admitted: set[tuple[str, ...]] = set()
        self._all_other = tuple(OTHER for _ in self.names)
        #: Raw attribute tuple -> labels (bounded; cleared when full, recomputed the same).
        self._cache: dict[tuple[object, ...], tuple[str, ...]] = {}

    @property
    def bound(self) -> int:
        """The most distinct label tuples this folder can ever return."""
        return self._max_combinations + 1

    def value(self, index: int, raw: object) -> str:
        """The label value of attribute ``self.names[index]`` for ``raw``."""
        if raw is None or raw == "":
            return NONE
        value = str(raw)
        allowed = self._allowed.get(self.names[index])
        if allowed is not None:
            return value if value in allowed else OTHER
        if value in (NONE, OTHER):
            return value
        seen = self._values[index]
        if value in seen:
            return value
        if len(value) > MAX_VALUE_CHARS:
            return OTHER
        if len(seen) >= self._cap:
            self._report_full(self.names[index])
            return OTHER
        seen.add(value)
        return value

    def _report_full(self, name: str) -> None:
        if name not in self._full:
            self._full.add(name)
            if self.on_full is not None:
                self.on_full(name)

    def labels_of(self, raw: tuple[object, ...]) -> tuple[str, ...]:
        """The labels of a tuple of raw attribute values, in :attr:`names` order."""
        cached = self._cache.get(raw)
        if cached is not None:
            return cached
        folded = tuple(self.value(i, v) for i, v in enumerate(raw))
        if folded not in self._admitted:
            if len(self._admitted) >= self._max_combinations:
                self._report_full("")
                folded = self._all_other
            else:
                self._admitted.add(folded)
        if len(self._cache) >= 8 * self._max_combinations:
            self._cache.clear()
        self._cache[raw] = folded
        return folded

    def labels(self, context: object) -> tuple[str, ...]:
        """The labels of a conversation context (any object with the attributes), by its
        values (a context changes in place: its identity says nothing)."""
        return self.labels_of(tuple([getattr(context, n) for n in self.names]))


@dataclass(frozen=True, slots=True)
class Watched:
    """An open cycle at risk or breached: what the wallboard lists."""

    key: str
    kind: ConversationKind
    conversation_id: str
    metric: Metric
    due_ms: int
    breached: bool
    level: str
    priority: str
    department: str | None
    queue: str | None
    assignee: str | None
    customer_group: str | None
    tenant: str | None


#: Index of each count in a census cell.
OPEN, AT_RISK, BREACHED = 0, 1, 2


def _status(cycle: Cycle) -> int:
    if cycle.breach_sent:
        return BREACHED
    if cycle.at_risk_sent:
        return AT_RISK
    return OPEN


class CycleCensus:
    """One partition's open cycles counted by (metric, labels) and status."""

    __slots__ = ("_folder", "counts", "watched")

    def __init__(self, folder: LabelFolder) -> None:
        self._folder = folder
        #: (metric, labels) -> [open, at risk now, breached and open].
        self.counts: dict[tuple[Metric, tuple[str, ...]], list[int]] = {}
        #: (key, metric) -> the open cycle at risk or breached (not paused).
        self.watched: dict[tuple[str, Metric], Watched] = {}

    def add(self, state: ConversationState) -> None:
        """Count ``state``'s open cycles in."""
        self._count(state, 1)

    def update(self, before: ConversationState | None, after: ConversationState) -> None:
        """``before`` (None: new) became ``after``: move the counts. ``before`` is a copy
        made before the change (the state itself changes in place)."""
        if before is not None:
            if before.open_cycles == after.open_cycles and before.context == after.context:
                return  # nothing counted changed
            self._count(before, -1)
        self._count(after, 1)

    def _count(self, state: ConversationState, sign: int) -> None:
        if not state.open_cycles:
            return
        labels = self._folder.labels(state.context)
        counts = self.counts
        for cycle in state.open_cycles:
            cell_key = (cycle.metric, labels)
            cell = counts.get(cell_key)
            if cell is None:
                cell = counts[cell_key] = [0, 0, 0]
            cell[OPEN] += sign
            status = _status(cycle)
            if status != OPEN:
                cell[status] += sign
            if not any(cell):
                del counts[cell_key]
            if status != OPEN:
                self._watch(state, cycle, sign)

    def _watch(self, state: ConversationState, cycle: Cycle, sign: int) -> None:
        watch_key = (state.key, cycle.metric)
        if sign < 0 or cycle.paused:
            self.watched.pop(watch_key, None)
            return
        context = state.context
        self.watched[watch_key] = Watched(
            key=state.key,
            kind=context.kind,
            conversation_id=context.conversation_id,
            metric=cycle.metric,
            due_ms=cycle.due_ms,
            breached=cycle.breach_sent,
            level=context.level,
            priority=context.priority,
            department=context.department,
            queue=context.queue,
            assignee=context.assignee,
            customer_group=context.customer_group,
            tenant=context.tenant,
        )


def add_up(censuses: Iterable[CycleCensus]) -> dict[tuple[Metric, tuple[str, ...]], list[int]]:
    """The counts of several partitions' censuses, cell by cell."""
    total: dict[tuple[Metric, tuple[str, ...]], list[int]] = {}
    for census in censuses:
        for cell_key, cell in census.counts.items():
            into = total.get(cell_key)
            if into is None:
                total[cell_key] = list(cell)
            else:
                into[0] += cell[0]
                into[1] += cell[1]
                into[2] += cell[2]
    return total


def soonest(censuses: Iterable[CycleCensus], limit: int) -> list[Watched]:
    """The ``limit`` watched cycles due soonest (breached ones are overdue: first)."""

    def items() -> Iterator[Watched]:
        for census in censuses:
            yield from census.watched.values()

    return heapq.nsmallest(limit, items(), key=lambda w: (w.due_ms, w.key, w.metric.value))
