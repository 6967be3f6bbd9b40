"""The session's throwaway PostgreSQL server (tests/postgres_server.py): reachable with
psycopg and with SQLAlchemy, and every ``postgres_url`` is a database of its own."""

from __future__ import annotations

import psycopg
import pytest
import sqlalchemy as sa

from slawatch.dev.postgres import PostgresServer

pytestmark = pytest.mark.integration


def _psycopg_dsn(url: str) -> str:
    """libpq's form of SQLAlchemy's URL."""
    return sa.make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def test_psycopg_and_sqlalchemy_read_back_what_was_written(postgres_url: str) -> None:
    with psycopg.connect(_psycopg_dsn(postgres_url)) as connection:
        connection.execute("CREATE TABLE ticket (id text PRIMARY KEY, minutes integer)")
        connection.execute("INSERT INTO ticket VALUES (%s, %s)", ("T-1", 30))
        row = connection.execute("SELECT id, minutes FROM ticket").fetchone()
    assert row == ("T-1", 30)

    engine = sa.create_engine(postgres_url)
    try:
        ticket = sa.Table("ticket", sa.MetaData(), autoload_with=engine)
        with engine.begin() as connection:
            connection.execute(sa.insert(ticket).values(id="T-2", minutes=45))
        with engine.connect() as connection:
            rows = connection.execute(sa.select(ticket).order_by(ticket.c.id)).all()
            encoding: str = connection.execute(sa.text("SHOW server_encoding")).scalar_one()
    finally:
        engine.dispose()
    assert [tuple(row) for row in rows] == [("T-1", 30), ("T-2", 45)]
    assert encoding == "UTF8"


def test_each_postgres_url_is_a_database_of_its_own(
    postgres_server: PostgresServer, postgres_url: str
) -> None:
    other = postgres_server.create_database("other_database")
    assert other != postgres_url
    with psycopg.connect(_psycopg_dsn(postgres_url)) as connection:
        connection.execute("CREATE TABLE only_here (n integer)")
    with psycopg.connect(_psycopg_dsn(other)) as connection:
        tables = connection.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"
        ).fetchall()
        assert tables == []
        assert connection.execute("SELECT current_database()").fetchone() == ("other_database",)


def test_the_server_listens_on_loopback_only(postgres_server: PostgresServer) -> None:
    assert postgres_server.running
    with psycopg.connect(postgres_server.dsn) as connection:
        settings: dict[str, str] = dict(
            connection.execute(
                "SELECT name, setting FROM pg_settings WHERE name IN"
                " ('listen_addresses', 'fsync', 'port')"
            ).fetchall()
        )
    assert settings == {
        "listen_addresses": "127.0.0.1",
        "fsync": "off",
        "port": str(postgres_server.port),
    }
