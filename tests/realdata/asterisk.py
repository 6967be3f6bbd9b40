"""A real Asterisk ``queue_log`` (../shared/data/asterisk_queue_log, PBXware, Nov-Dec 2018).

Two readings of it, kept apart on purpose. :func:`read_lines` splits the standard lines
(``epoch|callid|queue|agent|EVENT|data1|data2|data3``) with nothing of slawatch's: the
independent side of the tests reads Asterisk's own hold and wait times from it.
:func:`connector_events` is the product's reading, the one ``slawatch connect asterisk``
produces (slawatch/connectors/): the side under test. The export stops at 1,000 rows, so
its last calls may have no outcome.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DATA = Path(__file__).resolve().parents[3] / "shared" / "data" / "asterisk_queue_log"
STANDARD = DATA / "queue_log_standard_derived.log"
PBXWARE = DATA / "queue_log_pbxware_export.csv"


@dataclass(frozen=True)
class QueueLogLine:
    epoch_s: int
    callid: str
    queue: str
    agent: str
    event: str
    data: tuple[str, ...]


def read_lines(path: Path = STANDARD) -> Iterator[QueueLogLine]:
    for raw in path.read_text(encoding="utf-8").splitlines():
        epoch, callid, queue, agent, event, *data = raw.split("|")
        yield QueueLogLine(int(epoch), callid, queue, agent, event, tuple(data))


def connector_events(path: Path = STANDARD) -> Iterator[dict[str, Any]]:
    """The call events the connector makes of the file, in file order."""
    from slawatch.connectors.asterisk import Ignored, to_event
    from slawatch.connectors.queue_log import parse_line

    for raw in path.read_bytes().splitlines():
        line = parse_line(raw)
        if line is not None:
            event = to_event(line)
            if not isinstance(event, Ignored):
                yield event
