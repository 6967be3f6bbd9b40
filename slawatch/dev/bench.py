"""``slawatch bench``: throughput, detection delay, memory and recovery, in one run.

On one embedded broker, against the same events:

(a) the ceiling: a raw aiokafka consumer reading the input topics and decoding each
    message with orjson, nothing else;
(b) slawatch: one worker process (ingest, validation, timers, table writes, metrics)
    working through the same events as a backlog;
(c) detection delay: with ``--open-timers`` conversations open, probe tickets whose first
    reply falls due during the run; the delay is ``detected_at - due`` of each breach;
(d) memory: the worker's resident set with the open timers, minus before, per timer;
(e) recovery: kill -9 that worker, start another, time until it holds every timer again.

Prints a table and writes JSON. Numbers depend on the machine: compare within one run.
SIGINT, SIGTERM or SIGHUP stops it, and the workers, Redis and the broker with it; they
also die with it if it is killed (:mod:`slawatch.dev.processes`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Sequence
from itertools import pairwise
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from prometheus_client.parser import text_string_to_metric_families

from slawatch.config.settings import Settings, load_settings
from slawatch.core.keys import ConversationKind
from slawatch.dev.embedded import EmbeddedBroker, EmbeddedRedis, free_port
from slawatch.dev.processes import die_with_parent, raising_stopped
from slawatch.dev.simulator.traffic import TrafficProfile, generate_traffic
from slawatch.streams.topics import ensure_topics


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


async def _produce(
    settings: Settings, messages: Sequence[tuple[str, bytes | None, bytes]]
) -> float:
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.bootstrap_servers, linger_ms=20, max_batch_size=512 * 1024
    )
    await producer.start()
    started = time.perf_counter()
    try:
        pending = []
        for topic, key, value in messages:
            pending.append(await producer.send(topic, value, key=key))
            if len(pending) >= 20_000:
                await asyncio.gather(*pending)
                pending.clear()
        await asyncio.gather(*pending)
    finally:
        await producer.stop()
    return len(messages) / (time.perf_counter() - started)


async def _raw_ceiling(settings: Settings, expected: int) -> float:
    """(a) Read every input message and decode it with orjson: nothing more."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.bootstrap_servers,
        group_id=None,
        enable_auto_commit=False,
        max_partition_fetch_bytes=4 * 1024 * 1024,
        fetch_max_wait_ms=settings.fetch_max_wait_ms,
    )
    await consumer.start()
    try:
        consumer.assign(
            [
                TopicPartition(t, p)
                for t in settings.input_topics
                for p in range(settings.partitions)
            ]
        )
        await consumer.seek_to_beginning()
        seen = 0
        started = time.perf_counter()
        while seen < expected:
            for records in (await consumer.getmany(timeout_ms=500, max_records=10_000)).values():
                for record in records:
                    with contextlib.suppress(orjson.JSONDecodeError):
                        orjson.loads(record.value)
                seen += len(records)
        return seen / (time.perf_counter() - started)
    finally:
        await consumer.stop()


