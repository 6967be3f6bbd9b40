"""When a finished conversation's state may be forgotten.

A conversation is *finished* when it is closed (a ticket closed or deleted, a chat ended,
a call the caller left or that ended: :attr:`ConversationState.closed`, after which the
machine ignores its events) and none of its cycles is open. Its state is kept
``retention`` after the last instant it records, so late events and duplicates still meet
it; then the scheduler removes it (:class:`~slawatch.core.scheduler.PartitionScheduler`)
and the worker writes a tombstone on the table's changelog, which compaction drops. The
instant is the latest the state knows of: its last stop, update, message or reply. A
chat's end or a call's hang-up is not stored: the last message or answer before it stands
in, minutes earlier.

Not finished, so kept: a solved ticket (a customer may reopen it; help desks close solved
tickets after a few days, Zendesk after 4, and that close finishes it), and the rare state
of a conversation whose opening event never came.

After removal, an event of the conversation meets no state and is taken as the first
event of a conversation never seen: for a ticket or a call nothing starts without its
opening event (``ticket.created``, ``call.queued``); a customer's chat message would open a
chat-reply wait, but chat systems do not reuse a chat's id. An event about a conversation
the partition does not hold that is older than the retention when it arrives (event time,
against the partition's watermark before its batch) is refused: the worker cannot tell a
conversation it removed from one it never saw, and such an event could only open a wait
that was due days ago.
``slawatch replay`` keeps every state (it has no retention), so the stream and the replay
differ only on events later than the retention.
"""

from __future__ import annotations

from slawatch.core.state import ConversationState


def finished_at(state: ConversationState) -> int | None:
    """The instant ``state`` finished (the latest it records), None while it is not
    finished (not closed, or a cycle still open)."""
    if not state.closed or state.open_cycles:
        return None
    context = state.context
    latest = max(
        context.changed_ms or 0,
        context.last_message_ms or 0,
        context.created_ms or 0,
        state.early_customer_ms or 0,
    )
    if state.reply_times:
        latest = max(latest, state.reply_times[-1])
    for cycle in state.stopped:
        latest = max(latest, cycle.stopped_ms)
    return latest


def expires_at(state: ConversationState, retention_ms: int) -> int | None:
    """When ``state`` may be removed (None: not finished, so not yet)."""
    finished = finished_at(state)
    return None if finished is None else finished + retention_ms
