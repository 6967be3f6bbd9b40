"""Lines per second of ``slawatch connect asterisk`` on the real queue_log sample.

Two measures (docs/BENCHMARKS.md, "Asterisk connector"):

1. parse, map and validate only (what the connector does per line without the broker):
   the PBXware export and the standard file, each read 200 times, best of 5;
2. end to end into the embedded broker, as the command runs it (batches of 5,000 lines,
   every batch acknowledged and its position saved), topic creation and the producer's
   start included: each file as it is, then copied 100 times into one file (the
   export: 100,001 lines), one run each.

Run: ``python scripts/bench_asterisk_connector.py`` (with slawatch installed).
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path

from slawatch.config.settings import load_settings
from slawatch.connectors.runner import AsteriskConnector, ConnectorOptions
from slawatch.core.clock import SystemClock
from slawatch.dev.embedded import EmbeddedBroker

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "asterisk_queue_log"
FILES = (DATA / "queue_log_pbxware_export.csv", DATA / "queue_log_standard_derived.log")


def say(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def parse_map_validate(tmp: Path) -> None:
    for path in FILES:
        connector = AsteriskConnector(
            load_settings(None, environ={}),
            ConnectorOptions(path=path, state_file=tmp / "unused.json"),
            SystemClock(),
        )
        lines = path.read_bytes().splitlines() * 200
        best = float("inf")
        for _ in range(5):
            started = time.perf_counter()
            for raw in lines:
                connector.outcome(raw)
            best = min(best, time.perf_counter() - started)
        say(f"parse+map+validate {path.name}: {len(lines):,} lines in {best:.3f} s = "
              f"{len(lines) / best:,.0f} lines/s")  # fmt: skip


async def end_to_end(tmp: Path, broker: EmbeddedBroker, copies: int) -> None:
    for n, path in enumerate(FILES):
        copy = tmp / f"copy-{copies}-{n}.log"
        body = path.read_bytes()
        header, rest = body.split(b"\n", 1) if body.startswith(b"uid,") else (b"", body)
        copy.write_bytes((header + b"\n" if header else b"") + rest * copies)
        settings = load_settings(
            None, environ={}, broker_url=broker.url, data_dir=tmp / "data",
            topic_calls=f"bench{copies}-{n}.calls",
            topic_dead_letter=f"bench{copies}-{n}.dead-letter",
        )  # fmt: skip
        connector = AsteriskConnector(
            settings,
            ConnectorOptions(path=copy, state_file=tmp / f"state-{copies}-{n}.json"),
            SystemClock(),
        )
        started = time.perf_counter()
        progress = await connector.run(asyncio.Event())
        seconds = time.perf_counter() - started
        say(f"end to end {path.name} x{copies}: {progress.line(copy)}; {seconds:.2f} s = "
              f"{progress.lines / seconds:,.0f} lines/s, {progress.events / seconds:,.0f} "
              "events/s (topics created included)")  # fmt: skip


def main() -> int:
    say(f"load average before: {os.getloadavg()}, cores {os.cpu_count()}")
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        parse_map_validate(tmp)
        with EmbeddedBroker(tmp / "broker") as broker:
            assert isinstance(broker, EmbeddedBroker)
            for copies in (1, 100):
                asyncio.run(end_to_end(tmp, broker, copies))
    say(f"load average after: {os.getloadavg()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
