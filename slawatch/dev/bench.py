"""``slawatch bench``: throughput, detection delay, memory and recovery, in one run.

The input is ``--events`` N simulated events, exactly: the simulator's traffic (seed
``--seed``, 100 events/s on average over its daily profile, from a fixed start,
2026-01-05T00:00Z, no malformed messages) is generated until there are N events and the
first N in time order are kept; their timestamps are then moved, all by the same amount,
so that the last one is a minute before the moment they are produced. Same seed and N:
the same events, wherever and whenever the benchmark runs.

(a) the ceiling: a raw aiokafka consumer reading the N events from the input topics and
    decoding each with orjson, nothing else; events/s from its first fetch to its last;
(b) slawatch: one worker process (ingest, validation, timers, table writes, SLA events,
    metrics, the SLA log sink it runs by default, or not with ``--no-log-sink-in-worker``)
    started on the N events as a backlog;
    events/s from the moment it reports ready (``/readyz``) to the moment its timers have
    applied every event it validated and it has read all N
    (``slawatch_input_messages_total`` >= N and ``slawatch_timer_events_total`` >=
    ``slawatch_valid_events_total``); events per CPU-second of the worker process
    (utime + stime from ``/proc/<pid>/stat``, over the same interval), and the CPU the
    broker, Redis, this process and the rest of the machine used meanwhile.

(a) and (b) run ``--repeats`` K times, each repeat on a fresh broker (fresh topics) with
the same N events produced again, and a fresh worker (fresh app id): every repeat drains
the same backlog from zero. The figures are the medians of the repeats; (b)/(a) is the
ratio of the medians. ``--only throughput`` stops there. Otherwise, on the last repeat's
broker and worker:

(c) detection delay: with ``--open-timers`` conversations open, probe tickets whose first
    reply falls due during the run; the delay is ``detected_at - due`` of each breach;
(d) memory: the worker's resident set with the open timers, minus before, per timer;
(e) recovery: kill -9 that worker, start another, time until it holds every timer again;
(f) the time of a ``/metrics`` scrape before and with the open timers.

``--only hop`` runs (a), then, instead of (b), what the normalised topic costs against
validating in the timers' own consumer (:mod:`slawatch.dev.bench_hop`): (m) ingest's
routing in this process, (k) a Faust agent over the input topics validating each message,
(l) slawatch's ingest and a Faust agent decoding the normalised batches; CPU per event
of each.

Prints a table and writes JSON, both with the machine's load average before and after.
Numbers depend on the machine: compare within one run. SIGINT, SIGTERM or SIGHUP stops
it, and the workers, Redis and the broker with it; they also die with it if it is killed
(:mod:`slawatch.dev.processes`).
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
import urllib.error
import urllib.request
from array import array
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import islice, pairwise
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from prometheus_client.parser import text_string_to_metric_families

from slawatch.config.kafka_security import kafka_client_options
from slawatch.config.settings import Settings, load_settings
from slawatch.core.keys import ConversationKind
from slawatch.core.timestamps import format_timestamp_ms
from slawatch.dev.embedded import EmbeddedBroker, EmbeddedRedis, free_port
from slawatch.dev.processes import die_with_parent, raising_stopped
from slawatch.dev.simulator.traffic import TrafficProfile, generate_traffic
from slawatch.streams.topics import ensure_topics

#: The simulated traffic: mean events per second over the daily profile, and its start
#: (a fixed instant, so that the same seed and N give the same events at any hour).
TRAFFIC_RATE_EPS = 100.0
TRAFFIC_START = "2026-01-05T00:00:00Z"
TRAFFIC_START_MS = 1_767_571_200_000
#: The last event of the backlog is this long before it is produced.
BACKLOG_END_BEFORE_MS = 60_000

_KINDS = (ConversationKind.TICKET, ConversationKind.CHAT, ConversationKind.CALL)
_CLK_TCK = os.sysconf("SC_CLK_TCK")


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


# --- the events -----------------------------------------------------------------------


@dataclass(slots=True)
class Backlog:
    """N simulated events, compactly: kind (index into ``_KINDS``), key, value, time."""

    kinds: bytearray = field(default_factory=bytearray)
    keys: list[bytes] = field(default_factory=list)
    values: list[bytes] = field(default_factory=list)
    at_ms: array[int] = field(default_factory=lambda: array("q"))
    duration_s: float = 0.0

    def __len__(self) -> int:
        return len(self.values)

    @property
    def span_s(self) -> float:
        return (self.at_ms[-1] - self.at_ms[0]) / 1000 if self.values else 0.0

    def by_kind(self) -> dict[str, int]:
        counts = Counter(self.kinds)
        return {kind.value: counts[i] for i, kind in enumerate(_KINDS)}

    def messages(
        self, topics: Sequence[str], shift_ms: int, chunk: int = 20_000
    ) -> Iterator[list[tuple[str, bytes | None, bytes]]]:
        """The events as messages for ``topics`` (one per kind), their ``occurred_at``
        moved by ``shift_ms``, in chunks (moved as they are produced, so that a million
        events are not held twice)."""
        kinds, keys, values, at_ms = self.kinds, self.keys, self.values, self.at_ms
        for start in range(0, len(values), chunk):
            end = min(start + chunk, len(self.values))
            yield [
                (topics[kinds[i]], keys[i], _shifted(values[i], at_ms[i] + shift_ms))
                for i in range(start, end)
            ]


def _shifted(value: bytes, at_ms: int) -> bytes:
    """The event ``value`` with ``occurred_at`` set to ``at_ms``, in the form it had
    (epoch milliseconds or RFC 3339); every other byte as it was (orjson wrote it)."""
    event = orjson.loads(value)
    event["occurred_at"] = (
        at_ms if isinstance(event["occurred_at"], int) else format_timestamp_ms(at_ms)
    )
    return orjson.dumps(event)


def generate_backlog(events: int, seed: int) -> Backlog:
    """Exactly ``events`` simulated events: the first ones, in time order, of the
    simulator's traffic from ``TRAFFIC_START`` (seed ``seed``; no malformed messages).

    The traffic runs long enough for them (two days more than ten times the mean rate
    needs; doubled until it yields enough), and the generator is lazy: nothing after the
    last kept event is made. The duration is a function of ``events`` alone, so the same
    seed and N give the same events."""
    duration_s = 2 * 86_400 + events / TRAFFIC_RATE_EPS * 10
    kinds = {kind: i for i, kind in enumerate(_KINDS)}
    while True:
        backlog = Backlog(duration_s=duration_s)
        interned: dict[bytes, bytes] = {}
        traffic = generate_traffic(
            TrafficProfile(rate_eps=TRAFFIC_RATE_EPS, malformed_share=0.0),
            seed=seed,
            start_ms=TRAFFIC_START_MS,
            duration_s=duration_s,
        )
        for message in islice(traffic, events):
            backlog.kinds.append(kinds[message.kind])
            backlog.keys.append(interned.setdefault(message.key, message.key))
            # A copy of the exact size: orjson's output keeps a 4 KiB allocation whatever
            # its length (orjson 3.13), which would make a million events 4 GiB.
            backlog.values.append(bytes(memoryview(message.value)))
            backlog.at_ms.append(message.at_ms)
        if len(backlog) == events:
            return backlog
        duration_s *= 2


async def _produce(
    settings: Settings, chunks: Iterable[Sequence[tuple[str, bytes | None, bytes]]]
) -> tuple[int, float]:
    """Produce every message, as fast as the producer takes them; wait for every ack.
    Return how many and the seconds it took."""
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.bootstrap_servers,
        linger_ms=20,
        max_batch_size=512 * 1024,
        **kafka_client_options(settings),
    )
    await producer.start()
    started = time.perf_counter()
    count = 0
    try:
        for messages in chunks:
            pending = [await producer.send(topic, value, key=key) for topic, key, value in messages]
            await asyncio.gather(*pending)
            count += len(messages)
    finally:
        await producer.stop()
    return count, time.perf_counter() - started


def _chunked(
    messages: Sequence[tuple[str, bytes | None, bytes]], size: int = 20_000
) -> Iterator[Sequence[tuple[str, bytes | None, bytes]]]:
    for start in range(0, len(messages), size):
        yield messages[start : start + size]


async def _raw_ceiling(settings: Settings, expected: int, timeout_s: float) -> dict[str, float]:
    """(a) Read every input message and decode it with orjson: nothing more. Timed from
    the first fetch to the one that brings the count to ``expected``."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.bootstrap_servers,
        **kafka_client_options(settings),
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
        deadline = started + timeout_s
        while seen < expected:
            if time.perf_counter() > deadline:
                raise TimeoutError(f"(a) read {seen} of {expected} events in {timeout_s:.0f} s")
            for records in (await consumer.getmany(timeout_ms=500, max_records=10_000)).values():
                for record in records:
                    with contextlib.suppress(orjson.JSONDecodeError):
                        orjson.loads(record.value)
                seen += len(records)
        seconds = time.perf_counter() - started
        return {"events": seen, "seconds": seconds, "events_per_s": seen / seconds}
    finally:
        await consumer.stop()


