"""Alembic's entry point: run the migrations on the connection the store hands over.

Alembic executes this file for every command; it is never imported otherwise. Offline
mode (printing SQL) is not supported: the store migrates a live database.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from alembic import context
from alembic.runtime.migration import MigrationContext, MigrationInfo

from slawatch.reports.migrate import VERSION_TABLE
from slawatch.reports.table import metadata


def _run() -> None:
    config = context.config
    connection = config.attributes.get("connection")
    if context.is_offline_mode() or connection is None:
        raise RuntimeError(
            "the SLA log migrations run on a live connection: use LogStore.migrate()"
        )
    applied: list[str] = config.attributes.setdefault("applied", [])

    def on_version_apply(
        ctx: MigrationContext,
        step: MigrationInfo,
        heads: Collection[Any],
        run_args: Mapping[str, Any],
    ) -> None:
        if step.is_upgrade and step.up_revision_id is not None:
            applied.append(step.up_revision_id)

    context.configure(
        connection=connection,
        target_metadata=metadata,
        version_table=VERSION_TABLE,
        # SQLite cannot ALTER most things: later migrations rebuild tables in batch mode.
        render_as_batch=connection.dialect.name == "sqlite",
        on_version_apply=on_version_apply,
    )
    with context.begin_transaction():
        context.run_migrations()


_run()
