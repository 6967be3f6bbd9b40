"""The SQLAlchemy engine for a store: per-dialect connection settings.

SQLite runs in WAL mode (readers such as the report API never block the sink's writes)
with ``synchronous=NORMAL``: safe against corruption, but a power cut may lose the last
transactions. The stdlib driver's own transaction handling is switched off (it does not
put DDL in a transaction) and SQLAlchemy's ``BEGIN`` is emitted here instead: ``BEGIN
IMMEDIATE`` on a connection marked for writing (:data:`WRITE`), so a writer takes the
write lock up front and waits for it (``busy_timeout``) rather than failing when a
read transaction cannot be upgraded.

PostgreSQL connections are checked before use (``pool_pre_ping``), so a server restart
costs the sink a retry, not a dead pool, and connecting gives up after
``connect_timeout`` seconds unless the URL says otherwise.
"""

from __future__ import annotations

import sqlite3
import time
from typing import Any

import sqlalchemy as sa

#: The execution option that marks a connection whose transaction will write.
WRITE = "slawatch_write"
#: How long a SQLite writer waits for another writer's lock.
SQLITE_BUSY_TIMEOUT_S = 30.0
#: Seconds to give up connecting to PostgreSQL (unless the URL has ``connect_timeout``).
POSTGRES_CONNECT_TIMEOUT_S = 10


def create_engine(url: sa.URL) -> sa.Engine:
    """An engine for ``url`` (as :func:`slawatch.reports.urls.database_url` made it)."""
    if url.get_backend_name() == "sqlite":
        return _sqlite_engine(url)
    connect_args: dict[str, Any] = {}
    if "connect_timeout" not in url.query:
        connect_args["connect_timeout"] = POSTGRES_CONNECT_TIMEOUT_S
    return sa.create_engine(url, pool_pre_ping=True, connect_args=connect_args)


def _sqlite_engine(url: sa.URL) -> sa.Engine:
    engine = sa.create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_S})

    @sa.event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # BEGIN comes from _on_begin
        cursor = dbapi_connection.cursor()
        try:
            _wal(cursor)
            cursor.execute("PRAGMA synchronous=NORMAL")
        finally:
            cursor.close()

    @sa.event.listens_for(engine, "begin")
    def _on_begin(connection: sa.Connection) -> None:
        writes = connection.get_execution_options().get(WRITE, False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if writes else "BEGIN")

    return engine


def _wal(cursor: Any) -> None:
    """Switch the file to WAL. While another connection opens the same new file (several
    stores starting together), SQLite can answer "database is locked" at once, without
    its busy handler: ask again until the busy timeout has passed."""
    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_S
    while True:
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)
