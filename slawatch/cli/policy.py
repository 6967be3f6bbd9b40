"""SLA policies: ``check-config``, ``policy publish`` and the offline ``replay``."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from slawatch.config.settings import load_settings
from slawatch.errors import SlawatchError

if TYPE_CHECKING:
    from slawatch.policy import PolicyFileError
    from slawatch.reports.store import LogStore


def _print_problems(exc: PolicyFileError) -> None:
    """Every problem of a policy file, one per line, on stderr."""
    for line in exc.lines():
        print(line, file=sys.stderr)


def _run_check_config(args: argparse.Namespace) -> int:
    if args.file is None and args.routing is None:
        raise SlawatchError("check-config: give a policy file, --routing FILE, or both")
    ok = True
    if args.file is not None:
        ok = _check_policy_file(args.file)
    if args.routing is not None:
        ok = _check_routing_file(args.routing) and ok
    return 0 if ok else 1


def _check_policy_file(path: Path) -> bool:
    from slawatch.policy import PolicyFileError, load_policy, summary

    try:
        policy = load_policy(path)
    except PolicyFileError as exc:
        _print_problems(exc)
        n = len(exc.problems)
        print(f"slawatch: {path}: {n} problem{'s' if n > 1 else ''}", file=sys.stderr)
        return False
    print(f"{path}: valid; {summary(policy)}")
    return True


def _check_routing_file(path: Path) -> bool:
    """The alert routing file: receivers, routes and calendars checked, secrets resolved
    (what a notifier would load)."""
    from slawatch.alerting.config import RoutingFileError, load_routing

    try:
        routing = load_routing(path)
    except RoutingFileError as exc:
        for line in exc.lines():
            print(line, file=sys.stderr)
        n = len(exc.problems)
        print(f"slawatch: {path}: {n} problem{'s' if n > 1 else ''}", file=sys.stderr)
        return False
    print(f"{path}: valid; {routing.summary()}")
    return True


def _run_publish(args: argparse.Namespace) -> int:
    from slawatch.core.clock import SystemClock
    from slawatch.policy import PolicyFileError, parse_policy, read_policy_text, summary
    from slawatch.streams.policy_topic import publish_policy

    settings = load_settings(args.config)
    try:
        text = read_policy_text(args.file)
        policy = parse_policy(text, str(args.file))  # the check every worker makes, first
    except PolicyFileError as exc:
        _print_problems(exc)
        print(f"slawatch: {args.file} not published; the policy in force stays", file=sys.stderr)
        return 1
    asyncio.run(publish_policy(settings, args.file, text, SystemClock()))
    print(f"published to {settings.topic_policy}: {summary(policy)}")
    return 0


@contextlib.contextmanager
def _sla_log_output(out: Path | None) -> Iterator[BinaryIO]:
    """Where replay writes the SLA log (stdout without ``--out``).

    Checked on entry, before the replay starts: a missing folder or one slawatch cannot
    write in is a one-line error at once, not after the whole replay. The log goes to a
    temporary file next to ``out``, renamed to ``out`` when complete, so a replay that fails
    or is stopped leaves no partial log and any earlier file as it was.
    """
    if out is None:
        yield sys.stdout.buffer
        return
    if out.is_dir():
        raise SlawatchError(f"--out {out}: is a folder; give the SLA log's file name")
    if out.exists() and not out.is_file():  # a device or a pipe: written as it is
        try:
            device = out.open("wb")
        except OSError as exc:
            raise SlawatchError(f"--out {out}: cannot write: {exc.strerror}") from None
        with device:
            yield device
        return
    folder = out.parent
    if not folder.is_dir():
        raise SlawatchError(f"--out {out}: there is no folder {folder}; create it first")
    if out.exists() and not os.access(out, os.W_OK):
        raise SlawatchError(f"--out {out}: the file is not writable")
    partial = folder / f".{out.name}.{os.getpid()}.partial"
    try:
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    except OSError as exc:
        raise SlawatchError(f"--out {out}: cannot write in {folder}: {exc.strerror}") from None
    try:
        with os.fdopen(fd, "wb") as stream:
            yield stream
        os.replace(partial, out)
    finally:
        partial.unlink(missing_ok=True)


def _run_replay(args: argparse.Namespace) -> int:
    import orjson

    from slawatch.core.policy import builtin_policy
    from slawatch.core.timestamps import InvalidTimestamp, parse_timestamp_ms
    from slawatch.policy import load_policy
    from slawatch.replay.engine import replay
    from slawatch.reports.folding import write_rows
    from slawatch.schemas.cycle_log import as_text

    # The outputs are checked first, before anything is read. Ctrl-C: the replay stops
    # (the pool's processes leave it to this one), the partial log is removed, and main()
    # says so in one line. With --out-db alone, no JSONL is written.
    to_file = args.out is not None or args.out_db is None
    with contextlib.ExitStack() as outputs:
        out = outputs.enter_context(_sla_log_output(args.out)) if to_file else None
        store = outputs.enter_context(_log_store(args.out_db)) if args.out_db else None
        policy = load_policy(args.policy) if args.policy else builtin_policy()
        try:
            as_of = parse_timestamp_ms(args.as_of) if args.as_of else int(time.time() * 1000)
        except InvalidTimestamp as exc:
            raise SlawatchError(f"--as-of: {exc}") from None
        settings = load_settings(args.config)
        try:
            source = args.events.open("rb")
        except OSError as exc:
            raise SlawatchError(f"{args.events}: cannot read: {exc.strerror}") from None
        started = time.perf_counter()
        with source:
            records, report = replay(
                source.readlines() if args.jobs > 1 else source,
                policy,
                as_of_ms=as_of,
                jobs=args.jobs,
                max_event_bytes=settings.max_event_bytes,
                max_future_skew_ms=int(settings.max_future_skew_s * 1000),
            )
        if out is not None:
            for record in records:
                out.write(orjson.dumps(as_text(record)) + b"\n")
        seconds = time.perf_counter() - started
        stored = ""
        if store is not None:
            written = write_rows(store, records, int(time.time() * 1000))
            stored = f"; {written} rows into {store.url}"
    print(
        f"replay: {report.summary()}; {len(records)} cycles under policy {policy.version}, "
        f"as of {args.as_of or 'now'}; {report.lines / max(seconds, 1e-9):,.0f} lines/s" + stored,
        file=sys.stderr,
    )
    return 0


@contextlib.contextmanager
def _log_store(url: str) -> Iterator[LogStore]:
    """The SLA log database ``--out-db`` names, reached and migrated before the replay."""
    from slawatch.reports.store import LogStore

    with LogStore.open(url) as store:
        yield store


def add_check_config(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    check = commands.add_parser(
        "check-config", help="check an SLA policy file and/or an alert routing file"
    )
    check.add_argument("file", type=Path, nargs="?", default=None, help="SLA policy file")
    check.add_argument(
        "--routing",
        type=Path,
        default=None,
        help="alert routing file (receivers, routes; README, Alert routing)",
    )
    check.set_defaults(run=_run_check_config)


def add_policy(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    policy = commands.add_parser("policy", help="publish an SLA policy to every worker")
    policy.add_argument("action", choices=("publish",))
    policy.add_argument("file", type=Path)
    policy.set_defaults(run=_run_publish)


def add_replay(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
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
    replay.add_argument(
        "--out-db",
        default=None,
        metavar="URL",
        help="also fold the SLA log into this database (sqlite:///file or postgresql://…), "
        "as the log sink does; without --out, no JSONL is written",
    )
    replay.set_defaults(run=_run_replay)
