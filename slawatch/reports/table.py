"""The ``sla_cycles`` table: one row per SLA cycle, as the sink folds the SLA events.

This is the store's live description of the table, used to build queries. The schema in
a database is made by the migrations (``migrations/versions``), which are frozen copies:
a change here needs a new migration, and ``tests/integration/test_log_store.py`` checks
that the migrated database matches this definition.

Instants are epoch milliseconds (BIGINT), never database timestamps: the same numbers in
every dialect, and time zones stay in Python. Every text column compares bytewise
(``COLLATE "C"`` on PostgreSQL; SQLite's default ``BINARY``), so both dialects sort text
exactly as Python sorts ``str`` (code point order), whatever the server's locale: keyset
pagination needs one total order that the database and its cursor agree on.
"""

from __future__ import annotations

import sqlalchemy as sa

from slawatch.core.sla import FINAL_STATUS, CycleStatus
from slawatch.schemas.cycle_log import LOG_FIELDS

#: The row's keys, in table order: what :meth:`LogStore.upsert` takes and
#: :meth:`LogStore.load` returns. The SLA log's fields (``schemas/cycle_log.py``, the one
#: list of them), the fold's own state, and when the row was written.
COLUMNS: tuple[str, ...] = (*LOG_FIELDS, "fold", "updated_ms")
#: The primary key: one SLA cycle.
KEY_COLUMNS: tuple[str, str, str] = ("conversation_key", "metric", "cycle")
#: The columns an upsert overwrites.
VALUE_COLUMNS: tuple[str, ...] = tuple(c for c in COLUMNS if c not in KEY_COLUMNS)
#: What a report shows of a row: all but the sink's private fold state.
REPORT_COLUMNS: tuple[str, ...] = tuple(c for c in COLUMNS if c != "fold")

#: A cycle still running: nothing has stopped it yet.
OPEN_STATUSES = tuple(
    s.value for s in (CycleStatus.OPEN, CycleStatus.AT_RISK, CycleStatus.BREACHED)
)
#: A cycle that is over.
FINAL_STATUSES = tuple(s.value for s in FINAL_STATUS.values())
STATUSES = OPEN_STATUSES + FINAL_STATUSES

#: Sort keys of the SLA log (what an API names them) and their columns.
SORT_COLUMNS: dict[str, str] = {
    "requester": "requester",
    "conversation_id": "conversation_id",
    "started": "started_ms",
    "due": "due_ms",
    "stopped": "stopped_ms",
    "remaining": "remaining_s",
    "department": "department",
    "agent": "agent",
    "level": "level",
    "metric": "metric",
    "status": "status",
}
#: The sort keys with an index on (column, primary key): a page deep in the log costs
#: what page 1 does (a few ms at 1,000,000 rows), and the index serves range filters on
#: the instants. Every index costs every row write about as much as a fifth of the
#: write itself, so level, metric and status have none: few distinct values, filtered
#: on rather than sorted by; a page in their order scans the rows the filter keeps
#: (about 0.8 s at 1,000,000 rows on PostgreSQL here).
INDEXED_SORT_KEYS: tuple[str, ...] = (
    "requester",
    "conversation_id",
    "started",
    "due",
    "stopped",
    "remaining",
    "department",
    "agent",
)


def text() -> sa.types.TypeEngine[str]:
    """A text column that compares bytewise in both dialects."""
    return sa.Text().with_variant(sa.Text(collation="C"), "postgresql")


def index_columns(column: str) -> tuple[str, ...]:
    """The sort order for ``column``: the column, then the primary key (minus the column
    when it is part of the key): a total order, since the key is unique."""
    return (column, *(key for key in KEY_COLUMNS if key != column))


metadata = sa.MetaData()

sla_cycles = sa.Table(
    "sla_cycles",
    metadata,
    sa.Column("conversation_key", text(), nullable=False),
    sa.Column("metric", text(), nullable=False),
    sa.Column("cycle", sa.Integer(), nullable=False, autoincrement=False),
    sa.Column("conversation_kind", text(), nullable=False),
    sa.Column("conversation_id", text(), nullable=False),
    sa.Column("tenant", text()),
    sa.Column("requester", text()),
    sa.Column("customer_group", text()),
    sa.Column("channel", text()),
    sa.Column("priority", text(), nullable=False),
    sa.Column("department", text()),
    sa.Column("queue", text()),
    sa.Column("agent", text()),
    sa.Column("level", text(), nullable=False),
    sa.Column("policy_version", text(), nullable=False),
    sa.Column("target_s", sa.Double(), nullable=False),
    sa.Column("started_ms", sa.BigInteger(), nullable=False),
    sa.Column("due_ms", sa.BigInteger()),
    sa.Column("stopped_ms", sa.BigInteger()),
    sa.Column("at_risk_ms", sa.BigInteger()),
    sa.Column("breached_ms", sa.BigInteger()),
    sa.Column("status", text(), nullable=False),
    sa.Column("stop", text()),
    sa.Column("reason", text()),
    sa.Column("business_s", sa.Double()),
    sa.Column("remaining_s", sa.Double()),
    sa.Column("late", sa.Boolean(), nullable=False, server_default=sa.false()),
    sa.Column("fold", text(), nullable=False),
    sa.Column("updated_ms", sa.BigInteger(), nullable=False),
    sa.CheckConstraint(
        "status IN (" + ", ".join(f"'{s}'" for s in STATUSES) + ")", name="ck_sla_cycles_status"
    ),
    sa.PrimaryKeyConstraint(*KEY_COLUMNS, name="pk_sla_cycles"),
    *(
        sa.Index(f"ix_sla_cycles_{key}", *index_columns(SORT_COLUMNS[key]))
        for key in INDEXED_SORT_KEYS
    ),
)
