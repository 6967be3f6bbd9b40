"""``slawatch demo``: everything on embedded defaults, with a live line per second.

Starts the embedded broker and a ``redis-server`` on free loopback ports, creates the
topics, starts one worker (a child ``slawatch worker`` process, exactly as in
production) and the simulator, and prints once a second what flows: input messages per
topic (as the worker counts them), what the worker emitted on the normalised stream, the
dead-letter topic and ``sla-events`` (as a consumer of those topics sees them). Ctrl-C,
SIGTERM, SIGHUP or the end of ``--duration`` stops everything in order; if the demo itself
is killed, its children die with it (:mod:`slawatch.dev.processes`).

All files stay in the run directory. The demo marks a folder as its own with a
``.slawatch-demo`` file when it creates it (or finds it empty), and empties only such a
folder at start: it refuses a non-empty folder without the mark, and never deletes the
folder itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import secrets
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition

from slawatch.config.kafka_security import kafka_client_options
from slawatch.config.settings import Settings, load_settings
from slawatch.core.keys import ConversationKind
from slawatch.dev.embedded import EmbeddedBroker, EmbeddedRedis, free_port
from slawatch.dev.processes import (
    Stopped,
    die_with_parent,
    ignore_stop_signals,
    on_stop_signals,
    raising_stopped,
)
from slawatch.dev.receiver import Inbox, LocalReceiver
from slawatch.dev.simulator.output import publish
from slawatch.dev.simulator.traffic import TrafficProfile, generate_traffic
from slawatch.errors import SlawatchError
from slawatch.schemas.normalised import decode_batch
from slawatch.streams.registry import read_workers
from slawatch.streams.topics import ensure_topics

#: The demo's SLA targets: the built-in ones, with resolution shortened (see the file).
DEMO_POLICY = Path(__file__).with_name("demo_policy.yaml")

#: The file that marks a run directory as the demo's own (so it may empty it).
RUN_DIR_MARK = ".slawatch-demo"


def prepare_run_dir(run_dir: Path) -> None:
    """Make ``run_dir`` an empty run directory that holds only the demo's mark.

    A missing or empty folder is created or adopted and marked; a folder with the mark is
    emptied (its entries are removed, symbolic links as links: nothing outside it is
    touched). Anything else is refused with a :class:`SlawatchError`, and left as it is.
    """
    if run_dir.is_symlink() or (run_dir.exists() and not run_dir.is_dir()):
        raise SlawatchError(
            f"--run-dir {run_dir}: not a folder; give a new or empty folder for the demo's files"
        )
    run_dir.mkdir(parents=True, exist_ok=True)
    mark = run_dir / RUN_DIR_MARK
    own = mark.is_file() and not mark.is_symlink()
    entries = [entry for entry in run_dir.iterdir() if not (own and entry.name == RUN_DIR_MARK)]
    if entries and not own:
        shown = ", ".join(sorted(entry.name for entry in entries)[:3])
        raise SlawatchError(
            f"--run-dir {run_dir} is not empty ({shown}{', …' if len(entries) > 3 else ''}) "
            f"and not the demo's own (no {RUN_DIR_MARK} file): the demo empties its run "
            "folder at start, so give a new or empty folder"
        )
    for entry in entries:
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()
    mark.write_text("slawatch demo's run folder: emptied by each `slawatch demo` run\n")


def _ready(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


class _OutputCounter:
    """Reads the worker's output topics from the start and counts what it finds."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.normalised: Counter[str] = Counter()
        self.normalised_batches = 0
        self.dead_letters: Counter[str] = Counter()
        self.sla_events: Counter[str] = Counter()
        self.sla_by_metric: Counter[tuple[str, str]] = Counter()
        self.consumer = AIOKafkaConsumer(
            bootstrap_servers=settings.bootstrap_servers,
            **kafka_client_options(settings),
            group_id=None,
            enable_auto_commit=False,
            client_id="slawatch-demo",
        )

    async def start(self) -> None:
        await self.consumer.start()
        s = self.settings
        topics = (s.topic_normalised, s.topic_dead_letter, s.topic_sla_events)
        self.consumer.assign([TopicPartition(t, p) for t in topics for p in range(s.partitions)])
        await self.consumer.seek_to_beginning()

    async def poll(self) -> None:
        batches = await self.consumer.getmany(timeout_ms=50, max_records=10_000)
        for tp, records in batches.items():
            for record in records:
                self._count(tp.topic, record.value or b"")

    def _count(self, topic: str, value: bytes) -> None:
        if topic == self.settings.topic_normalised:
            self.normalised_batches += 1
            self.normalised.update(event.type for event in decode_batch(value).events)
        elif topic == self.settings.topic_dead_letter:
            self.dead_letters[orjson.loads(value).get("reason", "?")] += 1
        else:
            record = orjson.loads(value)
            self.sla_events[record.get("kind", "?")] += 1
            self.sla_by_metric[(record.get("metric", "?"), record.get("kind", "?"))] += 1

    async def stop(self) -> None:
        await self.consumer.stop()


