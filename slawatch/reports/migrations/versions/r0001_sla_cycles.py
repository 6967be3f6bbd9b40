"""The sla_cycles table: one row per SLA cycle, with an index per main sort key of the log.

Revision ID: 0001
Revises:
Create Date: 2025-01-01

Each index is (sort column, primary key): it serves the SLA log's keyset pages in both
directions and the range filters on started_ms, due_ms and stopped_ms (the compliance
report reads cycles by stopped_ms). level, metric and status get none (see
slawatch.reports.table.INDEXED_SORT_KEYS). Text compares bytewise (COLLATE "C" on
PostgreSQL).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None

_KEY = ("conversation_key", "metric", "cycle")
_SORTS = {
    "requester": "requester",
    "conversation_id": "conversation_id",
    "started": "started_ms",
    "due": "due_ms",
    "stopped": "stopped_ms",
    "remaining": "remaining_s",
    "department": "department",
    "agent": "agent",
}


def _text() -> sa.types.TypeEngine[str]:
    return sa.Text().with_variant(sa.Text(collation="C"), "postgresql")


def upgrade() -> None:
    op.create_table(
        "sla_cycles",
        sa.Column("conversation_key", _text(), nullable=False),
        sa.Column("metric", _text(), nullable=False),
        sa.Column("cycle", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("conversation_kind", _text(), nullable=False),
        sa.Column("conversation_id", _text(), nullable=False),
        sa.Column("tenant", _text(), nullable=True),
        sa.Column("requester", _text(), nullable=True),
        sa.Column("customer_group", _text(), nullable=True),
        sa.Column("channel", _text(), nullable=True),
        sa.Column("priority", _text(), nullable=False),
        sa.Column("department", _text(), nullable=True),
        sa.Column("queue", _text(), nullable=True),
        sa.Column("agent", _text(), nullable=True),
        sa.Column("level", _text(), nullable=False),
        sa.Column("policy_version", _text(), nullable=False),
        sa.Column("target_s", sa.Double(), nullable=False),
        sa.Column("started_ms", sa.BigInteger(), nullable=False),
        sa.Column("due_ms", sa.BigInteger(), nullable=True),
        sa.Column("stopped_ms", sa.BigInteger(), nullable=True),
        sa.Column("at_risk_ms", sa.BigInteger(), nullable=True),
        sa.Column("breached_ms", sa.BigInteger(), nullable=True),
        sa.Column("status", _text(), nullable=False),
        sa.Column("stop", _text(), nullable=True),
        sa.Column("reason", _text(), nullable=True),
        sa.Column("business_s", sa.Double(), nullable=True),
        sa.Column("remaining_s", sa.Double(), nullable=True),
        sa.Column("late", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("fold", _text(), nullable=False),
        sa.Column("updated_ms", sa.BigInteger(), nullable=False),
        sa.CheckConstraint(
            "status IN ('open', 'at_risk', 'breached', 'met', 'missed', 'cancelled')",
            name="ck_sla_cycles_status",
        ),
        sa.PrimaryKeyConstraint(*_KEY, name="pk_sla_cycles"),
    )
    for key, column in _SORTS.items():
        ties = [c for c in _KEY if c != column]
        op.create_index(f"ix_sla_cycles_{key}", "sla_cycles", [column, *ties])


def downgrade() -> None:
    op.drop_table("sla_cycles")
