"""The SLA timer state machine: pure functions from (state, input) to (state, effects).

- :func:`apply` folds one input event into a conversation's state and returns the final
  records it settles (met, missed, cancelled, retracted). It never declares a breach:
  that depends on how far the stream has been read, not on this conversation alone.
- :func:`advance` declares what a *watermark* proves: every cycle whose at-risk instant
  or due is at or before ``watermark_ms`` and that is still open gets ``at_risk`` and
  ``breached``. The caller passes a watermark only as far as the input has really been
  read, so a stop event still waiting in a lagging partition cannot be overtaken.
- :func:`next_deadline` says when the conversation next wants :func:`advance`, so the
  caller keeps a priority queue instead of scanning every state.

Event time decides everything: a reply that occurred before due is met however late it is
processed. Arrival order mostly does not matter (see docs/SLA.md for the rules); an event
whose id is among the conversation's last 16 is a duplicate and changes nothing.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any, Protocol

from slawatch.core.effects import SlaEvent
from slawatch.core.keys import ConversationKind
from slawatch.core.policy import SlaLevel, SlaPolicy
from slawatch.core.sla import CancelReason, Metric, SlaEventKind
from slawatch.core.state import (
    DEDUP_WINDOW,
    REPLY_WINDOW,
    Context,
    ConversationState,
    Cycle,
    StoppedCycle,
    event_id_hash,
    evolve,
    metric_index,
)


class InputEvent(Protocol):
    """What the machine reads of an input event (the schemas' events have it all)."""

    @property
    def type(self) -> str: ...

    @property
    def event_id(self) -> str: ...

    @property
    def occurred_at(self) -> int: ...

    @property
    def tenant(self) -> str | None: ...

    @property
    def key(self) -> str: ...

    @property
    def conversation_id(self) -> str: ...


class IllegalTransition(Exception):
    """An event that cannot belong to this conversation (a call event for a ticket)."""


Effects = list[SlaEvent]
_intern = sys.intern

_KIND_OF_TYPE = {
    "ticket": ConversationKind.TICKET,
    "message": ConversationKind.TICKET,
    "chat": ConversationKind.CHAT,
    "call": ConversationKind.CALL,
}


def _opt(value: Any) -> Any:
    return _intern(value) if isinstance(value, str) else value


# --- helpers that build and settle cycles ---------------------------------------------------


class _Run:
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

    def _replace_cycle(self, old: Cycle, new: Cycle | None) -> None:
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
        self._replace_cycle(cycle, None)
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
        self._replace_cycle(cycle, evolve(cycle, used_ms=used, paused=True))

    def resume(self, cycle: Cycle, at_ms: int) -> None:
        if not cycle.paused:
            return
        resumed = self._schedule(evolve(cycle, paused=False, run_started_ms=at_ms))
        self._replace_cycle(cycle, resumed)

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
        self._replace_cycle(cycle, moved)
        if previous is not None:
            self.emit(
                SlaEventKind.LEVEL_CHANGED, moved, at_ms=at_ms, elapsed_ms=used_ms,
                previous_level=previous,
            )  # fmt: skip

    # context

    def set_context(self, **changes: Any) -> None:
        context = self.state.context
        values = {k: _opt(v) for k, v in changes.items() if getattr(context, k) != v}
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


# --- what each input event does ------------------------------------------------------------


def _reply_waiting_metric_started(run: _Run, metric: Metric, at_ms: int) -> None:
    """A customer message at ``at_ms`` opens ``metric`` unless it is already waiting or
    the message is older than the last cycle's stop (a stale or duplicate message)."""
    last = run.state.last_stopped(metric)
    if run.state.open_cycle(metric) is not None or (last and at_ms <= last.stopped_ms):
        return
    cycle = run.start(metric, at_ms)
    if cycle is not None:
        reply = run.first_reply_at_or_after(at_ms)
        if reply is not None:  # the answer arrived before the question: settle at once
            run.stop(cycle, reply)


def _agent_replied(run: _Run, metrics: tuple[Metric, ...], at_ms: int) -> None:
    run.record_reply(at_ms)
    for metric in metrics:
        cycle = run.state.open_cycle(metric)
        if cycle is not None and cycle.started_ms <= at_ms:
            run.stop(cycle, at_ms)
        else:
            run.maybe_correct_stopped(metric, at_ms)


def _custom_fields(fields: dict[str, Any] | None) -> tuple[tuple[str, Any], ...]:
    return tuple(sorted(fields.items())) if fields else ()


def _merged_custom_fields(
    old: tuple[tuple[str, Any], ...], changed: dict[str, Any]
) -> tuple[tuple[str, Any], ...]:
    merged = dict(old)
    merged.update(changed)
    return tuple(sorted((k, v) for k, v in merged.items() if v is not None))


def _last_message(run: _Run, author: str, at_ms: int) -> None:
    last = run.state.context.last_message_ms
    if last is None or at_ms >= last:
        run.set_context(last_message_author=author, last_message_ms=at_ms)


def _opening_context(run: _Run, event: Any) -> dict[str, Any]:
    """What the event that opens a ticket or a chat says of it (both carry these)."""
    t = event.occurred_at
    return {
        "priority": event.priority,
        "department": event.department,
        "customer_group": event.customer_group,
        "referrer_url": event.referrer_url,
        "tags": tuple(event.tags),
        "custom_fields": _custom_fields(event.custom_fields),
        "created_via_invitation": event.created_via_invitation,
        "created_ms": t,
        # an update read before the opening (out of order) may have changed it later
        "changed_ms": max(t, run.state.context.changed_ms or t),
    }


def _ticket_created(run: _Run, event: Any) -> None:
    t = event.occurred_at
    if run.state.created:
        return  # a replayed creation (older than the dedup window): it started everything once
    run.set_context(
        channel=event.channel,
        assignee=event.assignee,
        assignee_status=event.assignee_status,
        status=event.status,
        **_opening_context(run, event),
    )
    run.state = evolve(run.state, created=True)
    run.apply_rules(t)
    if event.status not in ("solved", "closed"):
        run.start(Metric.RESOLUTION, t)
    if event.opened_by == "agent":
        early = run.state.early_customer_ms
        if early is None:
            run.state = evolve(run.state, awaiting_customer=True)
            return
        t = early
    cycle = run.start(Metric.FIRST_REPLY, t)
    if cycle is not None:
        reply = run.first_reply_at_or_after(t)
        if reply is not None:
            run.stop(cycle, reply)


def _message_received(run: _Run, event: Any) -> None:
    t = event.occurred_at
    state = run.state
    if not state.created:
        early = state.early_customer_ms
        run.state = evolve(state, early_customer_ms=t if early is None else min(early, t))
        return
    _last_message(run, "customer", t)
    if state.awaiting_customer:
        run.state = evolve(run.state, awaiting_customer=False)
        cycle = run.start(Metric.FIRST_REPLY, t)
        reply = run.first_reply_at_or_after(t)
        if cycle is not None and reply is not None:
            run.stop(cycle, reply)
        return
    if state.open_cycle(Metric.FIRST_REPLY) is not None:
        return
    first = state.last_stopped(Metric.FIRST_REPLY)
    if first is not None and t <= first.stopped_ms:
        return  # written before the first reply: part of the first wait
    _reply_waiting_metric_started(run, Metric.NEXT_REPLY, t)


def _message_sent(run: _Run, event: Any) -> None:
    if event.visibility != "public":
        return  # internal notes never stop a reply timer
    _last_message(run, "agent", event.occurred_at)
    _agent_replied(run, (Metric.FIRST_REPLY, Metric.NEXT_REPLY), event.occurred_at)


def _ticket_updated(run: _Run, event: Any) -> None:
    t = event.occurred_at
    changes = event.changes
    context_keys = (
        "priority", "channel", "department", "assignee", "assignee_status", "customer_group",
        "referrer_url",
    )  # fmt: skip
    run.set_context(**{k: changes[k] for k in context_keys if k in changes})
    if "tags" in changes:
        run.set_context(tags=tuple(changes["tags"]))
    if "custom_fields" in changes:
        merged = _merged_custom_fields(run.state.context.custom_fields, changes["custom_fields"])
        run.set_context(custom_fields=merged)
    changed = run.state.context.changed_ms
    if changed is None or t > changed:
        run.set_context(changed_ms=t)
    if changes.get("deleted"):
        run.set_context(deleted=True)
        run.cancel_all(t, CancelReason.DELETED)
        return
    old = run.state.context.status
    new = changes.get("status", old)
    run.set_context(status=new)
    run.apply_rules(t)  # the level first: what the status change starts runs on it
    if "status" not in changes:
        return
    pause_statuses = run.level.pause_statuses
    resolution = run.state.open_cycle(Metric.RESOLUTION)
    if new == "closed":
        run.cancel_all(t, CancelReason.CLOSED)
    elif new == "solved":
        for metric in (Metric.FIRST_REPLY, Metric.NEXT_REPLY):
            cycle = run.state.open_cycle(metric)
            if cycle is not None:
                run.cancel(cycle, t, CancelReason.SOLVED)
        if resolution is not None:
            run.stop(resolution, t)
    elif old == "solved":
        # Reopened: resolution resumes with the working time already used.
        last = run.state.last_stopped(Metric.RESOLUTION)
        used = 0
        if last is not None and last.outcome is not SlaEventKind.CANCELLED:
            used = last.elapsed_ms
        run.start(Metric.RESOLUTION, t, used_ms=used)
    elif resolution is not None:
        if new in pause_statuses:
            run.pause(resolution, t)
        else:
            run.resume(resolution, max(t, resolution.run_started_ms))


def _chat_started(run: _Run, event: Any) -> None:
    run.set_context(channel="chat", **_opening_context(run, event))
    run.state = evolve(run.state, created=True)
    run.apply_rules(event.occurred_at)


def _chat_message(run: _Run, event: Any) -> None:
    t = event.occurred_at
    _last_message(run, event.author, t)
    if event.author == "agent":
        if event.agent:
            run.set_context(assignee=event.agent)
        _agent_replied(run, (Metric.CHAT_REPLY,), t)
    else:
        _reply_waiting_metric_started(run, Metric.CHAT_REPLY, t)


def _chat_transferred(run: _Run, event: Any) -> None:
    changes = {"department": event.to_department, "assignee": event.to_agent}
    run.set_context(**{k: v for k, v in changes.items() if v is not None})
    run.apply_rules(event.occurred_at)


def _chat_ended(run: _Run, event: Any) -> None:
    t = event.occurred_at
    cycle = run.state.open_cycle(Metric.CHAT_REPLY)
    if cycle is not None:
        if run.elapsed(cycle, t) > cycle.target_ms:
            run.stop(cycle, t)  # the customer waited past due: missed
        else:
            run.cancel(cycle, t, CancelReason.CHAT_ENDED)
    run.state = evolve(run.state, closed=True)


def _call_queued(run: _Run, event: Any) -> None:
    t = event.occurred_at
    last = run.state.last_stopped(Metric.CALL_ANSWER)
    if last is not None and t <= last.stopped_ms:
        return  # a replayed queue entry: that wait is already settled
    run.set_context(
        channel="phone",
        queue=event.queue,
        priority=event.priority,
        department=event.department,
        tags=tuple(event.tags),
        custom_fields=_custom_fields(event.custom_fields),
    )
    if run.state.context.created_ms is None:
        run.set_context(created_ms=t, changed_ms=t)
    run.state = evolve(run.state, created=True)
    run.apply_rules(t)
    run.start(Metric.CALL_ANSWER, t)


def _call_answered(run: _Run, event: Any) -> None:
    run.set_context(assignee=event.agent)
    _agent_replied(run, (Metric.CALL_ANSWER,), event.occurred_at)


def _caller_left(run: _Run, at_ms: int) -> None:
    cycle = run.state.open_cycle(Metric.CALL_ANSWER)
    if cycle is not None:
        waited = run.elapsed(cycle, at_ms)
        if at_ms - cycle.started_ms < run.policy.short_abandon_ms:
            run.cancel(cycle, at_ms, CancelReason.SHORT_ABANDON)
        elif waited <= cycle.target_ms:
            run.cancel(cycle, at_ms, CancelReason.ABANDONED_BEFORE_DUE)
        else:
            run.stop(cycle, at_ms)  # abandoned after due: missed
    run.state = evolve(run.state, closed=True)


def _call_abandoned(run: _Run, event: Any) -> None:
    _caller_left(run, event.occurred_at)


def _call_transferred(run: _Run, event: Any) -> None:
    t = event.occurred_at
    if event.to_agent:
        run.set_context(assignee=event.to_agent)
    if event.to_queue:
        cycle = run.state.open_cycle(Metric.CALL_ANSWER)
        if cycle is not None:
            run.cancel(cycle, t, CancelReason.TRANSFERRED)
        run.set_context(queue=event.to_queue)
        run.apply_rules(t)
        run.start(Metric.CALL_ANSWER, t)
    else:
        run.apply_rules(t)


def _call_ended(run: _Run, event: Any) -> None:
    _caller_left(run, event.occurred_at)


_HANDLERS: dict[str, Callable[[_Run, Any], None]] = {
    "ticket.created": _ticket_created,
    "ticket.updated": _ticket_updated,
    "message.received": _message_received,
    "message.sent": _message_sent,
    "chat.started": _chat_started,
    "chat.message": _chat_message,
    "chat.transferred": _chat_transferred,
    "chat.ended": _chat_ended,
    "call.queued": _call_queued,
    "call.answered": _call_answered,
    "call.abandoned": _call_abandoned,
    "call.transferred": _call_transferred,
    "call.ended": _call_ended,
}


# --- the public functions ------------------------------------------------------------------


#: Events that evaluate the rules with everything they say (so new_state need not).
_CREATIONS = frozenset({"ticket.created", "chat.started", "call.queued"})


def new_state(event: InputEvent, policy: SlaPolicy) -> ConversationState:
    """The empty state of the conversation ``event`` belongs to, on the level the rules
    give what little is known of it yet (its kind and tenant)."""
    kind = _KIND_OF_TYPE[event.type.split(".", 1)[0]]
    context = Context(kind=kind, conversation_id=event.conversation_id, tenant=_opt(event.tenant))
    if event.type in _CREATIONS:
        level = policy.default_level  # the creation's own rule evaluation follows at once
    else:
        level = _intern(policy.level_for(context, event.occurred_at))
    return ConversationState(key=event.key, context=evolve(context, level=level))


def apply(
    state: ConversationState | None, event: InputEvent, policy: SlaPolicy, now_ms: int
) -> tuple[ConversationState, Effects]:
    """Fold ``event`` into ``state`` (None: the conversation is new)."""
    if state is None:
        state = new_state(event, policy)
    elif event.key != state.key:
        raise IllegalTransition(f"event for {event.key} applied to {state.key}")
    event_hash = event_id_hash(event.event_id)
    if event_hash in state.recent_event_hashes:
        return state, []
    handler = _HANDLERS.get(event.type)
    if handler is None:
        raise IllegalTransition(f"no SLA handling for event type {event.type!r}")
    if _KIND_OF_TYPE[event.type.split(".", 1)[0]] is not state.context.kind:
        raise IllegalTransition(f"{event.type} cannot happen to a {state.context.kind.value}")
    hashes = (*state.recent_event_hashes, event_hash)[-DEDUP_WINDOW:]
    state = evolve(state, recent_event_hashes=hashes)
    if state.closed:
        return state, []  # closed, deleted, ended: nothing more counts
    run = _Run(state, policy, now_ms)
    handler(run, event)
    return run.state, run.effects


def advance(
    state: ConversationState, watermark_ms: int, policy: SlaPolicy, now_ms: int
) -> tuple[ConversationState, Effects]:
    """Declare at-risk and breaches that the watermark proves (each at most once)."""
    run = _Run(state, policy, now_ms)
    for cycle in state.open_cycles:
        if cycle.paused:
            continue
        updated = cycle
        if not cycle.at_risk_sent and cycle.at_risk_ms <= watermark_ms:
            elapsed = run.elapsed(cycle, cycle.at_risk_ms)
            run.emit(SlaEventKind.AT_RISK, cycle, at_ms=cycle.at_risk_ms, elapsed_ms=elapsed)
            updated = evolve(updated, at_risk_sent=True)
        if not cycle.breach_sent and cycle.due_ms <= watermark_ms:
            run.emit(SlaEventKind.BREACHED, cycle, at_ms=cycle.due_ms, elapsed_ms=cycle.target_ms)
            updated = evolve(updated, breach_sent=True)
        if updated is not cycle:
            run._replace_cycle(cycle, updated)
    run.effects.sort(key=lambda effect: effect.at_ms)  # in event-time order
    return run.state, run.effects


def next_deadline(state: ConversationState) -> int | None:
    """The next instant :func:`advance` would emit something at (None: nothing pending)."""
    deadlines = [
        cycle.at_risk_ms if not cycle.at_risk_sent else cycle.due_ms
        for cycle in state.open_cycles
        if not cycle.paused and not cycle.breach_sent
    ]
    return min(deadlines) if deadlines else None