async def _routing_floor(settings: Settings, expected: int, timeout_s: float) -> dict[str, float]:
    """(m) for ``--only hop``: read every input message as (a) does and route it as ingest
    does (:func:`slawatch.agents.ingest.route`: validation, the destination partition),
    in this process, nothing produced. Wall and CPU time of this process from the first
    fetch to the last."""
    from slawatch.agents.ingest import route
    from slawatch.core.clock import SystemClock
    from slawatch.schemas.validation import EventValidator
    from slawatch.streams.topics import topic_kinds

    clock = SystemClock()
    validator = EventValidator(
        max_event_bytes=settings.max_event_bytes,
        max_future_skew_ms=int(settings.max_future_skew_s * 1000),
        clock=clock,
    )
    kinds = topic_kinds(settings)
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.bootstrap_servers,
        **kafka_client_options(settings),
        group_id=None,
        enable_auto_commit=False,
        max_partition_fetch_bytes=4 * 1024 * 1024,
        fetch_max_wait_ms=settings.fetch_max_wait_ms,
    )
    await consumer.start()
    try:
        inputs = settings.input_topics
        consumer.assign([TopicPartition(t, p) for t in inputs for p in range(settings.partitions)])
        await consumer.seek_to_beginning()
        seen = valid = 0
        started, cpu_started = time.perf_counter(), time.process_time()
        deadline = started + timeout_s
        while seen < expected:
            if time.perf_counter() > deadline:
                raise TimeoutError(f"(m) read {seen} of {expected} events in {timeout_s:.0f} s")
            batch = await consumer.getmany(timeout_ms=500, max_records=settings.ingest_max_records)
            records = [record for records in batch.values() for record in records]
            routed = route(
                records,
                validator=validator,
                kinds=kinds,
                partitions=settings.partitions,
                worker="bench",
                clock=clock,
            )
            valid += sum(len(events) for events in routed.normalised.values())
            seen += len(records)
        seconds = time.perf_counter() - started
        cpu_s = time.process_time() - cpu_started
        return {
            "events": valid,
            "seconds": seconds,
            "events_per_s": valid / seconds,
            "cpu_s": cpu_s,
            "cpu_us_per_event": cpu_s / valid * 1e6,
        }
    finally:
        await consumer.stop()