def _top(counter: Counter[str] | dict[str, float], n: int = 4) -> str:
    items = sorted(counter.items(), key=lambda kv: -kv[1])
    shown = ", ".join(f"{k} {int(v)}" for k, v in items[:n])
    return shown + (", …" if len(items) > n else "") if shown else "-"


def _line(
    elapsed_s: float,
    worker: dict[str, Any] | None,
    out: _OutputCounter,
    rate: float,
    alerts: Inbox | None = None,
) -> str:
    read = (worker or {}).get("counts", {}).get("input_by_topic", {})
    state = "ready" if worker and worker.get("ready") else "starting"
    delivered = ""
    if alerts is not None:
        by_channel: Counter[str] = Counter(d.channel for d in alerts.deliveries)
        delivered = f" | alerts delivered {sum(by_channel.values())} ({_top(by_channel, 3)})"
    return (
        f"[{elapsed_s:5.0f}s] worker {state} | in {rate:5.0f}/s: {_top(read, 3)} "
        f"| normalised {sum(out.normalised.values())} in {out.normalised_batches} batches "
        f"| dead-letter {sum(out.dead_letters.values())} ({_top(out.dead_letters, 3)}) "
        f"| sla-events {_top(out.sla_events)}{delivered}"
    )


#: The demo's routing: at risk to a Slack channel, breaches paged and sent to a signed
#: webhook, every resolve to whoever was told; all received by the demo's local receiver.
DEMO_ROUTING = """\
# Written by `slawatch demo`: every receiver is the demo's local receiver ({url}).
link: https://helpdesk.example.com/{{conversation_kind}}s/{{conversation_id}}
receivers:
  team:
    type: slack
    webhook_url: {{env: DEMO_SLACK_WEBHOOK_URL}}
  oncall:
    type: pagerduty
    url: {url}/pagerduty/v2/enqueue
    routing_key: {{env: DEMO_PAGERDUTY_ROUTING_KEY}}
  supervisors:
    type: webhook
    url: {url}/webhook/supervisors
    secret: {{file: webhook.secret}}
routes:
  - name: all
    escalation:
      - {{on: at_risk, to: [team]}}
      - {{on: breached, to: [oncall, supervisors]}}
"""


def write_demo_routing(
    run_dir: Path, receiver: LocalReceiver, webhook_secret: str
) -> tuple[Path, dict[str, str]]:
    """The demo's routing file (and webhook secret) in ``run_dir``, and the environment
    variables it reads its other secrets from."""
    (run_dir / "webhook.secret").write_text(webhook_secret + "\n")
    path = run_dir / "routing.yaml"
    path.write_text(DEMO_ROUTING.format(url=receiver.url))
    return path, {
        "DEMO_SLACK_WEBHOOK_URL": receiver.slack_url("team"),
        "DEMO_PAGERDUTY_ROUTING_KEY": _DEMO_ROUTING_KEY,
    }


_DEMO_ROUTING_KEY = "demo-routing-key"


def _sla_table(out: _OutputCounter) -> str:
    kinds = ("at_risk", "breached", "met", "missed", "cancelled", "retracted", "level_changed")
    metrics = ("first_reply", "next_reply", "chat_reply", "call_answer", "resolution")
    widths = [max(10, len(k) + 1) for k in kinds]
    lines = [
        "sla-events by metric:  " + "".join(f"{k:>{w}}" for k, w in zip(kinds, widths, strict=True))
    ]
    for metric in metrics:
        counts = "".join(
            f"{out.sla_by_metric[(metric, k)]:>{w}}" for k, w in zip(kinds, widths, strict=True)
        )
        lines.append(f"  {metric:<20}{counts}")
    return "\n".join(lines)


