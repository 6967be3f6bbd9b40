"""What each input event does to its conversation's cycles (docs/SLA.md says why).

One handler per event class, registered with :func:`handles`; :data:`HANDLERS` maps the
class to it and the machine dispatches on ``type(event)``. A handler reads its event's
fields by their typed names and changes the state only through a :class:`Run`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final, TypeVar

from slawatch.core.cycles import Run
from slawatch.core.events import (
    CONTEXT_CHANGE_KEYS,
    EVENT_CLASSES,
    CallAbandoned,
    CallAnswered,
    CallEnded,
    CallQueued,
    CallTransferred,
    ChatEnded,
    ChatMessage,
    ChatStarted,
    ChatTransferred,
    InputEvent,
    MessageReceived,
    MessageSent,
    TicketCreated,
    TicketUpdated,
)
from slawatch.core.sla import CancelReason, Metric, SlaEventKind, Stop

E = TypeVar("E", bound=InputEvent)
Handler = Callable[[Run, E], None]

#: Event class -> what it does. Each entry pairs a class with a handler of that class
#: (:func:`handles` checks it), so the table itself need not say which.
HANDLERS: Final[dict[type[InputEvent], Handler[Any]]] = {}

#: The ticket changes the context takes as they are.
_AS_THEY_ARE: Final = frozenset(CONTEXT_CHANGE_KEYS)

#: Events that evaluate the rules with everything they say (so a new state need not).
CREATIONS: Final[frozenset[type[InputEvent]]] = frozenset({TicketCreated, ChatStarted, CallQueued})


def handles(cls: type[E]) -> Callable[[Handler[E]], Handler[E]]:
    """Register the decorated function as what an event of class ``cls`` does."""

    def register(handler: Handler[E]) -> Handler[E]:
        if cls in HANDLERS:
            raise TypeError(f"{cls.__name__} already has a handler: {HANDLERS[cls].__name__}")
        HANDLERS[cls] = handler
        return handler

    return register


# --- what several events share ------------------------------------------------------------


def _reply_waiting_metric_started(run: Run, metric: Metric, at_ms: int) -> None:
    """A customer message at ``at_ms`` opens ``metric`` unless it is already waiting or
    the message is older than the last cycle's stop (a stale or duplicate message)."""
    last = run.state.last_stopped(metric)
    if run.state.open_cycle(metric) is not None or (last and at_ms <= last.stopped_ms):
        return
    cycle = run.start(metric, at_ms)
    if cycle is not None:
        reply = run.first_reply_at_or_after(at_ms)
        if reply is not None:  # the answer arrived before the question: settle at once
            run.stop(cycle, reply, Stop.REPLIED)


def _agent_replied(run: Run, metrics: tuple[Metric, ...], at_ms: int, stop: Stop) -> None:
    run.record_reply(at_ms)
    for metric in metrics:
        cycle = run.state.open_cycle(metric)
        if cycle is not None and cycle.started_ms <= at_ms:
            run.stop(cycle, at_ms, stop)
        else:
            run.maybe_correct_stopped(metric, at_ms, stop)


def _custom_fields(fields: dict[str, Any] | None) -> tuple[tuple[str, Any], ...]:
    return tuple(sorted(fields.items())) if fields else ()


def _merged_custom_fields(
    old: tuple[tuple[str, Any], ...], changed: dict[str, Any]
) -> tuple[tuple[str, Any], ...]:
    merged = dict(old)
    merged.update(changed)
    return tuple(sorted((k, v) for k, v in merged.items() if v is not None))


def _last_message(run: Run, author: str, at_ms: int) -> None:
    last = run.state.context.last_message_ms
    if last is None or at_ms >= last:
        run.set_context_field("last_message_author", author)
        run.set_context_field("last_message_ms", at_ms)


def _opening_context(run: Run, event: TicketCreated | ChatStarted) -> dict[str, Any]:
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
        "requester": event.requester if isinstance(event, TicketCreated) else event.customer,
        "created_ms": t,
        # an update read before the opening (out of order) may have changed it later
        "changed_ms": max(t, run.state.context.changed_ms or t),
    }


