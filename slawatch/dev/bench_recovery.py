"""``slawatch bench-recovery``: how long a worker holding N open timers takes to come back.

For each ``--store`` (default ``memory://`` and ``rocksdb://``), on a fresh embedded broker
with ``--partitions`` partitions:

(r) restart: a worker opens ``--timers`` N timers (N ``ticket.created``, low priority: the
    first reply due in 8 hours), is killed with kill -9 and started again on the same
    data directory (its own disk). Seconds from its start to ready (``/readyz``) and to
    every timer queued (``slawatch_timer_queue_entries`` >= N); the state changelog
    records its recovery read (Faust's recovery tables in its log: where reading started
    against the end); the time its partitions' first messages spent rebuilding their
    timer queues (its log: "rebuilt in").
(f) failover: a second worker joins the first, which keeps running, on its own data
    directory (``SLAWATCH_TABLE_STANDBY_REPLICAS`` ``--standby-replicas``, 1 by default:
    each keeps a standby copy of the other's partitions). Once the group is settled (both
    ready) and, with standbys, the second's standby copies have caught up
    (``slawatch_state_changelog_behind{copy="standby"}`` 0), the first is killed with
    kill -9: seconds from the kill to the second holding every timer queued; the changelog
    records its recovery read, and its rebuild times.

The session timeout (``SLAWATCH_BROKER_SESSION_TIMEOUT_S``, 3 s by default here) is part of
(f): the group notices a dead worker only when its session expires.

Prints a table and writes JSON with the machine's load before and after. Numbers depend on
the machine: compare within one run.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson

from slawatch.config.settings import load_settings
from slawatch.dev.bench import _chunked, _machine, _now_ms, _produce, _Worker
from slawatch.dev.embedded import EmbeddedBroker, EmbeddedRedis, free_port
from slawatch.dev.processes import raising_stopped
from slawatch.streams.topics import ensure_topics

#: Faust's recovery tables in a worker's log (INFO): rows "| topic | partition | offset |".
_ROW = re.compile(r"^\|\s*\S+\s*\|\s*(\d+)\s*\|\s*(-?\d+)\s*\|\s*$")
_REBUILT = re.compile(r"partition \d+: (\d+) timers, .* rebuilt in ([0-9.]+)s")


def run_recovery_bench(
    *,
    timers: int,
    stores: list[str],
    partitions: int,
    out: Path,
    standby_replicas: int = 1,
    keep_run_dir: bool = False,
) -> int:
    """Run (r) and (f) for each store; print the table; write ``out`` (JSON)."""
    if timers < 1 or partitions < 2 or standby_replicas < 0:
        raise ValueError(
            "--timers must be at least 1, --partitions at least 2, --standby-replicas 0 or more"
        )
    with raising_stopped():
        run_dir = Path(tempfile.mkdtemp(prefix="slawatch-bench-recovery-"))
        results: dict[str, Any] = {
            "machine": _machine(),
            "load": {"cpus": os.cpu_count(), "before": list(os.getloadavg())},
            "params": {
                "timers": timers,
                "stores": stores,
                "partitions": partitions,
                "standby_replicas": standby_replicas,
            },
            "stores": {},
        }
        try:
            with EmbeddedRedis(run_dir) as redis:
                assert isinstance(redis, EmbeddedRedis)
                for store in stores:
                    name = store.removesuffix("://")
                    print(f"[{name}] a worker opening {timers:,} timers …", flush=True)
                    results["stores"][store] = _one_store(
                        store, timers, partitions, standby_replicas, run_dir / name, redis.url
                    )
        finally:
            if keep_run_dir:
                print(f"logs kept in {run_dir}", flush=True)
            else:
                shutil.rmtree(run_dir, ignore_errors=True)
        results["load"]["after"] = list(os.getloadavg())
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    _print(results)
    return 0


def _one_store(
    store: str, timers: int, partitions: int, standby_replicas: int, run_dir: Path, redis_url: str
) -> dict:
    with EmbeddedBroker(run_dir) as broker:
        assert isinstance(broker, EmbeddedBroker)
        settings = load_settings(
            None,
            environ={},
            broker_url=broker.url,
            redis_url=redis_url,
            store=store,
            partitions=partitions,
            app_id=f"bench-recovery-{store.removesuffix('://')}",
            table_standby_replicas=standby_replicas,
            log_sink_in_worker=False,
        )
        first_settings = settings.with_overrides(
            worker_id="first", web_port=free_port(), data_dir=run_dir / "first"
        )
        asyncio.run(ensure_topics(settings))
        result: dict[str, Any] = {}
        first = _Worker(first_settings, run_dir / "first.log", log_level="info")
        try:
            first.wait_ready(timeout_s=300)
            started = time.perf_counter()
            now = _now_ms()
            opened = [
                (settings.topic_tickets, f"OPEN-{i}".encode(), orjson.dumps({
                    "schema_version": 1, "event_id": f"open-{i}", "type": "ticket.created",
                    "occurred_at": now, "ticket_id": f"OPEN-{i}", "channel": "email",
                    "priority": "low"}))
                for i in range(timers)
            ]  # fmt: skip
            asyncio.run(_produce(settings, _chunked(opened)))
            del opened
            first.wait_for("slawatch_timer_queue_entries", timers, timeout_s=7200)
            result["opened_in_s"] = time.perf_counter() - started
            result["rss_bytes"] = first.rss_bytes()
            print(f"  opened in {result['opened_in_s']:.1f} s; kill -9, restart …", flush=True)
        finally:
            first.kill()

        # (r) the same worker again, on its own disk.
        again = _Worker(first_settings, run_dir / "first-again.log", log_level="info")
        try:
            ready_s = again.wait_for("slawatch_worker_ready", 1, 3600)
            queued_s = again.wait_for("slawatch_timer_queue_entries", timers, 3600)
            result["restart"] = {
                "ready_after_s": ready_s,
                "all_timers_queued_after_s": queued_s,
                **_from_log(run_dir / "first-again.log"),
            }
            print(f"  restart: ready {ready_s:.1f} s, every timer queued {queued_s:.1f} s",
                  flush=True)  # fmt: skip

            # (f) a second worker joins; once its standby copies are caught up, the first
            # is killed and the second takes every partition.
            second_settings = settings.with_overrides(
                worker_id="second", web_port=free_port(), data_dir=run_dir / "second"
            )
            second = _Worker(second_settings, run_dir / "second.log", log_level="info")
            try:
                joined = time.perf_counter()
                second.wait_ready(timeout_s=3600)
                again.wait_ready(timeout_s=3600)
                if standby_replicas:
                    _wait_standby(second, run_dir / "second.log", timeout_s=3600)
                    result["standby_caught_up_after_join_s"] = time.perf_counter() - joined
                    print(f"  second worker's standby copies caught up after "
                          f"{result['standby_caught_up_after_join_s']:.1f} s; kill -9 the first",
                          flush=True)  # fmt: skip
                else:
                    print("  both workers ready (no standby copies); kill -9 the first",
                          flush=True)  # fmt: skip
                log_mark = (run_dir / "second.log").stat().st_size
                again.kill()
                killed = time.perf_counter()
                queued = _wait_queued(second, timers, timeout_s=_FAILOVER_TIMEOUT_S)
                result["failover"] = {
                    "all_timers_queued_after_kill_s": time.perf_counter() - killed
                    if queued >= timers
                    else None,
                    "timers_queued": queued,
                    **_from_log(run_dir / "second.log", since=log_mark),
                }
                if queued >= timers:
                    print(f"  failover: every timer queued "
                          f"{result['failover']['all_timers_queued_after_kill_s']:.1f} s after "
                          f"the kill", flush=True)  # fmt: skip
                else:
                    print(f"  failover: only {queued:,} of {timers:,} timers queued "
                          f"{_FAILOVER_TIMEOUT_S:.0f} s after the kill", flush=True)  # fmt: skip
            finally:
                second.stop()
        finally:
            if again.process.poll() is None:
                again.stop()
    return result


#: How long a failover may take before the bench reports the timers it holds then.
_FAILOVER_TIMEOUT_S = 300.0


def _wait_queued(worker: _Worker, timers: int, timeout_s: float) -> int:
    """Wait until the worker has ``timers`` timers queued; the count it has then, or at
    the timeout (a failover that lost a timer never gets there)."""
    deadline = time.perf_counter() + timeout_s
    while True:
        queued = int(worker.metrics().get("slawatch_timer_queue_entries", 0.0))
        if queued >= timers or time.perf_counter() > deadline:
            return queued
        time.sleep(0.2)


def _wait_standby(worker: _Worker, log: Path, timeout_s: float) -> None:
    """Until the worker has started its standby copies (Faust logs their changelog ends)
    and reports nothing left to read, twice in a row a second apart."""
    deadline = time.perf_counter() + timeout_s
    caught_up = 0
    while caught_up < 2:
        if time.perf_counter() > deadline:
            raise TimeoutError("the standby copies did not catch up")
        started = b"Highwater - Standby" in log.read_bytes()
        behind = worker.metrics().get("slawatch_state_changelog_behind")  # active + standby
        caught_up = caught_up + 1 if started and behind == 0 else 0
        time.sleep(1.0)


def _from_log(log: Path, since: int = 0) -> dict[str, Any]:
    """From a worker's log (after byte ``since``): the changelog records its recovery
    read (each partition's end minus where reading started, from Faust's tables) and its
    partitions' timer-queue rebuilds."""
    text = log.read_bytes()[since:].decode(errors="replace")
    tables: dict[str, dict[int, int]] = {}
    for title in ("Highwater - Active", "Reading Starts At - Active"):
        at = text.find(title)
        rows: dict[int, int] = {}
        for line in text[at:].splitlines()[3:] if at >= 0 else ():
            found = _ROW.match(line.strip())
            if found is None:
                break
            rows[int(found[1])] = int(found[2])
        tables[title] = rows
    highwater, starts = tables["Highwater - Active"], tables["Reading Starts At - Active"]
    read = sum(max(0, highwater[p] - starts.get(p, -1)) for p in highwater)
    rebuilds = [(int(n), float(s)) for n, s in _REBUILT.findall(text)]
    return {
        "changelog_records_read": read,
        "partitions_rebuilt": len(rebuilds),
        "rebuild_s_total": sum(s for _, s in rebuilds),
        "rebuild_s_longest": max((s for _, s in rebuilds), default=0.0),
    }


def _print(results: dict[str, Any]) -> None:
    timers = results["params"]["timers"]
    print(f"\nrecovery of a worker holding {timers:,} open timers "
          f"({results['params']['partitions']} partitions)")  # fmt: skip
    for store, r in results["stores"].items():
        restart, failover = r["restart"], r["failover"]
        print(
            f"  {store:<12} restart: ready {restart['ready_after_s']:.1f} s, every timer "
            f"queued {restart['all_timers_queued_after_s']:.1f} s, "
            f"{restart['changelog_records_read']:,} changelog records read, rebuilds "
            f"{restart['rebuild_s_total']:.1f} s; failover: "
            + (
                f"every timer queued {failover['all_timers_queued_after_kill_s']:.1f} s "
                "after the kill, "
                if failover["all_timers_queued_after_kill_s"] is not None
                else f"only {failover['timers_queued']:,} timers queued, "
            )
            + f"{failover['changelog_records_read']:,} records read, rebuilds "
            f"{failover['rebuild_s_total']:.1f} s"
        )
    before, after = results["load"]["before"], results["load"]["after"]
    print(f"  load average before {before[0]:.2f}, after {after[0]:.2f} "
          f"({results['load']['cpus']} cpus)")  # fmt: skip
