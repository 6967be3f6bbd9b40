"""``slawatch chaos``: several workers on the real (embedded) broker, killed, paused, added
and removed while the simulator's traffic runs, then the ``sla-events`` topic checked
against ``slawatch replay`` of the same input.

The run:

1. the embedded broker and Redis on free loopback ports, the topics with
   ``--partitions`` partitions, ``--workers`` ``slawatch worker`` processes (as in
   production: one group, memory tables recovered from their changelogs);
2. ``--duration`` seconds of the simulator's traffic, published in real time, with every
   delay divided by ``--time-scale`` and the demo's policy (slawatch/dev/demo_policy.yaml)
   scaled the same way, so replies come before, at and after their dues within the run;
   With ``--lag``, the workers start that many seconds into the traffic: they read a
   backlog with replies in it while the traffic goes on (the input held behind);
3. meanwhile, at random moments (seeded): ``--kills`` times, kill -9 a random live worker
   and start it again 0.5-3 s later; once, pause a worker (SIGSTOP) for ``--pause``
   (0: no pause), longer than the group's session timeout, so the group moves its
   partitions away and back; once add a worker, and later stop one (SIGTERM) for good.
   A worker that stops on its own is started again, as a process supervisor would, and
   counted;
4. after the traffic: wait until every input message is read and every watermark has
   passed the end (``as of``), stop the workers, read ``sla-events`` whole;
5. replay the same lines as of that instant, and compare cycle by cycle.

What it counts (and what makes it fail, exit 1):

- **duplicate event ids** on the topic: an SLA event emitted twice;
- **lost timers**: a cycle the replay says was stopped, declared at risk or breached (by
  ``as of``), that the topic does not say so of;
- **false breaches**: a ``breached`` on the topic for a cycle whose due the replay does not
  have pass while it was open (a breach the replay has as ``missed``, or as stopped after
  its due in another way, such as a ticket closed unanswered after its first-reply due,
  counts as true);
- **retractions** (a breach declared, then proved wrong by a stop read late) are counted
  and listed, not failed: the watermark is meant to make them 0;
- **other differences** between the topic's cycle log and the replay's, field by field
  (event-time fields only: ``late`` and ``remaining_s`` say when slawatch noticed). One
  difference is counted apart and not failed: an open cycle at risk (or breached) on both
  sides whose due is later in the replay, because its clock was paused after the stream
  declared it (the stream's record keeps the due of its instant; the replay declares it
  at ``as of``).

- **a pause not noticed**: the paused worker, once resumed, must say in its log that it
  stood still and wait for the group's word before applying more (streams/membership.py);
- **two owners at once**: two worker processes applying one partition at the same time,
  from their logs ("applying from offset" to the last message applied, which the "let
  go" line gives);

And it reports the detection delay of every at-risk and breach on the topic (p50, p99,
max): from the instant to the emission, kills and rebalances included.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import re
import signal
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
from prometheus_client.parser import text_string_to_metric_families

from slawatch.config.settings import Settings, load_settings
from slawatch.core.keys import ConversationKind
from slawatch.core.timestamps import parse_written_ms
from slawatch.dev.bench import _machine
from slawatch.dev.demo import DEMO_POLICY, prepare_run_dir
from slawatch.dev.embedded import EmbeddedBroker, EmbeddedRedis, free_port
from slawatch.dev.processes import die_with_parent, raising_stopped
from slawatch.dev.simulator.output import publish
from slawatch.dev.simulator.traffic import Malformation, TrafficProfile, generate_traffic
from slawatch.errors import SlawatchError
from slawatch.policy import load_policy
from slawatch.replay.engine import replay
from slawatch.schemas.cycle_log import as_text, cycle_log
from slawatch.schemas.sla_events import SlaEventRecord
from slawatch.streams.read_back import read_back
from slawatch.streams.topics import ensure_topics

#: The fields of a cycle's log record that are event-time truth, compared with the replay.
COMPARED = (
    "conversation_kind", "conversation_id", "level", "policy_version", "target_s",
    "started_at", "due_at", "stopped_at", "at_risk_at", "breached_at", "status", "stop",
    "reason", "business_s",
)  # fmt: skip


@dataclass(frozen=True)
class ChaosPlan:
    """What to run. Times are wall-clock seconds."""

    workers: int = 3
    partitions: int = 12
    duration_s: float = 600.0
    rate_eps: float = 30.0
    kills: int = 20
    time_scale: float = 120.0
    pause_s: float = 10.0
    #: Seconds of traffic published before the workers start (the input held behind).
    lag_s: float = 0.0
    seed: int = 1
    run_dir: Path = Path(".run/chaos")
    out: Path = Path("bench-results/chaos.json")

    def check(self) -> None:
        if self.workers < 2:
            raise SlawatchError("--workers: at least 2 (one is stopped for good)")
        for name in ("partitions", "duration_s", "rate_eps", "time_scale"):
            if getattr(self, name) <= 0:
                raise SlawatchError(f"--{name.removesuffix('_s').replace('_', '-')}: must be "
                                    "greater than 0")  # fmt: skip
        if self.kills < 0:
            raise SlawatchError("--kills: must be 0 or more")
        if self.pause_s < 0:
            raise SlawatchError("--pause: must be 0 (no pause) or more")
        if not 0 <= self.lag_s < 0.5 * self.duration_s:
            raise SlawatchError("--lag: must be 0 or more, and less than half of --duration")


class _Worker:
    """One ``slawatch worker`` process slot: started, killed and started again."""

    def __init__(self, name: str, settings: Settings, log: Path) -> None:
        self.name = name
        self.settings = settings
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None
        self.retired = False  # stopped for good
        self.paused = False
        self.held_down = False  # killed by the chaos, to be started by it again

    def start(self) -> None:
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "slawatch", "worker"],
                env=self.settings.to_environment(),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                preexec_fn=die_with_parent(),
            )

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def signal(self, sig: int) -> None:
        if self.alive:
            assert self.process is not None
            self.process.send_signal(sig)

    def kill(self) -> None:
        self.signal(signal.SIGKILL)
        if self.process is not None:
            self.process.wait()
        self.paused = False

    def stop(self) -> int | None:
        if self.process is None:
            return None
        if self.paused:
            self.signal(signal.SIGCONT)
            self.paused = False
        self.signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait()

    def metrics(self) -> dict[str, float] | None:
        """Sums of this worker's metrics by name (None: not answering)."""
        url = f"http://127.0.0.1:{self.settings.web_port}/metrics"
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                text = response.read().decode()
        except (OSError, urllib.error.URLError):
            return None
        sums: dict[str, float] = {}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                sums[sample.name] = sums.get(sample.name, 0.0) + sample.value
        return sums