# --- tickets ------------------------------------------------------------------------------


@handles(TicketCreated)
def _ticket_created(run: Run, event: TicketCreated) -> None:
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
    run.state.created = True
    run.apply_rules(t)
    if event.status not in ("solved", "closed"):
        run.start(Metric.RESOLUTION, t)
    if event.opened_by == "agent":
        early = run.state.early_customer_ms
        if early is None:
            run.state.awaiting_customer = True
            return
        t = early
    cycle = run.start(Metric.FIRST_REPLY, t)
    if cycle is not None:
        reply = run.first_reply_at_or_after(t)
        if reply is not None:
            run.stop(cycle, reply, Stop.REPLIED)


@handles(MessageReceived)
def _message_received(run: Run, event: MessageReceived) -> None:
    t = event.occurred_at
    state = run.state
    if not state.created:
        early = state.early_customer_ms
        state.early_customer_ms = t if early is None else min(early, t)
        return
    _last_message(run, "customer", t)
    if state.awaiting_customer:
        state.awaiting_customer = False
        cycle = run.start(Metric.FIRST_REPLY, t)
        reply = run.first_reply_at_or_after(t)
        if cycle is not None and reply is not None:
            run.stop(cycle, reply, Stop.REPLIED)
        return
    if state.open_cycle(Metric.FIRST_REPLY) is not None:
        return
    first = state.last_stopped(Metric.FIRST_REPLY)
    if first is not None and t <= first.stopped_ms:
        return  # written before the first reply: part of the first wait
    _reply_waiting_metric_started(run, Metric.NEXT_REPLY, t)


@handles(MessageSent)
def _message_sent(run: Run, event: MessageSent) -> None:
    if event.visibility != "public":
        return  # internal notes never stop a reply timer
    _last_message(run, "agent", event.occurred_at)
    _agent_replied(run, (Metric.FIRST_REPLY, Metric.NEXT_REPLY), event.occurred_at, Stop.REPLIED)


@handles(TicketUpdated)
def _ticket_updated(run: Run, event: TicketUpdated) -> None:
    t = event.occurred_at
    changes = event.changes
    set_field = run.set_context_field
    for name, value in changes.items():
        if name in _AS_THEY_ARE:
            set_field(name, value)
    if "tags" in changes:
        set_field("tags", tuple(changes["tags"]))
    if "custom_fields" in changes:
        merged = _merged_custom_fields(run.state.context.custom_fields, changes["custom_fields"])
        set_field("custom_fields", merged)
    changed = run.state.context.changed_ms
    if changed is None or t > changed:
        set_field("changed_ms", t)
    if changes.get("deleted"):
        set_field("deleted", True)
        run.cancel_all(t, CancelReason.DELETED, Stop.DELETED)
        return
    old = run.state.context.status
    new = changes.get("status", old)
    set_field("status", new)
    run.apply_rules(t)  # the level first: what the status change starts runs on it
    if "status" not in changes:
        return
    pause_statuses = run.level.pause_statuses
    resolution = run.state.open_cycle(Metric.RESOLUTION)
    if new == "closed":
        run.cancel_all(t, CancelReason.CLOSED, Stop.CLOSED)
    elif new == "solved":
        for metric in (Metric.FIRST_REPLY, Metric.NEXT_REPLY):
            cycle = run.state.open_cycle(metric)
            if cycle is not None:
                run.cancel(cycle, t, CancelReason.SOLVED, Stop.SOLVED)
        if resolution is not None:
            run.stop(resolution, t, Stop.SOLVED)
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


# --- chats --------------------------------------------------------------------------------


@handles(ChatStarted)
def _chat_started(run: Run, event: ChatStarted) -> None:
    run.set_context(channel="chat", **_opening_context(run, event))
    run.state.created = True
    run.apply_rules(event.occurred_at)


