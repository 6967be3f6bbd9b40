"""Commands as an operator runs them: a real `slawatch` process, its exit code and every
byte it writes. (An in-process test cannot see a library's stray log line: pytest
captures logging, so these run the CLI as a subprocess.)

A failure is one line on stderr naming what to fix, and exit 1; nothing else is printed
before it. A command stopped with Ctrl-C says so in one line.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from slawatch.dev.embedded import free_port
from tests.integration import processes

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


def environment(tmp_path: Path, **settings: str) -> dict[str, str]:
    """This process's environment without its SLAWATCH_* variables; a broker and a Redis
    where nothing listens, a free web port, files in ``tmp_path``; then ``settings``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLAWATCH_")}
    env.update(
        SLAWATCH_BROKER_URL=f"kafka://127.0.0.1:{free_port()}",
        SLAWATCH_REDIS_URL=f"redis://127.0.0.1:{free_port()}/0",
        SLAWATCH_WEB_PORT=str(free_port()),
        SLAWATCH_DATA_DIR=str(tmp_path / "data"),
    )
    env.update({f"SLAWATCH_{name.upper()}": value for name, value in settings.items()})
    return env


def slawatch(env: dict[str, str], *argv: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "slawatch", *map(str, argv)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )


def assert_one_line(result: subprocess.CompletedProcess[str], *naming: str) -> str:
    """Exit 1, nothing on stdout, and exactly one line on stderr, naming each of ``naming``."""
    assert (result.returncode, result.stdout) == (1, ""), result.stdout + result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("slawatch: "), result.stderr
    for name in naming:
        assert name in lines[0], lines[0]
    return lines[0]


@pytest.mark.parametrize(
    ("argv", "setting"),
    [
        (["status"], "SLAWATCH_REDIS_URL"),
        (["topics", "create"], "SLAWATCH_BROKER_URL"),
        (["simulate", "--duration", "1"], "SLAWATCH_BROKER_URL"),
        (["policy", "publish", "examples/policy.yaml"], "SLAWATCH_BROKER_URL"),
        (["worker"], "SLAWATCH_BROKER_URL"),
    ],
    ids=lambda value: value if isinstance(value, str) else " ".join(value),
)
def test_an_unreachable_server_is_one_line_naming_its_setting(tmp_path, argv, setting) -> None:
    line = assert_one_line(slawatch(environment(tmp_path), *argv), setting)
    assert line.startswith(("slawatch: cannot reach the broker", "slawatch: cannot reach Redis"))


def test_a_busy_web_port_stops_a_worker_before_it_contacts_the_broker(tmp_path) -> None:
    """The port is checked first: the broker here is unreachable too, and is not what the
    worker reports (so it never got as far as a consumer group)."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = str(holder.getsockname()[1])
        result = slawatch(environment(tmp_path, web_port=port), "worker")
    line = assert_one_line(result, "SLAWATCH_WEB_PORT", f"127.0.0.1:{port}")
    assert "in use" in line
    assert not (tmp_path / "data").exists()  # nothing was set up for a worker


# --- replay ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def events(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """About 26,000 simulated events: a replay of them takes a few seconds."""
    path = tmp_path_factory.mktemp("replay") / "events.jsonl"
    result = slawatch(
        environment(path.parent), "simulate", "--rate", "1000", "--duration", "60",
        "--seed", "3", "--start", "2026-11-22T09:00:00Z", "--out", path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return path


def test_replay_checks_its_output_before_reading_anything(tmp_path) -> None:
    """The input is a pipe no one writes to: a replay that read it first would wait
    forever; the output's folder is missing, and that is the one line."""
    never_written = tmp_path / "events.fifo"
    os.mkfifo(never_written)
    env = environment(tmp_path)
    missing = tmp_path / "missing" / "sla.jsonl"
    assert_one_line(slawatch(env, "replay", never_written, "--out", missing), str(missing))
    assert not missing.parent.exists()
    assert_one_line(slawatch(env, "replay", never_written, "--out", tmp_path), "is a folder")