@dataclass
class _Log:
    """What the chaos did, in order, with times from the start of the traffic."""

    started: float = field(default_factory=time.monotonic)
    actions: list[str] = field(default_factory=list)
    counts: Counter[str] = field(default_factory=Counter)

    def say(self, what: str, counted: str | None = None) -> None:
        line = f"[{time.monotonic() - self.started:7.1f}s] {what}"
        self.actions.append(line)
        if counted:
            self.counts[counted] += 1
        print(line, flush=True)


def run_chaos(plan: ChaosPlan) -> int:
    plan.check()
    prepare_run_dir(plan.run_dir)
    with (
        raising_stopped(),
        EmbeddedBroker(plan.run_dir) as broker,
        EmbeddedRedis(plan.run_dir) as redis,
    ):
        assert isinstance(broker, EmbeddedBroker) and isinstance(redis, EmbeddedRedis)
        base = load_settings(
            broker_url=broker.url,
            redis_url=redis.url,
            partitions=plan.partitions,
            store="memory://",
            log_level="info",
        )
        print(f"broker {broker.url}, redis {redis.url}, run dir {plan.run_dir}", flush=True)
        results = asyncio.run(run_against(plan, base))
    plan.out.parent.mkdir(parents=True, exist_ok=True)
    plan.out.write_text(json.dumps(results, indent=2))
    _print_summary(results)
    print(f"results written to {plan.out}")
    return 0 if results["passed"] else 1