def _hop_mode(settings: Settings, mode: str, events: int, repeat_dir: Path) -> dict[str, Any]:
    """Run :mod:`slawatch.dev.bench_hop` ``mode`` on the loaded backlog in a child process
    with a fresh app id; its figures, plus its CPU over its whole life."""
    settings = settings.with_overrides(
        app_id=f"{settings.app_id}-{mode}", web_port=free_port(), log_level="warning"
    )
    out = repeat_dir / f"hop-{mode}.json"
    with (repeat_dir / f"hop-{mode}.log").open("ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "slawatch.dev.bench_hop", mode, str(events), str(out)],
            env=settings.to_environment(),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            preexec_fn=die_with_parent(),
        )
        started = time.perf_counter()
        try:
            deadline = started + 600 + events / 500
            while not out.exists():
                if process.poll() is not None:
                    raise RuntimeError(
                        f"hop mode {mode} exited with {process.returncode} before it was done; "
                        f"see {log.name}"
                    )
                if time.perf_counter() > deadline:
                    raise TimeoutError(f"hop mode {mode} not done in {deadline - started:.0f} s")
                time.sleep(0.05)
            result: dict[str, Any] = json.loads(out.read_text())
            result["process_cpu_s"] = _process_cpu_s(process.pid)
            result["start_to_done_s"] = time.perf_counter() - started
        finally:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(30)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
    return result


# --- CPU accounting ------------------------------------------------------------------