def test_replay_replaces_its_output_only_when_complete(tmp_path, events) -> None:
    out = tmp_path / "sla.jsonl"
    out.write_text("the previous log\n")
    as_of = "2026-11-23T00:00:00Z"
    result = slawatch(
        environment(tmp_path), "replay", events, "--as-of", as_of, "--jobs", "1", "--out", out
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "" and result.stderr.startswith("replay: ")
    lines = out.read_text().splitlines()
    assert len(lines) > 1000 and lines[0].startswith('{"conversation_key"')
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sla.jsonl"]  # nothing partial


def _reading(pid: int, path: Path) -> bool:
    """True once process ``pid`` has read some of ``path`` (its offset in /proc)."""
    try:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            if os.readlink(f"/proc/{pid}/fd/{fd}") == str(path):
                pos = Path(f"/proc/{pid}/fdinfo/{fd}").read_text().split()[1]
                return int(pos) > 0
    except OSError:
        pass
    return False


class Started:
    """Processes a test starts, and the descendants it saw: all killed after the test, in
    any case (even those a dead parent left behind)."""

    def __init__(self) -> None:
        self.processes: list[subprocess.Popen[str]] = []
        self.seen: dict[int, str] = {}

    def add(self, process: subprocess.Popen[str]) -> subprocess.Popen[str]:
        self.processes.append(process)
        return process

    def tree(self, pid: int) -> dict[int, str]:
        tree = processes.tree(pid)
        self.seen.update(tree)
        return tree

    def kill_all(self) -> None:
        for process in self.processes:
            self.tree(process.pid)
            process.kill()
            process.wait()
        processes.kill_all(self.seen)


@pytest.fixture
def started() -> Iterator[Started]:
    started = Started()
    try:
        yield started
    finally:
        started.kill_all()


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_ctrl_c_stops_replay_with_one_line(tmp_path, events, started, jobs) -> None:
    """Ctrl-C reaches every process of the terminal's foreground group (here: the replay
    and its pool), as a terminal sends it."""
    out = tmp_path / "sla.jsonl"
    out.write_text("the previous log\n")
    replay = subprocess.Popen(
        [sys.executable, "-m", "slawatch", "replay", str(events), "--jobs", jobs,
         "--as-of", "2026-11-23T00:00:00Z", "--out", str(out)],
        env=environment(tmp_path), cwd=ROOT, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
    )  # fmt: skip
    started.add(replay)
    if jobs == "1":
        what = "reading of the events"
        processes.wait_for(lambda: _reading(replay.pid, events), 30, what)
    else:
        processes.wait_for(lambda: len(processes.children(replay.pid)) == 2, 30, "pool")
    pool = set(started.tree(replay.pid))
    os.killpg(replay.pid, signal.SIGINT)
    stdout, stderr = replay.communicate(timeout=60)
    assert (replay.returncode, stdout, stderr) == (130, "", "slawatch: stopped by SIGINT\n")
    processes.wait_gone(pool)
    assert out.read_text() == "the previous log\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sla.jsonl"]  # nothing partial


