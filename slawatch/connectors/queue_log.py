"""Read one Asterisk ``queue_log`` line, in either layout, as a :class:`QueueLogLine`.

Two layouts are read:

- **standard**, what Asterisk's queue application writes to ``/var/log/asterisk/queue_log``:
  ``epoch|callid|queue|agent|EVENT|data1|data2|...`` (pipe-separated, epoch seconds);
- **pbxware**, Bicom PBXware's export of its ``queue_log`` table, CSV with the header
  ``uid,date_time,callid,queue_name,type,event,param1,param2,param3,entpos,expos,htime,
  ttime,time``. Its queue events keep the caller id in ``param1`` and the numbers in
  ``entpos`` (position on entry), ``expos`` (position on exit), ``htime`` (hold or wait
  seconds) and ``ttime`` (talk seconds); they are put back in the standard data order
  (:data:`PBXWARE_DATA`), so that both layouts give the same line (and the same event ids).

Pure: no I/O. A line that cannot be read raises :class:`UnreadableLine` with the
dead-letter reason and what exactly was wrong.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from slawatch.schemas.reasons import RejectReason

#: A longer line is refused (``oversized``): Asterisk's lines are a few hundred bytes.
MAX_LINE_BYTES: Final = 64 * 1024
PBXWARE_HEADER: Final = "uid,date_time,callid,queue_name,type,event,"
PBXWARE_COLUMNS: Final = (
    *("uid", "date_time", "callid", "queue_name", "type", "event", "param1", "param2"),
    *("param3", "entpos", "expos", "htime", "ttime"),
)

_PBXWARE = re.compile(r"^\d+,\d+,")
_EPOCH = re.compile(r"^\d{1,12}(?:\.\d{1,6})?$")


class Layout(StrEnum):
    """The layout of a queue_log file."""

    AUTO = "auto"
    """Each line says which: ``uid,epoch,...`` is an export row, one with pipes standard."""
    STANDARD = "standard"
    PBXWARE = "pbxware"


class UnreadableLine(ValueError):
    """A line that is no queue_log line: its dead-letter reason and detail."""

    def __init__(self, reason: RejectReason, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True, slots=True)
class QueueLogLine:
    """One queue_log line in the standard order."""

    #: The epoch seconds as written (an integer, or seconds with a fraction).
    epoch: str
    #: The caller channel's uniqueid (``NONE`` on queue-wide lines).
    callid: str
    #: The queue (``NONE`` when none).
    queue: str
    #: The member: ``Agent/1141``, ``SIP/alice``, ``Local/...`` (``NONE`` when none).
    agent: str
    #: The verb: ``ENTERQUEUE``, ``CONNECT``, ...
    event: str
    #: The verb's data fields, trailing empty ones left out.
    data: tuple[str, ...]

    @property
    def epoch_ms(self) -> int:
        """When Asterisk wrote it, in epoch milliseconds."""
        seconds, _, fraction = self.epoch.partition(".")
        return int(seconds) * 1000 + int((fraction + "000")[:3])

    def field(self, index: int) -> str:
        """Data field ``index`` (0-based), empty when absent."""
        return self.data[index] if index < len(self.data) else ""

    def text(self) -> str:
        """The line in the standard layout (trailing empty fields left out)."""
        return "|".join((self.epoch, self.callid, self.queue, self.agent, self.event, *self.data))


#: Verb -> the PBXware columns that make its standard data fields, in order (an empty
#: name: an empty field). Other verbs take ``param1..3``.
PBXWARE_DATA: Final[dict[str, tuple[str, ...]]] = {
    "ENTERQUEUE": ("", "param1", "entpos"),  # url, callerid, position
    "CONNECT": ("htime", "param2", "param3"),  # holdtime, bridged uniqueid, ringtime
    "COMPLETECALLER": ("htime", "ttime", "entpos"),  # holdtime, calltime, origposition
    "COMPLETEAGENT": ("htime", "ttime", "entpos"),
    "ABANDON": ("expos", "entpos", "htime"),  # position, origposition, waittime
    "EXITWITHTIMEOUT": ("expos", "entpos", "htime"),
    "EXITEMPTY": ("expos", "entpos", "htime"),
    "EXITWITHKEY": ("param2", "expos", "entpos", "htime"),  # key, position, orig, wait
    "RINGNOANSWER": ("htime",),  # ring time, milliseconds
    # extension, context, holdtime, calltime, origposition (param1 is the caller id)
    "TRANSFER": ("param2", "param3", "htime", "ttime", "entpos"),
    "BLINDTRANSFER": ("param2", "param3", "htime", "ttime", "entpos"),
    "ATTENDEDTRANSFER": ("param2", "param3", "htime", "ttime", "entpos"),
    "QUEUESTART": (),
    "CONFIGRELOAD": (),
    "ADDMEMBER": (),
    "REMOVEMEMBER": (),
}


def is_header(text: str) -> bool:
    """True for the PBXware export's header line (skipped, not refused)."""
    return text.startswith(PBXWARE_HEADER)


