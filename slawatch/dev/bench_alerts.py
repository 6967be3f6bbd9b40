"""``slawatch bench-alerts``: the notifier's routing and delivery, no broker.

On its own ``redis-server`` (:class:`~slawatch.dev.embedded.EmbeddedRedis`) and a
:class:`~slawatch.dev.receiver.LocalReceiver`, with a routing file of one route and one
signed webhook receiver (``rate_per_minute: 1000000``, so its rate limit never holds
anything back), ``alerts`` SLA event records, each the breach of a cycle of its own, so
each routes to exactly one notification. Per run:

(h) baseline: ``escalation.plan(routing, None, record, now)`` for every record, in
    memory: the cost of routing alone (no Redis, no alert state read or written);
(i) routed with deduplication: the same records through ``Notifier.plan_records`` in
    batches of ``batch`` (read the batch's alert states, plan, write the states and the
    notifications with one Lua script), with no delivery running: the notifier's plan step,
    less Kafka (no ``sla-events`` consumption, decoding or offset commits);
(j) live: the same records again on fresh keys, fed at ``rate`` alerts a second (in
    chunks every 100 ms, as a consumer polls; 0: the ``batch`` es back to back, a burst)
    while the notifier's delivery loop for the receiver runs in the same event loop, as
    in a live notifier. Each record's ``detected_at`` is the wall clock when its chunk is
    handed to ``plan_records``; a notification's delay is the receiver's
    ``received_at_ms`` minus that. A burst measures how fast the outbox drains (its
    delay is the time to drain it); a rate below the delivery throughput measures the
    delay a live notifier shows. Every delivery is counted by its ``Idempotency-Key``:
    all ``alerts`` must arrive, each once.

Each run uses fresh app ids (fresh Redis keys). Each figure is the median of ``runs``
runs. Prints a table (with the machine's load before and after) and writes JSON; the
exit code is 0 whether the targets are met or not.

The notifier and the receiver share one process (the receiver serves from a thread), so
the receiver's work is on the notifier's interpreter lock: the delivery figures are a
floor for a notifier delivering to a receiver elsewhere.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import statistics
import tempfile
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from slawatch.core.timestamps import format_timestamp_ms, parse_timestamp_ms
from slawatch.errors import SlawatchError

if TYPE_CHECKING:  # the notifier's imports take most of a second: not at CLI start
    from slawatch.alerting.config import RoutingConfig
    from slawatch.alerting.notifier import Notifier
    from slawatch.config.settings import Settings
    from slawatch.dev.receiver import LocalReceiver
    from slawatch.schemas.sla_events import SlaEventRecord

#: The issue's targets.
TARGET_ROUTED_PER_S = 5_000.0
TARGET_P99_MS = 1_000.0
#: The webhook receiver's name, its secret (it signs; the receiver verifies) and rate.
RECEIVER = "hook"
SECRET = "bench-alerts-secret-not-a-real-one"
RATE_PER_MINUTE = 1_000_000
#: Stop waiting for deliveries when none arrived for this long.
STALL_S = 30.0

Batch = list[tuple[int, "SlaEventRecord"]]


def _wall_ms() -> int:
    return time.time_ns() // 1_000_000


def _percentile(values: Sequence[int], q: float) -> float:
    """The ``q`` quantile of sorted ``values`` (nearest rank, as ``slawatch bench``)."""
    if not values:
        return float("nan")
    return float(values[min(len(values) - 1, int(q * len(values)))])


def _routing_file(folder: Path, url: str) -> Path:
    (folder / "hook.secret").write_text(SECRET + "\n")
    path = folder / "routing.yaml"
    path.write_text(
        f"""\
receivers:
  {RECEIVER}:
    type: webhook
    url: {url}
    secret: {{file: hook.secret}}
    rate_per_minute: {RATE_PER_MINUTE}
routes:
  - name: bench
    escalation:
      - {{on: breached, to: [{RECEIVER}]}}
