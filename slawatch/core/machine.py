"""The SLA timer state machine: functions from (state, input) to (state, effects).

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

The input events are the classes of :mod:`slawatch.core.events`; :func:`apply` dispatches
on the class to what the event does (:mod:`slawatch.core.handlers`), which is made of the
cycle operations of :class:`~slawatch.core.cycles.Run`.

:func:`apply` and :func:`advance` leave the state they are given as it was (they change a
copy): pure functions, for tests and callers that keep states. :func:`apply_in_place` and
:func:`advance_in_place` change the state itself and are what the tick runs
(:mod:`slawatch.core.scheduler`, which owns its states for the length of a tick): no copy
per event or per change.
"""

from __future__ import annotations

import sys

from slawatch.core.cycles import Effects, Run, intern_optional
from slawatch.core.events import InputEvent
from slawatch.core.handlers import CREATIONS, HANDLERS
from slawatch.core.policy import SlaPolicy
from slawatch.core.sla import SlaEventKind
from slawatch.core.state import (
    DEDUP_WINDOW,
    NEVER,
    Context,
    ConversationState,
    copy_state,
    event_id_hash,
)

__all__ = [
    "Effects",
    "IllegalTransition",
    "advance",
    "advance_in_place",
    "apply",
    "apply_in_place",
    "new_state",
    "next_deadline",
]


class IllegalTransition(Exception):
    """An event that cannot belong to this conversation (a call event for a ticket)."""


def new_state(event: InputEvent, policy: SlaPolicy, key: str | None = None) -> ConversationState:
    """The empty state of the conversation ``event`` belongs to, on the level the rules
    give what little is known of it yet (its kind and tenant)."""
    context = Context(
        kind=event.KIND,
        conversation_id=event.conversation_id,
        tenant=intern_optional(event.tenant),
    )
    if type(event) in CREATIONS:
        context.level = policy.default_level  # the creation's own rule evaluation follows
    else:
        context.level = sys.intern(policy.level_for(context, event.occurred_at))
    return ConversationState(key=event.key if key is None else key, context=context)


def apply(
    state: ConversationState | None, event: InputEvent, policy: SlaPolicy, now_ms: int
) -> tuple[ConversationState, Effects]:
    """Fold ``event`` into a copy of ``state`` (None: the conversation is new)."""
    return apply_in_place(None if state is None else copy_state(state), event, policy, now_ms)


def advance(
    state: ConversationState, watermark_ms: int, policy: SlaPolicy, now_ms: int
) -> tuple[ConversationState, Effects]:
    """:func:`advance_in_place` of a copy of ``state``."""
    return advance_in_place(copy_state(state), watermark_ms, policy, now_ms)


def apply_in_place(
    state: ConversationState | None,
    event: InputEvent,
    policy: SlaPolicy,
    now_ms: int,
    key: str | None = None,
) -> tuple[ConversationState, Effects]:
    """Fold ``event`` into ``state``, changing it (None: the conversation is new: the new
    state is returned). An event refused (:class:`IllegalTransition`) changes nothing.
    ``key``: ``event.key``, when the caller has it already (the tick does)."""
    if key is None:
        key = event.key
    if state is None:
        state = new_state(event, policy, key)
    elif key != state.key:
        raise IllegalTransition(f"event for {event.key} applied to {state.key}")
    event_hash = event_id_hash(event.event_id)
    if event_hash in state.recent_event_hashes:
        return state, []
    handler = HANDLERS.get(type(event))
    if handler is None:
        raise IllegalTransition(f"no SLA handling for event type {event.type!r}")
    if event.KIND is not state.context.kind:
        raise IllegalTransition(f"{event.type} cannot happen to a {state.context.kind.value}")
    state.recent_event_hashes = (*state.recent_event_hashes, event_hash)[-DEDUP_WINDOW:]
    if state.closed:
        return state, []  # closed, deleted, ended: nothing more counts
    run = Run(state, policy, now_ms)
    handler(run, event)
    return state, run.effects


def advance_in_place(
    state: ConversationState, watermark_ms: int, policy: SlaPolicy, now_ms: int
) -> tuple[ConversationState, Effects]:
    """Declare at-risk and breaches that the watermark proves (each at most once),
    changing ``state`` (what was declared of each cycle).

    A paused cycle too, for a threshold it reached before the pause or that a new level's
    target put behind it: its other instants are :data:`NEVER`."""
    run = Run(state, policy, now_ms)
    for cycle in state.open_cycles:
        if not cycle.at_risk_sent and cycle.at_risk_ms <= watermark_ms:
            if cycle.paused:  # it reached the threshold before the pause: that much then
                threshold = run.level.at_risk_after_ms(cycle.target_ms)
                elapsed = min(cycle.used_ms, threshold)
            else:
                elapsed = run.elapsed(cycle, cycle.at_risk_ms)
            run.emit(
                SlaEventKind.AT_RISK, cycle, at_ms=cycle.at_risk_ms, elapsed_ms=elapsed,
                settle_ms=watermark_ms,
            )  # fmt: skip
            cycle.at_risk_sent = True
        if not cycle.breach_sent and cycle.due_ms <= watermark_ms:
            run.emit(
                SlaEventKind.BREACHED, cycle, at_ms=cycle.due_ms, elapsed_ms=cycle.target_ms,
                settle_ms=watermark_ms,
            )  # fmt: skip
            cycle.breach_sent = True
    effects = run.effects
    if len(effects) > 1:
        effects.sort(key=lambda effect: effect.at_ms)  # in event-time order
    return state, effects


def next_deadline(state: ConversationState) -> int | None:
    """The next instant :func:`advance` would emit something at (None: nothing pending)."""
    soonest = NEVER
    for cycle in state.open_cycles:
        if not cycle.breach_sent:
            soonest = min(soonest, cycle.due_ms if cycle.at_risk_sent else cycle.at_risk_ms)
    return None if soonest >= NEVER else soonest