def _process_cpu_s(pid: int) -> float:
    """utime + stime of process ``pid`` (every thread), in seconds."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat.rsplit(")", 1)[1].split()  # after the command name: field 3 onwards
    return (int(fields[11]) + int(fields[12])) / _CLK_TCK


def _machine_busy_s() -> float:
    """CPU-seconds the whole machine spent busy since boot (every core; not idle, not
    waiting for I/O)."""
    first = Path("/proc/stat").read_text().split("\n", 1)[0].split()
    user, nice, system, _idle, _iowait, irq, softirq, steal = map(int, first[1:9])
    return (user + nice + system + irq + softirq + steal) / _CLK_TCK


def _cpu_snapshot(pids: dict[str, int]) -> dict[str, float]:
    """CPU-seconds so far of each named process, of this one and of the machine."""
    snapshot = {name: _process_cpu_s(pid) for name, pid in pids.items()}
    snapshot["bench"] = time.process_time()
    snapshot["machine"] = _machine_busy_s()
    return snapshot


# --- the worker ------------------------------------------------------------------------


class _Worker:
    def __init__(self, settings: Settings, log: Path, log_level: str = "warning") -> None:
        env = settings.with_overrides(log_level=log_level).to_environment()
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

    @property
    def pid(self) -> int:
        return self.process.pid

    def metrics(self) -> dict[str, float]:
        """Every sample of ``/metrics``, summed over labels ({} if it does not answer)."""
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

    def _check_running(self) -> None:
        if self.process.poll() is not None:
            raise RuntimeError(f"the worker exited with {self.process.returncode}")

    def wait_ready(self, timeout_s: float, every_s: float = 0.05) -> float:
        """Wait until ``/readyz`` answers 200 (partitions held, tables recovered, policy
        read: what ``slawatch_worker_ready`` reports); return the ``perf_counter()`` of
        that answer. Polled every ``every_s``."""
        deadline = time.perf_counter() + timeout_s
        while time.perf_counter() < deadline:
            self._check_running()
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/readyz", timeout=5) as r:
                    if r.status == 200:
                        return time.perf_counter()
            except OSError:  # not listening yet, or 503: not ready
                pass
            time.sleep(every_s)
        raise TimeoutError(f"the worker was not ready within {timeout_s:.0f} s")

    def wait_for(self, name: str, at_least: float, timeout_s: float) -> float:
        """Wait until metric ``name`` reaches ``at_least``; return seconds since start."""
        deadline = time.perf_counter() + timeout_s
        while time.perf_counter() < deadline:
            self._check_running()
            if self.metrics().get(name, 0.0) >= at_least:
                return time.perf_counter() - self.started
            time.sleep(0.2)
        raise TimeoutError(f"{name} did not reach {at_least} within {timeout_s}s")

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()
        self._log.close()

    def stop(self, timeout_s: float = 60.0) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.kill()
        self._log.close()


def _counts(metrics: dict[str, float]) -> dict[str, float]:
    return {
        "read": metrics.get("slawatch_input_messages_total", 0.0),
        "valid": metrics.get("slawatch_valid_events_total", 0.0),
        "dead_lettered": metrics.get("slawatch_dead_letters_total", 0.0),
        "applied": metrics.get("slawatch_timer_events_total", 0.0),
        "sla_events": metrics.get("slawatch_sla_events_total", 0.0),
    }


#: Longest wait between two looks at the worker's counters during (b): each scrape of
#: ``/metrics`` costs the worker tens of milliseconds of CPU.
_POLL_MAX_S = 5.0
_POLL_MIN_S = 0.05


def _drain(worker: _Worker, events: int, pids: dict[str, int], timeout_s: float) -> dict[str, Any]:
    """(b) Time the worker from ready to done on a backlog of ``events`` input messages.

    Done: it has read all of them and its timers have applied every one it found valid
    (the rest, none with the benchmark's traffic, went to the dead-letter topic): the
    first scrape of ``/metrics`` that shows it, its answer's time. Each scrape costs the
    worker CPU, so the counters are read seldom (every ``_POLL_MAX_S`` at most) and more
    often as the end nears, half the time the current rate still needs each time, down
    to every ``_POLL_MIN_S``: the end is seen within a scrape or two of happening."""
    ready_at = worker.wait_ready(timeout_s=300)
    cpu_ready = _cpu_snapshot(pids)
    load_ready = os.getloadavg()
    at_ready = _counts(worker.metrics())
    samples: list[tuple[float, float]] = [(ready_at, at_ready["applied"])]
    deadline = time.perf_counter() + timeout_s
    while True:
        worker._check_running()
        counts = _counts(worker.metrics())
        now = time.perf_counter()
        if counts["read"] >= events and counts["applied"] >= counts["valid"]:
            done_at = now
            cpu_done = _cpu_snapshot(pids)
            break
        if now > deadline:
            raise TimeoutError(
                f"(b) not done after {timeout_s:.0f} s: read {counts['read']:.0f} of {events}, "
                f"applied {counts['applied']:.0f} of {counts['valid']:.0f} valid"
            )
        samples.append((now, counts["applied"]))
        (t0, n0), (t1, n1) = samples[max(0, len(samples) - 3)], samples[-1]
        rate = (n1 - n0) / (t1 - t0) if t1 > t0 and n1 > n0 else 0.0
        left = max(0.0, counts["valid"] + (events - counts["read"]) - counts["applied"])
        wait = left / rate / 2 if rate else 0.5
        time.sleep(min(_POLL_MAX_S, max(_POLL_MIN_S, wait)))
    samples.append((done_at, counts["applied"]))
    seconds = done_at - ready_at
    first_applied = next((t for t, n in samples if n > 0), done_at)
    used = {name: cpu_done[name] - cpu_ready[name] for name in cpu_ready}
    others = used["machine"] - sum(v for k, v in used.items() if k != "machine")
    rates = [
        (b[1] - a[1]) / (b[0] - a[0])
        for a, b in pairwise(samples)
        if b[0] > a[0] and a[1] > 0 and b[1] < counts["valid"]
    ]
    scrape_cpu = _scrape_cpu_s(worker)
    return {
        "events": events,
        "worker_ready_after_start_s": ready_at - worker.started,
        "worker_cpu_s_at_ready": cpu_ready["worker"],
        "at_ready": at_ready,
        "first_applied_after_ready_s": first_applied - ready_at,
        "done": counts,
        "seconds": seconds,
        "events_per_s": events / seconds,
        "start_to_done_s": done_at - worker.started,
        "events_per_s_from_start": events / (done_at - worker.started),
        "worker_cpu_s": used["worker"],
        "events_per_worker_cpu_s": events / used["worker"] if used["worker"] else float("nan"),
        "worker_cpu_us_per_event": used["worker"] / events * 1e6,
        "worker_cpu_s_since_start": cpu_done["worker"],
        "events_per_worker_cpu_s_since_start": events / cpu_done["worker"],
        "cores": {name: value / seconds for name, value in used.items()}
        | {"others": others / seconds},
        "cpu_s": used | {"others": others},
        "median_interval_events_per_s": statistics.median(rates) if rates else float("nan"),
        "scrapes": len(samples),
        "scrape_cpu_s_each": scrape_cpu,
        "scrapes_share_of_worker_cpu": len(samples) * scrape_cpu / used["worker"]
        if used["worker"]
        else float("nan"),
        "load_at_ready": list(load_ready),
    }


def _scrape_cpu_s(worker: _Worker, scrapes: int = 10) -> float:
    """Worker CPU-seconds per ``/metrics`` scrape, after the drain: the CPU of
    ``scrapes`` scrapes in a row less what the worker used meanwhile without them (its
    rate over a second before and a second after)."""
    c0 = _process_cpu_s(worker.pid)
    t0 = time.perf_counter()
    time.sleep(1.0)
    c1, t1 = _process_cpu_s(worker.pid), time.perf_counter()
    for _ in range(scrapes):
        worker.metrics()
    c2, t2 = _process_cpu_s(worker.pid), time.perf_counter()
    time.sleep(1.0)
    c3, t3 = _process_cpu_s(worker.pid), time.perf_counter()
    idle = ((c1 - c0) + (c3 - c2)) / ((t1 - t0) + (t3 - t2))
    return max(0.0, (c2 - c1) - idle * (t2 - t1)) / scrapes


async def _breach_delays(
    settings: Settings, prefix: str, count: int, timeout_s: float
) -> list[int]:
    """Detection delays (ms) of the first-reply breaches of the probe tickets."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.bootstrap_servers,
        group_id=None,
        enable_auto_commit=False,
        **kafka_client_options(settings),
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


def _median(values: Iterable[float]) -> float:
    """The median of the values that are numbers (NaN: none is)."""
    numbers = [v for v in values if v == v]
    return statistics.median(numbers) if numbers else float("nan")


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
    repeats: int = 3,
    only: str | None = None,
    seed: int = 7,
    keep_run_dir: bool = False,
    log_sink_in_worker: bool = True,
) -> int:
    """Run the measurements; print the table; write ``out`` (JSON)."""
    if events < 1 or repeats < 1:
        raise ValueError("events and repeats must be at least 1")
    with raising_stopped():
        return _run_bench(
            events=events,
            open_timers=open_timers,
            probes=probes,
            out=out,
            repeats=repeats,
            only=only,
            seed=seed,
            keep_run_dir=keep_run_dir,
            log_sink_in_worker=log_sink_in_worker,
        )


