"""`slawatch demo` end to end: its own broker, redis and worker; stops clean, leaves
nothing running however it is stopped, and never empties a folder that is not its own."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time

import pytest

from slawatch.dev.demo import RUN_DIR_MARK
from tests.integration import processes
from tests.integration.processes import listening

pytestmark = pytest.mark.integration


def ports_of(first_line: str) -> list[int]:
    return [int(p) for p in re.findall(r"127\.0\.0\.1:(\d+)", first_line)]


def test_demo_shows_events_flowing_and_stops_by_itself(tmp_path) -> None:
    run_dir = tmp_path / "demo"
    run_dir.mkdir()
    (run_dir / RUN_DIR_MARK).write_text("")  # the demo's own, from an earlier run
    (run_dir / "data").mkdir()
    (run_dir / "data" / "stale").write_text("from an earlier run")
    (run_dir / "old.log").write_text("from an earlier run")
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
    # Alerts were routed to the demo's local receiver, one line each, and counted.
    assert any(line.startswith("alert → ") for line in lines), result.stdout
    assert re.search(r"alerts delivered [1-9]", summary), summary
    assert sorted(p.name for p in run_dir.iterdir()) == [
        RUN_DIR_MARK,
        "alerts.jsonl",
        "broker.log",
        "data",
        "redis.log",
        "routing.yaml",
        "webhook.secret",
        "worker.log",
    ]
    assert not (run_dir / "data" / "stale").exists()


def start_demo(run_dir) -> subprocess.Popen[str]:
    command = [sys.executable, "-m", "slawatch", "demo", "--run-dir", str(run_dir)]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def read_until(process: subprocess.Popen[str], text: str, timeout_s: float = 120) -> list[str]:
    """The demo's lines up to the first that holds ``text``."""
    assert process.stdout is not None
    lines: list[str] = []
    deadline = time.monotonic() + timeout_s
    while not lines or text not in lines[-1]:
        if time.monotonic() > deadline or process.poll() is not None:
            raise AssertionError(f"no {text!r} line: {lines}")
        lines.append(process.stdout.readline())
    return lines


def names(tree: dict[int, str]) -> list[str]:
    return sorted("worker" if "slawatch worker" in c else c.split()[0].rsplit("/", 1)[1]
                  for c in tree.values())  # fmt: skip


@pytest.mark.parametrize(
    "sig", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP], ids=lambda s: s.name
)
def test_a_signal_stops_everything(tmp_path, sig) -> None:
    """Ctrl-C, kill, or a closed terminal: the demo stops its worker, redis and broker."""
    children: dict[int, str] = {}
    with start_demo(tmp_path / "demo") as process:
        try:
            first = read_until(process, "worker ready |")[0]
            children = processes.tree(process.pid)
            assert names(children) == ["redis-server", "tansu", "worker"]
            process.send_signal(sig)
            assert process.stdout is not None
            rest = process.stdout.read()
            assert process.wait(timeout=60) == 0
            assert rest.rstrip().endswith("stopped: worker, redis and broker are down")
            processes.wait_gone(set(children))
            for port in ports_of(first):
                assert not listening(port)
        finally:
            process.kill()
            processes.kill_all(children)


def test_a_killed_demo_leaves_nothing_running(tmp_path) -> None:
    """SIGKILL cannot be caught: the broker, redis and the worker die with the demo."""
    children: dict[int, str] = {}
    with start_demo(tmp_path / "demo") as process:
        try:
            first = read_until(process, "waiting for the worker")[0]

            def all_started() -> bool:
                nonlocal children
                children = processes.tree(process.pid)
                return names(children) == ["redis-server", "tansu", "worker"]

            processes.wait_for(all_started, 30, "worker process")
            process.kill()
            process.wait(timeout=30)
            processes.wait_gone(set(children))
            for port in ports_of(first):
                assert not listening(port)
        finally:
            process.kill()
            processes.kill_all(children)


def test_demo_refuses_a_folder_that_is_not_its_own(tmp_path) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    (tmp_path / "src").mkdir()
    result = subprocess.run(
        [sys.executable, "-m", "slawatch", "demo", "--run-dir", str(tmp_path)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert (result.returncode, result.stdout) == (1, "")  # refused before starting anything
    (line,) = result.stderr.splitlines()
    assert line.startswith(f"slawatch: --run-dir {tmp_path} is not empty (notes.txt, src)")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt", "src"]
    assert (tmp_path / "notes.txt").read_text() == "mine"