@handles(ChatMessage)
def _chat_message(run: Run, event: ChatMessage) -> None:
    t = event.occurred_at
    _last_message(run, event.author, t)
    if event.author == "agent":
        if event.agent:
            run.set_context_field("assignee", event.agent)
        _agent_replied(run, (Metric.CHAT_REPLY,), t, Stop.REPLIED)
    else:
        _reply_waiting_metric_started(run, Metric.CHAT_REPLY, t)


@handles(ChatTransferred)
def _chat_transferred(run: Run, event: ChatTransferred) -> None:
    changes = {"department": event.to_department, "assignee": event.to_agent}
    run.set_context(**{k: v for k, v in changes.items() if v is not None})
    run.apply_rules(event.occurred_at)


@handles(ChatEnded)
def _chat_ended(run: Run, event: ChatEnded) -> None:
    t = event.occurred_at
    cycle = run.state.open_cycle(Metric.CHAT_REPLY)
    if cycle is not None:
        if run.elapsed(cycle, t) > cycle.target_ms:
            run.stop(cycle, t, Stop.CHAT_ENDED)  # the customer waited past due: missed
        else:
            run.cancel(cycle, t, CancelReason.CHAT_ENDED, Stop.CHAT_ENDED)
    run.state.closed = True


# --- calls --------------------------------------------------------------------------------


@handles(CallQueued)
def _call_queued(run: Run, event: CallQueued) -> None:
    t = event.occurred_at
    last = run.state.last_stopped(Metric.CALL_ANSWER)
    if last is not None and t <= last.stopped_ms:
        return  # a replayed queue entry: that wait is already settled
    run.set_context(
        channel="phone",
        queue=event.queue,
        requester=event.caller,
        priority=event.priority,
        department=event.department,
        tags=tuple(event.tags),
        custom_fields=_custom_fields(event.custom_fields),
    )
    if run.state.context.created_ms is None:
        run.set_context(created_ms=t, changed_ms=t)
    run.state.created = True
    run.apply_rules(t)
    run.start(Metric.CALL_ANSWER, t)


@handles(CallAnswered)
def _call_answered(run: Run, event: CallAnswered) -> None:
    run.set_context_field("assignee", event.agent)
    _agent_replied(run, (Metric.CALL_ANSWER,), event.occurred_at, Stop.ANSWERED)


def _caller_left(run: Run, at_ms: int, stop: Stop) -> None:
    cycle = run.state.open_cycle(Metric.CALL_ANSWER)
    if cycle is not None:
        waited = run.elapsed(cycle, at_ms)
        if at_ms - cycle.started_ms < run.policy.short_abandon_ms:
            run.cancel(cycle, at_ms, CancelReason.SHORT_ABANDON, stop)
        elif waited <= cycle.target_ms:
            run.cancel(cycle, at_ms, CancelReason.ABANDONED_BEFORE_DUE, stop)
        else:
            run.stop(cycle, at_ms, stop)  # abandoned after due: missed
    run.state.closed = True


@handles(CallAbandoned)
def _call_abandoned(run: Run, event: CallAbandoned) -> None:
    _caller_left(run, event.occurred_at, Stop.ABANDONED)


@handles(CallTransferred)
def _call_transferred(run: Run, event: CallTransferred) -> None:
    t = event.occurred_at
    if event.to_agent:
        run.set_context_field("assignee", event.to_agent)
    if event.to_queue:
        cycle = run.state.open_cycle(Metric.CALL_ANSWER)
        if cycle is not None:
            run.cancel(cycle, t, CancelReason.TRANSFERRED, Stop.TRANSFERRED)
        run.set_context_field("queue", event.to_queue)
        run.apply_rules(t)
        run.start(Metric.CALL_ANSWER, t)
    else:
        run.apply_rules(t)


@handles(CallEnded)
def _call_ended(run: Run, event: CallEnded) -> None:
    _caller_left(run, event.occurred_at, Stop.CALL_ENDED)


_unhandled = [cls.__name__ for cls in EVENT_CLASSES if cls not in HANDLERS]
if _unhandled:  # a new event class without its handler
    raise TypeError(f"no SLA handler for {_unhandled}")
