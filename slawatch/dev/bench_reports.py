"""``slawatch bench-reports``: the SLA log sink's rate into PostgreSQL, and the reports'
response times over a large SLA log.

On the embedded broker and a PostgreSQL server (``--db URL``, or a throwaway cluster of
Debian's ``postgresql`` started for the run, as the tests do):

(a) baseline: ``events`` SLA event records on a topic of 4 partitions, read back with a
    plain aiokafka consumer and decoded (``orjson.loads``): the ceiling of reading them;
(b) the sink: a :class:`~slawatch.logsink.sink.LogSink` (as a worker runs it, in this
    process) folds the same topic into a fresh database. Its rate is SLA events a second
    from its first written batch to the last (the consumer group's join, a few seconds on
    the embedded broker, is reported apart). The records are three per cycle (at risk,
    breached, final), each cycle in the batch's fold and read back from the store.
(c) the reports: a fresh database filled with ``cycles`` SLA log rows (a month of a
    centre: 12 departments, 200 agents, 4 levels, 5 metrics, 100,000 requesters; written
    with the store's upsert, whose rate is reported), then, ``requests`` times each: the
    month's compliance report by day and department, and the 5,000th page (50 rows) of
    the log sorted by SLA start and by remaining time (its cursor found by paging there);
    then the same two as HTTP requests to the reports API (slawatch.web.reports, on a
    loopback port in this process): the JSON a browser gets, page with its ``total``.

Each of (a) and (b) is the median of ``runs`` runs. Prints a table with the machine's load
before and after and writes JSON; the exit code is 0 whether the targets are met or not.
"""

from __future__ import annotations

import asyncio
import functools
import json
import os
import random
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from slawatch.core.sla import Metric, SlaEventKind, Stop
from slawatch.core.timestamps import format_timestamp_ms, parse_timestamp_ms

if TYPE_CHECKING:
    from slawatch.reports.store import LogStore

#: The issue's targets.
TARGET_SINK_PER_S = 20_000.0
TARGET_REPORT_S = 1.0
#: The month the synthetic log covers.
MONTH_START = "2026-11-01T00:00:00Z"
MONTH_END = "2026-12-01T00:00:00Z"
PAGE = 5_000
PAGE_SIZE = 50


def run_reports_bench(
    *, events: int, cycles: int, requests: int, runs: int, db: str | None, out: Path
) -> int:
    from slawatch.dev.embedded import EmbeddedBroker
    from slawatch.dev.postgres import PostgresServer

    load_before = os.getloadavg()
    run_dir = Path(tempfile.mkdtemp(prefix="slawatch-bench-reports-"))
    results: dict[str, Any] = {
        "params": {"events": events, "cycles": cycles, "requests": requests, "runs": runs},
        "cores": os.cpu_count(),
    }
    with ExitStack() as stack:
        broker = stack.enter_context(EmbeddedBroker(run_dir))
        assert isinstance(broker, EmbeddedBroker)
        if db is None:
            server = PostgresServer()
            stack.callback(server.stop)
            server.start()
            database: Callable[[str], str] = server.create_database
            results["database"] = "throwaway PostgreSQL cluster (fsync off)"
        else:
            database = _database_on(db)
            results["database"] = "given by --db"
        baselines, sinks, joins = [], [], []
        for run in range(runs):
            topic = f"bench-sla-events-{run}"
            asyncio.run(_produce(broker.url, topic, events))
            baselines.append(asyncio.run(_read_all(broker.url, topic, events)))
            rate, join_s = asyncio.run(
                _sink(
                    broker.url,
                    topic,
                    events,
                    database(f"sink{run}_{uuid.uuid4().hex[:6]}"),
                    run_dir,
                )
            )
            sinks.append(rate)
            joins.append(join_s)
            print(f"run {run + 1}: read {baselines[-1]:,.0f}/s, sink {rate:,.0f}/s", flush=True)
        results["a_read_decode_per_s"] = statistics.median(baselines)
        results["b_sink_per_s"] = statistics.median(sinks)
        results["b_sink_join_s"] = statistics.median(joins)
        results["b_ratio"] = results["b_sink_per_s"] / results["a_read_decode_per_s"]
        results["c"] = _reports(database(f"reports_{uuid.uuid4().hex[:6]}"), cycles, requests)
    load_after = os.getloadavg()
    results["load_before"] = load_before
    results["load_after"] = load_after
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    _print(results)
    return 0


