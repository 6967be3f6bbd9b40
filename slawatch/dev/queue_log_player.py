"""Play a recorded Asterisk ``queue_log`` into a file as if a PBX were writing it now: the
demo's live source for ``slawatch connect asterisk --follow``.

Each line is written when its turn comes, with its time moved to now and the gaps
divided by ``time_scale`` (the demo divides the SLA targets by the same number, so a
call's hold against its target is what it was). While no call waits in a queue a gap is
cut to at most ``idle_gap_s`` of recorded time (nights and quiet hours pass in a moment);
a gap while a call waits is kept whole, so hold and wait times stay as recorded. The
copy is in the standard layout, whichever layout the recording has; a line that is no
queue_log line is written as it is (the connector dead-letters it).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

from slawatch.connectors.queue_log import QueueLogLine, UnreadableLine, parse_line

_ENTERS = {"ENTERQUEUE"}
_LEAVES = {"CONNECT", "ABANDON", "EXITEMPTY", "EXITWITHTIMEOUT", "EXITWITHKEY"}


def moved_lines(
    raw_lines: Iterable[bytes], *, start_ms: int, time_scale: float, idle_gap_s: float = 5.0
) -> Iterator[tuple[int, bytes]]:
    """(when to write it, epoch ms; the line with its new time) for each line to write."""
    waiting: set[str] = set()
    previous_ms: int | None = None
    at_ms = float(start_ms)
    for raw in raw_lines:
        try:
            line = parse_line(raw)
        except UnreadableLine:
            yield round(at_ms), raw
            continue
        if line is None:
            continue
        if previous_ms is not None:
            gap_ms = max(line.epoch_ms - previous_ms, 0)
            if not waiting:
                gap_ms = min(gap_ms, int(idle_gap_s * 1000))
            at_ms += gap_ms / time_scale
        previous_ms = line.epoch_ms
        if line.event in _ENTERS:
            waiting.add(line.callid)
        elif line.event in _LEAVES:
            waiting.discard(line.callid)
        yield round(at_ms), _with_time(line, round(at_ms))


def _with_time(line: QueueLogLine, at_ms: int) -> bytes:
    epoch = f"{at_ms // 1000}.{at_ms % 1000:03d}"
    fields = (epoch, line.callid, line.queue, line.agent, line.event, *line.data)
    return "|".join(fields).encode()


async def play(
    recorded: list[bytes], target: Path, *, time_scale: float, stop: asyncio.Event
) -> int:
    """Append the ``recorded`` lines to ``target`` as their moved times come; return how
    many were written (all of them, unless ``stop`` was set first)."""
    start_ms = time.time_ns() // 1_000_000
    written = 0
    with target.open("ab") as out:
        for at_ms, raw in moved_lines(recorded, start_ms=start_ms, time_scale=time_scale):
            delay_s = at_ms / 1000 - time.time()
            if delay_s > 0:
                out.flush()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), delay_s)
            if stop.is_set():
                break
            out.write(raw + b"\n")
            written += 1
    return written
