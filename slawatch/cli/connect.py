"""``slawatch connect``: connectors that produce other systems' records as input events.

``slawatch connect asterisk PATH`` reads an Asterisk ``queue_log`` (slawatch/connectors/).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
from pathlib import Path

from slawatch.config.settings import load_settings
from slawatch.errors import SlawatchError

log = logging.getLogger(__name__)


def _run_asterisk(args: argparse.Namespace) -> int:
    from slawatch.connectors.offsets import default_state_file
    from slawatch.connectors.queue_log import Layout
    from slawatch.connectors.runner import AsteriskConnector, ConnectorOptions
    from slawatch.core.clock import SystemClock

    settings = load_settings(args.config)
    path: Path = args.path
    if not args.follow and not path.is_file():
        raise SlawatchError(f"connect asterisk: {path}: no such file")
    if args.batch_lines < 1 or args.poll_interval <= 0 or args.progress_interval <= 0:
        raise SlawatchError(
            "connect asterisk: --batch-lines, --poll-interval and --progress-interval "
            "must be positive"
        )
    options = ConnectorOptions(
        path=path,
        state_file=args.state_file or default_state_file(settings.data_dir, path),
        layout=Layout(args.layout),
        follow=args.follow,
        from_end=args.from_end,
        poll_interval_s=args.poll_interval,
        progress_interval_s=args.progress_interval,
        batch_lines=args.batch_lines,
        tenant=args.tenant,
    )
    connector = AsteriskConnector(settings, options, SystemClock())

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            loop.add_signal_handler(sig, stop.set)
        await connector.run(stop)

    log.info("asterisk: read position saved in %s", options.state_file)
    asyncio.run(run())
    print(connector.progress.line(path), flush=True)
    return 0


def add_connect(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    connect = commands.add_parser(
        "connect", help="produce another system's records as input events (asterisk)"
    )
    sources = connect.add_subparsers(dest="source", required=True, metavar="SOURCE")
    asterisk = sources.add_parser(
        "asterisk",
        help="read an Asterisk queue_log (once, or following it) into the calls topic",
        description="Read an Asterisk queue_log file and produce its call events to the "
        "calls topic, keyed by call id; unreadable lines go to the dead-letter topic. The "
        "read position is saved after every batch the broker acknowledged, so a restart "
        "resumes where the last one stopped.",
    )
    asterisk.add_argument("path", type=Path, help="the queue_log file")
    asterisk.add_argument(
        "--follow",
        action="store_true",
        help="keep reading as the file grows, like tail -F (through rotation and truncation)",
    )
    asterisk.add_argument(
        "--from-end",
        action="store_true",
        help="with no saved position, start at the file's end (default: its start)",
    )
    asterisk.add_argument(
        "--layout",
        choices=("auto", "standard", "pbxware"),
        default="auto",
        help="standard: epoch|callid|queue|agent|EVENT|data...; pbxware: PBXware's CSV "
        "export; auto (default): each line says which",
    )
    asterisk.add_argument(
        "--state-file",
        type=Path,
        default=None,
        help="where the read position is saved (default: "
        "<data_dir>/connectors/asterisk-<file>-<hash>.json)",
    )
    asterisk.add_argument("--tenant", default=None, help="tenant given to every event")
    asterisk.add_argument(
        "--poll-interval", type=float, default=0.5, metavar="S",
        help="seconds between looks at a quiet file when following (default 0.5)",
    )  # fmt: skip
    asterisk.add_argument(
        "--progress-interval", type=float, default=10.0, metavar="S",
        help="seconds between progress lines (default 10)",
    )  # fmt: skip
    asterisk.add_argument(
        "--batch-lines", type=int, default=5000, metavar="N",
        help="most lines per batch; the position is saved after each (default 5000)",
    )  # fmt: skip
    asterisk.set_defaults(run=_run_asterisk)