def _database_on(url: str) -> Callable[[str], str]:
    """Fresh databases on the server ``url`` names (its user may create databases)."""
    import sqlalchemy as sa

    from slawatch.reports.urls import database_url

    base = database_url(url)

    def create(name: str) -> str:
        engine = sa.create_engine(base, isolation_level="AUTOCOMMIT")
        with engine.connect() as connection:
            connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
        engine.dispose()
        return base.set(database=name).render_as_string(hide_password=False)

    return create


# --- (a) and (b) --------------------------------------------------------------------------


def _records(count: int, seed: int = 7) -> Iterator[tuple[bytes, bytes]]:
    """``count`` SLA event records, three per cycle: at risk, breached, then a final."""
    rng = random.Random(seed)
    start = parse_timestamp_ms(MONTH_START)
    n = 0
    cycle = 0
    while n < count:
        cycle += 1
        key = f"ticket::T{cycle:08d}"
        started = start + rng.randrange(28 * 86_400_000)
        target = 3_600_000
        final = rng.choice((SlaEventKind.MET, SlaEventKind.MISSED))
        stopped = started + (rng.randrange(target) if final is SlaEventKind.MET else
                             target + rng.randrange(target))  # fmt: skip
        said = (SlaEventKind.AT_RISK, SlaEventKind.BREACHED, final)
        for sequence, kind in enumerate(said, start=1):
            at = {SlaEventKind.AT_RISK: started + target * 3 // 4,
                  SlaEventKind.BREACHED: started + target}.get(kind, stopped)  # fmt: skip
            record = {
                "schema_version": 1,
                "event_id": f"{key}|resolution|1|{kind.value}",
                "kind": kind.value,
                "metric": Metric.RESOLUTION.value,
                "cycle": 1,
                "conversation_key": key,
                "conversation_kind": "ticket",
                "conversation_id": f"T{cycle:08d}",
                "tenant": None,
                "channel": "email",
                "priority": "normal",
                "department": f"dept-{rng.randrange(12)}",
                "assignee": f"agent-{rng.randrange(200)}",
                "queue": None,
                "customer_group": rng.choice(("enterprise", "smb", None)),
                "requester": f"customer-{rng.randrange(100_000)}@example.com",
                "level": "normal",
                "policy_version": "bench-1",
                "target_s": target / 1000,
                "started_at": format_timestamp_ms(started),
                "due_at": format_timestamp_ms(started + target),
                "at_risk_at": format_timestamp_ms(started + target * 3 // 4),
                "at": format_timestamp_ms(at),
                "elapsed_s": (at - started) / 1000,
                "detected_at": format_timestamp_ms(at + 500),
                "detection_delay_ms": 500,
                "late": False,
                "reason": None,
                "stop": Stop.SOLVED.value if kind is final else None,
                "previous_level": None,
                "sequence": sequence,
            }
            yield key.encode(), orjson.dumps(record)
            n += 1
            if n == count:
                return


async def _produce(broker_url: str, topic: str, count: int) -> None:
    from aiokafka import AIOKafkaProducer
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    servers = broker_url.removeprefix("kafka://")
    admin = AIOKafkaAdminClient(bootstrap_servers=servers)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, num_partitions=4, replication_factor=1)])
    finally:
        await admin.close()
    producer = AIOKafkaProducer(bootstrap_servers=servers, linger_ms=20, max_batch_size=1 << 20)
    await producer.start()
    try:
        sent = [await producer.send(topic, value, key=key) for key, value in _records(count)]
        await asyncio.gather(*sent)
    finally:
        await producer.stop()


async def _read_all(broker_url: str, topic: str, count: int) -> float:
    """(a): read and decode ``count`` records with a plain consumer; records a second."""
    from aiokafka import AIOKafkaConsumer

    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=broker_url.removeprefix("kafka://"),
        group_id=f"bench-read-{uuid.uuid4().hex[:8]}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        max_poll_records=2000,
        fetch_max_wait_ms=100,
    )
    await consumer.start()
    try:
        read = 0
        started = None
        while read < count:
            batch = await consumer.getmany(timeout_ms=500, max_records=2000)
            if batch and started is None:
                started = time.perf_counter()
            for messages in batch.values():
                for message in messages:
                    orjson.loads(message.value or b"")
                    read += 1
        assert started is not None
        return read / (time.perf_counter() - started)
    finally:
        await consumer.stop()


