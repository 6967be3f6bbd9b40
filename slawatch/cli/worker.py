"""Running and inspecting workers: ``worker``, ``notifier``, ``log-sink``, ``ingest-http``,
``topics``, ``status``, ``config``."""

from __future__ import annotations

import argparse
import asyncio

from slawatch.config.settings import Settings, load_settings


def _run_worker(args: argparse.Namespace) -> int:
    from slawatch.worker.runtime import run_worker

    run_worker(load_settings(args.config))
    return 0


def _run_notifier(args: argparse.Namespace) -> int:
    from slawatch.worker.notifier import run_notifier

    run_notifier(load_settings(args.config))
    return 0


def _run_log_sink(args: argparse.Namespace) -> int:
    from slawatch.worker.log_sink import migrate_log_store, run_log_sink

    settings = load_settings(args.config)
    if args.migrate:
        applied = migrate_log_store(settings)
        where = settings.log_store.masked()
        print(f"{where}: applied {', '.join(applied)}" if applied else f"{where}: up to date")
        return 0
    run_log_sink(settings)
    return 0


def _run_ingest_http(args: argparse.Namespace) -> int:
    from slawatch.worker.http_ingest import run_ingest_http

    run_ingest_http(load_settings(args.config))
    return 0


def _run_topics(args: argparse.Namespace) -> int:
    from slawatch.streams.topics import ensure_topics, topic_specs

    settings = load_settings(args.config)
    if args.action == "create":
        created = asyncio.run(ensure_topics(settings))
        print(f"created: {', '.join(created) if created else 'none (all exist)'}")
    for spec in topic_specs(settings):
        print(f"{spec.name:<28} {spec.partitions:>3} partitions  {spec.role}")
    return 0


def _run_status(args: argparse.Namespace) -> int:
    from slawatch.streams.registry import read_workers

    settings = load_settings(args.config)
    workers = asyncio.run(read_workers(settings))
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


def _run_config(args: argparse.Namespace) -> int:
    if args.markdown:
        print(Settings.markdown_table())
        return 0
    for env, value, _default, doc in load_settings(args.config).describe():
        print(f"{env:<36} {value:<32} {doc}")
    return 0


def add_worker(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    worker = commands.add_parser("worker", help="run a worker")
    worker.set_defaults(run=_run_worker)


def add_notifier(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    notifier = commands.add_parser(
        "notifier",
        help="run a notifier alone: SLA events to receivers (SLAWATCH_ALERT_ROUTING_FILE)",
    )
    notifier.set_defaults(run=_run_notifier)


def add_log_sink(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    sink = commands.add_parser(
        "log-sink",
        help="run an SLA log sink alone: SLA events into the log database (SLAWATCH_LOG_STORE_URL)",
    )
    sink.add_argument(
        "--migrate",
        action="store_true",
        help="apply the log database's schema migrations and exit",
    )
    sink.set_defaults(run=_run_log_sink)


def add_ingest_http(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    ingest = commands.add_parser(
        "ingest-http",
        help="serve HTTP ingest alone: POST /ingest/tickets|chats|calls to the input topics "
        "(SLAWATCH_HTTP_INGEST_TOKEN or SLAWATCH_HTTP_INGEST_HMAC_SECRET)",
    )
    ingest.set_defaults(run=_run_ingest_http)


def add_topics(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    topics = commands.add_parser("topics", help="create or list the topics")
    topics.add_argument("action", choices=("create", "list"))
    topics.set_defaults(run=_run_topics)


def add_status(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    status = commands.add_parser("status", help="list live workers (from Redis)")
    status.set_defaults(run=_run_status)


def add_config(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    config = commands.add_parser("config", help="print the effective settings")
    config.add_argument(
        "--markdown", action="store_true", help="print the README's table of every setting"
    )
    config.set_defaults(run=_run_config)
