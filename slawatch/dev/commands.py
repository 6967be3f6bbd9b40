"""The development commands the CLI registers: ``simulate``, ``demo``, ``bench``,
``bench-policy`` and ``embedded`` (the embedded broker and Redis on their own)."""

from __future__ import annotations

import argparse
import asyncio
import time
from pathlib import Path

from slawatch.config.settings import load_settings
from slawatch.errors import SlawatchError


def _run_simulate(args: argparse.Namespace) -> int:
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
    settings = load_settings(args.config)
    asyncio.run(ensure_topics(settings))
    topics = {
        ConversationKind.TICKET: settings.topic_tickets,
        ConversationKind.CHAT: settings.topic_chats,
        ConversationKind.CALL: settings.topic_calls,
    }
    report = asyncio.run(
        publish(
            messages,
            settings=settings,
            topics=topics,
            realtime=not args.backlog,
        )
    )
    print(f"sent {report.summary()}")
    return 0


def _run_demo(args: argparse.Namespace) -> int:
    from slawatch.dev.demo import run_demo

    return run_demo(
        duration_s=args.duration,
        rate_eps=args.rate,
        time_scale=args.time_scale,
        run_dir=args.run_dir,
        seed=args.seed,
        asterisk_queue_log=args.asterisk_queue_log,
    )


def _run_bench(args: argparse.Namespace) -> int:
    from slawatch.dev.bench import run_bench

    for name in ("events", "repeats"):
        if getattr(args, name) < 1:
            raise SlawatchError(f"--{name}: must be at least 1")
    return run_bench(
        events=args.events,
        open_timers=args.open_timers,
        probes=args.probes,
        out=args.out,
        repeats=args.repeats,
        only=args.only,
        seed=args.seed,
        keep_run_dir=args.keep_run_dir,
        log_sink_in_worker=args.log_sink_in_worker,
    )


def _run_bench_policy(args: argparse.Namespace) -> int:
    from slawatch.dev.bench_policy import run_policy_bench

    return run_policy_bench(events=args.events, repeats=args.repeats, out=args.out)


def _run_chaos(args: argparse.Namespace) -> int:
    from slawatch.dev.chaos import ChaosPlan, run_chaos

    return run_chaos(
        ChaosPlan(
            workers=args.workers, partitions=args.partitions, duration_s=args.duration,
            rate_eps=args.rate, kills=args.kills, time_scale=args.time_scale,
            pause_s=args.pause, lag_s=args.lag, seed=args.seed, run_dir=args.run_dir,
            out=args.out,
        )
    )  # fmt: skip


def _run_bench_recovery(args: argparse.Namespace) -> int:
    from slawatch.dev.bench_recovery import run_recovery_bench

    return run_recovery_bench(
        timers=args.timers,
        stores=args.store or ["memory://", "rocksdb://"],
        partitions=args.partitions,
        out=args.out,
        standby_replicas=args.standby_replicas,
        keep_run_dir=args.keep_run_dir,
    )


def _run_bench_scale(args: argparse.Namespace) -> int:
    from slawatch.dev.bench_scale import run_scale_bench

    try:
        workers = [int(part) for part in args.workers.split(",")]
    except ValueError:
        raise SlawatchError(f"--workers {args.workers!r}: expected numbers like 1,2,3") from None
    try:
        return run_scale_bench(
            events=args.events,
            workers=workers,
            partitions=args.partitions,
            repeats=args.repeats,
            standby_replicas=args.standby_replicas,
            seed=args.seed,
            out=args.out,
            keep_run_dir=args.keep_run_dir,
        )
    except ValueError as error:
        raise SlawatchError(str(error)) from None


def _run_bench_state(args: argparse.Namespace) -> int:
    from slawatch.dev.bench_state import run_state_bench

    if args.days < 1:
        raise SlawatchError("--days: must be at least 1")
    if args.rate <= 0:
        raise SlawatchError("--rate: must be greater than 0")
    if args.retention_s <= 0:
        raise SlawatchError("--retention-s: must be greater than 0")
    return run_state_bench(
        days=args.days, rate=args.rate, retention_s=args.retention_s, seed=args.seed,
        out=args.out,
    )  # fmt: skip


def _run_bench_reports(args: argparse.Namespace) -> int:
    from slawatch.dev.bench_reports import run_reports_bench

    for name in ("events", "cycles", "requests", "runs"):
        if getattr(args, name) < 1:
            raise SlawatchError(f"--{name}: must be at least 1")
    return run_reports_bench(
        events=args.events,
        cycles=args.cycles,
        requests=args.requests,
        runs=args.runs,
        db=args.db,
        out=args.out,
    )