async def _sink(
    broker_url: str, topic: str, count: int, db_url: str, run_dir: Path
) -> tuple[float, float]:
    """(b): the sink on the topic into ``db_url``; (events a second, join seconds)."""
    from prometheus_client import CollectorRegistry

    from slawatch.config.settings import load_settings
    from slawatch.core.clock import SystemClock
    from slawatch.logsink.metrics import LogSinkMetrics
    from slawatch.logsink.sink import LogSink

    settings = load_settings(
        None,
        environ={},
        broker_url=broker_url,
        topic_sla_events=topic,
        app_id=f"bench-{uuid.uuid4().hex[:8]}",
        log_store_url=db_url,
        data_dir=run_dir / "data",
    )
    metrics = LogSinkMetrics(CollectorRegistry())
    sink = LogSink(settings, metrics, SystemClock())
    began = time.perf_counter()
    await sink.start()
    try:
        first = None
        while True:
            stored = metrics.records.labels("stored")._value.get()
            if first is None and stored > 0:
                first = (time.perf_counter(), stored)
            if stored >= count:
                break
            await asyncio.sleep(0.01)
        assert first is not None
        ended = time.perf_counter()
        return (count - first[1]) / max(ended - first[0], 1e-9), first[0] - began
    finally:
        await sink.stop()


# --- (c) ----------------------------------------------------------------------------------


def _rows(count: int, seed: int = 11) -> Iterator[list[dict[str, Any]]]:
    """``count`` SLA log rows of a month, in chunks of 5,000."""
    rng = random.Random(seed)
    start = parse_timestamp_ms(MONTH_START)
    span = parse_timestamp_ms(MONTH_END) - start
    targets = {"first_reply": 3_600, "next_reply": 7_200, "chat_reply": 60,
               "call_answer": 20, "resolution": 86_400}  # fmt: skip
    chunk: list[dict[str, Any]] = []
    for n in range(count):
        metric = rng.choice(tuple(targets))
        target = targets[metric]
        started = start + rng.randrange(span)
        status = rng.choices(("met", "missed", "cancelled", "open", "breached"),
                             weights=(70, 15, 5, 8, 2))[0]  # fmt: skip
        final = status in ("met", "missed", "cancelled")
        used = rng.uniform(0, target) if status != "missed" else rng.uniform(target, 3 * target)
        stopped = started + int(used * 1000) if final else None
        chunk.append({
            "conversation_key": f"ticket::B{n:08d}", "metric": metric, "cycle": 1,
            "conversation_kind": "ticket", "conversation_id": f"B{n:08d}",
            "tenant": None, "requester": f"customer-{rng.randrange(100_000):05d}@example.com",
            "customer_group": rng.choice(("enterprise", "smb", "consumer")),
            "channel": rng.choice(("email", "web", "phone", "chat")),
            "priority": rng.choice(("low", "normal", "high", "urgent")),
            "department": f"dept-{rng.randrange(12):02d}", "queue": None,
            "agent": f"agent-{rng.randrange(200):03d}",
            "level": rng.choice(("low", "normal", "high", "urgent")),
            "policy_version": "bench-1", "target_s": float(target), "started_ms": started,
            "due_ms": started + target * 1000, "stopped_ms": stopped,
            "at_risk_ms": started + target * 750 if used >= 0.75 * target else None,
            "breached_ms": started + target * 1000 if status in ("missed", "breached") else None,
            "status": status, "stop": "solved" if final else None,
            "reason": "closed" if status == "cancelled" else None,
            "business_s": round(used, 3) if final else None,
            "remaining_s": round(target - used, 3) if final else None,
            "late": False, "fold": "[0,[0,-1,0,0,-1],null,0,null,null,null,null]",
            "updated_ms": start + span,
        })  # fmt: skip
        if len(chunk) == 5_000:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _reports(db_url: str, cycles: int, requests: int) -> dict[str, Any]:
    from slawatch.reports.filters import LogFilter
    from slawatch.reports.store import LogStore

    result: dict[str, Any] = {}
    cursors: dict[str, str | None] = {}
    with LogStore.open(db_url) as store:
        started = time.perf_counter()
        for chunk in _rows(cycles):
            store.upsert(chunk)
        result["fill_rows_per_s"] = cycles / (time.perf_counter() - started)
        print(f"filled {cycles:,} rows at {result['fill_rows_per_s']:,.0f}/s", flush=True)
        with store._connect() as connection:
            if store.dialect == "postgresql":
                connection.exec_driver_sql("ANALYZE sla_cycles")
                connection.commit()
        month = LogFilter(
            start_ms=parse_timestamp_ms(MONTH_START), end_ms=parse_timestamp_ms(MONTH_END),
            on="stop",
        )  # fmt: skip
        result["compliance_by_day_and_department_s"] = _timed(
            lambda: store.compliance(
                month, period="day", time_zone="Europe/Paris", by=["department"]
            ),
            requests,
        )
        for sort in ("started", "remaining"):
            after = None
            walk = time.perf_counter()
            for _ in range(PAGE - 1):
                after = store.log_page(LogFilter(), sort=sort, descending=False,
                                       limit=PAGE_SIZE, after=after).next_cursor  # fmt: skip
            result[f"walk_to_page_{PAGE}_by_{sort}_s"] = time.perf_counter() - walk
            result[f"page_{PAGE}_by_{sort}_s"] = _timed(_page(store, sort, after), requests)
            result[f"page_1_by_{sort}_s"] = _timed(_page(store, sort, None), requests)
            cursors[sort] = after
    with _ApiServer(db_url) as api:
        query = "from=2026-11-01&to=2026-12-01&by=department&tz=Europe/Paris"
        result["http_compliance_by_day_and_department_s"] = _timed(
            lambda: api.get(f"/api/reports/compliance?{query}"), requests
        )
        for sort, cursor in cursors.items():
            if cursor is not None:
                path = f"/api/reports/log?sort={sort}&limit={PAGE_SIZE}&after={cursor}"
                result[f"http_page_{PAGE}_by_{sort}_s"] = _timed(
                    functools.partial(api.get, path), requests
                )
    return result


