"""`slawatch demo` end to end: its own broker, redis and worker; stops clean."""

from __future__ import annotations

import re
import signal
import socket
import subprocess
import sys
import time

import pytest

pytestmark = pytest.mark.integration


def ports_of(first_line: str) -> list[int]:
    return [int(p) for p in re.findall(r"127\.0\.0\.1:(\d+)", first_line)]


def listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def test_demo_shows_events_flowing_and_stops_by_itself(tmp_path) -> None:
    run_dir = tmp_path / "demo"
    result = subprocess.run(
        [sys.executable, "-m", "slawatch", "demo", "--duration", "8", "--rate", "300",
         "--seed", "5", "--run-dir", str(run_dir)],
        capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    lines = result.stdout.splitlines()
    live = [line for line in lines if re.match(r"\[\s*\d+s\] worker ready", line)]
    assert len(live) >= 5, result.stdout
    last = live[-1]
    for topic in ("tickets", "chats", "calls"):
        assert re.search(rf"{topic} [1-9]\d*", last), last
    assert int(re.search(r"normalised (\d+)", last).group(1)) > 100
    summary = next(line for line in reversed(lines) if "dead-letter" in line)
    assert re.search(r"dead-letter [1-9]", summary), summary
    assert re.search(r"sla-events .*met [1-9]", summary), summary
    table = lines[lines.index(next(x for x in lines if x.startswith("sla-events by metric"))) + 1 :]
    rows = {row.split()[0]: [int(n) for n in row.split()[1:]] for row in table[:5]}
    assert set(rows) == {"first_reply", "next_reply", "chat_reply", "call_answer", "resolution"}
    at_risk, breached, met = (sum(r[i] for r in rows.values()) for i in range(3))
    assert met > 0 and at_risk > 0 and breached > 0, rows
    assert lines[-1] == "stopped: worker, redis and broker are down"
    for port in ports_of(lines[0]):
        assert not listening(port)
    assert sorted(p.name for p in run_dir.iterdir()) == [
        "broker.log",
        "data",
        "redis.log",
        "worker.log",
    ]


def test_ctrl_c_stops_everything(tmp_path) -> None:
    command = [sys.executable, "-m", "slawatch", "demo", "--run-dir", str(tmp_path / "demo")]
    with subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    ) as process:
        assert process.stdout is not None
        first = process.stdout.readline()
        deadline = time.monotonic() + 120
        while "worker ready |" not in process.stdout.readline():
            if time.monotonic() > deadline or process.poll() is not None:
                process.kill()
                raise AssertionError("no live line")
        process.send_signal(signal.SIGINT)
        rest = process.stdout.read()
        assert process.wait(timeout=60) == 0
    assert rest.rstrip().endswith("stopped: worker, redis and broker are down")
    for port in ports_of(first):
        assert not listening(port)
