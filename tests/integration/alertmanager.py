"""A real Prometheus Alertmanager for the tests: Debian's ``prometheus-alertmanager``
(``scripts/require-system-packages`` installs it) on a free loopback port.

Its config routes every alert to one receiver with no integrations (``null``): the tests
read alerts back through the API (``GET /api/v2/alerts``), nothing is sent on. Clustering
is off (``--cluster.listen-address=`` empty; otherwise it binds 0.0.0.0:9094), state is
kept in a temporary folder, and the process dies with the test session
(:func:`slawatch.dev.processes.die_with_parent`): start it from the main thread.

A missing binary raises :class:`AlertmanagerMissing`: a failure, never a skip.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import TracebackType

from slawatch.dev.processes import die_with_parent

#: Where the binary is looked for, after ``$SLAWATCH_ALERTMANAGER``.
BINARY_NAMES = ("prometheus-alertmanager", "alertmanager")
RESOLVE_TIMEOUT = "5m"
CONFIG = f"""\
global:
  resolve_timeout: {RESOLVE_TIMEOUT}
route:
  receiver: "null"
  group_by: ["..."]
receivers:
  - name: "null"
"""


class AlertmanagerMissing(RuntimeError):
    """No Alertmanager binary: install prometheus-alertmanager (make system-packages)."""


class AlertmanagerFailed(RuntimeError):
    """Alertmanager exited or did not become ready; the message holds its log's tail."""


def alertmanager_binary() -> Path:
    """``$SLAWATCH_ALERTMANAGER``, or ``prometheus-alertmanager`` / ``alertmanager`` on
    ``PATH``; :class:`AlertmanagerMissing` if none."""
    override = os.environ.get("SLAWATCH_ALERTMANAGER")
    candidates = [override] if override else []
    candidates += [found for name in BINARY_NAMES if (found := shutil.which(name))]
    for candidate in candidates:
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return Path(candidate)
    raise AlertmanagerMissing(
        "no Alertmanager binary (prometheus-alertmanager on PATH, or $SLAWATCH_ALERTMANAGER):"
        " run `make system-packages` or apt-get install prometheus-alertmanager"
    )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Alertmanager:
    """One Alertmanager process: :meth:`start` returns once ``GET /-/ready`` answers 200;
    :meth:`stop` sends SIGTERM, then SIGKILL after ``timeout_s``. A context manager."""

    def __init__(self, run_dir: Path, *, binary: Path | None = None) -> None:
        self.run_dir = run_dir.resolve()
        self.binary = binary or alertmanager_binary()
        self.config_path = self.run_dir / "alertmanager.yml"
        self.storage_path = self.run_dir / "alertmanager-data"
        self.log_path = self.run_dir / "alertmanager.log"
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT`` (an alertmanager receiver's ``url``)."""
        return f"http://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        return [
            str(self.binary),
            f"--config.file={self.config_path}",
            f"--storage.path={self.storage_path}",
            f"--web.listen-address=127.0.0.1:{self.port}",
            "--cluster.listen-address=",
            "--log.level=info",
        ]

    def start(self, timeout_s: float = 20.0, attempts: int = 3) -> None:
        """Start on a free port (another one if the port was taken meanwhile)."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.storage_path.mkdir(exist_ok=True)
        self.config_path.write_text(CONFIG)
        for attempt in range(1, attempts + 1):
            self.port = _free_port()
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
                self._wait_ready(timeout_s)
                return
            except AlertmanagerFailed as error:
                self.stop()
                if "address already in use" not in str(error) or attempt == attempts:
                    raise

    def _wait_ready(self, timeout_s: float) -> None:
        process = self.process
        assert process is not None
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise AlertmanagerFailed(
                    f"alertmanager exited with {process.returncode} at start: {self._log_tail()}"
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
        raise AlertmanagerFailed(
            f"alertmanager not ready on {self.url} within {timeout_s} s: {self._log_tail()}"
        )

    def _log_tail(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-2000:].strip()
        except OSError:
            return "(no log)"

    def stop(self, timeout_s: float = 5.0) -> None:
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

    def __enter__(self) -> Alertmanager:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