# --- bench ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "sig", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGKILL], ids=lambda s: s.name
)
def test_bench_leaves_nothing_running_whatever_stops_it(tmp_path, started, sig) -> None:
    """Stopped once its worker runs (broker, redis-server and a worker as children):
    SIGTERM, SIGINT and SIGHUP stop them and remove the bench's files; after SIGKILL the
    children die with the bench."""
    env = {**environment(tmp_path), "TMPDIR": str(tmp_path)}  # where its run folder goes
    bench = subprocess.Popen(
        [sys.executable, "-m", "slawatch", "bench", "--events", "2000", "--open-timers", "100",
         "--probes", "5", "--out", str(tmp_path / "bench.json")],
        env=env, cwd=ROOT, text=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    started.add(bench)
    children: dict[int, str] = {}

    def worker_started() -> bool:
        nonlocal children
        children = started.tree(bench.pid)
        return any("slawatch worker" in command for command in children.values())

    processes.wait_for(worker_started, 120, "bench worker")
    assert len(children) == 3, children  # the broker, redis-server and the worker
    bench.send_signal(sig)
    _, stderr = bench.communicate(timeout=120)
    processes.wait_gone(set(children))
    if sig == signal.SIGKILL:
        assert bench.returncode == -signal.SIGKILL
    else:
        assert bench.returncode == 128 + sig
        assert stderr.splitlines()[-1] == f"slawatch: stopped by {sig.name}"
        assert not list(tmp_path.glob("slawatch-bench-*"))
    assert not (tmp_path / "bench.json").exists()


def test_bench_events_are_exactly_the_number_asked_and_the_same_for_a_seed() -> None:
    """``--events N`` is N events, whatever the simulator's daily profile makes of a
    duration; the same seed gives the same events, and moving them in time changes
    nothing but ``occurred_at``."""
    import orjson

    from slawatch.dev.bench import generate_backlog

    backlog = generate_backlog(2000, seed=7)
    assert len(backlog) == 2000
    assert backlog.values == generate_backlog(2000, seed=7).values
    assert backlog.values != generate_backlog(2000, seed=8).values
    assert list(backlog.at_ms) == sorted(backlog.at_ms)
    (chunk,) = backlog.messages(["t", "c", "q"], shift_ms=3_600_000, chunk=2000)
    for (topic, key, moved), value, kind in zip(chunk, backlog.values, backlog.kinds, strict=True):
        before, after = orjson.loads(value), orjson.loads(moved)
        assert topic == "tcq"[kind] and key is not None
        assert {**after, "occurred_at": before["occurred_at"]} == before
        assert after["occurred_at"] != before["occurred_at"]


def test_bench_hop_measures_both_designs_on_exactly_the_events_asked(tmp_path) -> None:
    """A tiny ``--only hop`` run: ingest's routing (m), a Faust agent validating the input
    topics (k) and ingest with the normalised topic and a decoding agent (l) each saw the
    300 events, with their CPU; (b) did not run; nothing is left behind."""
    import json

    env = {**environment(tmp_path), "TMPDIR": str(tmp_path)}
    out = tmp_path / "bench.json"
    result = subprocess.run(
        [sys.executable, "-m", "slawatch", "bench", "--events", "300", "--repeats", "1",
         "--only", "hop", "--out", str(out)],
        env=env, cwd=ROOT, capture_output=True, text=True, timeout=240,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    report = json.loads(out.read_text())
    (run,) = report["runs"]
    assert run["loaded"]["events"] == run["a_raw"]["events"] == 300
    for stage in ("m_routing", "k_direct", "l_hop"):
        assert run[stage]["events"] == 300, (stage, run[stage])
        assert run[stage]["cpu_s"] > 0
        assert run[stage]["cpu_us_per_event"] == run[stage]["cpu_s"] / 300 * 1e6
        assert report["hop"][stage]["cpu_us_per_event"] == run[stage]["cpu_us_per_event"]
    assert run["k_direct"]["agent_messages"] == 300  # one Faust message per event
    assert "b_pipeline" not in run and "b_pipeline" not in report
    assert "(l) ingest + normalised + decoding agent" in result.stdout
    assert not list(tmp_path.glob("slawatch-bench-*"))


def test_bench_scale_drains_the_backlog_with_each_worker_count(tmp_path) -> None:
    """A tiny ``bench-scale`` run, 1 and then 2 workers on 2 partitions: each run read
    every event of the backlog and applied every valid one, summed over its workers; both
    workers of the second run used CPU; the rates are the events applied after the
    group settled over the seconds measured; nothing is left behind."""
    import json

    env = {**environment(tmp_path), "TMPDIR": str(tmp_path)}
    out = tmp_path / "scale.json"
    result = subprocess.run(
        [sys.executable, "-m", "slawatch", "bench-scale", "--events", "2000", "--workers",
         "1,2", "--partitions", "2", "--repeats", "1", "--out", str(out)],
        env=env, cwd=ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    report = json.loads(out.read_text())
    one, two = sorted(report["runs"], key=lambda run: run["workers"])
    for run in (one, two):
        done = run["done"]
        assert done["read"] >= 2000 and done["applied"] >= done["valid"] > 0, run
        assert run["applied_before_ready"] + run["applied_in_interval"] == done["applied"]
        assert run["events_per_s"] == run["applied_in_interval"] / run["seconds"]
    assert len(two["per_worker_cpu_s"]) == 2 and min(two["per_worker_cpu_s"].values()) > 0
    assert report["by_workers"]["1"]["ratio_to_first"] == 1.0
    assert "events/s" in result.stdout
    assert not list(tmp_path.glob("slawatch-bench-scale-*"))


def test_bench_throughput_loads_and_applies_exactly_the_events_asked(tmp_path) -> None:
    """A tiny ``--only throughput`` run on the embedded broker: the JSON says 300 events
    were generated, loaded, read by (a), and read, validated and applied by the worker in
    (b); the rates are 300 over the measured seconds; (c)-(f) did not run; the machine's
    load is in it; nothing is left behind."""
    import json

    env = {**environment(tmp_path), "TMPDIR": str(tmp_path)}
    out = tmp_path / "bench.json"
    result = subprocess.run(
        [sys.executable, "-m", "slawatch", "bench", "--events", "300", "--repeats", "1",
         "--only", "throughput", "--out", str(out)],
        env=env, cwd=ROOT, capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    report = json.loads(out.read_text())
    assert report["params"]["events"] == report["traffic"]["events"] == 300
    assert report["traffic"]["malformed"] == 0
    (run,) = report["runs"]
    assert run["loaded"]["events"] == run["a_raw"]["events"] == 300
    b = run["b_pipeline"]
    assert b["events"] == 300
    assert {k: b["done"][k] for k in ("read", "valid", "dead_lettered", "applied")} == {
        "read": 300, "valid": 300, "dead_lettered": 0, "applied": 300}  # fmt: skip
    assert b["events_per_s"] == 300 / b["seconds"]
    assert b["worker_cpu_s"] > 0 and b["events_per_worker_cpu_s"] == 300 / b["worker_cpu_s"]
    assert set(b["cores"]) >= {"worker", "broker", "redis", "bench", "machine", "others"}
    assert report["b_pipeline"]["events_per_s"] == b["events_per_s"]  # the median of one
    assert "c_detection_delay_ms" not in report and "e_recovery" not in report
    assert len(report["load"]["before"]) == len(report["load"]["after"]) == 3
    assert report["load"]["cpus"] == os.cpu_count()
    assert "(b) slawatch, 1 worker, 300 events" in result.stdout
    assert "load average" in result.stdout
    assert not list(tmp_path.glob("slawatch-bench-*"))