def _run_embedded(args: argparse.Namespace) -> int:
    from slawatch.dev.embedded import EmbeddedBroker, EmbeddedRedis
    from slawatch.dev.processes import Stopped, raising_stopped

    try:
        with (
            raising_stopped(),
            EmbeddedBroker(args.run_dir) as broker,
            EmbeddedRedis(args.run_dir) as redis,
        ):
            assert isinstance(broker, EmbeddedBroker) and isinstance(redis, EmbeddedRedis)
            print(f"export SLAWATCH_BROKER_URL={broker.url}")
            print(f"export SLAWATCH_REDIS_URL={redis.url}")
            print("# running; Ctrl-C (or SIGTERM, SIGHUP) stops both", flush=True)
            while True:
                exited = broker.exited() or redis.exited()
                if exited:
                    raise SlawatchError(exited)
                time.sleep(0.5)
    except Stopped:
        pass
    print("stopped: redis and broker are down", flush=True)
    return 0


def add_simulate(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
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
    simulate.set_defaults(run=_run_simulate)


def add_demo(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
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
    demo.add_argument(
        "--asterisk-queue-log",
        type=Path,
        default=None,
        metavar="PATH",
        help="also play this recorded Asterisk queue_log into <run-dir>/asterisk/queue_log "
        "(times moved to now, gaps divided by --time-scale) and follow it with the "
        "connector (slawatch connect asterisk --follow)",
    )
    demo.set_defaults(run=_run_demo)


def add_chaos(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    chaos = commands.add_parser(
        "chaos",
        help="kill, pause, add and remove workers under traffic; check sla-events against replay",
    )
    chaos.add_argument("--workers", type=int, default=3, help="workers at the start")
    chaos.add_argument("--partitions", type=int, default=12, help="partitions of every topic")
    chaos.add_argument("--duration", type=float, default=600.0, help="seconds of traffic")
    chaos.add_argument("--rate", type=float, default=30.0, help="simulated events per second")
    chaos.add_argument("--kills", type=int, default=20, help="kill -9 of a random worker")
    chaos.add_argument(
        "--time-scale", type=float, default=120.0,
        help="divide simulated delays and SLA targets by this",
    )  # fmt: skip
    chaos.add_argument(
        "--pause", type=float, default=10.0,
        help="seconds one worker is stopped (SIGSTOP), past the session timeout (0: none)",
    )  # fmt: skip
    chaos.add_argument(
        "--lag", type=float, default=0.0,
        help="seconds of traffic published before the workers start (input held behind)",
    )  # fmt: skip
    chaos.add_argument("--seed", type=int, default=1, help="seed of the traffic and the chaos")
    chaos.add_argument("--run-dir", type=Path, default=Path(".run/chaos"))
    chaos.add_argument("--out", type=Path, default=Path("bench-results/chaos.json"))
    chaos.set_defaults(run=_run_chaos)


def add_bench(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    bench = commands.add_parser("bench", help="measure throughput, delay, memory, recovery")
    bench.add_argument(
        "--events",
        type=int,
        default=200_000,
        help="exactly this many input events for (a) and (b): the simulator's traffic "
        "(100 events/s on average over its daily profile, none malformed) generated until "
        "there are that many, the first ones in time order kept",
    )
    bench.add_argument(
        "--repeats",
        type=int,
        default=3,
        help="runs of (a) and (b), each on a fresh broker and worker; medians are reported",
    )
    bench.add_argument(
        "--only",
        choices=("throughput", "hop"),
        default=None,
        help="throughput: run (a) and (b) only, not (c) to (f); hop: (a), then what the "
        "normalised topic costs against validating in the timers' consumer (docs/BENCHMARKS.md)",
    )
    bench.add_argument(
        "--open-timers", type=int, default=1_000_000, help="timers held open for (c)-(f)"
    )
    bench.add_argument("--probes", type=int, default=500, help="breaches timed for (c)")
    bench.add_argument(
        "--seed", type=int, default=7, help="simulator seed (same seed and --events, same events)"
    )
    bench.add_argument("--out", type=Path, default=Path("bench-results/bench.json"))
    bench.add_argument(
        "--keep-run-dir", action="store_true", help="keep the workers' and servers' logs"
    )
    bench.add_argument(
        "--log-sink-in-worker",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="run the SLA log sink inside the benchmark's workers, as a worker does by "
        "default (--no-log-sink-in-worker: a worker whose sinks run on their own)",
    )
    bench.set_defaults(run=_run_bench)


def add_bench_policy(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    bench_policy = commands.add_parser(
        "bench-policy", help="measure business-time arithmetic and replay (no broker)"
    )
    bench_policy.add_argument("--events", type=int, default=200_000, help="lines to replay")
    bench_policy.add_argument("--repeats", type=int, default=3, help="runs per figure (median)")
    bench_policy.add_argument("--out", type=Path, default=Path("bench-results/policy.json"))
    bench_policy.set_defaults(run=_run_bench_policy)


def add_bench_recovery(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    bench = commands.add_parser(
        "bench-recovery",
        help="measure a worker's restart and a failover to a standby with N open timers",
    )
    bench.add_argument("--timers", type=int, default=1_000_000, help="open timers to recover")
    bench.add_argument(
        "--store",
        action="append",
        choices=["memory://", "rocksdb://"],
        help="table store to measure (repeat for both; default: memory:// and rocksdb://)",
    )
    bench.add_argument("--partitions", type=int, default=4, help="partitions of every topic")
    bench.add_argument(
        "--standby-replicas", type=int, default=1,
        help="SLAWATCH_TABLE_STANDBY_REPLICAS of both workers for the failover (0: none)",
    )  # fmt: skip
    bench.add_argument("--out", type=Path, default=Path("bench-results/recovery.json"))
    bench.add_argument("--keep-run-dir", action="store_true", help="keep the workers' logs")
    bench.set_defaults(run=_run_bench_recovery)


def add_bench_scale(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    bench = commands.add_parser(
        "bench-scale",
        help="measure events per second with 1, 2, 3 … workers on the same backlog",
    )
    bench.add_argument(
        "--events", type=int, default=200_000,
        help="input events of the backlog (the same as slawatch bench's with the same seed)",
    )  # fmt: skip
    bench.add_argument(
        "--workers", default="1,2,3", help="worker counts to measure, comma-separated"
    )
    bench.add_argument("--partitions", type=int, default=6, help="partitions of every topic")
    bench.add_argument("--repeats", type=int, default=3, help="runs of each count (median)")
    bench.add_argument(
        "--standby-replicas", type=int, default=0,
        help="SLAWATCH_TABLE_STANDBY_REPLICAS of the workers (default 0, the setting's)",
    )  # fmt: skip
    bench.add_argument(
        "--seed", type=int, default=7, help="simulator seed (same seed and --events, same events)"
    )
    bench.add_argument("--out", type=Path, default=Path("bench-results/scale.json"))
    bench.add_argument("--keep-run-dir", action="store_true", help="keep the workers' logs")
    bench.set_defaults(run=_run_bench_scale)


def add_bench_state(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    bench = commands.add_parser(
        "bench-state",
        help="measure the SLA state over a simulated month, with and without retention",
    )
    bench.add_argument("--days", type=int, default=30, help="simulated days")
    bench.add_argument("--rate", type=float, default=1.0, help="events per second (daily mean)")
    bench.add_argument(
        "--retention-s", type=float, default=3 * 86400.0, help="state retention to measure"
    )
    bench.add_argument("--seed", type=int, default=11, help="the simulator's seed")
    bench.add_argument("--out", type=Path, default=Path("bench-results/state.json"))
    bench.set_defaults(run=_run_bench_state)


def add_bench_reports(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    bench = commands.add_parser(
        "bench-reports",
        help="measure the SLA log sink into PostgreSQL and the reports over a large log",
    )
    bench.add_argument("--events", type=int, default=300_000, help="SLA events for (a), (b)")
    bench.add_argument("--cycles", type=int, default=1_000_000, help="log rows for (c)")
    bench.add_argument("--requests", type=int, default=20, help="timed requests per report")
    bench.add_argument("--runs", type=int, default=3, help="runs of (a) and (b) (median)")
    bench.add_argument(
        "--db",
        default=None,
        metavar="URL",
        help="PostgreSQL server to create the databases on (default: a throwaway cluster "
        "of Debian's postgresql)",
    )
    bench.add_argument("--out", type=Path, default=Path("bench-results/reports.json"))
    bench.set_defaults(run=_run_bench_reports)


def add_embedded(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    embedded = commands.add_parser("embedded", help="run the embedded broker and Redis only")
    embedded.add_argument("--run-dir", type=Path, default=Path(".run/embedded"))
    embedded.set_defaults(run=_run_embedded)