async def run_against(plan: ChaosPlan, base: Settings) -> dict[str, Any]:
    """The chaos run on the servers ``base`` names (topics, group and policy from it, with
    ``plan.partitions``); its results (``passed`` says whether every check held)."""
    plan.check()
    base = base.with_overrides(
        partitions=plan.partitions, sla_time_scale=plan.time_scale, policy_file=str(DEMO_POLICY)
    )
    await ensure_topics(base)
    rng = random.Random(plan.seed)
    slots = [_slot(plan, base, i) for i in range(plan.workers + 1)]  # the last: added later
    running = slots[: plan.workers]
    if not plan.lag_s:
        for worker in running:
            worker.start()
        await _wait_ready(running, timeout_s=120)
    log = _Log()
    start_ms = time.time_ns() // 1_000_000 + 1000
    profile = TrafficProfile(
        rate_eps=plan.rate_eps, time_scale=plan.time_scale, malformed_share=0.01,
        file_output=True, daily_profile=False,  # the run's size must not depend on the hour
    )  # fmt: skip
    messages = list(
        generate_traffic(profile, seed=plan.seed, start_ms=start_ms, duration_s=plan.duration_s)
    )
    topics = {
        ConversationKind.TICKET: base.topic_tickets,
        ConversationKind.CHAT: base.topic_chats,
        ConversationKind.CALL: base.topic_calls,
    }
    log.say(f"{len(messages):,} messages over {plan.duration_s:g}s on {plan.workers} workers")
    traffic = asyncio.create_task(publish(messages, settings=base, topics=topics))
    if plan.lag_s:
        # The input runs ahead: the workers start lag_s into the traffic and read a backlog
        # with replies in it while the traffic goes on.
        await asyncio.sleep(plan.lag_s)
        for worker in running:
            worker.start()
        log.say(f"{plan.workers} workers started {plan.lag_s:g}s behind the input")
        await _wait_ready(running, timeout_s=120)
    chaos = asyncio.create_task(_chaos(plan, rng, slots, log))
    supervisor = asyncio.create_task(_supervise(slots, log))
    try:
        report = await traffic
        log.say(f"traffic done: {report.summary()}")
        await chaos
    finally:
        for task in (chaos, supervisor):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    live = [w for w in slots if not w.retired and w.process is not None]
    for worker in live:
        if not worker.alive:
            worker.start()
            log.say(f"{worker.name} started again for the drain")
    as_of_ms = await _drain(live, log)
    for worker in live:
        code = worker.stop()
        if code not in (0, None):
            log.say(f"{worker.name} exited with {code} on SIGTERM")
            log.counts["bad_exits"] += 1
    records = await _read_all(base, base.topic_sla_events)
    log.say(f"read {len(records):,} SLA events; replaying the same lines as of the drain")
    policy = load_policy(DEMO_POLICY).scaled(plan.time_scale)
    lines = [m.value for m in messages if m.malformed is not Malformation.WRONG_TOPIC]
    rows, _ = replay(lines, policy, as_of_ms=as_of_ms, jobs=2)
    replayed = [as_text(r) for r in rows]
    # Both sides kept in the run dir, to compare again offline (chaos.compare).
    for name, kept in (("sla-events.jsonl", records), ("replay.jsonl", replayed)):
        (plan.run_dir / name).write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in kept))
    results = compare(records, replayed, as_of_ms)
    if not results["passed"]:
        results["diagnosis"] = await _diagnose(base, results, messages)
    results["chaos"] = dict(log.counts)
    results["actions"] = log.actions
    results["messages"] = len(messages)
    results["pauses_noticed"] = _pauses_noticed(slots)
    overlaps = _overlapping_owners(slots)
    results["overlapping_owners"] = len(overlaps)
    results["examples"]["overlapping_owners"] = overlaps[:5]
    results["passed"] = (
        results["passed"]
        and log.counts["bad_exits"] == 0
        and log.counts["kill"] == plan.kills
        # A worker resumed after its session expired held back until the group answered.
        and results["pauses_noticed"] >= log.counts["resumed"]
        and not overlaps
    )
    results["machine"] = _machine()
    results["plan"] = {k: str(v) if isinstance(v, Path) else v for k, v in vars(plan).items()}
    return results


