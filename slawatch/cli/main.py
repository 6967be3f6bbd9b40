"""The ``slawatch`` command line.

Every failure an operator can cause (bad settings, an unreachable broker, a missing
component) ends in one line on stderr and a non-zero exit, never a traceback; set
``SLAWATCH_DEBUG=1`` to get the traceback of an unexpected error.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from slawatch.config.settings import Settings, load_settings
from slawatch.errors import SlawatchError

if TYPE_CHECKING:
    from slawatch.policy.file import PolicyFileError


def _settings(args: argparse.Namespace) -> Settings:
    return load_settings(args.config)


def _cmd_worker(args: argparse.Namespace) -> int:
    from slawatch.worker.runtime import run_worker

    run_worker(_settings(args))
    return 0


def _cmd_topics(args: argparse.Namespace) -> int:
    from slawatch.streams.topics import ensure_topics, topic_specs

    settings = _settings(args)
    if args.action == "create":
        created = asyncio.run(ensure_topics(settings))
        print(f"created: {', '.join(created) if created else 'none (all exist)'}")
    for spec in topic_specs(settings):
        print(f"{spec.name:<28} {spec.partitions:>3} partitions  {spec.role}")
    return 0


def _cmd_simulate(args: argparse.Namespace) -> int:
    from slawatch.core.keys import ConversationKind
    from slawatch.core.timestamps import InvalidTimestamp, parse_timestamp_ms
    from slawatch.dev.simulator.output import publish, write_jsonl
    from slawatch.dev.simulator.traffic import TrafficProfile, generate_traffic
    from slawatch.streams.topics import ensure_topics

    try:
        profile = TrafficProfile(
            rate_eps=args.rate,
            time_scale=args.time_scale,
            malformed_share=args.malformed_share,
            tenant=args.tenant,
            file_output=args.out is not None,
        )
        start_ms = parse_timestamp_ms(args.start) if args.start else int(time.time() * 1000)
    except (ValueError, InvalidTimestamp) as exc:
        raise SlawatchError(str(exc)) from None
    messages = generate_traffic(
        profile, seed=args.seed, start_ms=start_ms, duration_s=args.duration
    )
    if args.out is not None:
        report = write_jsonl(messages, args.out)
        print(f"wrote {report.summary()} to {args.out}")
        return 0
    settings = _settings(args)
    asyncio.run(ensure_topics(settings))
    topics = {
        ConversationKind.TICKET: settings.topic_tickets,
        ConversationKind.CHAT: settings.topic_chats,
        ConversationKind.CALL: settings.topic_calls,
    }
    report = asyncio.run(
        publish(
            messages,
            bootstrap_servers=settings.bootstrap_servers,
            topics=topics,
            realtime=not args.backlog,
        )
    )
    print(f"sent {report.summary()}")
    return 0


def _cmd_status(args: argparse.Namespace) -> int:
    from slawatch.streams.registry import read_workers

    settings = _settings(args)
    try:
        workers = asyncio.run(read_workers(settings))
    except OSError as exc:
        raise SlawatchError(f"cannot reach Redis at {settings.redis_url.masked()}: {exc}") from None
    if not workers:
        print(f"no live workers of {settings.app_id!r}")
        return 1
    for doc in workers:
        counts = doc.get("counts", {})
        read = int(sum(counts.get("input_by_topic", {}).values()))
        dead = int(sum(counts.get("dead_letters_by_reason", {}).values()))
        state = "ready" if doc.get("ready") else "NOT READY"
        partitions = len(doc.get("ingest_partitions", []))
        print(
            f"{doc['worker_id']:<32} {state:<9} {partitions:>3} input partitions  "
            f"read {read}  dead-lettered {dead}  policy {doc.get('policy_version', '?')}  "
            f"{doc.get('web', '')}"
        )
        rejected = doc.get("policy_last_rejected")
        if rejected:
            print(
                f"{'':<32} last rejected policy (offset {rejected['offset']}): "
                f"{rejected['errors'][0] if rejected['errors'] else '?'}"
            )
    return 0


def _cmd_config(args: argparse.Namespace) -> int:
    if args.markdown:
        print(Settings.markdown_table())
        return 0
    for env, value, _default, doc in _settings(args).describe():
        print(f"{env:<36} {value:<32} {doc}")
    return 0


def _cmd_schemas(args: argparse.Namespace) -> int:
    from slawatch.schemas.export import SCHEMA_DIR, drifted_schemas, write_schemas

    directory = args.dir or SCHEMA_DIR
    if args.action == "export":
        paths = write_schemas(directory)
        print(f"wrote {len(paths)} schemas to {directory}")
        return 0
    drifted = drifted_schemas(directory)
    if drifted:
        raise SlawatchError(
            f"schemas differ from the models: {', '.join(drifted)}; run `slawatch schemas export`"
        )
    print(f"schemas in {directory} match the models")
    return 0


def _print_problems(exc: PolicyFileError) -> None:
    """Every problem of a policy file, one per line, on stderr."""
    for line in exc.lines():
        print(line, file=sys.stderr)


def _cmd_check_config(args: argparse.Namespace) -> int:
    from slawatch.policy.file import PolicyFileError, load_policy, summary

    try:
        policy = load_policy(args.file)
    except PolicyFileError as exc:
        _print_problems(exc)
        n = len(exc.problems)
        print(f"slawatch: {args.file}: {n} problem{'s' if n > 1 else ''}", file=sys.stderr)
        return 1
    print(f"{args.file}: valid; {summary(policy)}")
    return 0


def _cmd_policy(args: argparse.Namespace) -> int:
    from slawatch.core.clock import SystemClock
    from slawatch.policy.file import PolicyFileError, parse_policy, summary
    from slawatch.streams.policy_topic import publish_policy

    settings = _settings(args)
    try:
        text = args.file.read_text(encoding="utf-8")
    except OSError as exc:
        raise SlawatchError(f"{args.file}: cannot read: {exc.strerror}") from None
    try:
        policy = parse_policy(text, str(args.file))  # the check every worker makes, first
    except PolicyFileError as exc:
        _print_problems(exc)
        print(f"slawatch: {args.file} not published; the policy in force stays", file=sys.stderr)
        return 1
    asyncio.run(publish_policy(settings, args.file, text, SystemClock()))
    print(f"published to {settings.topic_policy}: {summary(policy)}")
    return 0


def _cmd_replay(args: argparse.Namespace) -> int:
    import orjson

    from slawatch.core.policy import builtin_policy
    from slawatch.core.timestamps import InvalidTimestamp, parse_timestamp_ms
    from slawatch.policy.file import load_policy
    from slawatch.replay.engine import replay

    policy = load_policy(args.policy) if args.policy else builtin_policy()
    try:
        as_of = parse_timestamp_ms(args.as_of) if args.as_of else int(time.time() * 1000)
    except InvalidTimestamp as exc:
        raise SlawatchError(f"--as-of: {exc}") from None
    try:
        source = args.events.open("rb")
    except OSError as exc:
        raise SlawatchError(f"{args.events}: cannot read: {exc.strerror}") from None
    started = time.perf_counter()
    settings = _settings(args)
    with source:
        records, report = replay(
            source.readlines() if args.jobs > 1 else source,
            policy,
            as_of_ms=as_of,
            jobs=args.jobs,
            max_event_bytes=settings.max_event_bytes,
            max_future_skew_ms=int(settings.max_future_skew_s * 1000),
        )
    out = sys.stdout.buffer if args.out is None else args.out.open("wb")
    try:
        for record in records:
            out.write(orjson.dumps(record) + b"\n")
    finally:
        if args.out is not None:
            out.close()
    seconds = time.perf_counter() - started
    print(
        f"replay: {report.summary()}; {len(records)} cycles under policy {policy.version}, "
        f"as of {args.as_of or 'now'}; {report.lines / max(seconds, 1e-9):,.0f} lines/s",
        file=sys.stderr,
    )
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from slawatch.dev.demo import run_demo

    return run_demo(
        duration_s=args.duration,
        rate_eps=args.rate,
        time_scale=args.time_scale,
        run_dir=args.run_dir,
        seed=args.seed,
    )


def _cmd_bench(args: argparse.Namespace) -> int:
    from slawatch.dev.bench import run_bench

    return run_bench(
        events=args.events,
        open_timers=args.open_timers,
        probes=args.probes,
        out=args.out,
        keep_run_dir=args.keep_run_dir,
    )


def _cmd_bench_policy(args: argparse.Namespace) -> int:
    from slawatch.dev.bench_policy import run_policy_bench

    return run_policy_bench(events=args.events, repeats=args.repeats, out=args.out)


def _cmd_embedded(args: argparse.Namespace) -> int:
    from slawatch.dev.embedded import EmbeddedBroker, EmbeddedRedis

    with EmbeddedBroker(args.run_dir) as broker, EmbeddedRedis(args.run_dir) as redis:
        assert isinstance(broker, EmbeddedBroker) and isinstance(redis, EmbeddedRedis)
        print(f"export SLAWATCH_BROKER_URL={broker.url}")
        print(f"export SLAWATCH_REDIS_URL={redis.url}")
        print("# running; Ctrl-C stops both", flush=True)
        try:
            while broker.running and redis.running:
                time.sleep(0.5)
        except KeyboardInterrupt:
            pass
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="slawatch", description="Live SLA breach monitor.")
    parser.add_argument(
        "--config", type=Path, default=None, help="YAML settings file (or SLAWATCH_CONFIG)"
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    worker = commands.add_parser("worker", help="run a worker")
    worker.set_defaults(run=_cmd_worker)

    topics = commands.add_parser("topics", help="create or list the topics")
    topics.add_argument("action", choices=("create", "list"))
    topics.set_defaults(run=_cmd_topics)

    simulate = commands.add_parser("simulate", help="produce realistic contact-centre traffic")
    simulate.add_argument("--rate", type=float, default=50.0, help="mean events per second")
    simulate.add_argument("--duration", type=float, default=60.0, help="seconds of traffic")
    simulate.add_argument(
        "--seed", type=int, default=1, help="random seed (same seed, same events)"
    )
    simulate.add_argument(
        "--time-scale", type=float, default=1.0, help="divide every reply/answer delay by this"
    )
    simulate.add_argument(
        "--malformed-share", type=float, default=0.01, help="share of extra malformed messages"
    )
    simulate.add_argument("--tenant", default=None, help="tenant to stamp on every event")
    simulate.add_argument("--start", default=None, help="RFC 3339 start time (default: now)")
    simulate.add_argument("--out", type=Path, default=None, help="write JSONL here, not Kafka")
    simulate.add_argument(
        "--backlog", action="store_true", help="send as fast as possible, not in real time"
    )
    simulate.set_defaults(run=_cmd_simulate)

    status = commands.add_parser("status", help="list live workers (from Redis)")
    status.set_defaults(run=_cmd_status)

    config = commands.add_parser("config", help="print the effective settings")
    config.add_argument(
        "--markdown", action="store_true", help="print the README's table of every setting"
    )
    config.set_defaults(run=_cmd_config)

    schemas = commands.add_parser("schemas", help="export or check the JSON Schema files")
    schemas.add_argument("action", choices=("export", "check"))
    schemas.add_argument("--dir", type=Path, default=None)
    schemas.set_defaults(run=_cmd_schemas)

    check = commands.add_parser("check-config", help="check an SLA policy file, list every error")
    check.add_argument("file", type=Path)
    check.set_defaults(run=_cmd_check_config)

    policy = commands.add_parser("policy", help="publish an SLA policy to every worker")
    policy.add_argument("action", choices=("publish",))
    policy.add_argument("file", type=Path)
    policy.set_defaults(run=_cmd_policy)

    replay = commands.add_parser("replay", help="run a policy offline over a file of events")
    replay.add_argument("events", type=Path, help="JSONL: one input event per line")
    replay.add_argument("--policy", type=Path, default=None, help="policy file (default: built-in)")
    replay.add_argument("--out", type=Path, default=None, help="SLA log JSONL (default: stdout)")
    replay.add_argument(
        "--as-of", default=None, help="RFC 3339: declare open cycles as of this (default: now)"
    )
    replay.add_argument(
        "--jobs",
        type=int,
        default=os.cpu_count() or 1,
        help="processes to split the conversations among (default: one per core)",
    )
    replay.set_defaults(run=_cmd_replay)

    demo = commands.add_parser("demo", help="embedded broker + Redis + worker + simulator")
    demo.add_argument("--duration", type=float, default=0, help="seconds; 0 runs until Ctrl-C")
    demo.add_argument("--rate", type=float, default=200.0, help="simulated events per second")
    demo.add_argument(
        "--time-scale",
        type=float,
        default=300.0,
        help="divide simulated delays and SLA targets by this (300: a 4 h target is 48 s)",
    )
    demo.add_argument("--seed", type=int, default=None, help="simulator seed (default: random)")
    demo.add_argument("--run-dir", type=Path, default=Path(".run/demo"))
    demo.set_defaults(run=_cmd_demo)

    bench = commands.add_parser("bench", help="measure throughput, delay, memory, recovery")
    bench.add_argument("--events", type=int, default=200_000, help="events for (a) and (b)")
    bench.add_argument("--open-timers", type=int, default=1_000_000, help="timers held open")
    bench.add_argument("--probes", type=int, default=500, help="breaches timed for (c)")
    bench.add_argument("--out", type=Path, default=Path("bench-results/bench.json"))
    bench.add_argument(
        "--keep-run-dir", action="store_true", help="keep the workers' and servers' logs"
    )
    bench.set_defaults(run=_cmd_bench)

    bench_policy = commands.add_parser(
        "bench-policy", help="measure business-time arithmetic and replay (no broker)"
    )
    bench_policy.add_argument("--events", type=int, default=200_000, help="lines to replay")
    bench_policy.add_argument("--repeats", type=int, default=3, help="runs per figure (median)")
    bench_policy.add_argument("--out", type=Path, default=Path("bench-results/policy.json"))
    bench_policy.set_defaults(run=_cmd_bench_policy)

    embedded = commands.add_parser("embedded", help="run the embedded broker and Redis only")
    embedded.add_argument("--run-dir", type=Path, default=Path(".run/embedded"))
    embedded.set_defaults(run=_cmd_embedded)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        return int(args.run(args))
    except SlawatchError as exc:
        print(f"slawatch: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        if os.environ.get("SLAWATCH_DEBUG"):
            raise
        print(
            f"slawatch: unexpected {type(exc).__name__}: {exc} "
            "(SLAWATCH_DEBUG=1 shows the traceback)",
            file=sys.stderr,
        )
        return 1


if __name__ == "__main__":
    sys.exit(main())
