"""The SLA log store: one row per SLA cycle in PostgreSQL (production) or SQLite (the
embedded default), behind one interface.

The sink folds SLA events into rows and, per batch, calls :meth:`LogStore.load` for the
rows it already has, then :meth:`LogStore.upsert` for the new versions; managers' reports
read the same table (:meth:`LogStore.compliance`, :meth:`LogStore.log_page`,
:meth:`LogStore.count`). Every method is synchronous and thread-safe (a connection pool
underneath): the worker calls it from a thread.

A database that cannot be reached or is lost midway raises :class:`LogStoreError`, whose
message names the URL with any password masked; a bad report argument raises
:class:`~slawatch.reports.errors.InvalidQuery` (a ``ValueError``).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from types import TracebackType
from typing import Any, Self

import sqlalchemy as sa

from slawatch.reports import compliance as compliance_report
from slawatch.reports import log_page as log_pages
from slawatch.reports import lookup
from slawatch.reports import migrate as migrations
from slawatch.reports import upsert as writing
from slawatch.reports.compliance import ComplianceRow
from slawatch.reports.engine import WRITE, create_engine
from slawatch.reports.errors import LogStoreError
from slawatch.reports.filters import LogFilter
from slawatch.reports.log_page import LogPage
from slawatch.reports.periods import Period
from slawatch.reports.table import COLUMNS
from slawatch.reports.urls import database_url, mask

Key = tuple[str, str, int]
_COLUMN_SET = frozenset(COLUMNS)


class LogStore:
    """The ``sla_cycles`` table in one database. Build it with :meth:`open`."""

    def __init__(self, engine: sa.Engine, display_url: str) -> None:
        self._engine = engine
        #: The URL, password masked: for messages.
        self.url = display_url

    @classmethod
    def open(cls, url: str, *, migrate: bool = True) -> LogStore:
        """Connect to ``url`` (``sqlite:///path`` or ``postgresql://…``; ``postgres://`` and
        ``postgresql+psycopg://`` too) and, unless ``migrate`` is false, bring the schema
        to the newest revision. A bad URL or a database that does not answer raises
        :class:`LogStoreError`."""
        parsed = database_url(url)
        store = cls(create_engine(parsed), mask(url))
        try:
            with store._connect() as connection:
                connection.execute(sa.select(1))
            if migrate:
                store.migrate()
        except BaseException:
            store.close()
            raise
        return store

    @property
    def dialect(self) -> str:
        """``postgresql`` or ``sqlite``."""
        return self._engine.dialect.name

    def migrate(self) -> list[str]:
        """Apply the pending schema migrations, all in one transaction; return the revision
        ids applied, oldest first (empty when the schema was up to date)."""
        with self._transaction() as connection:
            return migrations.upgrade(connection)

    def revision(self) -> str | None:
        """The schema's revision, ``None`` for a database never migrated."""
        with self._connect() as connection:
            return migrations.current_revision(connection)

    def load(self, keys: Sequence[Key]) -> dict[Key, dict[str, Any]]:
        """The stored rows (all of :data:`COLUMNS`) for those of ``keys`` that have one."""
        if not keys:
            return {}
        with self._connect() as connection:
            return lookup.load(connection, keys)

    def upsert(self, rows: Sequence[dict[str, Any]]) -> None:
        """Insert or overwrite ``rows`` (each with exactly the keys :data:`COLUMNS`, no two
        with the same primary key) in one transaction: all are written or none."""
        if not rows:
            return
        keys: set[Key] = set()
        for index, row in enumerate(rows):
            if row.keys() != _COLUMN_SET:
                missing = sorted(_COLUMN_SET - row.keys())
                extra = sorted(row.keys() - _COLUMN_SET)
                raise ValueError(
                    f"row {index}: its keys are not COLUMNS: missing {missing}, extra {extra}"
                )
            key = (row["conversation_key"], row["metric"], row["cycle"])
            if key in keys:
                raise ValueError(f"row {index}: a row before it in this upsert has its key {key}")
            keys.add(key)
        with self._errors(), self._engine.connect() as connection:
            writer = connection.execution_options(**{WRITE: True})
            writing.prepare(writer)
            with writer.begin():
                writing.upsert(writer, rows)

    def compliance(
        self,
        log_filter: LogFilter,
        *,
        period: Period,
        time_zone: str,
        by: Sequence[str] = (),
    ) -> list[ComplianceRow]:
        """The compliance report (:func:`slawatch.reports.compliance.compliance`)."""
        with self._connect() as connection:
            return compliance_report.compliance(
                connection, log_filter, period=period, time_zone_name=time_zone, by=by
            )

    def log_page(
        self,
        log_filter: LogFilter,
        *,
        sort: str,
        descending: bool = False,
        limit: int = 50,
        after: str | None = None,
    ) -> LogPage:
        """A page of the SLA log (:func:`slawatch.reports.log_page.log_page`)."""
        with self._connect() as connection:
            return log_pages.log_page(
                connection, log_filter, sort=sort, descending=descending, limit=limit, after=after
            )

    def count(self, log_filter: LogFilter) -> int:
        """How many cycles ``log_filter`` keeps."""
        with self._connect() as connection:
            return log_pages.count(connection, log_filter)

    def close(self) -> None:
        """Close every pooled connection. Safe to call twice."""
        self._engine.dispose()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"LogStore({self.url!r})"

    # -- connections ------------------------------------------------------------

    @contextmanager
    def _connect(self) -> Iterator[sa.Connection]:
        """A pooled connection (its transaction rolled back at the end: reads only);
        connection failures become :class:`LogStoreError`."""
        with self._errors(), self._engine.connect() as connection:
            yield connection

    @contextmanager
    def _transaction(self) -> Iterator[sa.Connection]:
        """A connection in a write transaction, committed at the end unless it raised."""
        with (
            self._errors(),
            self._engine.connect().execution_options(**{WRITE: True}) as connection,
            connection.begin(),
        ):
            yield connection

    @contextmanager
    def _errors(self) -> Iterator[None]:
        try:
            yield
        except (sa.exc.OperationalError, sa.exc.InterfaceError) as error:
            raise LogStoreError(f"{self.url}: {_first_line(error)}") from error


def _first_line(error: sa.exc.DBAPIError) -> str:
    """The driver's message, first line only (SQLAlchemy's adds the SQL and parameters)."""
    text = str(error.orig).strip() or type(error.orig).__name__
    return text.splitlines()[0]
