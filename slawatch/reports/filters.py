"""The filter every report of the SLA log shares, and the SQL it becomes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Literal

import sqlalchemy as sa

from slawatch.reports.errors import InvalidQuery
from slawatch.reports.table import sla_cycles

#: The instant a time range applies to.
On = Literal["start", "due", "stop"]
#: Which column holds each instant.
INSTANT_COLUMNS: dict[str, str] = {"start": "started_ms", "due": "due_ms", "stop": "stopped_ms"}
#: One value, or any of several; ``None`` for no condition.
Values = str | Sequence[str] | None


@dataclass(frozen=True, slots=True)
class LogFilter:
    """Which cycles a report looks at. Every field left ``None`` is no condition; a value
    keeps the rows whose column equals it, a sequence the rows whose column equals any of
    them (an empty sequence keeps nothing). A row whose column is NULL never matches.

    ``start_ms``/``end_ms`` are a half-open range of epoch milliseconds on the instant
    ``on`` names (``started_ms``, ``due_ms`` or ``stopped_ms``); either end may be open.
    A range on ``due`` or ``stop`` leaves out the cycles that have none (no due, still
    open).
    """

    department: Values = None
    agent: Values = None
    level: Values = None
    metric: Values = None
    status: Values = None
    channel: Values = None
    queue: Values = None
    tenant: Values = None
    customer_group: Values = None
    start_ms: int | None = None
    end_ms: int | None = None
    on: On = "start"

    def __post_init__(self) -> None:
        for name in VALUE_FIELDS:
            values = getattr(self, name)
            if values is None or isinstance(values, str):
                continue
            if not all(isinstance(value, str) for value in values):
                raise InvalidQuery(name, f"{values!r}: give a text or a list of texts")
            # A tuple: the filter stays hashable and later changes to a caller's list
            # do not reach it.
            object.__setattr__(self, name, tuple(values))
        if self.on not in INSTANT_COLUMNS:
            raise InvalidQuery("on", f"{self.on!r} is not one of {', '.join(INSTANT_COLUMNS)}")
        for name in ("start_ms", "end_ms"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
                raise InvalidQuery(name, f"{value!r} is not an integer (epoch milliseconds)")

    @property
    def instant(self) -> sa.ColumnElement[int]:
        """The column the time range applies to."""
        return sla_cycles.c[INSTANT_COLUMNS[self.on]]

    def conditions(self) -> list[sa.ColumnElement[bool]]:
        """The WHERE conditions (to be AND-ed) on ``sla_cycles``."""
        conditions: list[sa.ColumnElement[bool]] = []
        for name in VALUE_FIELDS:
            values = getattr(self, name)
            if values is None:
                continue
            column = sla_cycles.c[name]
            if isinstance(values, str):
                conditions.append(column == values)
            else:
                conditions.append(column.in_(list(values)))
        if self.start_ms is not None:
            conditions.append(self.instant >= self.start_ms)
        if self.end_ms is not None:
            conditions.append(self.instant < self.end_ms)
        return conditions


#: The fields of :class:`LogFilter` that match a column's value.
VALUE_FIELDS: tuple[str, ...] = tuple(
    f.name for f in fields(LogFilter) if f.name not in ("start_ms", "end_ms", "on")
)
