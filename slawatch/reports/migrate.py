"""Versioned schema migrations (Alembic), run from code: no ``alembic.ini`` on disk.

The scripts live in ``slawatch/reports/migrations`` (shipped with the package). The
version is kept in its own table, :data:`VERSION_TABLE`, so the store can share a
database with other Alembic users. On PostgreSQL the whole upgrade runs in one
transaction under an advisory lock: two sinks starting together migrate once, and a
failed migration leaves the schema as it was. On SQLite the upgrade holds the write lock
(``BEGIN IMMEDIATE``) for the same effect.

To write a new migration: add ``migrations/versions/rNNNN_<what>.py`` by hand (copy the
last one; ``down_revision`` is the previous ``revision``). Migrations are frozen: never
import :mod:`slawatch.reports.table` into one.
"""

from __future__ import annotations

import logging
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

log = logging.getLogger(__name__)
# Alembic narrates every step at INFO (plugins, the context, each revision): one line of
# ours says what was applied, and a CLI command keeps its one-line output.
logging.getLogger("alembic").setLevel(logging.WARNING)

#: Where the migration scripts are.
MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
#: Alembic's version table for this schema.
VERSION_TABLE = "slawatch_reports_version"
#: ``pg_advisory_xact_lock`` key held while migrating (any constant unique to slawatch).
ADVISORY_LOCK_KEY = 0x534C4157_52505431  # "SLAWRPT1"


def alembic_config(connection: sa.Connection | None = None) -> Config:
    """Alembic's configuration for the store's migrations, on ``connection``."""
    config = Config()
    # Config values go through configparser interpolation: a literal % must be doubled.
    config.set_main_option("script_location", str(MIGRATIONS_DIR).replace("%", "%%"))
    config.attributes["connection"] = connection
    config.attributes["applied"] = []
    return config


def upgrade(connection: sa.Connection) -> list[str]:
    """Apply every pending migration on ``connection``, inside its transaction (the caller
    begins and commits it); return the revision ids applied, oldest first."""
    if connection.dialect.name == "postgresql":
        connection.execute(sa.select(sa.func.pg_advisory_xact_lock(ADVISORY_LOCK_KEY)))
    config = alembic_config(connection)
    command.upgrade(config, "head")
    applied: list[str] = config.attributes["applied"]
    if applied:
        log.info("SLA log database: schema migrations %s applied", ", ".join(applied))
    return applied


def current_revision(connection: sa.Connection) -> str | None:
    """The database's revision, ``None`` before the first migration."""
    context = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE})
    return context.get_current_revision()


def head_revision() -> str:
    """The newest revision the scripts define."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:  # pragma: no cover - the package ships its migrations
        raise RuntimeError(f"no migrations in {MIGRATIONS_DIR}")
    return head
