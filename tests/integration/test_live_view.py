"""Several workers add up: metrics and the wallboard, before and after partitions move;
and who may read the web pages.

Two workers share four partitions. Each exports only what its partitions hold, so the sums
of their /metrics equal the whole centre, and each serves a wallboard of the whole centre
(read through Redis). Stopping one moves its partitions to the other; starting a third
moves some back. After each move the sums are the same: nothing is lost, nothing is
counted twice.
"""

from __future__ import annotations

import time

import orjson
import pytest

from slawatch.config.settings import Secret
from slawatch.dev.embedded import free_port
from slawatch.streams.topics import ensure_topics
from tests.integration.conftest import run
from tests.integration.kafka_helpers import produce
from tests.integration.workers import WorkerProcess
from tests.samples import keyed_event

pytestmark = pytest.mark.integration

TICKETS = 12  # each keeps two cycles open: first reply and resolution
ANSWERED = 18
ABANDONED = 4
WAITING = 3


def now_ms() -> int:
    return time.time_ns() // 1_000_000


message = keyed_event


def traffic(settings) -> None:
    """Tickets left open, and calls over two queues: answered (half within 20 s),
    abandoned, and still waiting."""
    t0 = now_ms() - 120_000
    tickets = [message("ticket.created", f"T-{i}", t0, 1) for i in range(TICKETS)]
    calls = []
    for i in range(ANSWERED + ABANDONED + WAITING):
        call, queue = f"Q-{i}", ("billing", "sales")[i % 2]
        calls.append(message("call.queued", call, t0 + i * 1000, 1, queue=queue))
        if i < ANSWERED:
            wait = 5_000 if i % 2 else 35_000
            calls.append(message("call.answered", call, t0 + i * 1000 + wait, 2, queue=queue))
        elif i < ANSWERED + ABANDONED:
            calls.append(message("call.abandoned", call, t0 + i * 1000 + 8_000, 2, queue=queue))
    run(produce(settings, settings.topic_tickets, tickets))
    run(produce(settings, settings.topic_calls, calls))


def totals(workers: list[WorkerProcess]) -> tuple[float, float, float]:
    """(open cycles, calls that left a queue today, calls waiting) summed over workers."""
    return (
        sum(w.metric("slawatch_open_cycles") for w in workers),
        sum(w.metric("slawatch_queue_window_calls", window="day") for w in workers),
        sum(w.metric("slawatch_queue_waiting_calls") for w in workers),
    )


EXPECTED = (2 * TICKETS + WAITING, ANSWERED + ABANDONED, WAITING)


def wallboard(worker: WorkerProcess) -> dict:
    status, body = worker.get("/wallboard/state")
    assert status == 200, body
    return orjson.loads(body)


def centre(view: dict) -> tuple[int, int, int]:
    day = view["overall"]["windows"].get("day", {})
    return day.get("offered", 0), view["overall"]["waiting"], len(view["missing_partitions"])


def wait_for_totals(workers: list[WorkerProcess], what: str) -> None:
    seen: list[tuple[float, float, float]] = []

    def added_up() -> bool:
        seen.append(totals(workers))
        return seen[-1] == EXPECTED

    try:
        workers[0].wait_until(added_up, 60, f"{what}: totals {EXPECTED}")
    except AssertionError as exc:
        per_worker = [totals([w]) for w in workers]
        raise AssertionError(f"{exc}\nlast totals {seen[-1:]}, per worker {per_worker}") from None


def test_workers_add_up_before_and_after_partitions_move(settings_factory, tmp_path) -> None:
    settings = settings_factory(partitions=4)
    run(ensure_topics(settings))
    first = WorkerProcess(settings, tmp_path / "w1.log")
    second_settings = settings.with_overrides(web_port=free_port(), worker_id="w2")
    second = WorkerProcess(second_settings, tmp_path / "w2.log")
    third = None
    try:
        first.wait_ready()
        second.wait_ready()
        traffic(settings)
        wait_for_totals([first, second], "two workers")
        # Each holds some partitions, and each shows the whole centre.
        assert 0 < first.metric("slawatch_open_cycles") < EXPECTED[0]
        for worker in (first, second):
            worker.wait_until(
                lambda w=worker: centre(wallboard(w)) == (ANSWERED + ABANDONED, WAITING, 0),
                10,
                "the whole centre on the wallboard",
            )
            assert wallboard(worker)["workers"] == 2

        # The second stops: its partitions move to the first, which rebuilds their census
        # from the table and reads their calls back into the KPIs.
        assert second.stop() == 0, second.log_tail()
        wait_for_totals([first], "after the second stopped")
        first.wait_until(
            lambda: (
                centre(wallboard(first)) == (ANSWERED + ABANDONED, WAITING, 0)
                and wallboard(first)["workers"] == 1
            ),
            15,
            "the wallboard from the first alone",
        )

        # A third starts: some partitions move to it; still nothing counted twice.
        third_settings = settings.with_overrides(web_port=free_port(), worker_id="w3")
        third = WorkerProcess(third_settings, tmp_path / "w3.log")
        third.wait_ready()
        third.wait_until(lambda: third.metric("slawatch_open_cycles") > 0, 60, "partitions")
        wait_for_totals([first, third], "after the third joined")
        for worker in (first, third):
            worker.wait_until(
                lambda w=worker: centre(wallboard(w)) == (ANSWERED + ABANDONED, WAITING, 0),
                10,
                "the whole centre on the wallboard after the move",
            )
    finally:
        for worker in (first, second, third):
            if worker is not None:
                worker.stop()


def test_beyond_loopback_the_worker_needs_a_token_and_asks_for_it(settings_factory, tmp_path):
    import subprocess
    import sys

    from tests.integration.conftest import worker_environment

    settings = settings_factory(web_host="0.0.0.0")
    refused = subprocess.run(
        [sys.executable, "-m", "slawatch", "worker"],
        env=worker_environment(settings),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert refused.returncode != 0
    lines = refused.stderr.strip().splitlines()
    assert len(lines) == 1, refused.stderr
    assert "SLAWATCH_WEB_AUTH_TOKEN" in lines[0]

    guarded = settings.with_overrides(web_auth_token=Secret("wall-7f3a"))
    worker = WorkerProcess(guarded, tmp_path / "worker.log")
    try:
        worker.wait_ready()
        assert worker.get("/metrics")[0] == 200
        assert worker.get("/healthz")[0] == 200
        for path in ("/wallboard", "/wallboard/state", "/", "/router", "/table/sla-state"):
            assert worker.get(path)[0] == 401, path
        import urllib.request

        request = urllib.request.Request(
            f"http://127.0.0.1:{guarded.web_port}/wallboard/state",
            headers={"Authorization": "Bearer wall-7f3a"},
        )
        with urllib.request.urlopen(request, timeout=5) as response:
            assert response.status == 200
            assert "queues" in orjson.loads(response.read())
    finally:
        worker.stop()
