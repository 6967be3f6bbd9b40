"""The SLA log sink on the real broker, into SQLite and PostgreSQL: every cycle stored
once, a second pass over the topic changes nothing, an unreadable record is skipped, and a
database outage, even with the sink stopped in the middle of it, loses nothing."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaProducer
from prometheus_client import CollectorRegistry

from slawatch.config.settings import Settings
from slawatch.core.clock import SystemClock
from slawatch.dev.bench_reports import _records
from slawatch.dev.postgres import PostgresServer
from slawatch.logsink.metrics import LogSinkMetrics
from slawatch.logsink.sink import LogSink
from slawatch.reports.filters import LogFilter
from slawatch.reports.store import LogStore
from slawatch.schemas.cycle_log import CycleLog
from slawatch.schemas.sla_events import decode_sla_event
from slawatch.streams.topics import ensure_topics
from tests.integration.conftest import run

pytestmark = pytest.mark.integration

RECORDS = 3_000  # 1,000 cycles, three SLA events each


async def produce(settings: Settings, values: list[tuple[bytes, bytes]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=settings.bootstrap_servers, linger_ms=5)
    await producer.start()
    try:
        sent = [await producer.send(settings.topic_sla_events, v, key=k) for k, v in values]
        await asyncio.gather(*sent)
    finally:
        await producer.stop()


def stored(metrics: LogSinkMetrics, outcome: str = "stored") -> float:
    return metrics.records.labels(outcome)._value.get()


async def until(check: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


def rows_of(url: str) -> dict[tuple[str, str, int], dict[str, Any]]:
    rows: dict[tuple[str, str, int], dict[str, Any]] = {}
    with LogStore.open(url, migrate=False) as store:
        after = None
        while True:
            page = store.log_page(LogFilter(), sort="started", limit=1000, after=after)
            for row in page.rows:
                rows[(row["conversation_key"], row["metric"], row["cycle"])] = row
            if page.next_cursor is None:
                return rows
            after = page.next_cursor


def expected_log(values: list[tuple[bytes, bytes]]) -> dict[tuple[str, str, int], dict]:
    log = CycleLog()
    for _, value in values:
        log.add(decode_sla_event(value))
    return {(r["conversation_key"], r["metric"], r["cycle"]): r for r in log.rows()}


def comparable(row: dict[str, Any]) -> dict[str, Any]:
    """A row without what only says when it was written; booleans as SQLite keeps them."""
    kept = {k: v for k, v in row.items() if k not in ("updated_ms", "fold")}
    kept["late"] = bool(kept["late"])
    return kept


def test_each_cycle_is_stored_once_and_a_second_pass_changes_nothing(
    settings_factory: Callable[..., Settings], tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'log.db'}"
    settings = settings_factory(log_store_url=url)
    run(ensure_topics(settings))
    values = list(_records(RECORDS))
    no_time = {**orjson.loads(values[0][1]), "conversation_key": "ticket::bad", "at": "soon"}
    garbage = [(b"x", b"{not json"), (b"y", orjson.dumps(no_time))]
    run(produce(settings, values[:1500] + garbage + values[1500:]))

    async def one_pass(app_id: str) -> LogSinkMetrics:
        metrics = LogSinkMetrics(CollectorRegistry())
        sink = LogSink(settings.with_overrides(app_id=app_id), metrics, SystemClock())
        await sink.start()
        try:
            await until(lambda: stored(metrics) >= RECORDS - 1, 60, "every record stored")
            await until(lambda: stored(metrics, "unreadable") >= 2, 10, "two unreadable")
        finally:
            await sink.stop()
        return metrics

    first = asyncio.run(one_pass(settings.app_id))
    # the JSON that is not JSON and the record whose time is no time are skipped
    assert stored(first) == RECORDS and stored(first, "unreadable") == 2
    rows = rows_of(url)
    assert {k: comparable(v) for k, v in rows.items()} == {
        k: comparable(v) for k, v in expected_log(values).items()
    }
    assert len(rows) == RECORDS // 3
    statuses = {row["status"] for row in rows.values()}
    assert statuses == {"met", "missed"}

    asyncio.run(one_pass(settings.app_id + "-again"))  # a new group: the whole topic again
    again = rows_of(url)
    assert {k: comparable(v) for k, v in again.items()} == {
        k: comparable(v) for k, v in rows.items()
    }


def test_a_database_outage_loses_nothing_even_if_the_sink_stops_during_it(
    settings_factory: Callable[..., Settings],
) -> None:
    server = PostgresServer()
    server.start()
    try:
        url = server.create_database("outage")
        settings = settings_factory(log_store_url=url)
        run(ensure_topics(settings))
        values = list(_records(RECORDS))
        first, second = values[:1200], values[1200:]

        async def outage() -> None:
            metrics = LogSinkMetrics(CollectorRegistry())
            sink = LogSink(settings, metrics, SystemClock())
            await sink.start()
            try:
                await produce(settings, first)
                await until(lambda: stored(metrics) >= len(first), 60, "the first part")
                server.pause()
                await produce(settings, second)
                await until(lambda: metrics.store_up._value.get() == 0, 30, "store_up 0")
                assert stored(metrics) == len(first)  # nothing counted that is not stored
            finally:
                await sink.stop()  # in the middle of the outage: nothing committed

        asyncio.run(outage())
        server.resume()

        async def after() -> None:
            metrics = LogSinkMetrics(CollectorRegistry())
            sink = LogSink(settings, metrics, SystemClock())  # the same group
            await sink.start()
            try:
                await until(lambda: stored(metrics) >= len(second), 60, "the second part")
            finally:
                await sink.stop()

        asyncio.run(after())
        rows = rows_of(url)
        assert {k: comparable(v) for k, v in rows.items()} == {
            k: comparable(v) for k, v in expected_log(values).items()
        }
    finally:
        server.stop()