#: What a worker logs when it notices it stood still (streams/membership.py).
_STOOD_STILL = b"this worker stood still for "
#: What the timers log when they start applying a partition and when they let it go
#: (agents/timers.py), after the log's own time and process id.
_LOG_LINE = re.compile(
    r"^\[(?P<at>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3})\] \[(?P<pid>\d+)\] \[\w+\] "
    r"partition (?P<partition>\d+): (?:\d+ timers, .*applying from offset (?P<first>\d+)"
    r"|let go after applying offsets (?P<from>-?\d+) to (?P<to>-?\d+), the last at (?P<last>\S+))"
)


def _overlapping_owners(slots: list[_Worker]) -> list[dict[str, Any]]:
    """Two worker processes applying one partition at the same time, from their logs: a
    partition's span in a process runs from its "applying from offset" line to the last
    message it applied, which its "let go" line gives. A span with no "let go" (the
    process was killed) is left out: a killed process applies nothing after its death, and
    the group gives its partitions away only after it."""
    spans: dict[int, list[tuple[float, float, str, str]]] = {}
    for worker in slots:
        if not worker.log.exists():
            continue
        started: dict[tuple[str, int], tuple[float, str]] = {}
        for line in worker.log.read_text(errors="replace").splitlines():
            found = _LOG_LINE.match(line)
            if found is None:
                continue
            pid, partition = found["pid"], int(found["partition"])
            # The log writes local time.
            at = datetime.strptime(found["at"], "%Y-%m-%d %H:%M:%S,%f").astimezone().timestamp()
            if found["first"] is not None:
                started[(pid, partition)] = (at, f"{worker.name} pid {pid} from {found['first']}")
                continue
            begun = started.pop((pid, partition), None)
            if begun is None or found["last"] == "none":
                continue
            last = parse_written_ms(found["last"]) / 1000
            who = f"{begun[1]} to {found['to']}"
            spans.setdefault(partition, []).append((begun[0], last, pid, who))
    overlaps = []
    for partition, owned in spans.items():
        owned.sort()
        for i, (_, last, pid, who) in enumerate(owned):
            for later_start, _end, later_pid, later_who in owned[i + 1 :]:
                if later_start >= last:
                    break
                if later_pid != pid:
                    overlaps.append({"partition": partition, "first": who, "then": later_who})
    return overlaps


def _pauses_noticed(slots: list[_Worker]) -> int:
    """How many times the workers noticed, in their logs, that they had stood still."""
    return sum(w.log.read_bytes().count(_STOOD_STILL) for w in slots if w.log.exists())


def _slot(plan: ChaosPlan, base: Settings, i: int) -> _Worker:
    name = f"worker-{i + 1}"
    settings = base.with_overrides(
        worker_id=name, web_port=free_port(), data_dir=plan.run_dir / name
    )
    return _Worker(name, settings, plan.run_dir / f"{name}.log")


