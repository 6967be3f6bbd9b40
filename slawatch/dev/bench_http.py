"""``slawatch bench-http``: events per second the HTTP ingest accepts, and its latency.

A ``slawatch ingest-http`` process (the same handler and producer a worker mounts) on its
own embedded broker, driven on loopback by an aiohttp client in this process:
``concurrency`` requests in flight, each of ``batch`` events (1: a help desk's webhook, one
event a request), ``events`` in all, tickets, chats and calls in turn, each a valid event
with an ``event_id`` of its own. A request's latency is from its send to its answer
(202: the broker acknowledged every event, ``acks=all``). Prints events a second accepted
(202s only, over the wall time of the whole run), requests a second, the p50, p99 and max
latency, and the machine's load average before and after; writes JSON.

:func:`drive` is also the bounded load test's client (tests/integration/test_http_ingest.py).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from slawatch.errors import SlawatchError

#: The path of each family and a minimal valid event of it (the id field, the type, and
#: what the type requires).
FAMILY_EVENTS: dict[str, tuple[str, str, dict[str, Any]]] = {
    "tickets": ("ticket_id", "ticket.created", {"channel": "email"}),
    "chats": ("chat_id", "chat.started", {}),
    "calls": ("call_id", "call.queued", {"queue": "sales"}),
}


def make_events(count: int, prefix: str, now_ms: int) -> list[tuple[str, dict[str, Any]]]:
    """``count`` valid events, (family, event), the families in turn, ids unique."""
    families = list(FAMILY_EVENTS)
    events = []
    for n in range(count):
        family = families[n % len(families)]
        id_field, type_, required = FAMILY_EVENTS[family]
        events.append(
            (
                family,
                {
                    "schema_version": 1,
                    "event_id": f"{prefix}-{n}",
                    "type": type_,
                    "occurred_at": now_ms - 60_000 + n % 1000,
                    id_field: f"{prefix}-{family[0]}{n}",
                    **required,
                },
            )
        )
    return events


def _quantile(sorted_values: Sequence[float], q: float) -> float:
    if not sorted_values:
        return 0.0
    index = min(len(sorted_values) - 1, max(0, round(q * len(sorted_values)) - 1))
    return sorted_values[index]


@dataclass
class LoadReport:
    """What one run of :func:`drive` saw."""

    events: int
    batch: int
    concurrency: int
    seconds: float = 0.0
    accepted_events: int = 0
    statuses: dict[int, int] = field(default_factory=dict)
    latencies_ms: list[float] = field(default_factory=list, repr=False)
    accepted_ids: list[str] = field(default_factory=list, repr=False)

    @property
    def events_per_s(self) -> float:
        return self.accepted_events / self.seconds if self.seconds else 0.0

    @property
    def requests_per_s(self) -> float:
        return len(self.latencies_ms) / self.seconds if self.seconds else 0.0

    def latency_ms(self, q: float) -> float:
        return _quantile(sorted(self.latencies_ms), q)

    def summary(self) -> dict[str, Any]:
        return {
            "events": self.events,
            "batch": self.batch,
            "concurrency": self.concurrency,
            "seconds": round(self.seconds, 3),
            "accepted_events": self.accepted_events,
            "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
            "events_per_s": round(self.events_per_s, 1),
            "requests_per_s": round(self.requests_per_s, 1),
            "p50_ms": round(self.latency_ms(0.50), 2),
            "p99_ms": round(self.latency_ms(0.99), 2),
            "max_ms": round(max(self.latencies_ms, default=0.0), 2),
        }

    def line(self) -> str:
        s = self.summary()
        return (
            f"{s['accepted_events']}/{s['events']} events accepted in {s['seconds']}s "
            f"(batch {self.batch}, concurrency {self.concurrency}): "
            f"{s['events_per_s']:,.0f} events/s, {s['requests_per_s']:,.0f} requests/s, "
            f"latency p50 {s['p50_ms']} ms, p99 {s['p99_ms']} ms, max {s['max_ms']} ms"
        )


async def drive(
    base_url: str,
    events: Sequence[tuple[str, dict[str, Any]]],
    *,
    token: str,
    batch: int = 1,
    concurrency: int = 16,
) -> LoadReport:
    """Post ``events`` to ``base_url``'s ``/ingest/<family>`` in requests of at most
    ``batch`` events of one family, ``concurrency`` in flight."""
    import aiohttp

    requests: list[tuple[str, bytes, list[str]]] = []
    by_family: dict[str, list[dict[str, Any]]] = {}
    for family, event in events:
        pending = by_family.setdefault(family, [])
        pending.append(event)
        if len(pending) == batch:
            requests.append(_request(family, pending, batch))
            by_family[family] = []
    requests += [_request(family, rest, batch) for family, rest in by_family.items() if rest]
    report = LoadReport(len(events), batch, concurrency)
    queue: asyncio.Queue[tuple[str, bytes, list[str]]] = asyncio.Queue()
    for item in requests:
        queue.put_nowait(item)
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(base_url, connector=connector, headers=headers) as session:

        async def worker() -> None:
            while not queue.empty():
                family, body, ids = queue.get_nowait()
                sent = time.perf_counter()
                async with session.post(f"/ingest/{family}", data=body) as response:
                    await response.read()
                    report.latencies_ms.append((time.perf_counter() - sent) * 1000)
                    report.statuses[response.status] = report.statuses.get(response.status, 0) + 1
                    if response.status == 202:
                        report.accepted_events += len(ids)
                        report.accepted_ids += ids

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        report.seconds = time.perf_counter() - started
    return report


def _request(family: str, events: list[dict[str, Any]], batch: int) -> tuple[str, bytes, list[str]]:
    body = orjson.dumps(events[0] if batch == 1 else events)
    return family, body, [event["event_id"] for event in events]


# --- the command --------------------------------------------------------------------------


def _get(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return 0


def run_http_bench(
    *, events: int, batches: Sequence[int], concurrency: int, out: Path
) -> dict[str, Any]:
    """Start a broker and ``slawatch ingest-http``, drive each batch size, report."""
    from slawatch.config.settings import load_settings
    from slawatch.dev.embedded import EmbeddedBroker, free_port

    run_dir = Path(tempfile.mkdtemp(prefix="slawatch-bench-http-"))
    token = "bench-token"
    load_before = os.getloadavg()
    results: list[dict[str, Any]] = []
    broker = EmbeddedBroker(run_dir / "broker")
    broker.start()
    server: subprocess.Popen[bytes] | None = None
    try:
        settings = load_settings(
            None,
            environ={},
            broker_url=broker.url,
            web_port=free_port(),
            data_dir=run_dir / "data",
            http_ingest=True,
            http_ingest_token=token,
            log_level="warning",
        )
        with (run_dir / "ingest-http.log").open("wb") as log:
            server = subprocess.Popen(
                [sys.executable, "-m", "slawatch", "ingest-http"],
                env=settings.to_environment(dict(os.environ)),
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        base = f"http://127.0.0.1:{settings.web_port}"
        deadline = time.monotonic() + 60
        while _get(f"{base}/readyz") != 200:
            if server.poll() is not None or time.monotonic() > deadline:
                raise SlawatchError(f"slawatch ingest-http did not get ready; see {run_dir}")
            time.sleep(0.1)
        for batch in batches:
            prefix = f"b{batch}"
            report = asyncio.run(
                drive(
                    base,
                    make_events(events, prefix, int(time.time() * 1000)),
                    token=token,
                    batch=batch,
                    concurrency=concurrency,
                )
            )
            print(report.line(), flush=True)
            results.append(report.summary())
    finally:
        if server is not None:
            server.terminate()
            try:
                server.wait(timeout=15)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
        broker.stop()
    document = {
        "runs": results,
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
        "cpus": os.cpu_count(),
    }
    print(f"load average before {document['load_average_before']}, "
          f"after {document['load_average_after']} ({document['cpus']} CPUs)")  # fmt: skip
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(document, indent=2) + "\n")
    shutil.rmtree(run_dir, ignore_errors=True)
    return document


def _count(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value}: give 1 or more")
    return value


def add_bench_http(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    bench = commands.add_parser(
        "bench-http",
        help="measure HTTP ingest: events a second accepted and latency (embedded broker)",
    )
    bench.add_argument("--events", type=_count, default=20_000, help="events per run")
    bench.add_argument(
        "--batch",
        type=_count,
        action="append",
        help="events per request; repeat for several runs (default: 1 and 100)",
    )
    bench.add_argument("--concurrency", type=_count, default=32, help="requests in flight")
    bench.add_argument("--out", type=Path, default=Path("bench-results/http-ingest.json"))
    bench.set_defaults(run=_run)


def _run(args: argparse.Namespace) -> int:
    run_http_bench(
        events=args.events,
        batches=args.batch or [1, 100],
        concurrency=args.concurrency,
        out=args.out,
    )
    return 0