class _ApiServer:
    """The reports API (``slawatch.web.reports``, as a worker mounts it) on a loopback
    port, served by an event loop in a thread; :meth:`get` is a client's whole request."""

    def __init__(self, db_url: str) -> None:
        import threading

        self.db_url = db_url
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.base = ""
        self.runner: Any = None

    def __enter__(self) -> _ApiServer:
        from aiohttp import web

        from slawatch.config.settings import Secret, Settings
        from slawatch.web.reports import ReportsApi, add_report_routes

        async def start() -> str:
            app = web.Application()
            settings = Settings(log_store_url=Secret(self.db_url), report_time_zone="UTC")
            add_report_routes(app, ReportsApi(settings))
            self.runner = web.AppRunner(app, access_log=None)
            await self.runner.setup()
            await web.TCPSite(self.runner, "127.0.0.1", 0).start()
            host, port = self.runner.addresses[0][:2]
            return f"http://{host}:{port}"

        self.thread.start()
        self.base = asyncio.run_coroutine_threadsafe(start(), self.loop).result(timeout=30)
        return self

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop).result(timeout=30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)

    def get(self, path: str) -> bytes:
        import urllib.request

        with urllib.request.urlopen(self.base + path, timeout=60) as response:
            if response.status != 200:
                raise RuntimeError(f"{path}: {response.status}")
            body: bytes = response.read()
            return body


def _page(store: LogStore, sort: str, after: str | None) -> Callable[[], object]:
    from slawatch.reports.filters import LogFilter

    return lambda: store.log_page(
        LogFilter(), sort=sort, descending=False, limit=PAGE_SIZE, after=after
    )


def _timed(call: Callable[[], object], requests: int) -> dict[str, float]:
    seconds: list[float] = []
    for _ in range(requests):
        began = time.perf_counter()
        call()
        seconds.append(time.perf_counter() - began)
    return {"p50": _quantile(seconds, 0.5), "p99": _quantile(seconds, 0.99)}


def _quantile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _print(r: dict[str, Any]) -> None:
    c = r["c"]
    lines = [
        f"machine: {r['cores']} cores; load before {r['load_before'][0]:.2f}, "
        f"after {r['load_after'][0]:.2f} (1-minute averages)",
        f"(a) read + decode SLA events:      {r['a_read_decode_per_s']:>10,.0f}/s",
        f"(b) sink into PostgreSQL:          {r['b_sink_per_s']:>10,.0f}/s "
        f"(ratio {r['b_ratio']:.2f}; target {TARGET_SINK_PER_S:,.0f}/s; group join "
        f"{r['b_sink_join_s']:.1f} s)",
        f"(c) {r['params']['cycles']:,} rows written at {c['fill_rows_per_s']:,.0f}/s",
    ]
    for name, value in c.items():
        if isinstance(value, dict):
            lines.append(f"    {name:<40} p50 {value['p50'] * 1000:8.1f} ms  "
                         f"p99 {value['p99'] * 1000:8.1f} ms")  # fmt: skip
    print("\n".join(lines))