def _run_bench(
    *,
    events: int,
    open_timers: int,
    probes: int,
    out: Path,
    repeats: int,
    only: str | None,
    seed: int,
    keep_run_dir: bool,
    log_sink_in_worker: bool,
) -> int:
    run_dir = Path(tempfile.mkdtemp(prefix="slawatch-bench-"))
    results: dict[str, Any] = {
        "machine": _machine(),
        "load": {"cpus": os.cpu_count(), "before": list(os.getloadavg())},
        "params": {
            "events": events,
            "repeats": repeats,
            "only": only,
            "open_timers": None if only else open_timers,
            "probes": None if only else probes,
            "seed": seed,
            "log_sink_in_worker": log_sink_in_worker,
        },
    }
    started = time.perf_counter()
    try:
        print(f"generating {events:,} events …", flush=True)
        generated = time.perf_counter()
        backlog = generate_backlog(events, seed)
        results["traffic"] = {
            "events": len(backlog),
            "by_kind": backlog.by_kind(),
            "malformed": 0,
            "rate_eps": TRAFFIC_RATE_EPS,
            "start": TRAFFIC_START,
            "span_s": backlog.span_s,
            "generated_in_s": time.perf_counter() - generated,
            "moved_to_end_before_production_s": BACKLOG_END_BEFORE_MS / 1000,
        }
        print(
            f"generated {len(backlog):,} events ({backlog.span_s / 3600:.1f} h of simulated "
            f"traffic) in {results['traffic']['generated_in_s']:.1f} s",
            flush=True,
        )
        runs: list[dict[str, Any]] = []
        results["runs"] = runs
        with EmbeddedRedis(run_dir) as redis:
            assert isinstance(redis, EmbeddedRedis)
            for repeat in range(1, repeats + 1):
                last = repeat == repeats
                runs.append(
                    _repeat(
                        repeat,
                        backlog,
                        run_dir / f"repeat-{repeat}",
                        redis,
                        results if last and not only else None,
                        open_timers=open_timers,
                        probes=probes,
                        hop=only == "hop",
                        log_sink_in_worker=log_sink_in_worker,
                    )
                )
    finally:
        if keep_run_dir:
            print(f"logs kept in {run_dir}", flush=True)
        else:
            shutil.rmtree(run_dir, ignore_errors=True)
    results["load"]["after"] = list(os.getloadavg())
    results["seconds"] = time.perf_counter() - started
    a = statistics.median(r["a_raw"]["events_per_s"] for r in runs)
    results["a_raw_consume_decode_events_per_s"] = a
    if only == "hop":
        results["hop"] = {
            stage: {
                name: statistics.median(r[stage][name] for r in runs)
                for name in ("events_per_s", "cpu_us_per_event")
            }
            for stage in ("m_routing", "k_direct", "l_hop")
        }
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(results, indent=2) + "\n")
        _print_hop(results)
        return 0
    b_rate = statistics.median(r["b_pipeline"]["events_per_s"] for r in runs)
    results["a_raw_consume_decode_events_per_s"] = a
    results["b_pipeline"] = {
        "events": events,
        "events_per_s": b_rate,
        "events_per_worker_cpu_s": statistics.median(
            r["b_pipeline"]["events_per_worker_cpu_s"] for r in runs
        ),
        "worker_cpu_us_per_event": statistics.median(
            r["b_pipeline"]["worker_cpu_us_per_event"] for r in runs
        ),
        "median_interval_events_per_s": _median(
            r["b_pipeline"]["median_interval_events_per_s"] for r in runs
        ),
        "events_per_s_from_start": statistics.median(
            r["b_pipeline"]["events_per_s_from_start"] for r in runs
        ),
        "events_per_worker_cpu_s_since_start": statistics.median(
            r["b_pipeline"]["events_per_worker_cpu_s_since_start"] for r in runs
        ),
        "cores": {
            name: statistics.median(r["b_pipeline"]["cores"][name] for r in runs)
            for name in runs[0]["b_pipeline"]["cores"]
        },
    }
    results["b_ratio_to_ceiling"] = b_rate / a
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    _print(results)
    return 0