async def _wait_ready(workers: list[_Worker], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    pending = list(workers)
    while pending:
        for worker in list(pending):
            if not worker.alive:
                raise SlawatchError(f"{worker.name} exited before it was ready; see {worker.log}")
            if await asyncio.to_thread(_ready, worker.settings.web_port):
                pending.remove(worker)
        if time.monotonic() > deadline:
            names = ", ".join(w.name for w in pending)
            raise SlawatchError(f"not ready within {timeout_s:g}s: {names}")
        await asyncio.sleep(0.2)


def _ready(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as response:
            return bool(response.status == 200)
    except (OSError, urllib.error.URLError):
        return False


async def _chaos(plan: ChaosPlan, rng: random.Random, slots: list[_Worker], log: _Log) -> None:
    """The seeded schedule of kills, the pause, the added and the retired worker."""
    lag, d = plan.lag_s, plan.duration_s - plan.lag_s  # after the workers started
    actions: list[tuple[float, str]] = [(lag + rng.uniform(0.05, 0.9) * d, "kill")
                                        for _ in range(plan.kills)]  # fmt: skip
    actions += [(lag + 0.3 * d, "add"), (lag + 0.7 * d, "retire")]
    if plan.pause_s:
        actions.append((lag + 0.5 * d, "pause"))
    actions.sort()
    added = slots[-1]
    for at_s, action in actions:
        await asyncio.sleep(max(0.0, log.started + at_s - time.monotonic()))
        if action == "add":
            added.start()
            log.say(f"{added.name} added", "added")
        elif action == "retire":
            victim = rng.choice([w for w in slots[:-1] if w.alive and not w.paused])
            victim.retired = True
            code = await asyncio.to_thread(victim.stop)
            log.say(f"{victim.name} stopped for good (SIGTERM, exit {code})", "retired")
            if code != 0:
                log.counts["bad_exits"] += 1
        elif action == "pause":
            victim = rng.choice([w for w in slots if w.alive and not w.retired])
            victim.signal(signal.SIGSTOP)
            victim.paused = True
            log.say(f"{victim.name} paused (SIGSTOP) for {plan.pause_s:g}s", "paused")
            asyncio.get_running_loop().call_later(plan.pause_s, _resume, victim, log)
        else:
            candidates = [w for w in slots if w.process is not None and not w.retired]
            victim = rng.choice(candidates)
            was_alive = victim.alive
            victim.held_down = True
            victim.kill()
            log.say(f"{victim.name} killed (kill -9){'' if was_alive else ', was down'}", "kill")
            await asyncio.sleep(rng.uniform(0.5, 3.0))
            victim.held_down = False
            if not victim.retired:
                victim.start()
                log.say(f"{victim.name} started again")


async def _supervise(slots: list[_Worker], log: _Log) -> None:
    """What a process supervisor does: start again a worker that stopped on its own."""
    while True:
        await asyncio.sleep(0.5)
        for worker in slots:
            process = worker.process
            if process is None or worker.retired or worker.held_down or worker.alive:
                continue
            log.say(f"{worker.name} exited on its own ({process.returncode}); started again",
                    "exited")  # fmt: skip
            worker.start()


def _resume(worker: _Worker, log: _Log) -> None:
    if worker.paused:
        worker.signal(signal.SIGCONT)
        worker.paused = False
        log.say(f"{worker.name} resumed (SIGCONT)", "resumed")


async def _drain(workers: list[_Worker], log: _Log, timeout_s: float = 300) -> int:
    """Wait until every worker is ready and every input message is read, then until every
    worker's watermark has passed the instant returned (the replay's ``as of``).

    The normalised topic is never empty (ingest sends the timers a heartbeat per partition
    every tick), and a watermark trails the clock by the grace and a tick or two, so the
    test is on the input read and on the watermarks, not on an empty topic."""
    await _wait_ready(workers, timeout_s=120)
    deadline = time.monotonic() + timeout_s
    as_of_ms: int | None = None
    quiet = 0
    while True:
        if time.monotonic() > deadline:
            raise SlawatchError(f"not drained within {timeout_s:g}s; see the workers' logs")
        await asyncio.sleep(1.0)
        metrics = [await asyncio.to_thread(w.metrics) for w in workers]
        if any(m is None for m in metrics):
            quiet = 0
            continue
        now_ms = time.time_ns() // 1_000_000
        if as_of_ms is None:
            unread = sum(m.get("slawatch_ingest_lag_messages", 1) for m in metrics if m)
            quiet = quiet + 1 if unread == 0 else 0
            if quiet == 3:
                as_of_ms, quiet = now_ms - 2000, 0
                log.say("drained: every input message read; waiting for the watermarks")
            continue
        lag_s = max(m.get("slawatch_watermark_lag_seconds", 1e9) for m in metrics if m)
        quiet = quiet + 1 if now_ms - 1000 * lag_s > as_of_ms + 1000 else 0
        if quiet == 3:
            return as_of_ms


async def _read_all(settings: Settings, topic: str) -> list[dict[str, Any]]:
    records = []
    for partition in range(settings.partitions):
        async for record in read_back(settings, topic, partition, 0, "chaos"):
            if record.value:
                records.append(orjson.loads(record.value))
    return records


async def _diagnose(
    settings: Settings, results: dict[str, Any], messages: list[Any]
) -> dict[str, Any]:
    """For each conversation of a failed check: its input events, where each went on the
    normalised topic (partition, offset, time), and its changelog records (offset, time,
    bytes, or a tombstone)."""
    examples = results["examples"]
    keys = {c["cycle"][0] for name in ("lost", "false_breaches", "other") for c in examples[name]}
    keys |= {k[0] for k in examples["only_on_topic"]}
    if not keys:
        return {}
    from slawatch.schemas.normalised import decode_batch

    found: dict[str, Any] = {k: {"input": [], "normalised": [], "changelog": []} for k in keys}
    for message in messages:
        with contextlib.suppress(Exception):
            body = orjson.loads(message.value)
            key = f"{message.kind.value}::{message.key.decode()}"
            if key in found:
                found[key]["input"].append((body["event_id"], body["type"], body["occurred_at"]))
    changelog = f"{settings.app_id}-sla-state-changelog"
    for partition in range(settings.partitions):
        async for record in read_back(settings, settings.topic_normalised, partition, 0, "diag"):
            if not record.value:
                continue
            for event in decode_batch(record.value).events:
                if event.key in found:
                    found[event.key]["normalised"].append(
                        (event.event_id, partition, record.offset, record.timestamp)
                    )
        async for record in read_back(settings, changelog, partition, 0, "diag"):
            key = record.key.decode() if record.key else ""
            if key in found:
                found[key]["changelog"].append(
                    (partition, record.offset, record.timestamp,
                     None if record.value is None else len(record.value))
                )  # fmt: skip
    return found


def compare(
    records: list[dict[str, Any]], replayed: list[dict[str, Any]], as_of_ms: int
) -> dict[str, Any]:
    """The topic's ``records`` against the replay's log rows as of ``as_of_ms``."""
    ids = Counter(r["event_id"] for r in records)
    duplicates = sorted(i for i, n in ids.items() if n > 1)
    # What the stream declared after ``as of`` the replay cannot know yet.
    said = [
        r for r in records
        if r["kind"] not in ("at_risk", "breached") or parse_written_ms(r["at"]) <= as_of_ms
    ]  # fmt: skip
    stream = {
        (row["conversation_key"], row["metric"], row["cycle"]): row
        for row in cycle_log(SlaEventRecord(**r) for r in said).records()
    }
    by_cycle = {(r["conversation_key"], r["metric"], r["cycle"]): r for r in replayed}
    breached_ever = {
        (r["conversation_key"], r["metric"], r["cycle"]) for r in said if r["kind"] == "breached"
    }
    lost, false_breaches, other, unknown, moved = [], [], [], [], []
    for key, expected in by_cycle.items():
        got = stream.get(key)
        if got is None:
            if expected["status"] != "open" or expected["at_risk_at"] is not None:
                lost.append({"cycle": key, "replay": expected["status"], "stream": None})
            continue
        differing = {f: (got[f], expected[f]) for f in COMPARED if got[f] != expected[f]}
        if not differing:
            continue
        if _moved_by_a_pause(got, expected, differing):
            moved.append({"cycle": key, "differing": differing})
        elif expected["status"] == got["status"]:
            other.append({"cycle": key, "differing": differing})
        elif expected["status"] != "open" and got["status"] in ("open", "at_risk", "breached"):
            lost.append({"cycle": key, "replay": expected["status"], "stream": got["status"],
                         "differing": differing})  # fmt: skip
        else:
            other.append({"cycle": key, "differing": differing})
    for key in breached_ever:
        row = by_cycle.get(key)
        if row is None or not _due_passed_while_open(row):
            false_breaches.append({"cycle": key, "replay": row["status"] if row else None})
    unknown = [key for key in stream if key not in by_cycle]
    retracted = [r for r in records if r["kind"] == "retracted"]
    delays = sorted(
        r["detection_delay_ms"] for r in records if r["kind"] in ("at_risk", "breached")
    )
    kinds = Counter(r["kind"] for r in records)
    return {
        "as_of_ms": as_of_ms,
        "sla_events": len(records),
        "kinds": dict(kinds),
        "cycles_replayed": len(by_cycle),
        "cycles_on_topic": len(stream),
        "duplicate_event_ids": len(duplicates),
        "lost_timers": len(lost),
        "false_breaches": len(false_breaches),
        "retractions": len(retracted),
        "other_differences": len(other),
        "dues_moved_after_declaration": len(moved),
        "cycles_only_on_topic": len(unknown),
        "detection_delay_ms": _percentiles(delays),
        "examples": {
            "duplicates": duplicates[:5],
            "lost": lost[:5],
            "false_breaches": false_breaches[:5],
            "retractions": [
                {k: r[k] for k in ("event_id", "at", "detected_at")} for r in retracted[:5]
            ],
            "other": other[:5],
            "dues_moved_after_declaration": moved[:5],
            "only_on_topic": unknown[:5],
        },
        "passed": not (duplicates or lost or false_breaches or other or unknown),
    }


def _due_passed_while_open(replayed: dict[str, Any]) -> bool:
    """Whether the replay has the cycle's due pass while it was open: a breach of it is
    true. Breached (still open), missed (stopped after due), or stopped after its due in
    another way: a ticket closed unanswered after its first-reply due is ``cancelled`` in
    the replay, which fires no timer before its last tick, while the stream declared the
    breach when the due passed and the cancellation at the close."""
    if replayed["status"] in ("breached", "missed"):
        return True
    due, stopped = replayed["due_at"], replayed["stopped_at"]
    return due is not None and stopped is not None and stopped > due


def _moved_by_a_pause(got: dict[str, Any], expected: dict[str, Any], differing: dict) -> bool:
    """An open cycle declared at risk (or breached) on both sides whose only difference is
    a later due in the replay: the clock was paused after the stream declared it (a ticket
    set to pending), and the stream's record keeps the due as of its declaration, while the
    replay, which runs no timer before its last tick at ``as of``, declares it then with
    the due as of then. Both are right for their instant; nothing on the topic is wrong."""
    return (
        set(differing) == {"due_at"}
        and got["status"] == expected["status"] in ("at_risk", "breached")
        and got["due_at"] is not None
        and expected["due_at"] is not None
        and got["due_at"] < expected["due_at"]
    )


def _percentiles(values: list[int]) -> dict[str, float | int | None]:
    if not values:
        return {"count": 0, "p50": None, "p99": None, "max": None}
    return {
        "count": len(values),
        "p50": statistics.median(values),
        "p99": values[min(len(values) - 1, int(0.99 * len(values)))],
        "max": values[-1],
    }


def _print_summary(results: dict[str, Any]) -> None:
    delay = results["detection_delay_ms"]
    chaos = results["chaos"]
    print(
        f"chaos: {chaos.get('kill', 0)} kills, {chaos.get('paused', 0)} pause, "
        f"{chaos.get('added', 0)} added, {chaos.get('retired', 0)} retired, "
        f"{chaos.get('exited', 0)} exited on their own, "
        f"{results['pauses_noticed']} pause(s) noticed by the workers, "
        f"{results['overlapping_owners']} partition(s) applied by two workers at once; "
        f"{results['messages']:,} messages, {results['sla_events']:,} SLA events, "
        f"{results['cycles_replayed']:,} cycles replayed",
        flush=True,
    )
    print(
        f"duplicate event ids {results['duplicate_event_ids']}, lost timers "
        f"{results['lost_timers']}, false breaches {results['false_breaches']}, retractions "
        f"{results['retractions']}, other differences {results['other_differences']}, "
        f"dues moved by a pause after the declaration "
        f"{results['dues_moved_after_declaration']}, "
        f"cycles only on the topic {results['cycles_only_on_topic']}",
        flush=True,
    )
    print(
        f"detection delay of {delay['count']:,} at-risk and breaches: p50 {delay['p50']} ms, "
        f"p99 {delay['p99']} ms, max {delay['max']} ms",
        flush=True,
    )
    for name, examples in results["examples"].items():
        if examples:
            print(f"  {name}: {examples}", flush=True)
    print("PASSED" if results["passed"] else "FAILED", flush=True)