"""
    )
    return path


def _records(tag: str, count: int, partitions: int) -> list[tuple[int, SlaEventRecord]]:
    """``count`` breaches, each of a cycle of its own, with their ``sla-events`` partition."""
    from slawatch.schemas.sla_events import SlaEventRecord

    due_ms = _wall_ms()
    due = format_timestamp_ms(due_ms)
    common: dict[str, Any] = {
        "schema_version": 1,
        "kind": "breached",
        "metric": "first_reply",
        "cycle": 1,
        "conversation_kind": "ticket",
        "tenant": "bench",
        "channel": "email",
        "priority": "high",
        "department": "billing",
        "assignee": "dana",
        "level": "high",
        "policy_version": "bench",
        "target_s": 3600.0,
        "started_at": format_timestamp_ms(due_ms - 3_600_000),
        "due_at": due,
        "at_risk_at": format_timestamp_ms(due_ms - 900_000),
        "at": due,
        "elapsed_s": 3600.0,
        "detected_at": due,  # stamped again when its batch is handed over (_stamp)
        "detection_delay_ms": 0,
        "late": False,
    }
    out = []
    for i in range(count):
        conversation_id = f"{tag}-{i}"
        key = f"ticket:bench:{conversation_id}"
        record = SlaEventRecord(
            **common,
            event_id=f"{key}|first_reply|1|breached",
            conversation_key=key,
            conversation_id=conversation_id,
        )
        out.append((i % partitions, record))
    return out


def _batches(records: list[tuple[int, SlaEventRecord]], size: int) -> list[Batch]:
    return [records[i : i + size] for i in range(0, len(records), size)]


def _stamp(batch: Batch) -> int:
    """Set ``detected_at`` of the batch's records to the wall clock, now; return it (ms).

    The records are frozen; they are built before the run so that building them is in no
    figure, and only this field is written at hand-over time (the records are the
    benchmark's own: nothing else holds them yet)."""
    now_ms = _wall_ms()
    stamp = format_timestamp_ms(now_ms)
    for _, record in batch:
        object.__setattr__(record, "detected_at", stamp)
    return now_ms


def _notifier(settings: Settings, routing: RoutingConfig) -> Notifier:
    """A notifier that is never started: the benchmark calls its steps."""
    from prometheus_client import CollectorRegistry

    from slawatch.alerting.metrics import NotifierMetrics
    from slawatch.alerting.notifier import Notifier
    from slawatch.core.clock import SystemClock

    notifier = Notifier(settings, routing, NotifierMetrics(CollectorRegistry()), SystemClock())
    notifier.connect_redis()
    notifier.build_senders()
    return notifier


async def _close(notifier: Notifier) -> None:
    for sender in notifier.senders.values():
        await sender.close()
    await notifier.close_redis()


async def _waiting(notifier: Notifier) -> int:
    store = notifier.store
    assert store is not None
    return (await store.waiting([RECEIVER]))[RECEIVER]


def _baseline(routing: RoutingConfig, batches: list[Batch]) -> float:
    """(h) Seconds to plan every record in memory, without alert states."""
    from slawatch.alerting.escalation import plan

    elapsed = 0.0
    planned = 0
    for batch in batches:
        _stamp(batch)
        now_ms = _wall_ms()
        started = time.perf_counter()
        for _, record in batch:
            planned += len(plan(routing, None, record, now_ms).notifications)
        elapsed += time.perf_counter() - started
    expected = sum(len(b) for b in batches)
    if planned != expected:
        raise RuntimeError(f"the routing planned {planned} notifications, not {expected}")
    return elapsed


async def _feed(notifier: Notifier, batches: list[Batch], rate: float = 0.0) -> tuple[float, int]:
    """Hand every batch to ``plan_records`` (at ``rate`` records a second when it is
    above 0); the seconds spent in it, and the wall clock (ms) of the first hand-over."""
    elapsed = 0.0
    first_ms: int | None = None
    started_at = time.monotonic()
    fed = 0
    for batch in batches:
        if rate > 0:  # wait for this chunk's turn
            await asyncio.sleep(max(0.0, started_at + fed / rate - time.monotonic()))
            fed += len(batch)
        handed_ms = _stamp(batch)
        if first_ms is None:
            first_ms = handed_ms
        started = time.perf_counter()
        await notifier.plan_records(batch)
        elapsed += time.perf_counter() - started
    assert first_ms is not None
    return elapsed, first_ms


async def _routed(settings: Settings, routing: RoutingConfig, batches: list[Batch]) -> float:
    """(i) Seconds in ``plan_records`` for every batch, nothing delivering."""
    notifier = _notifier(settings, routing)
    try:
        elapsed, _ = await _feed(notifier, batches)
        queued = await _waiting(notifier)
    finally:
        await _close(notifier)
    expected = sum(len(b) for b in batches)
    if queued != expected:
        raise RuntimeError(f"{queued} notifications queued in Redis, not {expected}")
    return elapsed


async def _live(
    settings: Settings,
    routing: RoutingConfig,
    batches: list[Batch],
    rx: LocalReceiver,
    rate: float,
) -> dict[str, Any]:
    """(j) Feed the batches while the notifier's delivery loop runs; what arrived."""
    from slawatch.alerting.channels.webhook import IDEMPOTENCY_KEY, idempotency_key
    from slawatch.alerting.escalation import plan

    # The Idempotency-Key of every notification the records make (one each).
    expected = {
        idempotency_key(note.id)
        for batch in batches
        for _, record in batch
        for note in plan(routing, None, record, 0).notifications
    }
    count = len(expected)
    rx.clear()
    notifier = _notifier(settings, routing)
    # The deliver loop a started notifier runs for each receiver (Notifier.on_start).
    deliverer = asyncio.ensure_future(notifier._deliver_forever(RECEIVER))
    stalled = False
    try:
        if rate > 0:  # chunks of 100 ms of traffic
            records = [item for batch in batches for item in batch]
            batches = _batches(records, max(1, int(rate // 10)))
        plan_s, first_ms = await _feed(notifier, batches, rate)
        seen, changed = 0, time.monotonic()
        while seen < count:
            now = len(rx.deliveries)
            if now != seen:
                seen, changed = now, time.monotonic()
            elif time.monotonic() - changed > STALL_S:
                stalled = True
                break
            await asyncio.sleep(0.01)
        # Let the loop log what it delivered: the outbox empties.
        for _ in range(1000):  # 10 s at most
            if await _waiting(notifier) == 0:
                break
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.2)  # a duplicate in flight would arrive here
        left = await _waiting(notifier)
    finally:
        deliverer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await deliverer
        await _close(notifier)

    first_by_key: dict[str, int] = {}
    deliveries = rx.deliveries
    for delivery in deliveries:
        headers = {k.lower(): v for k, v in delivery.headers.items()}
        key = headers.get(IDEMPOTENCY_KEY.lower(), "")
        if key in first_by_key:
            continue
        detected_ms = parse_timestamp_ms(delivery.body["event"]["detected_at"])
        first_by_key[key] = delivery.received_at_ms - detected_ms
    matched = len(expected.intersection(first_by_key))
    delays = sorted(first_by_key.values())
    last_ms = max((d.received_at_ms for d in deliveries), default=first_ms)
    refused = [a for a in rx.attempts if a.outcome != "delivered"]
    return {
        "routed_per_s": count / plan_s,
        "deliveries": len(deliveries),
        "distinct": len(first_by_key),
        "matched": matched,
        "duplicates": len(deliveries) - len(first_by_key),
        "missing": count - matched,
        "not_accepted": len(refused),
        "left_in_outbox": left,
        "stalled": stalled,
        "delivered_per_s": len(first_by_key) / max((last_ms - first_ms) / 1000, 1e-3),
        "delay_ms": {
            "p50": _percentile(delays, 0.50),
            "p99": _percentile(delays, 0.99),
            "max": float(delays[-1]) if delays else float("nan"),
        },
    }


def _one_run(
    run: int,
    settings: Settings,
    routing: RoutingConfig,
    rx: LocalReceiver,
    alerts: int,
    batch: int,
    rate: float,
) -> dict[str, Any]:
    tag = uuid.uuid4().hex[:10]
    records = _records(f"r{run}-{tag}", alerts, settings.partitions)
    batches = _batches(records, batch)
    base_s = _baseline(routing, batches)
    routed_s = asyncio.run(
        _routed(settings.with_overrides(app_id=f"bench-alerts-{tag}-routed"), routing, batches)
    )
    live = asyncio.run(
        _live(
            settings.with_overrides(app_id=f"bench-alerts-{tag}-live"), routing, batches, rx, rate
        )
    )
    return {
        "baseline_per_s": alerts / base_s,
        "routed_per_s": alerts / routed_s,
        "live": live,
    }


def measure_alerts(*, alerts: int, runs: int, batch: int, rate: float = 0.0) -> dict[str, Any]:
    """Run the benchmark (see the module); the report as a JSON-serialisable dict."""
    from slawatch.alerting.config import load_routing
    from slawatch.config.settings import load_settings
    from slawatch.dev.bench import _machine
    from slawatch.dev.embedded import EmbeddedRedis
    from slawatch.dev.receiver import LocalReceiver

    if alerts < 1 or runs < 1 or batch < 1 or rate < 0:
        raise ValueError("alerts, runs and batch must be at least 1, rate at least 0")
    load_before = os.getloadavg()
    run_dir = Path(tempfile.mkdtemp(prefix="slawatch-bench-alerts-"))
    per_run: list[dict[str, Any]] = []
    try:
        with (
            EmbeddedRedis(run_dir) as redis,
            LocalReceiver(secrets={RECEIVER: SECRET}, echo=False) as rx,
        ):
            assert isinstance(redis, EmbeddedRedis) and isinstance(rx, LocalReceiver)
            routing = load_routing(_routing_file(run_dir, rx.webhook_url(RECEIVER)), env={})
            settings = load_settings(
                None,
                environ={},
                redis_url=redis.url,
                data_dir=run_dir / "data",
                app_id="bench-alerts",
                worker_id="bench-alerts",
            )
            for run in range(runs):
                result = _one_run(run, settings, routing, rx, alerts, batch, rate)
                per_run.append(result)
                live = result["live"]
                print(
                    f"run {run + 1}/{runs}: baseline {result['baseline_per_s']:,.0f}/s, "
                    f"routed {result['routed_per_s']:,.0f}/s, live routed "
                    f"{live['routed_per_s']:,.0f}/s, delivered {live['distinct']:,} at "
                    f"{live['delivered_per_s']:,.0f}/s, delay p50 {live['delay_ms']['p50']:.0f} "
                    f"ms p99 {live['delay_ms']['p99']:.0f} ms",
                    flush=True,
                )
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)
    load_after = os.getloadavg()

    def median(get: Any) -> float:
        return float(statistics.median(get(r) for r in per_run))

    routed = median(lambda r: r["routed_per_s"])
    baseline = median(lambda r: r["baseline_per_s"])
    p99 = median(lambda r: r["live"]["delay_ms"]["p99"])
    exactly_once = all(
        r["live"]["matched"] == alerts
        and r["live"]["duplicates"] == 0
        and r["live"]["distinct"] == alerts
        for r in per_run
    )
    return {
        "machine": {**_machine(), "load_before": load_before, "load_after": load_after},
        "params": {"alerts": alerts, "runs": runs, "batch": batch, "rate": rate},
        "h_baseline_no_dedup_per_s": baseline,
        "i_routed_with_dedup_per_s": routed,
        "i_ratio_to_baseline": routed / baseline,
        "j_live": {
            "routed_per_s": median(lambda r: r["live"]["routed_per_s"]),
            "delivered_per_s": median(lambda r: r["live"]["delivered_per_s"]),
            "delay_ms": {
                "p50": median(lambda r: r["live"]["delay_ms"]["p50"]),
                "p99": p99,
                "max": median(lambda r: r["live"]["delay_ms"]["max"]),
            },
            "delivered_min": min(r["live"]["distinct"] for r in per_run),
            "duplicates": sum(r["live"]["duplicates"] for r in per_run),
            "missing": sum(r["live"]["missing"] for r in per_run),
            "not_accepted": sum(r["live"]["not_accepted"] for r in per_run),
            "exactly_once": exactly_once,
        },
        "targets": {
            "routed_per_s": TARGET_ROUTED_PER_S,
            "p99_ms": TARGET_P99_MS,
            "routed_met": routed >= TARGET_ROUTED_PER_S,
            "p99_met": p99 <= TARGET_P99_MS,
        },
        "runs": per_run,
    }


def run_alerts_bench(*, alerts: int, runs: int, batch: int, rate: float, out: Path) -> int:
    """Measure, print the table, write ``out`` (JSON). 0 whether the targets are met or not."""
    from slawatch.dev.processes import raising_stopped

    print(
        f"bench-alerts: {alerts:,} SLA event records (one breached cycle each, one webhook "
        f"notification each), batches of {batch:,}, live at "
        f"{f'{rate:,.0f} alerts/s' if rate else 'once (a burst)'}, {runs} run(s) …",
        flush=True,
    )
    with raising_stopped():
        report = measure_alerts(alerts=alerts, runs=runs, batch=batch, rate=rate)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    _print(report)
    print(f"results in {out}")
    return 0


def _verdict(met: bool) -> str:
    return "met" if met else "NOT MET"


def _print(r: dict[str, Any]) -> None:
    live, targets, params = r["j_live"], r["targets"], r["params"]
    delay = live["delay_ms"]
    runs = r["runs"]

    def each(get: Any) -> str:
        return " / ".join(f"{get(x):,.0f}" for x in runs)

    rows = [
        ("(h) routing alone, no dedup (baseline)",
         f"{r['h_baseline_no_dedup_per_s']:,.0f} alerts/s", "", ""),
        ("(i) routed with Redis dedup", f"{r['i_routed_with_dedup_per_s']:,.0f} alerts/s "
         f"({r['i_ratio_to_baseline']:.3f} of (h))", f"≥ {TARGET_ROUTED_PER_S:,.0f} /s",
         _verdict(targets["routed_met"])),
        ("(j) routed while delivering", f"{live['routed_per_s']:,.0f} alerts/s", "", ""),
        ("(j) SLA event → local receiver", f"p50 {delay['p50']:,.0f} ms, p99 {delay['p99']:,.0f} "
         f"ms, max {delay['max']:,.0f} ms", f"p99 ≤ {TARGET_P99_MS:,.0f} ms",
         _verdict(targets["p99_met"])),
        ("(j) delivered", f"{live['delivered_per_s']:,.0f} /s; each once: "
         f"{'yes' if live['exactly_once'] else 'NO'} (fewest {live['delivered_min']:,} of "
         f"{params['alerts']:,}, {live['duplicates']} duplicates, {live['missing']} missing)",
         "", ""),
    ]  # fmt: skip
    m = r["machine"]
    before, after = m["load_before"], m["load_after"]
    print(f"\nmachine: {m['cpu']}, {m['cores']} cores, {m['memory_gib']} GiB, "
          f"Python {m['python']}; "
          f"load average {before[0]:.2f} {before[1]:.2f} {before[2]:.2f} before, "
          f"{after[0]:.2f} {after[1]:.2f} {after[2]:.2f} after")  # fmt: skip
    live_at = f"{params['rate']:,.0f} alerts/s" if params["rate"] else "a burst"
    print(f"{params['alerts']:,} alerts, batches of {params['batch']:,}, live phase fed at "
          f"{live_at}, median of {params['runs']} run(s)\n")  # fmt: skip
    print(f"  {'Measure':<40} {'Result':<62} {'Target':<16} Verdict")
    for name, value, target, verdict in rows:
        print(f"  {name:<40} {value:<62} {target:<16} {verdict}")
    print(f"\n  per run: (h) {each(lambda x: x['baseline_per_s'])} /s; "
          f"(i) {each(lambda x: x['routed_per_s'])} /s; "
          f"(j) p99 {each(lambda x: x['live']['delay_ms']['p99'])} ms, "
          f"delivered {each(lambda x: x['live']['delivered_per_s'])} /s")  # fmt: skip


def _count(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is not a positive whole number")
    return value


def add_bench_alerts(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    bench = commands.add_parser(
        "bench-alerts", help="measure the notifier's routing and delivery (Redis, no broker)"
    )
    bench.add_argument(
        "--alerts",
        type=_count,
        default=20_000,
        help="SLA event records, each one breached cycle: one notification to one webhook",
    )
    bench.add_argument("--runs", type=_count, default=3, help="runs per figure (median)")
    bench.add_argument(
        "--batch", type=_count, default=1_000, help="records per plan_records call (a poll)"
    )
    bench.add_argument(
        "--rate",
        type=float,
        default=300.0,
        help="alerts a second fed in the live phase (0: all at once, a burst)",
    )
    bench.add_argument("--out", type=Path, default=Path("bench-results/alerts.json"))
    bench.set_defaults(run=_run)


def _run(args: argparse.Namespace) -> int:
    if args.rate < 0:
        raise SlawatchError(f"--rate {args.rate:g}: give 0 (a burst) or a positive rate")
    return run_alerts_bench(
        alerts=args.alerts, runs=args.runs, batch=args.batch, rate=args.rate, out=args.out
    )
