"""What the tests' Debian servers (Prometheus, Alertmanager) share: finding the binary,
starting it on a free loopback port (another one if the port was taken meanwhile), waiting
for ``GET /-/ready``, and stopping it (SIGTERM, then SIGKILL). Each process dies with the
test session (:func:`slawatch.dev.processes.die_with_parent`): start it from the main
thread. A missing binary is a failure, never a skip.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Self

from slawatch.dev.embedded import free_port
from slawatch.dev.processes import die_with_parent


def find_binary(env_var: str, names: Sequence[str], package: str, missing: type[Exception]) -> Path:
    """``$env_var``, or the first of ``names`` on ``PATH``; ``missing`` naming the Debian
    ``package`` if none."""
    override = os.environ.get(env_var)
    candidates = [override] if override else []
    candidates += [found for name in names if (found := shutil.which(name))]
    for candidate in candidates:
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return Path(candidate)
    raise missing(
        f"no {names[0]} binary ({' or '.join(names)} on PATH, or ${env_var}):"
        f" run `make system-packages` or apt-get install {package}"
    )


class ServerFailed(RuntimeError):
    """The server exited or did not become ready; the message holds its log's tail."""


class DebianServer:
    """One server process. Subclasses set :attr:`name`, write their config in
    :meth:`write_config` and say how to run it in :meth:`command`. A context manager."""

    name = "server"
    #: What :meth:`start` raises (a subclass of :class:`ServerFailed`).
    failed: type[ServerFailed] = ServerFailed
    start_timeout_s = 20.0

    def __init__(self, run_dir: Path, binary: Path) -> None:
        self.run_dir = run_dir.resolve()
        self.binary = binary
        self.log_path = self.run_dir / f"{self.name}.log"
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def write_config(self) -> None:
        raise NotImplementedError

    def command(self) -> list[str]:
        raise NotImplementedError

    def start(self, timeout_s: float | None = None, attempts: int = 3) -> None:
        """Start on a free port (another one if the port was taken meanwhile)."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.write_config()
        for attempt in range(1, attempts + 1):
            self.port = free_port()
            with self.log_path.open("ab") as log:
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
                self._wait_ready(timeout_s or self.start_timeout_s)
                return
            except ServerFailed as error:
                self.stop()
                if "address already in use" not in str(error) or attempt == attempts:
                    raise

    def _wait_ready(self, timeout_s: float) -> None:
        process = self.process
        assert process is not None
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise self.failed(
                    f"{self.name} exited with {process.returncode} at start: {self.log_tail()}"
                )
            try:
                with urllib.request.urlopen(f"{self.url}/-/ready", timeout=1) as response:
                    if response.status == 200:
                        return
            except urllib.error.HTTPError as error:  # 503 while it loads its state
                error.close()
            except OSError:  # not listening yet
                pass
            time.sleep(0.05)
        raise self.failed(
            f"{self.name} not ready on {self.url} within {timeout_s} s: {self.log_tail()}"
        )

    def log_tail(self, chars: int = 2000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:].strip()
        except OSError:
            return "(no log)"

    def stop(self, timeout_s: float = 10.0) -> None:
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
                process.wait()
            self.process = None

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
