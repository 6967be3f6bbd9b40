"""`slawatch worker` as a real process: topics, HTTP pages, Redis registry, clean stop."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request

import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families

from slawatch.streams.registry import read_workers
from tests.integration.conftest import run, worker_environment
from tests.integration.kafka_helpers import produce
from tests.samples import event

pytestmark = pytest.mark.integration


def get(port: int, path: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def wait_until(predicate, timeout_s: float, what: str, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if process.poll() is not None:
            raise AssertionError(f"worker exited ({process.returncode}) before {what}")
        if time.monotonic() > deadline:
            raise AssertionError(f"no {what} within {timeout_s}s")
        time.sleep(0.1)


@pytest.fixture
def worker(settings_factory, tmp_path):
    settings = settings_factory(log_sink_in_worker=True)
    log = (tmp_path / "worker.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "slawatch", "worker"],
        env=worker_environment(settings),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        yield settings, process, tmp_path / "worker.log"
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        log.close()


def test_worker_serves_health_readiness_metrics_and_status(worker) -> None:
    settings, process, log = worker

    def alive() -> bool:
        try:
            return get(settings.web_port, "/healthz")[0] == 200
        except OSError:
            return False

    wait_until(alive, 30, "/healthz", process)
    wait_until(lambda: get(settings.web_port, "/readyz")[0] == 200, 60, "readiness", process)
    _, body = get(settings.web_port, "/readyz")
    assert orjson.loads(body) == {
        "ready": True,
        "ingest_group_settled": True,
        "tables_recovered": True,
        "timers_built": True,
        "policy_topic_read": True,
        "policy_version": "builtin-1",
        "redis": "ok",
        "log_store": "ok",
    }

    messages = [(b"T-1", orjson.dumps(event("ticket.created", n))) for n in range(3)]
    run(produce(settings, settings.topic_tickets, [*messages, (b"T-1", b"garbage")]))

    def scrape() -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        text = get(settings.web_port, "/metrics")[1].decode()
        return {
            (sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples
        }

    tickets = settings.topic_tickets
    read_key = ("slawatch_input_messages_total", (("topic", tickets),))
    wait_until(lambda: scrape().get(read_key) == 4.0, 30, "4 messages counted", process)
    samples = scrape()
    assert samples[("slawatch_valid_events_total", (("type", "ticket.created"),))] == 3.0
    dead_key = ("slawatch_dead_letters_total", (("reason", "not_json"), ("topic", tickets)))
    assert samples[dead_key] == 1.0
    assert samples[("slawatch_worker_ready", ())] == 1.0

    def registered_ready() -> bool:
        # Readiness and the counts reach Redis at the registry's beats: wait for both.
        workers = run(read_workers(settings))
        return [w["ready"] for w in workers] == [True] and workers[0]["counts"].get(
            "input_by_topic"
        ) == {tickets: 4.0}

    wait_until(registered_ready, 10, "a ready status with the counts in Redis", process)
    workers = run(read_workers(settings))
    assert [w["worker_id"] for w in workers] == [settings.worker_id]
    assert workers[0]["counts"]["input_by_topic"] == {tickets: 4.0}
    assert len(workers[0]["ingest_partitions"]) == 3 * settings.partitions
    assert workers[0]["policy_version"] == "builtin-1"
    assert workers[0]["policy_last_rejected"] is None

    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=30) == 0, log.read_text()[-3000:]
    assert run(read_workers(settings)) == []  # it deregistered on the way out


def test_worker_with_bad_settings_exits_with_one_line(settings_factory) -> None:
    settings = settings_factory()
    env = worker_environment(settings)
    env["SLAWATCH_PARTITIONS"] = "many"
    result = subprocess.run(
        [sys.executable, "-m", "slawatch", "worker"], env=env, capture_output=True, timeout=60
    )
    assert result.returncode == 1
    assert result.stderr.decode() == (
        "slawatch: environment: SLAWATCH_PARTITIONS: expected an integer, got 'many'\n"
    )


def test_worker_refuses_topics_with_another_partition_count(settings_factory) -> None:
    settings = settings_factory(partitions=2)
    from slawatch.streams.topics import ensure_topics

    asyncio.run(ensure_topics(settings))
    env = worker_environment(settings.with_overrides(partitions=3))
    result = subprocess.run(
        [sys.executable, "-m", "slawatch", "worker"], env=env, capture_output=True, timeout=60
    )
    assert result.returncode == 1
    assert "has 2 partitions, configured: 3" in result.stderr.decode()
    assert result.stderr.decode().count("\n") == 1


def test_a_second_worker_on_the_same_web_port_stops_before_joining_a_group(worker) -> None:
    """It checks the port before anything else: one line, and not a word from Faust or
    the ingest consumer (which would have joined the group and made the first worker
    give up its partitions)."""
    settings, process, _log = worker

    def ready() -> bool:
        try:
            return get(settings.web_port, "/readyz")[0] == 200
        except OSError:
            return False

    wait_until(ready, 60, "readiness", process)
    second = settings.with_overrides(worker_id=f"{settings.worker_id}-second")
    result = subprocess.run(
        [sys.executable, "-m", "slawatch", "worker"],
        env=worker_environment(second), capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr == (
        f"slawatch: cannot serve HTTP on 127.0.0.1:{settings.web_port}: in use (another "
        "worker on this host?); set SLAWATCH_WEB_PORT to a free port\n"
    )
    assert ready()
    assert [w["worker_id"] for w in run(read_workers(settings))] == [settings.worker_id]
