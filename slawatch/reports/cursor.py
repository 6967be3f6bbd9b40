"""The SLA log's page cursor: an opaque, URL-safe token for "after this row".

It holds the last row's sort value and primary key, and the sort it was made for, as
compact JSON in unpadded base64url. It is a position, not a capability: a client that
crafts a well-formed cursor only chooses where its page starts (the values are bound as
parameters, never spliced into SQL). Anything that does not decode to a position of the
expected sort and types raises :class:`BadCursor`.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
from dataclasses import dataclass

from slawatch.reports.errors import BadCursor

VERSION = 1
#: Longer cursors are refused before decoding.
MAX_LENGTH = 4096

#: A sort value: text, epoch milliseconds, seconds, or NULL.
SortValue = str | int | float | None
Key = tuple[str, str, int]


@dataclass(frozen=True, slots=True)
class Position:
    """Where a page ended: the sort it belongs to and its last row's value and key."""

    sort: str
    descending: bool
    value: SortValue
    key: Key


def encode(position: Position) -> str:
    """The cursor for ``position``."""
    payload = [
        VERSION,
        position.sort,
        int(position.descending),
        position.value,
        *position.key,
    ]
    data = json.dumps(payload, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    return base64.urlsafe_b64encode(data.encode()).rstrip(b"=").decode("ascii")


def decode(cursor: str, *, sort: str, descending: bool, value_type: type) -> Position:
    """The position in ``cursor``, which must have been made for ``sort`` in this
    direction with a value of ``value_type`` (``str``, ``int`` or ``float``) or NULL."""
    if not isinstance(cursor, str) or not cursor or len(cursor) > MAX_LENGTH:
        raise BadCursor("not a cursor this API handed out: start again without it")
    try:
        data = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        payload = json.loads(data.decode())
    except (binascii.Error, ValueError):
        raise BadCursor("not a cursor this API handed out: start again without it") from None
    if not isinstance(payload, list) or len(payload) != 7 or payload[0] != VERSION:
        raise BadCursor("not a cursor this API handed out: start again without it")
    _, made_sort, made_descending, value, conversation_key, metric, cycle = payload
    if made_sort != sort or made_descending != int(descending):
        raise BadCursor(
            f"the cursor belongs to another order ({made_sort!r},"
            f" {'descending' if made_descending else 'ascending'}): start again without it"
        )
    if not (
        _is_text(conversation_key)
        and _is_text(metric)
        and _is_int(cycle)
        and -(2**31) <= cycle < 2**31
        and _fits(value, value_type)
    ):
        raise BadCursor("the cursor's position is damaged: start again without it")
    if value_type is float and value is not None:
        value = float(value)
    return Position(sort, descending, value, (conversation_key, metric, cycle))


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _fits(value: object, value_type: type) -> bool:
    """Whether ``value`` is NULL or a ``value_type`` a database column of it can hold."""
    if value is None:
        return True
    if _is_int(value):
        return value_type in (int, float) and -(2**63) <= value < 2**63  # type: ignore[operator]
    if isinstance(value, float):
        return value_type is float and math.isfinite(value)
    return value_type is str and _is_text(value)


def _is_text(value: object) -> bool:
    """Whether ``value`` is a string a database text column can hold (UTF-8, no NUL)."""
    if not isinstance(value, str) or "\x00" in value:
        return False
    try:
        value.encode()
    except UnicodeEncodeError:  # a lone surrogate, which JSON can spell
        return False
    return True
