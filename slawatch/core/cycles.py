"""One application of the state machine: the conversation's state as it evolves, and the
operations the input events are made of: start, stop, cancel, pause, resume and move
cycles, emit what is said about them, and update the conversation's context.
"""

from __future__ import annotations

import sys
from typing import Any

from slawatch.core.effects import SlaEvent
from slawatch.core.policy import SlaLevel, SlaPolicy
from slawatch.core.sla import CancelReason, Metric, SlaEventKind
from slawatch.core.state import (
    REPLY_WINDOW,
    ConversationState,
    Cycle,
    StoppedCycle,
    evolve,
    metric_index,
)

Effects = list[SlaEvent]
_intern = sys.intern


def intern_optional(value: Any) -> Any:
    """``value``, interned when it is a string (states share low-cardinality strings)."""
    return _intern(value) if isinstance(value, str) else value


class Run:
    """One application: the state as it evolves, the effects, the policy and the clock."""

    __slots__ = ("effects", "now_ms", "policy", "state")

    def __init__(self, state: ConversationState, policy: SlaPolicy, now_ms: int) -> None:
        self.state = state
        self.policy = policy
        self.now_ms = now_ms
        self.effects: Effects = []

    @property
    def level(self) -> SlaLevel:
        """The level the conversation is on (its targets, calendar, pause statuses)."""
        return self.policy.level(self.state.context.level)

    # emitting

    def emit(
        self,
        kind: SlaEventKind,
        cycle: Cycle | StoppedCycle,
        *,
        at_ms: int,
        elapsed_ms: int,
        reason: CancelReason | None = None,
        previous_level: str | None = None,
    ) -> None:
        self.effects.append(
            SlaEvent(
                kind=kind,
                metric=cycle.metric,
                cycle=cycle.number,
                key=self.state.key,
                context=self.state.context,
                target_ms=cycle.target_ms,
                started_ms=cycle.started_ms,
                due_ms=cycle.due_ms,
                at_ms=at_ms,
                elapsed_ms=elapsed_ms,
                detected_at_ms=self.now_ms,
                policy_version=cycle.policy_version,
                at_risk_ms=cycle.at_risk_ms,
                reason=reason,
                previous_level=previous_level,
            )
        )

    # starting

    def start(self, metric: Metric, at_ms: int, used_ms: int = 0) -> Cycle | None:
        """Open a new cycle of ``metric`` at ``at_ms`` (None when the metric is untracked)."""
        state = self.state
        level = self.level
        target = level.target_ms(metric)
        if target is None or state.open_cycle(metric) is not None:
            return None
        counts = list(state.started_counts)
        counts[metric_index(metric)] += 1
        paused = metric is Metric.RESOLUTION and state.context.status in level.pause_statuses
        cycle = self._schedule(
            Cycle(
                metric=metric,
                number=counts[metric_index(metric)],
                started_ms=at_ms,
                target_ms=target,
                run_started_ms=at_ms,
                due_ms=0,
                at_risk_ms=0,
                used_ms=used_ms,
                paused=paused,
                policy_version=self.policy.version,
            )
        )
        self.state = evolve(
            state,
            open_cycles=(*state.open_cycles, cycle),
            started_counts=(counts[0], counts[1], counts[2], counts[3], counts[4]),
        )
        return cycle

    def _schedule(self, cycle: Cycle) -> Cycle:
        """Compute due and at-risk from the current run and the working time used.

        A cycle already past its at-risk threshold keeps the instant it crossed it (or,
        when a new level puts it past at once, the start of this run)."""
        level = self.level
        calendar = level.calendar
        remaining = max(0, cycle.target_ms - cycle.used_ms)
        risk_after = level.at_risk_after_ms(cycle.target_ms) - cycle.used_ms
        if risk_after > 0:
            at_risk = calendar.add(cycle.run_started_ms, risk_after)
        elif 0 < cycle.at_risk_ms <= cycle.run_started_ms:
            at_risk = cycle.at_risk_ms
        else:
            at_risk = cycle.run_started_ms
        return evolve(
            cycle, due_ms=calendar.add(cycle.run_started_ms, remaining), at_risk_ms=at_risk
        )

    def elapsed(self, cycle: Cycle, at_ms: int) -> int:
        if cycle.paused:
            return cycle.used_ms
        return cycle.used_ms + self.level.calendar.elapsed(cycle.run_started_ms, at_ms)

    def replace_cycle(self, old: Cycle, new: Cycle | None) -> None:
        cycles = tuple(
            c for c in (new if c is old else c for c in self.state.open_cycles) if c is not None
        )
        self.state = evolve(self.state, open_cycles=cycles)

    # stopping

    def stop(self, cycle: Cycle, at_ms: int) -> None:
        """Settle ``cycle`` at ``at_ms``: met or missed, retracting a wrong breach."""
        elapsed = self.elapsed(cycle, at_ms)
        met = elapsed <= cycle.target_ms
        if met and cycle.breach_sent:
            self.emit(SlaEventKind.RETRACTED, cycle, at_ms=at_ms, elapsed_ms=elapsed)
        outcome = SlaEventKind.MET if met else SlaEventKind.MISSED
        self.emit(outcome, cycle, at_ms=at_ms, elapsed_ms=elapsed)
        self._close(cycle, at_ms, elapsed, outcome, retracted=met and cycle.breach_sent)

    def cancel(self, cycle: Cycle, at_ms: int, reason: CancelReason) -> None:
        elapsed = self.elapsed(cycle, at_ms)
        self.emit(SlaEventKind.CANCELLED, cycle, at_ms=at_ms, elapsed_ms=elapsed, reason=reason)
        self._close(cycle, at_ms, elapsed, SlaEventKind.CANCELLED, retracted=False)

    def _close(
        self, cycle: Cycle, at_ms: int, elapsed_ms: int, outcome: SlaEventKind, *, retracted: bool
    ) -> None:
        self.replace_cycle(cycle, None)
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
        )
        others = tuple(s for s in self.state.stopped if s.metric is not cycle.metric)
        self.state = evolve(self.state, stopped=(*others, record))

    def maybe_correct_stopped(self, metric: Metric, at_ms: int) -> None:
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
        if elapsed > last.target_ms:
            return
        if not last.retracted:
            self.emit(SlaEventKind.RETRACTED, last, at_ms=at_ms, elapsed_ms=elapsed)
        self.emit(SlaEventKind.MET, last, at_ms=at_ms, elapsed_ms=elapsed)
        corrected = evolve(
            last, stopped_ms=at_ms, elapsed_ms=elapsed, outcome=SlaEventKind.MET, retracted=True
        )
        others = tuple(s for s in self.state.stopped if s.metric is not metric)
        self.state = evolve(self.state, stopped=(*others, corrected))

    def cancel_all(self, at_ms: int, reason: CancelReason) -> None:
        for cycle in self.state.open_cycles:
            self.cancel(cycle, at_ms, reason)
        self.state = evolve(self.state, closed=True)

    # pausing

    def pause(self, cycle: Cycle, at_ms: int) -> None:
        if cycle.paused:
            return
        used = self.elapsed(cycle, max(at_ms, cycle.run_started_ms))
        self.replace_cycle(cycle, evolve(cycle, used_ms=used, paused=True))

    def resume(self, cycle: Cycle, at_ms: int) -> None:
        if not cycle.paused:
            return
        resumed = self._schedule(evolve(cycle, paused=False, run_started_ms=at_ms))
        self.replace_cycle(cycle, resumed)

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
            self.set_context(level=new)
        for cycle in self.state.open_cycles:
            self._move(cycle, at_ms, used[id(cycle)], old if new != old else None)

    def _move(self, cycle: Cycle, at_ms: int, used_ms: int, previous: str | None) -> None:
        """Put an open cycle on the current level: it keeps its start and the working time
        already used; the rest runs on the new level's target and calendar from ``at_ms``.
        A metric the new level does not track is cancelled."""
        target = self.level.target_ms(cycle.metric)
        if target is None:
            self.emit(
                SlaEventKind.CANCELLED, cycle, at_ms=at_ms, elapsed_ms=used_ms,
                reason=CancelReason.LEVEL_CHANGED,
            )  # fmt: skip
            self._close(cycle, at_ms, used_ms, SlaEventKind.CANCELLED, retracted=False)
            return
        moved = evolve(
            cycle,
            target_ms=target,
            used_ms=used_ms,
            run_started_ms=max(at_ms, cycle.run_started_ms),
            policy_version=self.policy.version,
        )
        if not moved.paused:
            moved = self._schedule(moved)
        self.replace_cycle(cycle, moved)
        if previous is not None:
            self.emit(
                SlaEventKind.LEVEL_CHANGED, moved, at_ms=at_ms, elapsed_ms=used_ms,
                previous_level=previous,
            )  # fmt: skip

    # context

    def set_context(self, **changes: Any) -> None:
        context = self.state.context
        values = {k: intern_optional(v) for k, v in changes.items() if getattr(context, k) != v}
        if values:  # most events repeat what the context already says
            self.state = evolve(self.state, context=evolve(context, **values))

    def first_reply_at_or_after(self, at_ms: int) -> int | None:
        for reply in self.state.reply_times:
            if reply >= at_ms:
                return reply
        return None

    def record_reply(self, at_ms: int) -> None:
        times = tuple(sorted((*self.state.reply_times, at_ms)))[-REPLY_WINDOW:]
        self.state = evolve(self.state, reply_times=times)
