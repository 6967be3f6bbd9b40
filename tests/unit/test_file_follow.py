"""Following a log file like ``tail -F`` (slawatch/connectors/follow.py) and saving the
read position (slawatch/connectors/offsets.py), on real files: appends, a line still being
written, rotation (while following and while stopped), truncation."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from slawatch.connectors.follow import FileFollower, Line, Position
from slawatch.connectors.offsets import default_state_file, load_position, save_position
from slawatch.errors import SlawatchError


def append(path: Path, data: bytes) -> None:
    with path.open("ab") as out:
        out.write(data)


def texts(lines: list[Line]) -> list[bytes]:
    return [line.raw for line in lines]


def drain(follower: FileFollower) -> list[Line]:
    """Every line the follower has now (a few reads: one file's lines per read)."""
    lines: list[Line] = []
    for _ in range(5):
        lines += follower.read(100)
    return lines


def test_complete_lines_only_each_with_the_position_after_it(tmp_path: Path) -> None:
    log = tmp_path / "queue_log"
    log.write_bytes(b"a|1\nb|2\nc|")
    follower = FileFollower(log)
    lines = follower.read(100)
    assert texts(lines) == [b"a|1", b"b|2"]
    inode = log.stat().st_ino
    assert [(line.start, line.after) for line in lines] == [
        (0, Position(inode, 4)),
        (4, Position(inode, 8)),
    ]
    assert follower.read(100) == []  # "c|" is still being written
    assert follower.bytes_behind() == 2
    append(log, b"3\n")
    assert texts(follower.read(100)) == [b"c|3"]
    assert follower.bytes_behind() == 0
    append(log, b"d\r\ne\n")
    assert texts(follower.read(1)) == [b"d\r"]  # at most max_lines; \r is the parser's
    assert texts(follower.read(1)) == [b"e"]


def test_a_missing_file_is_waited_for(tmp_path: Path) -> None:
    log = tmp_path / "queue_log"
    follower = FileFollower(log)
    assert follower.read(10) == [] and follower.position is None
    log.write_bytes(b"x\n")
    assert texts(follower.read(10)) == [b"x"]


def test_rotation_finishes_the_old_file_then_reads_the_new_one(tmp_path: Path) -> None:
    log = tmp_path / "queue_log"
    log.write_bytes(b"1\n2\n")
    follower = FileFollower(log)
    assert texts(follower.read(10)) == [b"1", b"2"]
    append(log, b"3\n4-without-newline")  # written before the rotation, not read yet
    log.rename(tmp_path / "queue_log.1")
    log.write_bytes(b"5\n")
    lines = drain(follower)
    assert texts(lines) == [b"3", b"4-without-newline", b"5"]
    assert lines[-1].after == Position(log.stat().st_ino, 2)
    assert [s.what for s in follower.switches] == [f"rotated: {log} is a new file"]
    append(log, b"6\n")
    assert texts(follower.read(10)) == [b"6"]


def test_truncation_reads_the_file_again_from_its_start(tmp_path: Path) -> None:
    log = tmp_path / "queue_log"
    log.write_bytes(b"first line\nsecond line\n")
    follower = FileFollower(log)
    assert len(follower.read(10)) == 2
    with log.open("r+b") as out:  # copytruncate, then a new line
        out.truncate(0)
    append(log, b"new\n")
    lines = follower.read(10)
    assert texts(lines) == [b"new"] and lines[0].start == 0
    assert follower.switches[0].what.startswith("truncated:")


def test_resume_from_a_saved_position(tmp_path: Path) -> None:
    log = tmp_path / "queue_log"
    log.write_bytes(b"1\n2\n3\n")
    first = FileFollower(log)
    saved = first.read(2)[-1].after
    first.close()
    assert texts(FileFollower(log, saved).read(10)) == [b"3"]
    assert texts(FileFollower(log, None, from_end=True).read(10)) == []


def test_a_file_rotated_while_stopped_is_finished_first(tmp_path: Path) -> None:
    log = tmp_path / "queue_log"
    log.write_bytes(b"1\n2\n")
    saved = FileFollower(log).read(1)[-1].after
    append(log, b"3\n")
    os.rename(log, tmp_path / "queue_log-20261203")
    log.write_bytes(b"4\n")
    follower = FileFollower(log, saved)
    assert texts(drain(follower)) == [b"2", b"3", b"4"]
    assert follower.switches[0].what.startswith("resumed in ")
    assert follower.switches[1].what == f"rotated: {log} is a new file"


def test_a_file_gone_while_stopped_reads_the_new_one_from_its_start(tmp_path: Path) -> None:
    log = tmp_path / "queue_log"
    log.write_bytes(b"1\n2\n")
    saved = FileFollower(log).read(1)[-1].after
    log.unlink()
    log.write_bytes(b"x\n")
    follower = FileFollower(log, saved)
    assert texts(follower.read(10)) == [b"x"]
    assert "is gone" in follower.switches[0].what


def test_from_end_does_not_skip_a_new_file_when_the_one_read_before_is_gone(
    tmp_path: Path,
) -> None:
    """--from-end applies only without a saved position: with one, every line of the new
    file was written since the connector stopped."""
    log = tmp_path / "queue_log"
    log.write_bytes(b"1\n2\n")
    saved = FileFollower(log).read(1)[-1].after
    (tmp_path / "archive").mkdir()  # rotated out of the directory (its inode kept: not
    os.rename(log, tmp_path / "archive" / "queue_log.1")  # reused by the new file)
    log.write_bytes(b"x\ny\nz-longer-than-the-old-offset\n")
    follower = FileFollower(log, saved, from_end=True)
    assert texts(drain(follower)) == [b"x", b"y", b"z-longer-than-the-old-offset"]


def test_a_read_to_the_end_takes_a_last_line_without_its_newline(tmp_path: Path) -> None:
    """An export need not end with a newline: without following, its last row counts."""
    log = tmp_path / "export.csv"
    log.write_bytes(b"a\nb\nlast-no-newline")
    follower = FileFollower(log)
    assert texts(follower.read(100)) == [b"a", b"b"]
    assert follower.read(100) == []
    (last,) = follower.finish()
    assert last.raw == b"last-no-newline" and last.after.offset == log.stat().st_size
    assert follower.bytes_behind() == 0 and follower.finish() == []


def test_truncated_while_stopped(tmp_path: Path) -> None:
    log = tmp_path / "queue_log"
    log.write_bytes(b"11111\n22222\n")
    saved = FileFollower(log).read(2)[-1].after
    with log.open("r+b") as out:
        out.truncate(0)
    append(log, b"3\n")
    assert texts(FileFollower(log, saved).read(10)) == [b"3"]


def test_the_state_file_is_replaced_whole(tmp_path: Path) -> None:
    source = tmp_path / "queue_log"
    source.write_bytes(b"")
    state = default_state_file(tmp_path / "data", source)
    assert state.parent == tmp_path / "data" / "connectors"
    assert load_position(state, source) is None
    save_position(state, source, Position(7, 123), 1_700_000_000_000)
    assert load_position(state, source) == Position(7, 123)
    save_position(state, source, Position(7, 456), 1_700_000_000_001)
    assert load_position(state, source) == Position(7, 456)
    assert sorted(p.name for p in state.parent.iterdir()) == [state.name]  # no temp left
    with pytest.raises(SlawatchError, match=r"not .*queue_log\.other: give each file its own"):
        load_position(state, tmp_path / "queue_log.other")
    state.write_text("{half")
    with pytest.raises(SlawatchError, match="cannot read the connector state file"):
        load_position(state, source)
