"""The ``slawatch`` command line: the parser, and one place that turns failures into
one line.

Every failure an operator can cause (bad settings, an unreachable broker or Redis, a busy
web port, a missing component) ends in one line on stderr, naming the setting to fix
where there is one (``SLAWATCH_BROKER_URL``, ``SLAWATCH_REDIS_URL``, ...), and exit code 1,
never a traceback; set ``SLAWATCH_DEBUG=1`` to get the traceback of an unexpected error.
A command stopped by Ctrl-C or a signal says so in one line too (exit 128 + the signal).
No library log line comes before that line: the places that meet the broker first hold
back the client library's log of the same failure (``slawatch.streams.topics``).

The commands live by group: :mod:`slawatch.cli.worker` (worker, topics, status, config),
:mod:`slawatch.cli.schemas`, :mod:`slawatch.cli.policy` (check-config, policy publish,
replay), :mod:`slawatch.cli.report` (report compliance, report log) and the development
tools' :mod:`slawatch.dev.commands` (simulate, demo, bench, bench-policy, embedded) and
:mod:`slawatch.dev.bench_alerts` (bench-alerts). The connectors' commands (connect
asterisk) are :mod:`slawatch.cli.connect`.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from slawatch.cli import connect, policy, report, schemas, worker
from slawatch.dev import bench_alerts, bench_http
from slawatch.dev import commands as dev
from slawatch.errors import SlawatchError

#: Each adds one command; in the order ``slawatch --help`` lists them.
COMMANDS = (
    worker.add_worker,
    worker.add_notifier,
    worker.add_log_sink,
    worker.add_ingest_http,
    worker.add_topics,
    dev.add_simulate,
    connect.add_connect,
    worker.add_status,
    worker.add_config,
    schemas.add_schemas,
    policy.add_check_config,
    policy.add_policy,
    policy.add_replay,
    report.add_report,
    dev.add_demo,
    dev.add_bench,
    dev.add_bench_policy,
    dev.add_bench_reports,
    dev.add_bench_state,
    dev.add_bench_recovery,
    dev.add_bench_scale,
    dev.add_chaos,
    bench_alerts.add_bench_alerts,
    bench_http.add_bench_http,
    dev.add_embedded,
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="slawatch", description="Live SLA breach monitor.")
    parser.add_argument(
        "--config", type=Path, default=None, help="YAML settings file (or SLAWATCH_CONFIG)"
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add_command in COMMANDS:
        add_command(commands)
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
    except KeyboardInterrupt as exc:
        # Ctrl-C, or slawatch.dev.processes.Stopped (a KeyboardInterrupt with its signal)
        signum = int(getattr(exc, "signum", signal.SIGINT))
        print(f"slawatch: stopped by {signal.Signals(signum).name}", file=sys.stderr)
        return 128 + signum
    except Exception as exc:
        if os.environ.get("SLAWATCH_DEBUG"):
            raise
        print(f"slawatch: {_unexpected(exc)}", file=sys.stderr)
        return 1


#: Where an error from a client library points: the setting that names its server.
_LIBRARY_SETTINGS = {
    "aiokafka": ("the broker", "SLAWATCH_BROKER_URL"),
    "kafka": ("the broker", "SLAWATCH_BROKER_URL"),
    "redis": ("Redis", "SLAWATCH_REDIS_URL"),
}


def _unexpected(exc: Exception) -> str:
    """One line for an error slawatch did not foresee; a client library's error names the
    setting of its server."""
    what = f"{type(exc).__name__}: {exc}"
    library = type(exc).__module__.split(".", 1)[0]
    if library in _LIBRARY_SETTINGS:
        server, setting = _LIBRARY_SETTINGS[library]
        return f"{server} failed: {what}; check {setting} (SLAWATCH_DEBUG=1 shows the traceback)"
    return f"unexpected {what} (SLAWATCH_DEBUG=1 shows the traceback)"


if __name__ == "__main__":
    sys.exit(main())