def _repeat(
    repeat: int,
    backlog: Backlog,
    repeat_dir: Path,
    redis: EmbeddedRedis,
    rest: dict[str, Any] | None,
    *,
    open_timers: int,
    probes: int,
    hop: bool = False,
    log_sink_in_worker: bool = True,
) -> dict[str, Any]:
    """One repeat of (a) and (b) on a fresh broker; then, if ``rest`` is given, (c) to (f)
    on the same broker and worker, into ``rest``. With ``hop``, (a) and then (m), (k) and
    (l) instead of (b)."""
    events = len(backlog)
    result: dict[str, Any] = {"repeat": repeat, "load_before": list(os.getloadavg())}
    with EmbeddedBroker(repeat_dir) as broker:
        assert isinstance(broker, EmbeddedBroker) and broker.process is not None
        settings = load_settings(
            None,
            environ={},
            broker_url=broker.url,
            redis_url=redis.url,
            web_port=free_port(),
            data_dir=repeat_dir / "data",
            app_id=f"bench-{repeat}",
            worker_id=f"bench-worker-{repeat}",
            log_sink_in_worker=log_sink_in_worker,
        )
        asyncio.run(ensure_topics(settings))
        topics = [settings.topic_tickets, settings.topic_chats, settings.topic_calls]
        shift_ms = _now_ms() - BACKLOG_END_BEFORE_MS - backlog.at_ms[-1]
        loaded, seconds = asyncio.run(_produce(settings, backlog.messages(topics, shift_ms)))
        result["loaded"] = {"events": loaded, "seconds": seconds, "events_per_s": loaded / seconds}
        print(
            f"[{repeat}] loaded {loaded:,} events in {seconds:.1f} s; (a) raw ceiling …",
            flush=True,
        )
        result["a_raw"] = asyncio.run(_raw_ceiling(settings, events, timeout_s=600 + events / 1000))
        print(
            f"[{repeat}] (a) {result['a_raw']['events_per_s']:,.0f} events/s; "
            + ("(m), (k), (l) …" if hop else f"(b) a worker on the {events:,}-event backlog …"),
            flush=True,
        )
        if hop:
            result["m_routing"] = asyncio.run(
                _routing_floor(settings, events, timeout_s=600 + events / 1000)
            )
            for stage, mode in (("k_direct", "direct"), ("l_hop", "hop")):
                result[stage] = _hop_mode(settings, mode, events, repeat_dir)
            print(
                f"[{repeat}] (m) routing alone "
                f"{result['m_routing']['cpu_us_per_event']:.1f} µs CPU/event; (k) direct "
                f"{result['k_direct']['events_per_s']:,.0f} events/s, "
                f"{result['k_direct']['cpu_us_per_event']:.1f} µs; (l) hop "
                f"{result['l_hop']['events_per_s']:,.0f} events/s, "
                f"{result['l_hop']['cpu_us_per_event']:.1f} µs",
                flush=True,
            )
            return result
        worker = _Worker(settings, repeat_dir / "worker.log")
        try:
            pids = {"worker": worker.pid, "broker": broker.process.pid}
            if redis.process is not None:
                pids["redis"] = redis.process.pid
            b = _drain(worker, events, pids, timeout_s=600 + events / 100)
            result["b_pipeline"] = b
            result["b_ratio_to_a"] = b["events_per_s"] / result["a_raw"]["events_per_s"]
            print(
                f"[{repeat}] (b) {b['events_per_s']:,.0f} events/s ready→done "
                f"({b['seconds']:.1f} s), {b['events_per_worker_cpu_s']:,.0f} events per "
                f"worker CPU-second; broker {b['cores']['broker']:.2f} cores",
                flush=True,
            )
            if rest is not None:
                _detection_memory_recovery(
                    settings, worker, repeat_dir, b["done"]["applied"], rest,
                    open_timers=open_timers, probes=probes,
                )  # fmt: skip
        finally:
            if worker.process.poll() is None:
                worker.stop(timeout_s=20)
    return result


