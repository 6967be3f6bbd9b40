"""The ``slawatch`` command line: the parser, and one place that turns failures into
one line.

Every failure an operator can cause (bad settings, an unreachable broker, a missing
component) ends in one line on stderr and a non-zero exit, never a traceback; set
``SLAWATCH_DEBUG=1`` to get the traceback of an unexpected error.

The commands live by group: :mod:`slawatch.cli.worker` (worker, topics, status, config),
:mod:`slawatch.cli.schemas`, :mod:`slawatch.cli.policy` (check-config, policy publish,
replay) and the development tools' :mod:`slawatch.dev.commands` (simulate, demo, bench,
bench-policy, embedded).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from slawatch.cli import policy, schemas, worker
from slawatch.dev import commands as dev
from slawatch.errors import SlawatchError

#: Each adds one command; in the order ``slawatch --help`` lists them.
COMMANDS = (
    worker.add_worker,
    worker.add_topics,
    dev.add_simulate,
    worker.add_status,
    worker.add_config,
    schemas.add_schemas,
    policy.add_check_config,
    policy.add_policy,
    policy.add_replay,
    dev.add_demo,
    dev.add_bench,
    dev.add_bench_policy,
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
