"""``slawatch bench-scale``: events per second with 1, 2, 3 … workers on the same backlog.

For each count W of ``--workers`` (default 1, 2 and 3) and each of ``--repeats`` K
repeats, on a fresh embedded broker whose topics have ``--partitions`` P partitions:

- the same ``--events`` N events as ``slawatch bench`` (same ``--seed``: the same events)
  are produced to the input topics as a backlog;
- W ``slawatch worker`` processes of one app (one consumer group, each on its own data
  directory and web port, ``SLAWATCH_TABLE_STANDBY_REPLICAS`` ``--standby-replicas``, 0 by
  default) are started at once;
- the clock starts when all W answer ``/readyz`` 200 in the same round of polls (the group
  has settled: each holds its share of the partitions, tables recovered, timers built) and
  stops at the first poll where, summed over the W workers, every input message has been
  read and every valid event applied by the timers.

Per run: events applied per second in that interval (the events applied before the clock
started are not counted: a worker that is ready first drains alone until the others
join), worker CPU per event (utime + stime of every worker process over the interval,
divided by the events applied in it), and the cores the workers, the broker, Redis and the
rest of the machine used meanwhile. Also the seconds from the workers' start to done,
which include the group's settling. The figures are the medians over the repeats; each
W's ratio is against W = 1's median of the same run.

The W values run in a rotated order in each repeat (1, 2, 3; then 2, 3, 1; then 3, 1, 2),
so that a slow spell of a shared machine does not fall on one W only.

On a machine with C cores, W workers and the broker share them: beyond C - 1 workers
(the broker needs some), adding workers cannot add throughput; what it shows is the cost
of the coordination itself (the measured figures and their reading: docs/BENCHMARKS.md,
"Scale-out").

Prints a table and writes JSON with the machine's load before and after. SIGINT, SIGTERM or
SIGHUP stops it, and the workers, Redis and the broker with it.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import statistics
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from slawatch.config.settings import load_settings
from slawatch.dev.bench import (
    BACKLOG_END_BEFORE_MS,
    Backlog,
    _counts,
    _cpu_snapshot,
    _machine,
    _now_ms,
    _produce,
    _Worker,
    generate_backlog,
)
from slawatch.dev.embedded import EmbeddedBroker, EmbeddedRedis, free_port
from slawatch.dev.processes import raising_stopped
from slawatch.streams.topics import ensure_topics

#: Seconds between two looks at the workers' counters; each scrape costs a worker some CPU.
_POLL_S = 0.5


def run_scale_bench(
    *,
    events: int,
    workers: list[int],
    partitions: int,
    repeats: int,
    standby_replicas: int,
    seed: int,
    out: Path,
    keep_run_dir: bool = False,
) -> int:
    """Run every (repeat, W); print the table; write ``out`` (JSON)."""
    if events < 1 or repeats < 1 or not workers or min(workers) < 1:
        raise ValueError("--events, --repeats and every --workers value must be at least 1")
    if partitions < max(workers):
        raise ValueError(
            f"--partitions {partitions}: fewer than {max(workers)} workers, some would hold none"
        )
    if standby_replicas < 0:
        raise ValueError("--standby-replicas must be 0 or more")
    with raising_stopped():
        run_dir = Path(tempfile.mkdtemp(prefix="slawatch-bench-scale-"))
        results: dict[str, Any] = {
            "machine": _machine(),
            "load": {"cpus": os.cpu_count(), "before": list(os.getloadavg())},
            "params": {
                "events": events,
                "workers": workers,
                "partitions": partitions,
                "repeats": repeats,
                "standby_replicas": standby_replicas,
                "seed": seed,
            },
            "runs": [],
        }
        started = time.perf_counter()
        try:
            print(f"generating {events:,} events …", flush=True)
            backlog = generate_backlog(events, seed)
            with EmbeddedRedis(run_dir) as redis:
                assert isinstance(redis, EmbeddedRedis)
                for repeat in range(1, repeats + 1):
                    shift = (repeat - 1) % len(workers)
                    for count in workers[shift:] + workers[:shift]:
                        run = _one_run(
                            backlog, count, partitions, standby_replicas, repeat,
                            run_dir / f"repeat-{repeat}-w{count}", redis,
                        )  # fmt: skip
                        results["runs"].append(run)
                        print(
                            f"[{repeat}] {count} worker(s): {run['events_per_s']:,.0f} "
                            f"events/s, {run['worker_cpu_us_per_event']:.0f} µs of worker "
                            f"CPU per event, broker {run['cores']['broker']:.2f} cores",
                            flush=True,
                        )
        finally:
            if keep_run_dir:
                print(f"logs kept in {run_dir}", flush=True)
            else:
                shutil.rmtree(run_dir, ignore_errors=True)
        results["load"]["after"] = list(os.getloadavg())
        results["seconds"] = time.perf_counter() - started
        results["by_workers"] = summarise(results["runs"], workers)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    _print(results)
    return 0


def summarise(runs: list[dict[str, Any]], workers: list[int]) -> dict[str, dict[str, float]]:
    """Per W: the medians over its runs, and its events/s as a ratio to W = the first
    value's median (1 by default)."""
    by: dict[str, dict[str, float]] = {}
    for count in workers:
        mine = [r for r in runs if r["workers"] == count]
        by[str(count)] = {
            name: statistics.median(r[name] for r in mine)
            for name in ("events_per_s", "worker_cpu_us_per_event", "start_to_done_s")
        } | {
            f"{name}_cores": statistics.median(r["cores"][name] for r in mine)
            for name in ("workers", "broker", "redis", "others")
        }
    base = by[str(workers[0])]["events_per_s"]
    for figures in by.values():
        figures["ratio_to_first"] = figures["events_per_s"] / base
    return by


