"""One application of the state machine: the conversation's state as it changes, and the
operations the input events are made of: start, stop, cancel, pause, resume and move
cycles, emit what is said about them, and update the conversation's context.

The state and its records are changed in place (:mod:`slawatch.core.state`); only what
must outlive the change is copied: the context an SLA event carries (once per application
and context, not per event said), and a paused cycle as an event reports it.
"""

from __future__ import annotations

import sys
from typing import Any, TypeVar

from slawatch.core.calendar import Calendar
from slawatch.core.effects import SlaEvent
from slawatch.core.policy import SlaLevel, SlaPolicy
from slawatch.core.sla import CancelReason, Metric, SlaEventKind, Stop
from slawatch.core.state import (
    NEVER,
    REPLY_WINDOW,
    Context,
    ConversationState,
    Cycle,
    StoppedCycle,
    metric_index,
)

Effects = list[SlaEvent]
_intern = sys.intern
#: An open or a stopped cycle (both can be spoken of).
C = TypeVar("C", Cycle, StoppedCycle)


def intern_optional(value: Any) -> Any:
    """``value``, interned when it is a string (states share low-cardinality strings)."""
    return _intern(value) if isinstance(value, str) else value


class Run:
    """One application: the state it changes in place, the effects, the policy and the
    clock."""

    __slots__ = ("_said_context", "effects", "now_ms", "policy", "state")

    def __init__(self, state: ConversationState, policy: SlaPolicy, now_ms: int) -> None:
        self.state = state
        self.policy = policy
        self.now_ms = now_ms
        self.effects: Effects = []
        #: The copy of the context the effects said so far carry (None: the context has
        #: changed since, or nothing was said yet).
        self._said_context: Context | None = None

    @property
    def level(self) -> SlaLevel:
        """The level the conversation is on (its targets, calendar, pause statuses)."""
        return self.policy.level(self.state.context.level)

    # emitting

    def emit(
        self,
        kind: SlaEventKind,
        cycle: C,
        *,
        at_ms: int,
        elapsed_ms: int,
        reason: CancelReason | None = None,
        stop: Stop | None = None,
        previous_level: str | None = None,
        settle_ms: int | None = None,
    ) -> C:
        """Say ``kind`` of ``cycle``, which counts it (its events are numbered); return
        it. A paused cycle reports the instants it has not reached as if it ran on from
        ``settle_ms`` (default ``at_ms``; never :data:`NEVER`)."""
        said = cycle.said = cycle.said + 1
        shown: Cycle | StoppedCycle = cycle
        if isinstance(cycle, Cycle) and cycle.paused:
            shown = self._settled(cycle, at_ms if settle_ms is None else settle_ms)
        context = self._said_context
        if context is None:  # the event keeps the context as it is now
            context = self._said_context = self.state.context.__copy__()
        self.effects.append(
            SlaEvent(
                kind=kind,
                metric=shown.metric,
                cycle=shown.number,
                key=self.state.key,
                context=context,
                target_ms=shown.target_ms,
                started_ms=shown.started_ms,
                due_ms=shown.due_ms,
                at_ms=at_ms,
                elapsed_ms=elapsed_ms,
                detected_at_ms=self.now_ms,
                policy_version=shown.policy_version,
                at_risk_ms=shown.at_risk_ms,
                reason=reason,
                stop=stop,
                previous_level=previous_level,
                sequence=said,
            )
        )
        return cycle

    # starting

    def start(self, metric: Metric, at_ms: int, used_ms: int = 0) -> Cycle | None:
        """Open a new cycle of ``metric`` at ``at_ms`` (None when the metric is untracked)."""
        state = self.state
        level = self.level
        target = level.target_ms(metric)
        if target is None or state.open_cycle(metric) is not None:
            return None
        counts = list(state.started_counts)
        index = metric_index(metric)
        counts[index] += 1
        paused = metric is Metric.RESOLUTION and state.context.status in level.pause_statuses
        # metric, number, started, target, run started, due, at risk, used, paused, at
        # risk sent, breach sent, policy version (positional: the cheapest call)
        new = Cycle(metric, counts[index], at_ms, target, at_ms, 0, 0, used_ms, paused, False,
                    False, self.policy.version)  # fmt: skip
        cycle = self._schedule(new)
        state.open_cycles = (*state.open_cycles, cycle)
        state.started_counts = (counts[0], counts[1], counts[2], counts[3], counts[4])
        return cycle

    def _schedule(self, cycle: Cycle) -> Cycle:
        """Set due and at-risk (in place) from the current run (or pause) and the working
        time used; return ``cycle``.

        A threshold the cycle has already reached keeps the instant it reached it (or,
        when a new level puts it past at once, the start of this run); one it has not
        reached is scheduled on the level's calendar, or :data:`NEVER` while paused.

        After a level change, a due the old target reached and the new one still has
        keeps its instant: the breach has been true since then (and was declared then)."""
        level = self.level
        calendar = level.calendar
        start, used, paused = cycle.run_started_ms, cycle.used_ms, cycle.paused
        risk_left = level.at_risk_after_ms(cycle.target_ms) - used
        at_risk = _reached(calendar, start, risk_left, cycle.at_risk_ms, paused)
        cycle.due_ms = _reached(calendar, start, cycle.target_ms - used, cycle.due_ms, paused)
        cycle.at_risk_ms = at_risk
        return cycle

    def _settled(self, cycle: Cycle, at_ms: int) -> Cycle:
        """``cycle`` as an event reports it at ``at_ms``: a paused cycle's instants not
        reached are when it would have reached them running on from then (so a cycle
        that stops paused short of its target is due after its stop). A paused cycle's is a
        copy: the cycle itself stays paused."""
        if not cycle.paused:
            return cycle
        resumed = cycle.__copy__()
        resumed.paused = False
        resumed.run_started_ms = max(at_ms, cycle.run_started_ms)
        return self._schedule(resumed)

    def elapsed(self, cycle: Cycle, at_ms: int) -> int:
        if cycle.paused:
            return cycle.used_ms
        return cycle.used_ms + self.level.calendar.elapsed(cycle.run_started_ms, at_ms)

    def remove_cycle(self, old: Cycle) -> None:
        self.state.open_cycles = tuple([c for c in self.state.open_cycles if c is not old])

    # stopping

    def stop(self, cycle: Cycle, at_ms: int, stop: Stop) -> None:
        """Settle ``cycle`` at ``at_ms``: met or missed, retracting a wrong breach."""
        elapsed = self.elapsed(cycle, at_ms)
        met = _met(elapsed, cycle.target_ms, at_ms, self._settled(cycle, at_ms).due_ms)
        told = cycle
        if met and cycle.breach_sent:
            told = self.emit(SlaEventKind.RETRACTED, told, at_ms=at_ms, elapsed_ms=elapsed)
        outcome = SlaEventKind.MET if met else SlaEventKind.MISSED
        told = self.emit(outcome, told, at_ms=at_ms, elapsed_ms=elapsed, stop=stop)
        self._close(cycle, told, at_ms, elapsed, outcome, retracted=met and cycle.breach_sent)

    def cancel(self, cycle: Cycle, at_ms: int, reason: CancelReason, stop: Stop) -> None:
        elapsed = self.elapsed(cycle, at_ms)
        told = self.emit(
            SlaEventKind.CANCELLED, cycle, at_ms=at_ms, elapsed_ms=elapsed,
            reason=reason, stop=stop,
        )  # fmt: skip
        self._close(cycle, told, at_ms, elapsed, SlaEventKind.CANCELLED, retracted=False)

    def _close(
        self,
        cycle: Cycle,
        told: Cycle,
        at_ms: int,
        elapsed_ms: int,
        outcome: SlaEventKind,
        *,
        retracted: bool,
    ) -> None:
        """Replace open ``cycle`` by its stopped record (``told``: the same, counting the
        events just said of it)."""
        self.remove_cycle(cycle)
        cycle = self._settled(told, at_ms)
        record = StoppedCycle(
            metric=cycle.metric,
            number=cycle.number,
            started_ms=cycle.started_ms,
            target_ms=cycle.target_ms,
            due_ms=cycle.due_ms,
            stopped_ms=at_ms,
            elapsed_ms=elapsed_ms,
            outcome=outcome,
            breach_sent=cycle.breach_sent,
            retracted=retracted,
            at_risk_ms=cycle.at_risk_ms,
            policy_version=cycle.policy_version,
            said=cycle.said,
        )
        metric = cycle.metric
        others = [s for s in self.state.stopped if s.metric is not metric]
        self.state.stopped = (*others, record)

    def maybe_correct_stopped(self, metric: Metric, at_ms: int, stop: Stop) -> None:
        """A stop older than the recorded one: if it proves a missed cycle met, say so.

        Only for metrics that never pause (the working time is then exact from the start).
        """
        last = self.state.last_stopped(metric)
        if (
            last is None
            or last.outcome is not SlaEventKind.MISSED
            or not last.started_ms <= at_ms < last.stopped_ms
        ):
            return
        elapsed = self.level.calendar.elapsed(last.started_ms, at_ms)
        if not _met(elapsed, last.target_ms, at_ms, last.due_ms):
            return
        told = last
        if not last.retracted:
            told = self.emit(SlaEventKind.RETRACTED, told, at_ms=at_ms, elapsed_ms=elapsed)
        self.emit(SlaEventKind.MET, told, at_ms=at_ms, elapsed_ms=elapsed, stop=stop)
        last.stopped_ms = at_ms
        last.elapsed_ms = elapsed
        last.outcome = SlaEventKind.MET
        last.retracted = True
        others = [s for s in self.state.stopped if s is not last]
        self.state.stopped = (*others, last)  # the latest correction last, as a new record

    def cancel_all(self, at_ms: int, reason: CancelReason, stop: Stop) -> None:
        for cycle in self.state.open_cycles:  # the tuple as it was: cancel replaces it
            self.cancel(cycle, at_ms, reason, stop)
        self.state.closed = True

    # pausing

    def pause(self, cycle: Cycle, at_ms: int) -> None:
        """Stop the clock at ``at_ms``: the thresholds not yet reached become NEVER."""
        if cycle.paused:
            return
        at = max(at_ms, cycle.run_started_ms)
        cycle.used_ms = self.elapsed(cycle, at)
        cycle.paused = True
        cycle.run_started_ms = at
        self._schedule(cycle)

    def resume(self, cycle: Cycle, at_ms: int) -> None:
        if not cycle.paused:
            return
        cycle.paused = False
        cycle.run_started_ms = at_ms
        self._schedule(cycle)

    # levels

    def apply_rules(self, at_ms: int) -> None:
        """Evaluate the rules at event time ``at_ms``; move the open cycles to the level
        they choose (and to this policy version). See :meth:`_move`."""
        state = self.state
        new = self.policy.level_for(state.context, at_ms)
        old = state.context.level
        version = self.policy.version
        if new == old and all(c.policy_version == version for c in state.open_cycles):
            return
        # Working time used so far, measured on the level that has applied until now.
        used = {id(c): self.elapsed(c, max(at_ms, c.run_started_ms)) for c in state.open_cycles}
        if new != old:
            self.set_context_field("level", new)
        for cycle in state.open_cycles:  # the tuple as it was: a cancelled cycle leaves it
            self._move(cycle, at_ms, used[id(cycle)], old if new != old else None)

    def _move(self, cycle: Cycle, at_ms: int, used_ms: int, previous: str | None) -> None:
        """Put an open cycle on the current level: it keeps its start and the working time
        already used; the rest runs on the new level's target and calendar from ``at_ms``.
        A metric the new level does not track is cancelled."""
        target = self.level.target_ms(cycle.metric)
        if target is None:  # the working time used was measured on the old level
            told = self.emit(
                SlaEventKind.CANCELLED, cycle, at_ms=at_ms, elapsed_ms=used_ms,
                reason=CancelReason.LEVEL_CHANGED, stop=Stop.LEVEL_CHANGED,
            )  # fmt: skip
            self._close(cycle, told, at_ms, used_ms, SlaEventKind.CANCELLED, retracted=False)
            return
        cycle.target_ms = target
        cycle.used_ms = used_ms
        cycle.run_started_ms = max(at_ms, cycle.run_started_ms)
        cycle.policy_version = self.policy.version
        self._schedule(cycle)  # paused too: a target already used up is due now
        if previous is not None:
            self.emit(
                SlaEventKind.LEVEL_CHANGED, cycle, at_ms=at_ms, elapsed_ms=used_ms,
                previous_level=previous,
            )  # fmt: skip

    # context

    def set_context(self, **changes: Any) -> None:
        """Change the context's fields in ``changes`` (in place)."""
        context = self.state.context
        for name, value in changes.items():
            if getattr(context, name) != value:  # most events repeat what it already says
                setattr(context, name, _intern(value) if type(value) is str else value)
                self._said_context = None

    def set_context_field(self, name: str, value: Any) -> None:
        """:meth:`set_context` of one field, without building a dict."""
        context = self.state.context
        if getattr(context, name) != value:
            setattr(context, name, _intern(value) if type(value) is str else value)
            self._said_context = None

    def first_reply_at_or_after(self, at_ms: int) -> int | None:
        for reply in self.state.reply_times:
            if reply >= at_ms:
                return reply
        return None

    def record_reply(self, at_ms: int) -> None:
        state = self.state
        state.reply_times = tuple(sorted((*state.reply_times, at_ms))[-REPLY_WINDOW:])


def _reached(calendar: Calendar, start_ms: int, left_ms: int, before_ms: int, paused: bool) -> int:
    """When the working time reaches a threshold ``left_ms`` of working time after
    ``start_ms`` (the run's start, or the pause). Reached already (``left_ms`` <= 0): the
    instant it was reached, ``before_ms``, if it lies before this run, else the run's
    start. Not reached: on the calendar, or never while paused."""
    if left_ms > 0:
        return NEVER if paused else calendar.add(start_ms, left_ms)
    if 0 < before_ms <= start_ms:
        return before_ms
    return start_ms


def _met(elapsed_ms: int, target_ms: int, at_ms: int, due_ms: int) -> bool:
    """A stop at ``at_ms`` meets the target: less working time than the target, or all of
    it and no later than due. (After due in closed hours the working time is still the
    target; that stop is late all the same: met means "at or before due", always.)"""
    return elapsed_ms < target_ms or (elapsed_ms == target_ms and at_ms <= due_ms)