class _Worker:
    def __init__(self, settings: Settings, log: Path) -> None:
        env = settings.with_overrides(log_level="warning").to_environment()
        self.port = settings.web_port
        self._log = log.open("ab")
        # Its own session: Ctrl-C reaches the bench, which stops the worker itself.
        self.process = subprocess.Popen(
            [sys.executable, "-m", "slawatch", "worker"],
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            preexec_fn=die_with_parent(),
        )
        self.started = time.perf_counter()

    def metrics(self) -> dict[str, float]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics", timeout=5) as r:
                text = r.read().decode()
        except OSError:
            return {}
        values: dict[str, float] = {}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                values[sample.name] = values.get(sample.name, 0.0) + sample.value
        return values

    def scrape(self, times: int = 21) -> dict[str, float]:
        """Time ``times`` scrapes of /metrics, one after another: median and max in ms, and
        the number of series (sample lines) in the last one."""
        durations, lines = [], 0
        for _ in range(times):
            started = time.perf_counter()
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics", timeout=30) as r:
                body = r.read()
            durations.append((time.perf_counter() - started) * 1000)
            lines = sum(1 for line in body.splitlines() if line and not line.startswith(b"#"))
        durations.sort()
        return {
            "median_ms": durations[len(durations) // 2],
            "max_ms": durations[-1],
            "series": lines,
            "bytes": len(body),
        }

    def rss_bytes(self) -> int:
        status = Path(f"/proc/{self.process.pid}/status").read_text()
        line = next(line for line in status.splitlines() if line.startswith("VmRSS:"))
        return int(line.split()[1]) * 1024

    def wait_for(self, name: str, at_least: float, timeout_s: float) -> float:
        """Wait until metric ``name`` reaches ``at_least``; return seconds since start."""
        deadline = time.perf_counter() + timeout_s
        while time.perf_counter() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the worker exited with {self.process.returncode}")
            if self.metrics().get(name, 0.0) >= at_least:
                return time.perf_counter() - self.started
            time.sleep(0.2)
        raise TimeoutError(f"{name} did not reach {at_least} within {timeout_s}s")

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(60)
            except subprocess.TimeoutExpired:
                self.kill()
        self._log.close()


def _throughput(worker: _Worker, total: int, timeout_s: float) -> dict[str, float]:
    """(b) Events applied per second while the worker works through a backlog of ``total``."""
    samples: list[tuple[float, float]] = []
    deadline = time.perf_counter() + timeout_s
    while time.perf_counter() < deadline:
        applied = worker.metrics().get("slawatch_timer_events_total", 0.0)
        samples.append((time.perf_counter(), applied))
        if applied >= total:
            break
        time.sleep(0.25)
    busy = [(t, n) for t, n in samples if n > 0]
    if len(busy) < 2:
        raise RuntimeError("the worker applied no events")
    (t0, n0), (t1, n1) = busy[0], busy[-1]
    rates = [(b[1] - a[1]) / (b[0] - a[0]) for a, b in pairwise(busy) if b[1] < total]
    return {
        "events_per_s": (n1 - n0) / (t1 - t0),
        "median_interval_events_per_s": statistics.median(rates) if rates else 0.0,
        "applied": n1,
    }


async def _breach_delays(
    settings: Settings, prefix: str, count: int, timeout_s: float
) -> list[int]:
    """Detection delays (ms) of the first-reply breaches of the probe tickets."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.bootstrap_servers, group_id=None, enable_auto_commit=False
    )
    await consumer.start()
    delays: dict[str, int] = {}
    try:
        consumer.assign(
            [TopicPartition(settings.topic_sla_events, p) for p in range(settings.partitions)]
        )
        await consumer.seek_to_beginning()
        deadline = time.perf_counter() + timeout_s
        while len(delays) < count and time.perf_counter() < deadline:
            for records in (await consumer.getmany(timeout_ms=500)).values():
                for record in records:
                    event = orjson.loads(record.value)
                    if (
                        event["kind"] == "breached"
                        and event["metric"] == "first_reply"
                        and event["conversation_id"].startswith(prefix)
                    ):
                        delays[event["conversation_id"]] = event["detection_delay_ms"]
    finally:
        await consumer.stop()
    return sorted(delays.values())


def _percentile(values: list[int], q: float) -> float:
    if not values:
        return float("nan")
    return float(values[min(len(values) - 1, int(q * len(values)))])


def _machine() -> dict[str, Any]:
    cpu = "?"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    mem_kb = int(Path("/proc/meminfo").read_text().split()[1])
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": round(mem_kb / 1024 / 1024, 1),
        "python": platform.python_version(),
        "kernel": platform.release(),
    }


def run_bench(
    *,
    events: int,
    open_timers: int,
    probes: int,
    out: Path,
    seed: int = 7,
    keep_run_dir: bool = False,
) -> int:
    """Run every measurement; print the table; write ``out`` (JSON)."""
    with raising_stopped():
        return _run_bench(
            events=events,
            open_timers=open_timers,
            probes=probes,
            out=out,
            seed=seed,
            keep_run_dir=keep_run_dir,
        )


def _run_bench(
    *, events: int, open_timers: int, probes: int, out: Path, seed: int, keep_run_dir: bool
) -> int:
    run_dir = Path(tempfile.mkdtemp(prefix="slawatch-bench-"))
    results: dict[str, Any] = {"machine": _machine(), "params": {
        "events": events, "open_timers": open_timers, "probes": probes, "seed": seed}}  # fmt: skip
    try:
        with EmbeddedBroker(run_dir) as broker, EmbeddedRedis(run_dir) as redis:
            assert isinstance(broker, EmbeddedBroker) and isinstance(redis, EmbeddedRedis)
            settings = load_settings(
                None,
                environ={},
                broker_url=broker.url,
                redis_url=redis.url,
                web_port=free_port(),
                data_dir=run_dir / "data",
                app_id="bench",
                worker_id="bench-worker",
            )
            asyncio.run(ensure_topics(settings))
            print(f"generating {events} events …", flush=True)
            topics = {
                ConversationKind.TICKET: settings.topic_tickets,
                ConversationKind.CHAT: settings.topic_chats,
                ConversationKind.CALL: settings.topic_calls,
            }
            duration_s = events / 100.0
            start_ms = _now_ms() - int(duration_s * 1000) - 60_000  # all in the past
            traffic = [
                (topics[m.kind], m.key, m.value)
                for m in generate_traffic(
                    TrafficProfile(rate_eps=100.0),
                    seed=seed,
                    start_ms=start_ms,
                    duration_s=duration_s,
                )
            ][:events]
            rate = asyncio.run(_produce(settings, traffic))
            print(
                f"loaded {len(traffic)} events at {rate:,.0f}/s; measuring the ceiling …",
                flush=True,
            )
            results["a_raw_consume_decode_events_per_s"] = asyncio.run(
                _raw_ceiling(settings, len(traffic))
            )

            print("starting a worker on the backlog …", flush=True)
            worker = _Worker(settings, run_dir / "worker-1.log")
            try:
                worker.wait_for("slawatch_worker_ready", 1, 120)
                results["b_pipeline"] = _throughput(worker, len(traffic), timeout_s=1200)
                results["b_ratio_to_ceiling"] = (
                    results["b_pipeline"]["events_per_s"]
                    / results["a_raw_consume_decode_events_per_s"]
                )
                base_conversations = worker.metrics().get("slawatch_conversations", 0.0)
                rss_before = worker.rss_bytes()
                scrape_before = worker.scrape()

                print(f"opening {open_timers:,} timers …", flush=True)
                now = _now_ms()
                opened = [
                    (settings.topic_tickets, f"OPEN-{i}".encode(), orjson.dumps({
                        "schema_version": 1, "event_id": f"open-{i}", "type": "ticket.created",
                        "occurred_at": now, "ticket_id": f"OPEN-{i}", "channel": "email",
                        "priority": "low"}))
                    for i in range(open_timers)
                ]  # fmt: skip
                asyncio.run(_produce(settings, opened))
                loaded_s = worker.wait_for(
                    "slawatch_timer_events_total", len(traffic) + open_timers, timeout_s=3600
                )
                results["c_open_timers_loaded_after_s"] = loaded_s
                scrape_after = worker.scrape()
                results["f_metrics_scrape"] = {
                    "before_open_timers": scrape_before,
                    "with_open_timers": scrape_after,
                    "ratio_median": scrape_after["median_ms"] / scrape_before["median_ms"],
                }
                print(
                    f"/metrics scrape: median {scrape_after['median_ms']:.1f} ms with the open "
                    f"timers, {scrape_before['median_ms']:.1f} ms before",
                    flush=True,
                )
                rss_after = worker.rss_bytes()
                conversations = worker.metrics().get("slawatch_conversations", 0.0)
                results["d_memory"] = {
                    "rss_before_bytes": rss_before,
                    "rss_after_bytes": rss_after,
                    "conversations_added": conversations - base_conversations,
                    "bytes_per_open_timer": (rss_after - rss_before)
                    / max(1.0, conversations - base_conversations),
                }

                print(f"probing detection delay with {probes} breaches …", flush=True)
                target_ms = 8 * 3600 * 1000  # low priority first reply (built-in target)
                now = _now_ms()
                probe_events = [
                    (settings.topic_tickets, f"PROBE-{i}".encode(), orjson.dumps({
                        "schema_version": 1, "event_id": f"probe-{i}", "type": "ticket.created",
                        # due spread over the next 20 s
                        "occurred_at": now - target_ms + 5_000 + (i * 15_000) // probes,
                        "ticket_id": f"PROBE-{i}", "channel": "email", "priority": "low"}))
                    for i in range(probes)
                ]  # fmt: skip
                asyncio.run(_produce(settings, probe_events))
                delays = asyncio.run(_breach_delays(settings, "PROBE-", probes, timeout_s=120))
                results["c_detection_delay_ms"] = {
                    "breaches": len(delays),
                    "p50": _percentile(delays, 0.50),
                    "p99": _percentile(delays, 0.99),
                    "max": float(delays[-1]) if delays else float("nan"),
                    "with_open_timers": conversations,
                }
                print("killing the worker (kill -9) and recovering …", flush=True)
                holding = worker.metrics().get("slawatch_conversations", 0.0)
            finally:
                worker.kill()
            second = _Worker(settings, run_dir / "worker-2.log")
            try:
                ready_s = second.wait_for("slawatch_worker_ready", 1, 600)
                queue_s = second.wait_for("slawatch_timer_queue_entries", open_timers, 600)
                results["e_recovery"] = {
                    "conversations": holding,
                    "ready_after_s": ready_s,
                    "all_timers_queued_after_s": queue_s,
                }
            finally:
                second.stop()
    finally:
        if keep_run_dir:
            print(f"logs kept in {run_dir}", flush=True)
        else:
            shutil.rmtree(run_dir, ignore_errors=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    _print(results)
    return 0


def _print(r: dict[str, Any]) -> None:
    b, c, d, e = r["b_pipeline"], r["c_detection_delay_ms"], r["d_memory"], r["e_recovery"]
    f = r["f_metrics_scrape"]
    rows = [
        ("(a) raw consume + decode", f"{r['a_raw_consume_decode_events_per_s']:,.0f} events/s"),
        ("(b) slawatch pipeline, 1 worker", f"{b['events_per_s']:,.0f} events/s "
         f"(median interval {b['median_interval_events_per_s']:,.0f}; "
         f"{r['b_ratio_to_ceiling']:.1%} of (a))"),
        ("(c) detection delay", f"p50 {c['p50']:.0f} ms, p99 {c['p99']:.0f} ms, "
         f"max {c['max']:.0f} ms ({c['breaches']} breaches, "
         f"{c['with_open_timers']:,.0f} conversations held)"),
        ("(d) memory per open timer", f"{d['bytes_per_open_timer']:,.0f} bytes "
         f"({d['conversations_added']:,.0f} added, RSS {d['rss_before_bytes'] / 2**20:,.0f} -> "
         f"{d['rss_after_bytes'] / 2**20:,.0f} MiB)"),
        ("(e) recovery after kill -9", f"ready {e['ready_after_s']:.1f} s, all "
         f"{e['conversations']:,.0f} timers queued {e['all_timers_queued_after_s']:.1f} s"),
        ("(f) /metrics scrape", f"median {f['with_open_timers']['median_ms']:.1f} ms with the "
         f"open timers ({f['with_open_timers']['series']:,} series), "
         f"{f['before_open_timers']['median_ms']:.1f} ms before "
         f"({f['before_open_timers']['series']:,}); x{f['ratio_median']:.2f}"),
    ]  # fmt: skip
    machine = r["machine"]
    print(f"\nmachine: {machine['cpu']}, {machine['cores']} cores, {machine['memory_gib']} GiB, "
          f"Python {machine['python']}")  # fmt: skip
    for name, value in rows:
        print(f"  {name:<34} {value}")
