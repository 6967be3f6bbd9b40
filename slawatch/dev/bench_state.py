"""``slawatch bench-state``: the SLA state over a simulated month, with and without the
state retention (no broker).

(n) ``--days`` of the simulator's traffic at a constant ``--rate`` (its daily profile, the
    same every day), validated as ingest validates it, run through the worker's tick and
    table store (:class:`~slawatch.core.scheduler.PartitionScheduler` over
    :class:`~slawatch.storage.table_store.TableStore`, one normalised partition, one tick
    per minute of event time with the watermark at its end), twice, each in a process of
    its own: with ``--retention-s`` and with none (every state kept, as before the
    retention existed: the baseline of the same run). At the end of each simulated day
    it records:

    - the states the table holds, and their bytes (keys and values);
    - the state changelog as compaction leaves it: the newest record of each key, and
      the tombstones younger than Kafka's ``delete.retention.ms`` (a day, its default);
      and the bytes written to it that day;
    - the process's resident memory (RSS).

Flat with the retention means: after the first ``retention`` days, each day's figures stay
within a few per cent of the day before, while the baseline's grow by a day's
conversations every day. Prints a table and writes JSON.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from slawatch.core.clock import ManualClock
from slawatch.core.events import InputEvent
from slawatch.core.scheduler import PartitionScheduler
from slawatch.core.timestamps import parse_timestamp_ms
from slawatch.dev.bench import _machine
from slawatch.dev.simulator.traffic import TrafficProfile, generate_traffic
from slawatch.policy import load_policy
from slawatch.schemas.validation import EventValidator, Rejection
from slawatch.storage.table_store import TableStore

EXAMPLE_POLICY = Path(__file__).resolve().parents[2] / "examples" / "policy.yaml"
#: A Monday, 00:00 UTC.
START = "2026-11-02T00:00:00Z"
DAY_MS = 86_400_000
MINUTE_MS = 60_000
#: Kafka's default ``delete.retention.ms``: how long compaction keeps a tombstone.
TOMBSTONE_RETENTION_MS = DAY_MS
_PAGE = os.sysconf("SC_PAGE_SIZE")


class _Table:
    """A table's local data, as the worker's memory store holds it: bytes to bytes."""

    def __init__(self) -> None:
        self.data: dict[bytes, bytes] = {}


def _rss_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * _PAGE


def _minutes(days: int, rate: float, seed: int) -> Iterator[tuple[int, list[InputEvent]]]:
    """(end of the minute, its valid events), minute after minute of event time."""
    start_ms = parse_timestamp_ms(START)
    end_ms = start_ms + days * DAY_MS
    validator = EventValidator(
        max_event_bytes=1 << 20, max_future_skew_ms=0, clock=ManualClock(end_ms)
    )
    messages = generate_traffic(
        TrafficProfile(rate_eps=rate), seed=seed, start_ms=start_ms, duration_s=days * 86400
    )
    minute_end = start_ms + MINUTE_MS
    batch: list[InputEvent] = []
    for message in messages:
        while message.at_ms >= minute_end:
            yield minute_end, batch
            batch, minute_end = [], minute_end + MINUTE_MS
        event = validator.validate(message.value, None)
        if not isinstance(event, Rejection):
            batch.append(event)
    while minute_end <= end_ms:
        yield minute_end, batch
        batch, minute_end = [], minute_end + MINUTE_MS


def _run(days: int, rate: float, seed: int, retention_ms: int | None) -> list[dict[str, Any]]:
    """One variant: the month minute by minute; a row per simulated day."""
    policy = load_policy(EXAMPLE_POLICY)
    table = _Table()
    store = TableStore(table, 0, 1)
    scheduler = PartitionScheduler(store, retention_ms=retention_ms)
    #: The changelog as compaction leaves it: key -> (bytes of the newest record, or None
    #: for a tombstone, and when the tombstone was written).
    newest: dict[bytes, int] = {}
    tombstones: dict[bytes, int] = {}
    start_ms = parse_timestamp_ms(START)
    rows: list[dict[str, Any]] = []
    events = expired = written = 0
    started = time.perf_counter()
    for minute_end, batch in _minutes(days, rate, seed):
        tick = scheduler.tick(batch, minute_end, policy, minute_end)
        for key, state, deadline_ms in tick.persist:
            store.put(key, state, deadline_ms)
        for key in tick.expired:
            store.remove(key)
        events += len(batch)
        expired += len(tick.expired)
        for raw_key, value in store.take_changes():
            written += len(raw_key) + (len(value) if value is not None else 0)
            if value is None:
                newest.pop(raw_key, None)
                tombstones[raw_key] = minute_end
            else:
                newest[raw_key] = len(raw_key) + len(value)
                tombstones.pop(raw_key, None)
        if (minute_end - start_ms) % DAY_MS == 0:
            for raw_key in [k for k, at in tombstones.items()
                            if at <= minute_end - TOMBSTONE_RETENTION_MS]:  # fmt: skip
                del tombstones[raw_key]
            rows.append({
                "day": (minute_end - start_ms) // DAY_MS,
                "events": events,
                "states": len(table.data),
                "state_bytes": sum(len(k) + len(v) for k, v in table.data.items()),
                "queue_entries": len(scheduler),
                "expired": expired,
                "changelog_records": len(newest) + len(tombstones),
                "changelog_bytes": sum(newest.values()) + sum(len(k) for k in tombstones),
                "changelog_written_bytes": written,
                "rss_bytes": _rss_bytes(),
                "seconds": time.perf_counter() - started,
            })  # fmt: skip
            written = 0
    return rows


def _child(args: tuple[int, float, int, int | None]) -> list[dict[str, Any]]:
    return _run(*args)


def run_state_bench(*, days: int, rate: float, retention_s: float, seed: int, out: Path) -> int:
    retention_ms = int(retention_s * 1000)
    results: dict[str, Any] = {
        "machine": _machine(),
        "params": {"days": days, "rate_eps": rate, "retention_s": retention_s, "seed": seed},
    }
    # A fresh process per variant: each RSS is its own, not what the other left behind.
    context = multiprocessing.get_context("fork")
    for name, retention in (("retention", retention_ms), ("baseline_no_retention", None)):
        with context.Pool(1) as pool:
            rows = pool.map(_child, [(days, rate, seed, retention)])[0]
        results[name] = rows
        label = f"retention {retention_s:,.0f} s" if retention else "no retention (baseline)"
        print(f"(n) {label}: {rows[-1]['events']:,} events in {rows[-1]['seconds']:.0f} s",
              flush=True)  # fmt: skip
        print("    day   states  state MiB  changelog records  changelog MiB  written MiB/day"
              "  RSS MiB")  # fmt: skip
        for row in rows:
            print(f"    {row['day']:>3} {row['states']:>8,} {row['state_bytes'] / 2**20:>10.1f} "
                  f"{row['changelog_records']:>18,} {row['changelog_bytes'] / 2**20:>14.1f} "
                  f"{row['changelog_written_bytes'] / 2**20:>16.1f} "
                  f"{row['rss_bytes'] / 2**20:>8.0f}", flush=True)  # fmt: skip
    kept, base = results["retention"][-1], results["baseline_no_retention"][-1]
    results["last_day_ratio_to_baseline"] = {
        "states": kept["states"] / base["states"],
        "changelog_bytes": kept["changelog_bytes"] / base["changelog_bytes"],
        "rss_bytes": kept["rss_bytes"] / base["rss_bytes"],
    }
    print(
        "    last day, retention / baseline: "
        + ", ".join(f"{k} {v:.2f}" for k, v in results["last_day_ratio_to_baseline"].items())
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    print(f"results written to {out}")
    return 0
