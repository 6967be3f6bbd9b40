"""Read a growing log file line by line, like ``tail -F``: through rotation and truncation,
from a saved position.

A position is the file's inode and a byte offset in it: the start of the first line not
yet handed out as done. The follower hands out complete lines only (a last line without
its newline is left for later, when the writer finishes it) each with the position just
after it; the caller saves that position once the line's consequences are safe (the
connector: once the broker acknowledged), so a restart resumes there.

Rotation is seen as the path naming another inode: the old file is read to its end first
(its last line counts even without a newline: nobody writes to it any more), then the new
one from its start. Truncation is seen as the same inode shorter than the offset: the
file is read again from its start. A saved position whose inode is no longer at the path
(rotated while the connector was stopped) is looked for among the files of the same
directory (``queue_log.1``, ``queue_log-20261203`` ...), and read to its end first.

Blocking file reads of at most ``chunk_bytes``: cheap enough to call from an event loop.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from slawatch.connectors.queue_log import MAX_LINE_BYTES

CHUNK_BYTES: Final = 1024 * 1024


@dataclass(frozen=True, slots=True)
class Position:
    """A place in a file: its inode and the byte offset of the next line to read."""

    inode: int
    offset: int


@dataclass(frozen=True, slots=True)
class Line:
    """One line read (without its newline), where it starts, and the position after it."""

    raw: bytes
    start: int
    after: Position


@dataclass(frozen=True, slots=True)
class Switch:
    """What the follower did about the file, for the log: rotation, truncation, resume."""

    what: str


class FileFollower:
    """Hand out the complete lines of ``path`` from ``start`` (None: the file's start, or
    its end when ``from_end``)."""

    def __init__(
        self,
        path: Path,
        start: Position | None = None,
        *,
        from_end: bool = False,
        chunk_bytes: int = CHUNK_BYTES,
    ) -> None:
        self.path = path
        # A chunk holds at least one whole line of the longest kind read.
        self.chunk_bytes = max(chunk_bytes, MAX_LINE_BYTES + 1)
        self._fd: int | None = None
        self._inode = -1
        self._offset = 0
        #: Said once each: "rotated", "truncated", "resumed in <file>".
        self.switches: list[Switch] = []
        self._start = start
        self._from_end = from_end

    @property
    def position(self) -> Position | None:
        """Where the next line read starts (None before the file first exists)."""
        return None if self._fd is None else Position(self._inode, self._offset)

    def bytes_behind(self) -> int:
        """Bytes of the followed files not handed out yet (the path's, and the rest of a
        rotated file being finished)."""
        if self._fd is None:
            return _size(self.path)
        behind = max(os.fstat(self._fd).st_size - self._offset, 0)
        if _inode(self.path) not in (None, self._inode):
            behind += _size(self.path)
        return behind

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def read(self, max_lines: int) -> list[Line]:
        """Up to ``max_lines`` complete lines; none when there is nothing new yet."""
        if self._fd is None and not self._open_first():
            return []
        assert self._fd is not None
        lines = list(self._lines(max_lines))
        if lines:
            return lines
        # Nothing new in the open file: has the path moved on to another file?
        inode, size = _inode(self.path), os.fstat(self._fd).st_size
        if inode is not None and inode != self._inode:
            rest = self._rest()  # the old file's last line, even without its newline
            self.switches.append(Switch(f"rotated: {self.path} is a new file"))
            self._open(self.path, 0)
            return rest + list(self._lines(max_lines))
        if size < self._offset:
            self.switches.append(
                Switch(f"truncated: {self.path} shrank to {size} bytes, read again from 0")
            )
            self._offset = 0
            return list(self._lines(max_lines))
        return []

    def _open_first(self) -> bool:
        """Open the file to read first, from the saved position; False while none exists."""
        start = self._start
        saved = start is not None
        inode = _inode(self.path)
        if start is not None and inode != start.inode:
            moved = _find_inode(self.path.parent, start.inode)
            if moved is not None:
                self.switches.append(Switch(f"resumed in {moved} (rotated while stopped)"))
                self._open(moved, start.offset)
                return True
            if inode is not None:
                self.switches.append(
                    Switch(
                        f"the file read before (inode {start.inode}) is gone; "
                        f"{self.path} is read from its start"
                    )
                )
            start = None
        if inode is None:
            return False
        if start is None:
            # --from-end only without a saved position: with one, the file read before
            # is gone and this one is all new since.
            self._open(self.path, _size(self.path) if self._from_end and not saved else 0)
            return True
        self._open(self.path, start.offset)
        if os.fstat(self._fd or 0).st_size < start.offset:  # truncated while stopped
            self.switches.append(Switch(f"truncated while stopped: {self.path} read from 0"))
            self._offset = 0
        return True

    def _open(self, path: Path, offset: int) -> None:
        self.close()
        fd = os.open(path, os.O_RDONLY)
        self._fd, self._inode, self._offset = fd, os.fstat(fd).st_ino, offset

    def _lines(self, max_lines: int) -> Iterator[Line]:
        assert self._fd is not None
        count = 0
        while count < max_lines:
            chunk = os.pread(self._fd, self.chunk_bytes, self._offset)
            end = chunk.rfind(b"\n")
            if end < 0:
                if len(chunk) <= MAX_LINE_BYTES:
                    return  # a line still being written (or nothing)
                end = len(chunk) - 1  # no newline in sight: hand the runaway out as is
            start = 0
            while start <= end and count < max_lines:
                stop = chunk.find(b"\n", start, end + 1)
                stop = end if stop < 0 else stop
                raw = chunk[start:stop] if chunk[stop : stop + 1] == b"\n" else chunk[start:]
                after = self._offset + stop + 1
                yield Line(raw, self._offset + start, Position(self._inode, after))
                start = stop + 1
                count += 1
            self._offset += start

    def finish(self) -> list[Line]:
        """Whatever is left of the file, its last line without a newline included: for a
        read to the end that does not follow (an export need not end with a newline)."""
        if self._fd is None and not self._open_first():
            return []
        return self._rest()

    def _rest(self) -> list[Line]:
        """Whatever is left of the open file, its last line without a newline included."""
        assert self._fd is not None
        lines = list(self._lines(2**31))
        tail = os.pread(self._fd, MAX_LINE_BYTES + 1, self._offset)
        if tail:
            end = self._offset + len(tail)
            lines.append(Line(tail, self._offset, Position(self._inode, end)))
            self._offset = end
        return lines


def _inode(path: Path) -> int | None:
    try:
        return path.stat().st_ino
    except FileNotFoundError:
        return None


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def _find_inode(folder: Path, inode: int) -> Path | None:
    """The file of ``folder`` with that inode (a rotated log), if any."""
    try:
        entries = list(os.scandir(folder))
    except FileNotFoundError:
        return None
    for entry in entries:
        if entry.is_file() and entry.inode() == inode:
            return Path(entry.path)
    return None