def parse_line(raw: bytes, layout: Layout = Layout.AUTO) -> QueueLogLine | None:
    """The line (without its newline) as a :class:`QueueLogLine`; None for a blank line or
    the PBXware header. Raise :class:`UnreadableLine` for anything else that is not one."""
    if len(raw) > MAX_LINE_BYTES:
        raise UnreadableLine(
            RejectReason.OVERSIZED, f"line is {len(raw)} bytes, the limit is {MAX_LINE_BYTES}"
        )
    try:
        text = raw.decode("utf-8").rstrip("\r")
    except UnicodeDecodeError as exc:
        raise UnreadableLine(RejectReason.INVALID_VALUE, f"not UTF-8 (byte {exc.start})") from None
    if not text.strip() or is_header(text):
        return None
    if layout is Layout.AUTO:
        if _PBXWARE.match(text):
            layout = Layout.PBXWARE
        elif "|" in text:
            layout = Layout.STANDARD
        else:
            raise UnreadableLine(
                RejectReason.MISSING_FIELD,
                "neither epoch|callid|queue|agent|EVENT|... nor a PBXware export row",
            )
    if layout is Layout.STANDARD:
        return _standard(text)
    return _pbxware(text)


def _standard(text: str) -> QueueLogLine:
    fields = text.split("|")
    if len(fields) < 5:
        raise UnreadableLine(
            RejectReason.MISSING_FIELD,
            f"{len(fields)} fields, a queue_log line has at least 5 "
            "(epoch|callid|queue|agent|EVENT)",
        )
    epoch, callid, queue, agent, event, *data = fields
    return _line(epoch, callid, queue, agent, event, data)


def _pbxware(text: str) -> QueueLogLine:
    try:
        rows = list(csv.reader([text]))
    except csv.Error as exc:
        raise UnreadableLine(RejectReason.INVALID_VALUE, f"not a CSV row: {exc}") from None
    row = rows[0] if rows else []
    if len(row) < len(PBXWARE_COLUMNS):
        raise UnreadableLine(
            RejectReason.MISSING_FIELD,
            f"{len(row)} columns, a PBXware export row has at least {len(PBXWARE_COLUMNS)} "
            f"({','.join(PBXWARE_COLUMNS)},...)",
        )
    column = dict(zip(PBXWARE_COLUMNS, row, strict=False))
    event = column["event"]
    names = PBXWARE_DATA.get(event, ("param1", "param2", "param3"))
    data = [column[name] if name else "" for name in names]
    return _line(
        column["date_time"], column["callid"], column["queue_name"], column["type"], event, data
    )


def _line(
    epoch: str, callid: str, queue: str, agent: str, event: str, data: list[str]
) -> QueueLogLine:
    if not _EPOCH.match(epoch):
        raise UnreadableLine(
            RejectReason.BAD_TIMESTAMP, f"epoch {epoch[:40]!r} is not epoch seconds"
        )
    if not event:
        raise UnreadableLine(RejectReason.MISSING_FIELD, "the event (5th field) is empty")
    while data and not data[-1]:
        data.pop()
    return QueueLogLine(epoch, callid, queue, agent, event, tuple(data))
