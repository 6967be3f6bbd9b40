"""Reading rows by primary key, thousands at a time (the sink's load before an upsert).

One statement per call whatever the number of keys, its text fixed (the driver and the
server cache its plan): the keys travel as one JSON array (``json_array_elements`` on
PostgreSQL, ``json_each`` on SQLite), each element joined to the primary key index. A
tuple ``IN`` list or a ``VALUES`` list spent 100-300 ms per thousand keys here, most of it
building the statement, and three ``unnest`` arrays spent 20 ms in the driver quoting
each element.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from slawatch.reports.table import sla_cycles

Key = tuple[str, str, int]


def _postgres_query() -> sa.Select[Any]:
    item = sa.func.json_array_elements(sa.cast(sa.bindparam("wanted"), sa.JSON())).table_valued(
        "value", name="item"
    )
    value = item.c.value
    wanted = sa.select(
        value.op("->>")(0).label("conversation_key"),
        value.op("->>")(1).label("metric"),
        sa.cast(value.op("->>")(2), sa.Integer()).label("cycle"),
    ).subquery("wanted")
    return _join(wanted)


def _sqlite_query() -> sa.Select[Any]:
    item = sa.func.json_each(sa.bindparam("wanted")).table_valued("value", name="item")
    value = item.c.value
    wanted = sa.select(
        sa.func.json_extract(value, "$[0]").label("conversation_key"),
        sa.func.json_extract(value, "$[1]").label("metric"),
        sa.func.json_extract(value, "$[2]").label("cycle"),
    ).subquery("wanted")
    return _join(wanted)


def _join(wanted: Any) -> sa.Select[Any]:
    table = sla_cycles
    return sa.select(table).select_from(
        wanted.join(
            table,
            sa.and_(
                table.c.conversation_key == wanted.c.conversation_key,
                table.c.metric == wanted.c.metric,
                table.c.cycle == wanted.c.cycle,
            ),
        )
    )


_POSTGRES = _postgres_query()
_SQLITE = _sqlite_query()


def load(connection: sa.Connection, keys: Sequence[Key]) -> dict[Key, dict[str, Any]]:
    """The stored rows for those of ``keys`` that have one, by key."""
    query = _POSTGRES if connection.dialect.name == "postgresql" else _SQLITE
    parameters = {"wanted": json.dumps(keys, ensure_ascii=False)}
    result = connection.execute(query, parameters)
    names = list(result.keys())
    found: dict[Key, dict[str, Any]] = {}
    for values in result.all():
        found[values[:3]] = dict(zip(names, values, strict=True))
    return found
