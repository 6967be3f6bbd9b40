"""Process trees for the tests that check slawatch leaves nothing running: who a process's
descendants are, whether they are gone, and whether a port still listens (Linux /proc)."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import time
from pathlib import Path


def _stat(pid: int) -> list[str] | None:
    """The fields of /proc/PID/stat after the command name (state, ppid, ...)."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text.rsplit(")", 1)[1].split()


def children(pid: int) -> set[int]:
    found = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            fields = _stat(int(entry))
            if fields is not None and int(fields[1]) == pid:
                found.add(int(entry))
    return found


def descendants(pid: int) -> set[int]:
    found: set[int] = set()
    todo = [pid]
    while todo:
        for child in children(todo.pop()) - found:
            found.add(child)
            todo.append(child)
    return found


def alive(pid: int) -> bool:
    """Running, as opposed to gone or a zombie (dead, waiting for a parent to reap it).

    A process whose main thread is a zombie may still have threads running (and its
    sockets open), so every thread counts.
    """
    try:
        threads = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return False
    for thread in threads:
        try:
            text = Path(f"/proc/{pid}/task/{thread}/stat").read_text()
        except OSError:
            continue
        if text.rsplit(")", 1)[1].split()[0] != "Z":
            return True
    return False


def command_line(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def wait_for(predicate, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"no {what} within {timeout_s} s")
        time.sleep(0.02)


def wait_gone(pids: set[int], timeout_s: float = 15.0) -> None:
    """Wait until every process of ``pids`` is gone; fail naming the ones still running."""
    deadline = time.monotonic() + timeout_s
    while running := {pid for pid in pids if alive(pid)}:
        if time.monotonic() > deadline:
            names = ", ".join(f"{pid} ({command_line(pid)[:80]})" for pid in sorted(running))
            raise AssertionError(f"still running after {timeout_s} s: {names}")
        time.sleep(0.02)


def tree(pid: int) -> dict[int, str]:
    """The descendants of ``pid`` with their command lines."""
    return {child: command_line(child) for child in descendants(pid)}


def kill_all(processes: dict[int, str]) -> None:
    """Clean up after a failed test: SIGKILL whatever of ``processes`` (from :func:`tree`)
    still runs the same command (a pid reused since is left alone)."""
    for pid, command in processes.items():
        if alive(pid) and command_line(pid) == command:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)


def listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0
