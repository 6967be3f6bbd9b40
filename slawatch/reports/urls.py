"""Database URLs: which ones the store takes, and how they print (password masked)."""

from __future__ import annotations

import re

import sqlalchemy as sa

from slawatch.reports.errors import LogStoreError

#: URL schemes taken for PostgreSQL; all run on the psycopg 3 driver.
POSTGRES_SCHEMES = frozenset({"postgresql", "postgres", "postgresql+psycopg"})
SQLITE_SCHEMES = frozenset({"sqlite", "sqlite+pysqlite"})

_USER_PASSWORD = re.compile(r"(://[^:/@?#]*:)[^@/?#]*@")
_QUERY_PASSWORD = re.compile(r"([?&]password=)[^&#]*", re.IGNORECASE)


def mask(url: str) -> str:
    """``url`` with any password replaced by ``***`` (in the authority or as a query
    parameter); works on strings that do not parse as URLs too."""
    return _QUERY_PASSWORD.sub(r"\1***", _USER_PASSWORD.sub(r"\1***@", url))


def database_url(url: str) -> sa.URL:
    """SQLAlchemy's URL for ``url``: ``sqlite:///path`` or ``postgresql+psycopg://...``
    (``postgresql://`` and ``postgres://`` mean the same). Anything else raises
    :class:`LogStoreError`."""
    try:
        parsed = sa.make_url(url)
    except sa.exc.ArgumentError:
        raise LogStoreError(
            f"not a database URL: {mask(url)!r}"
            " (expected sqlite:///path or postgresql://user@host/database)"
        ) from None
    if parsed.drivername in POSTGRES_SCHEMES:
        if not parsed.database:
            raise LogStoreError(f"{mask(url)}: the URL names no database")
        return parsed.set(drivername="postgresql+psycopg")
    if parsed.drivername in SQLITE_SCHEMES:
        if not parsed.database or parsed.database == ":memory:":
            raise LogStoreError(
                f"{mask(url)}: SQLite needs a file (sqlite:///path/to/log.db), not memory"
            )
        return parsed.set(drivername="sqlite+pysqlite")
    raise LogStoreError(
        f"{mask(url)}: unsupported database {parsed.drivername!r}"
        " (expected sqlite:///path or postgresql://user@host/database)"
    )