async def _run(
    settings: Settings,
    duration_s: float,
    profile: TrafficProfile,
    seed: int,
    log: Path,
    alerts: Inbox | None = None,
    extra_env: dict[str, str] | None = None,
    asterisk: _AsteriskSource | None = None,
) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()

    signalled = False

    def stop_soon(signum: int) -> None:  # a signal handler runs between two bytecodes
        nonlocal signalled
        signalled = True
        loop.call_soon_threadsafe(stop.set)

    with on_stop_signals(stop_soon):
        code = await _run_until_stopped(
            stop, settings, duration_s, profile, seed, log, alerts, extra_env or {}, asterisk
        )
    if signalled:
        # The broker and Redis are stopped next (run_demo's raising_stopped block restores
        # the handlers after): a second Ctrl-C must not cut that short.
        ignore_stop_signals()
    return code


async def _run_until_stopped(
    stop: asyncio.Event,
    settings: Settings,
    duration_s: float,
    profile: TrafficProfile,
    seed: int,
    log: Path,
    alerts: Inbox | None,
    extra_env: dict[str, str],
    asterisk: _AsteriskSource | None = None,
) -> int:
    await ensure_topics(settings)
    with log.open("wb") as worker_log:
        worker = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "slawatch",
            "worker",
            env={**settings.to_environment(), **extra_env},
            stdout=worker_log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            preexec_fn=die_with_parent(),
        )
    out = _OutputCounter(settings)
    simulation: asyncio.Task[Any] | None = None
    connector: _AsteriskRun | None = None
    try:
        print(f"waiting for the worker (log: {log}) …", flush=True)
        deadline = time.monotonic() + 90
        while not _ready(settings.web_port):
            if worker.returncode is not None:
                raise SlawatchError(f"the worker exited with {worker.returncode}; see {log}")
            if stop.is_set():
                return 0  # stopped by the user before it began: not an error
            if time.monotonic() > deadline:
                raise SlawatchError(f"the worker was not ready within 90 s; see {log}")
            await asyncio.sleep(0.2)
        web = f"http://127.0.0.1:{settings.web_port}"
        print(
            f"worker ready: wallboard {web}/wallboard, reports {web}/reports, "
            f"metrics {web}/metrics",
            flush=True,
        )
        await out.start()
        start_ms = int(time.time() * 1000)
        messages = generate_traffic(
            profile, seed=seed, start_ms=start_ms, duration_s=duration_s or 10**9
        )
        topics = {
            ConversationKind.TICKET: settings.topic_tickets,
            ConversationKind.CHAT: settings.topic_chats,
            ConversationKind.CALL: settings.topic_calls,
        }
        simulation = asyncio.create_task(
            publish(
                messages,
                settings=settings,
                topics=topics,
                should_stop=stop,
            )
        )
        if asterisk is not None:
            connector = _AsteriskRun(settings, asterisk, stop)
        started = time.monotonic()
        last_read, last_t = 0.0, started
        while not stop.is_set():
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=1.0)
            await out.poll()
            workers = await read_workers(settings)
            doc = workers[0] if workers else None
            read = sum((doc or {}).get("counts", {}).get("input_by_topic", {}).values())
            now = time.monotonic()
            rate = (read - last_read) / max(now - last_t, 1e-3)
            last_read, last_t = read, now
            print(_line(now - started, doc, out, rate, alerts), flush=True)
            if worker.returncode is not None:
                raise SlawatchError(f"the worker exited with {worker.returncode}; see {log}")
            if simulation.done() and simulation.exception() is not None:
                raise SlawatchError(f"the simulator failed: {simulation.exception()}")
            if connector is not None:
                connector.check()
            if duration_s and now - started >= duration_s:
                break
        return 0
    finally:
        stop.set()
        if simulation is not None:
            with contextlib.suppress(Exception):
                report = await asyncio.wait_for(simulation, timeout=10)
                print(f"simulator sent {report.summary()}", flush=True)
        if connector is not None:
            await connector.finish()
        await _stop_worker(worker)
        with contextlib.suppress(Exception):
            await out.poll()
            elapsed = time.monotonic() - started if simulation else 0
            print(_line(elapsed, None, out, 0, alerts), flush=True)
            print(_sla_table(out), flush=True)
            await out.stop()


async def _stop_worker(worker: asyncio.subprocess.Process) -> None:
    if worker.returncode is None:
        worker.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(worker.wait(), timeout=15)
        except TimeoutError:
            worker.kill()
            await worker.wait()


@dataclass(frozen=True)
class _AsteriskSource:
    """A recorded queue_log the demo plays into ``target`` for the connector to follow."""

    recorded: list[bytes]
    target: Path
    state_file: Path
    time_scale: float