def _one_run(
    backlog: Backlog,
    count: int,
    partitions: int,
    standby_replicas: int,
    repeat: int,
    run_dir: Path,
    redis: EmbeddedRedis,
) -> dict[str, Any]:
    events = len(backlog)
    with EmbeddedBroker(run_dir) as broker:
        assert isinstance(broker, EmbeddedBroker) and broker.process is not None
        settings = load_settings(
            None,
            environ={},
            broker_url=broker.url,
            redis_url=redis.url,
            partitions=partitions,
            app_id=f"bench-scale-{repeat}-{count}",
            table_standby_replicas=standby_replicas,
        )
        asyncio.run(ensure_topics(settings))
        topics = [settings.topic_tickets, settings.topic_chats, settings.topic_calls]
        shift_ms = _now_ms() - BACKLOG_END_BEFORE_MS - backlog.at_ms[-1]
        asyncio.run(_produce(settings, backlog.messages(topics, shift_ms)))
        load_before = list(os.getloadavg())
        started = time.perf_counter()
        workers = [
            _Worker(
                settings.with_overrides(
                    worker_id=f"worker-{i}", web_port=free_port(), data_dir=run_dir / f"w{i}"
                ),
                run_dir / f"worker-{i}.log",
            )
            for i in range(1, count + 1)
        ]
        try:
            return {
                "repeat": repeat,
                "workers": count,
                "load_before": load_before,
                **_drain(workers, events, broker.process.pid, redis.process, started),
            }
        finally:
            for worker in workers:
                worker.stop(timeout_s=20)


def _drain(
    workers: list[_Worker],
    events: int,
    broker_pid: int,
    redis: subprocess.Popen[bytes] | None,
    started: float,
) -> dict[str, Any]:
    """From the round of polls in which every worker answers ready to the first in which,
    summed over them, every input message is read and every valid event applied."""
    deadline = time.perf_counter() + 600 + events / 100
    while not all(_ready(w) for w in workers):
        if time.perf_counter() > deadline:
            raise TimeoutError("the workers were not all ready together")
        time.sleep(0.05)
    ready_at = time.perf_counter()
    pids = {f"worker-{i}": w.pid for i, w in enumerate(workers, 1)} | {"broker": broker_pid}
    if redis is not None:
        pids["redis"] = redis.pid
    cpu_ready = _cpu_snapshot(pids)
    at_ready = _summed(workers)
    while True:
        counts = _summed(workers)
        if counts["read"] >= events and counts["applied"] >= counts["valid"]:
            done_at = time.perf_counter()
            cpu_done = _cpu_snapshot(pids)
            break
        if time.perf_counter() > deadline:
            raise TimeoutError(
                f"not done: read {counts['read']:.0f} of {events}, applied "
                f"{counts['applied']:.0f} of {counts['valid']:.0f} valid"
            )
        time.sleep(_POLL_S)
    seconds = done_at - ready_at
    applied = counts["applied"] - at_ready["applied"]
    used = {name: cpu_done[name] - cpu_ready[name] for name in cpu_ready}
    worker_cpu = sum(v for k, v in used.items() if k.startswith("worker-"))
    others = used["machine"] - sum(v for k, v in used.items() if k != "machine")
    cores = {
        "workers": worker_cpu / seconds,
        "broker": used["broker"] / seconds,
        "redis": used.get("redis", 0.0) / seconds,
        "bench": used["bench"] / seconds,
        "others": others / seconds,
    }
    return {
        "ready_after_start_s": ready_at - started,
        "applied_before_ready": at_ready["applied"],
        "applied_in_interval": applied,
        "seconds": seconds,
        "events_per_s": applied / seconds,
        "start_to_done_s": done_at - started,
        "worker_cpu_s": worker_cpu,
        "worker_cpu_us_per_event": worker_cpu / applied * 1e6 if applied else float("nan"),
        "per_worker_cpu_s": {k: v for k, v in used.items() if k.startswith("worker-")},
        "cores": cores,
        "done": counts,
    }


def _ready(worker: _Worker) -> bool:
    worker._check_running()
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{worker.port}/readyz", timeout=5) as r:
            return bool(r.status == 200)
    except OSError:  # not listening yet, or 503: not ready
        return False


def _summed(workers: list[_Worker]) -> dict[str, float]:
    total: dict[str, float] = {}
    for worker in workers:
        worker._check_running()
        for name, value in _counts(worker.metrics()).items():
            total[name] = total.get(name, 0.0) + value
    return total


def _print(results: dict[str, Any]) -> None:
    params = results["params"]
    print(
        f"\n{params['events']:,} events, {params['partitions']} partitions, standby replicas "
        f"{params['standby_replicas']}, medians of {params['repeats']} repeat(s)"
    )
    print("  workers  events/s  ratio  µs CPU/event  cores: workers broker redis others")
    for count, f in results["by_workers"].items():
        print(
            f"  {count:>7}  {f['events_per_s']:>8,.0f}  {f['ratio_to_first']:>5.2f}  "
            f"{f['worker_cpu_us_per_event']:>12.0f}         {f['workers_cores']:>7.2f} "
            f"{f['broker_cores']:>6.2f} {f['redis_cores']:>5.2f} {f['others_cores']:>6.2f}"
        )
    before, after = results["load"]["before"], results["load"]["after"]
    print(
        f"  load average before {before[0]:.2f}, after {after[0]:.2f} "
        f"({results['load']['cpus']} cpus); {results['seconds']:.0f} s in all"
    )