def _detection_memory_recovery(
    settings: Settings,
    worker: _Worker,
    repeat_dir: Path,
    applied: float,
    results: dict[str, Any],
    *,
    open_timers: int,
    probes: int,
) -> None:
    """(c) detection delay, (d) memory, (e) recovery and (f) scrape, with the worker that
    has applied ``applied`` events of the backlog; the figures go into ``results``."""
    try:
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
        asyncio.run(_produce(settings, _chunked(opened)))
        del opened
        loaded_s = worker.wait_for(
            "slawatch_timer_events_total", applied + open_timers, timeout_s=3600
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
        asyncio.run(_produce(settings, _chunked(probe_events)))
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
    second = _Worker(settings, repeat_dir / "worker-2.log")
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


def _print(r: dict[str, Any]) -> None:
    n = r["params"]["events"]
    runs = r["runs"]
    b = r["b_pipeline"]
    load, machine = r["load"], r["machine"]

    def each(get: Any, fmt: str = "{:,.0f}") -> str:
        return " / ".join(fmt.format(get(run)) for run in runs)

    def loadavg(values: list[float]) -> str:
        return "/".join(f"{v:.2f}" for v in values)

    k = len(runs)
    of = f"median of {k}" if k > 1 else "1 run"
    rows = [
        (f"(a) raw consume + decode, {n:,} events",
         f"{r['a_raw_consume_decode_events_per_s']:,.0f} events/s ({of}: "
         f"{each(lambda x: x['a_raw']['events_per_s'])})"),
        (f"(b) slawatch, 1 worker, {n:,} events",
         f"{b['events_per_s']:,.0f} events/s ready -> all applied ({of}: "
         f"{each(lambda x: x['b_pipeline']['events_per_s'])}; "
         f"{each(lambda x: x['b_pipeline']['seconds'], '{:.1f}')} s); "
         f"(b)/(a) {r['b_ratio_to_ceiling']:.1%}"),
        ("    per worker CPU-second",
         f"{b['events_per_worker_cpu_s']:,.0f} events ({b['worker_cpu_us_per_event']:,.0f} µs "
         f"of worker CPU per event; runs "
         f"{each(lambda x: x['b_pipeline']['events_per_worker_cpu_s'])})"),
        ("    CPU during (b), cores",
         f"worker {b['cores']['worker']:.2f}, broker {b['cores']['broker']:.2f}, redis "
         f"{b['cores'].get('redis', 0.0):.2f}, bench {b['cores']['bench']:.2f}, others "
         f"{b['cores']['others']:.2f}; machine busy {b['cores']['machine']:.2f} of "
         f"{load['cpus']} (medians)"),
        ("    from the worker's start instead",
         f"{b['events_per_s_from_start']:,.0f} events/s, "
         f"{b['events_per_worker_cpu_s_since_start']:,.0f} per worker CPU-second (start-up "
         f"included; runs "
         f"{each(lambda x: x['b_pipeline']['events_per_s_from_start'])})"),
        ("    at ready",
         f"ingest had read {each(lambda x: x['b_pipeline']['at_ready']['read'])} events, "
         f"timers applied {each(lambda x: x['b_pipeline']['at_ready']['applied'])}; first "
         f"applied {each(lambda x: x['b_pipeline']['first_applied_after_ready_s'], '{:.1f}')} s "
         f"after ready"),
        ("    median of polling intervals", f"{b['median_interval_events_per_s']:,.0f} events/s"
         if b["median_interval_events_per_s"] == b["median_interval_events_per_s"] else "n/a"),
        ("    scrapes of /metrics during (b)",
         f"{each(lambda x: x['b_pipeline']['scrapes'])}; about "
         f"{each(lambda x: x['b_pipeline']['scrape_cpu_s_each'] * 1000)} ms of worker CPU each, "
         f"{each(lambda x: x['b_pipeline']['scrapes_share_of_worker_cpu'], '{:.1%}')} of its "
         f"CPU in (b)"),
        ("    read = applied + dead-lettered",
         each(lambda x: "{:,.0f} = {:,.0f} + {:,.0f}".format(
             x["b_pipeline"]["done"]["read"], x["b_pipeline"]["done"]["applied"],
             x["b_pipeline"]["done"]["dead_lettered"]), "{}").replace(" / ", "; ")),
    ]  # fmt: skip
    if "c_detection_delay_ms" in r:
        c, d, e = r["c_detection_delay_ms"], r["d_memory"], r["e_recovery"]
        f = r["f_metrics_scrape"]
        rows += [
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
    print(f"\nmachine: {machine['cpu']}, {machine['cores']} cores, {machine['memory_gib']} GiB, "
          f"Python {machine['python']}; load average (1/5/15 min) {loadavg(load['before'])} "
          f"before, {loadavg(load['after'])} after")  # fmt: skip
    print(f"{n:,} events ({r['traffic']['span_s'] / 3600:.1f} h of simulated traffic, seed "
          f"{r['params']['seed']}, none malformed), {k} repeat{'s' if k > 1 else ''}, log sink "
          f"{'in' if r['params']['log_sink_in_worker'] else 'not in'} the worker, "
          f"{r['seconds']:.0f} s in all")  # fmt: skip
    for name, value in rows:
        print(f"  {name:<42} {value}")


def _print_hop(r: dict[str, Any]) -> None:
    n = r["params"]["events"]
    runs, hop = r["runs"], r["hop"]
    load, machine = r["load"], r["machine"]
    k = len(runs)
    of = f"median of {k}" if k > 1 else "1 run"

    def each(stage: str, name: str, fmt: str) -> str:
        return " / ".join(fmt.format(run[stage][name]) for run in runs)

    def loadavg(values: list[float]) -> str:
        return "/".join(f"{v:.2f}" for v in values)

    print(f"\nmachine: {machine['cpu']}, {machine['cores']} cores, {machine['memory_gib']} GiB, "
          f"Python {machine['python']}; load average (1/5/15 min) {loadavg(load['before'])} "
          f"before, {loadavg(load['after'])} after")  # fmt: skip
    print(f"{n:,} events, {k} repeat{'s' if k > 1 else ''}, {r['seconds']:.0f} s in all; "
          "CPU is the process's, every thread, first input record to last event taken")  # fmt: skip
    rows = [
        ("(a) raw consume + decode",
         f"{r['a_raw_consume_decode_events_per_s']:,.0f} events/s ({of})"),
        ("(m) raw consume + ingest's routing",
         f"{hop['m_routing']['cpu_us_per_event']:.1f} µs CPU/event, "
         f"{hop['m_routing']['events_per_s']:,.0f} events/s "
         f"(runs {each('m_routing', 'cpu_us_per_event', '{:.1f}')} µs)"),
        ("(k) Faust agent on the inputs, validating",
         f"{hop['k_direct']['cpu_us_per_event']:.1f} µs CPU/event, "
         f"{hop['k_direct']['events_per_s']:,.0f} events/s "
         f"(runs {each('k_direct', 'cpu_us_per_event', '{:.1f}')} µs)"),
        ("(l) ingest + normalised + decoding agent",
         f"{hop['l_hop']['cpu_us_per_event']:.1f} µs CPU/event, "
         f"{hop['l_hop']['events_per_s']:,.0f} events/s "
         f"(runs {each('l_hop', 'cpu_us_per_event', '{:.1f}')} µs)"),
        ("    the hop: (l) - (m)",
         f"{hop['l_hop']['cpu_us_per_event'] - hop['m_routing']['cpu_us_per_event']:.1f} µs "
         f"CPU/event"),
        ("    (k) / (l) CPU per event",
         f"{hop['k_direct']['cpu_us_per_event'] / hop['l_hop']['cpu_us_per_event']:.2f}"),
    ]  # fmt: skip
    for name, value in rows:
        print(f"  {name:<42} {value}")