class _AsteriskRun:
    """The player writing the queue_log copy and ``connect asterisk --follow`` reading it."""

    def __init__(self, settings: Settings, source: _AsteriskSource, stop: asyncio.Event) -> None:
        from slawatch.connectors.runner import AsteriskConnector, ConnectorOptions
        from slawatch.core.clock import SystemClock
        from slawatch.dev.queue_log_player import play

        self.source = source
        options = ConnectorOptions(
            path=source.target,
            state_file=source.state_file,
            follow=True,
            poll_interval_s=0.2,
            progress_interval_s=10**9,  # the demo prints its line at the end
        )
        self.connector = AsteriskConnector(settings, options, SystemClock())
        self.player = asyncio.create_task(
            play(source.recorded, source.target, time_scale=source.time_scale, stop=stop)
        )
        self.reader = asyncio.create_task(self.connector.run(stop))
        print(
            f"asterisk: playing the queue_log into {source.target} (times moved to now), "
            "slawatch connect asterisk --follow reads it",
            flush=True,
        )

    def check(self) -> None:
        for name, task in (("player", self.player), ("connector", self.reader)):
            if task.done() and task.exception() is not None:
                raise SlawatchError(f"the asterisk {name} failed: {task.exception()}")

    async def finish(self) -> None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(asyncio.gather(self.player, self.reader), timeout=10)
        print(self.connector.progress.line(self.source.target), flush=True)


def run_demo(
    *,
    duration_s: float,
    rate_eps: float,
    time_scale: float,
    run_dir: Path,
    seed: int | None = None,
    asterisk_queue_log: Path | None = None,
) -> int:
    """Run the demo; return the exit code."""
    recorded = None
    if asterisk_queue_log is not None:
        try:
            recorded = asterisk_queue_log.read_bytes().splitlines()
        except OSError as exc:
            raise SlawatchError(
                f"--asterisk-queue-log {asterisk_queue_log}: cannot read: {exc.strerror}"
            ) from None
    prepare_run_dir(run_dir)
    asterisk = None
    if recorded is not None:
        (run_dir / "asterisk").mkdir()
        asterisk = _AsteriskSource(
            recorded, run_dir / "asterisk" / "queue_log", run_dir / "asterisk" / "state.json",
            time_scale,
        )  # fmt: skip
    seed = random.SystemRandom().randrange(1, 10**6) if seed is None else seed
    profile = TrafficProfile(rate_eps=rate_eps, time_scale=time_scale, malformed_share=0.01)
    try:
        with raising_stopped():
            code = _run_servers(run_dir, duration_s, rate_eps, time_scale, profile, seed, asterisk)
    except Stopped:
        code = 0  # stopped by the user before the worker began: not an error
    print("stopped: worker, redis and broker are down", flush=True)
    return code


def _run_servers(
    run_dir: Path,
    duration_s: float,
    rate_eps: float,
    time_scale: float,
    profile: TrafficProfile,
    seed: int,
    asterisk: _AsteriskSource | None = None,
) -> int:
    webhook_secret = secrets.token_hex(16)
    with (
        EmbeddedBroker(run_dir) as broker,
        EmbeddedRedis(run_dir) as redis,
        LocalReceiver(
            secrets={"supervisors": webhook_secret},
            routing_keys={_DEMO_ROUTING_KEY: "oncall"},
            log_path=run_dir / "alerts.jsonl",
            echo=True,
        ) as alerts,
    ):
        assert isinstance(broker, EmbeddedBroker) and isinstance(redis, EmbeddedRedis)
        print(f"broker {broker.url}, redis {redis.url}, run dir {run_dir}", flush=True)
        routing, routing_env = write_demo_routing(run_dir, alerts, webhook_secret)
        print(f"alert receiver {alerts.url} (every alert: {run_dir / 'alerts.jsonl'})", flush=True)
        settings = load_settings(
            broker_url=broker.url,
            redis_url=redis.url,
            web_port=free_port(),
            data_dir=run_dir / "data",
            store="memory://",
            worker_id="demo-worker-1",
            log_level="warning",
            sla_time_scale=time_scale,
            policy_file=str(DEMO_POLICY),
            alert_routing_file=str(routing),
            # Everything is on loopback: producers deliver within milliseconds, so the
            # demo can wait less for stragglers than a production default would.
            watermark_grace_ms=100,
            timer_tick_ms=100,
        )
        print(
            f"simulating {rate_eps:g} events/s (seed {seed}, delays / {time_scale:g}); "
            f"{f'for {duration_s:g}s' if duration_s else 'Ctrl-C to stop'}",
            flush=True,
        )
        return asyncio.run(
            _run(
                settings,
                duration_s,
                profile,
                seed,
                run_dir / "worker.log",
                alerts,
                routing_env,
                asterisk,
            )
        )
