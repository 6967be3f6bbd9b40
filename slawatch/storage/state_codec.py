"""How a conversation's SLA state is stored in the table (and its changelog).

A state is stored as bytes: 8 bytes of the next deadline (signed big-endian epoch ms, -1
for none), then the state as a compact JSON array (fields by position, not by name).
Tables hold these bytes, not Python objects: about 300 bytes per open conversation
instead of several kilobytes of objects, and rebuilding the timer queue after a restart
reads only the 8-byte prefix of each entry.
"""

from __future__ import annotations

import struct
import sys
from typing import Any

import orjson

from slawatch.core.keys import ConversationKind
from slawatch.core.sla import Metric, SlaEventKind
from slawatch.core.state import Context, ConversationState, Cycle, StoppedCycle

_DEADLINE = struct.Struct(">q")
NO_DEADLINE = -1
_intern = sys.intern


def _row(obj: Any) -> list[Any]:
    return [getattr(obj, name) for name in obj.__slots__]


def encode_state(state: ConversationState, deadline_ms: int | None) -> bytes:
    """Serialise ``state`` with its next deadline in front."""
    body = [
        state.key,
        _row(state.context),
        [_row(c) for c in state.open_cycles],
        [_row(c) for c in state.stopped],
        state.started_counts,
        state.created,
        state.awaiting_customer,
        state.early_customer_ms,
        state.reply_times,
        state.closed,
        state.recent_event_hashes,
    ]
    prefix = _DEADLINE.pack(NO_DEADLINE if deadline_ms is None else deadline_ms)
    return prefix + orjson.dumps(body)


def deadline_of(data: bytes) -> int | None:
    """The next deadline stored in front of an encoded state, without decoding it."""
    (deadline,) = _DEADLINE.unpack_from(data)
    return None if deadline == NO_DEADLINE else int(deadline)


def _text(value: str | None) -> str | None:
    return _intern(value) if value is not None else None


def decode_state(data: bytes) -> ConversationState:
    """Rebuild a state written by :func:`encode_state`."""
    (
        key,
        ctx,
        cycles,
        stopped,
        counts,
        created,
        awaiting,
        early,
        replies,
        closed,
        recent,
    ) = orjson.loads(data[_DEADLINE.size :])
    (kind, cid, tenant, channel, priority, dept, assignee, queue, group, status, level,
     assignee_status, referrer, tags, custom, invitation, created_ms, changed_ms, deleted,
     last_author, last_ms) = ctx  # fmt: skip
    context = Context(
        ConversationKind(kind),
        cid,
        _text(tenant),
        _text(channel),
        _intern(priority),
        _text(dept),
        _text(assignee),
        _text(queue),
        _text(group),
        _text(status),
        _intern(level),
        _text(assignee_status),
        referrer,
        tuple(_intern(tag) for tag in tags),
        tuple((name, value) for name, value in custom),
        invitation,
        created_ms,
        changed_ms,
        deleted,
        _text(last_author),
        last_ms,
    )
    return ConversationState(
        key=key,
        context=context,
        open_cycles=tuple(
            Cycle(Metric(row[0]), *row[1:-1], _intern(row[-1]))  # type: ignore[call-arg]
            for row in cycles
        ),
        stopped=tuple(
            StoppedCycle(Metric(r[0]), *r[1:7], SlaEventKind(r[7]), *r[8:])  # type: ignore[call-arg]
            for r in stopped
        ),
        started_counts=(counts[0], counts[1], counts[2], counts[3], counts[4]),
        created=created,
        awaiting_customer=awaiting,
        early_customer_ms=early,
        reply_times=tuple(replies),
        closed=closed,
        recent_event_hashes=tuple(recent),
    )
