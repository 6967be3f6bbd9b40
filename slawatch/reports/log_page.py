"""The SLA log, a page at a time: keyset pagination on any sort key, and the total.

Order: the sort column, then the primary key (conversation_key, metric, cycle), so the
order is total and a cursor names one place in it. **NULL counts as greater than every
value**: cycles without a value come last in ascending order and first in descending
order (descending is exactly ascending reversed; PostgreSQL's own default).

Each page is read with at most two queries, never with OFFSET: one over the rows with a
value, ``(sort, key) > cursor``, and one over the rows without, ``sort IS NULL AND key >
cursor`` (the cursor says which part it is in). Kept apart, each is a plain range of the
(sort column, key) index in both dialects (an ``OR`` of the two would defeat the index),
so page 5,000 costs what page 1 does. The sort keys without an index
(:data:`~slawatch.reports.table.INDEXED_SORT_KEYS` says which) are paged the same way but
each page scans the rows the filter keeps.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from slawatch.reports import cursor
from slawatch.reports.errors import InvalidQuery
from slawatch.reports.filters import LogFilter
from slawatch.reports.table import (
    KEY_COLUMNS,
    REPORT_COLUMNS,
    SORT_COLUMNS,
    index_columns,
    sla_cycles,
)

#: The most rows one page may hold.
MAX_LIMIT = 10_000


@dataclass(frozen=True, slots=True)
class LogPage:
    """Rows (each with :data:`~slawatch.reports.table.REPORT_COLUMNS`) and the cursor for
    the next page, ``None`` on the last one."""

    rows: list[dict[str, Any]]
    next_cursor: str | None


def log_page(
    connection: sa.Connection,
    log_filter: LogFilter,
    *,
    sort: str,
    descending: bool = False,
    limit: int = 50,
    after: str | None = None,
) -> LogPage:
    """Up to ``limit`` rows that ``log_filter`` keeps, in ``sort`` order, after the row
    the cursor ``after`` points at (from the start when ``None``)."""
    if sort not in SORT_COLUMNS:
        raise InvalidQuery("sort", f"{sort!r} is not one of {', '.join(SORT_COLUMNS)}")
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
        raise InvalidQuery("limit", f"{limit!r} is not a whole number from 1 to {MAX_LIMIT}")
    column = sla_cycles.c[SORT_COLUMNS[sort]]
    order = [sla_cycles.c[name] for name in index_columns(column.name)]
    position = None
    if after is not None:
        value_type = column.type.python_type
        position = cursor.decode(after, sort=sort, descending=descending, value_type=value_type)

    # The parts of the order, first to last: rows with a value, then rows without.
    parts = [False, True] if column.nullable else [False]
    if descending:
        parts.reverse()
    if position is not None:
        # Skip the parts before the cursor's.
        parts = parts[parts.index(position.value is None) :]

    conditions = log_filter.conditions()
    selected = [sla_cycles.c[name] for name in REPORT_COLUMNS]
    wanted = limit + 1  # one more tells whether there is a next page
    rows: list[dict[str, Any]] = []
    for null_part in parts:
        part = list(conditions)
        if column.nullable:
            part.append(column.is_(None) if null_part else column.is_not(None))
        if position is not None and (position.value is None) == null_part:
            part.append(_after(order, position, null_part=null_part, descending=descending))
        query = (
            sa.select(*selected)
            .where(*part)
            .order_by(*(c.desc() if descending else c.asc() for c in order))
            .limit(wanted - len(rows))
        )
        rows.extend(dict(row._mapping) for row in connection.execute(query))
        if len(rows) >= wanted:
            break

    next_cursor = None
    if len(rows) > limit:
        del rows[limit:]
        last = rows[-1]
        key = (last["conversation_key"], last["metric"], last["cycle"])
        next_cursor = cursor.encode(cursor.Position(sort, descending, last[column.name], key))
    return LogPage(rows, next_cursor)


def _after(
    order: list[sa.Column[Any]], position: cursor.Position, *, null_part: bool, descending: bool
) -> sa.ColumnElement[bool]:
    """Rows past ``position`` in this part of the order: a row-value comparison over the
    index's columns (the NULL sort column left out in the rows without a value)."""
    known = dict(zip(KEY_COLUMNS, position.key, strict=True))
    known[order[0].name] = position.value
    columns = order[1:] if null_part else order
    left = sa.tuple_(*columns)
    right = sa.tuple_(*(sa.literal(known[c.name], c.type) for c in columns))
    return left < right if descending else left > right


def count(connection: sa.Connection, log_filter: LogFilter) -> int:
    """How many cycles ``log_filter`` keeps."""
    query = sa.select(sa.func.count()).select_from(sla_cycles).where(*log_filter.conditions())
    return int(connection.execute(query).scalar_one())
