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

from pathlib import Path

from tests.integration.debian_server import DebianServer, ServerFailed, find_binary

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


class AlertmanagerFailed(ServerFailed):
    """Alertmanager exited or did not become ready; the message holds its log's tail."""


def alertmanager_binary() -> Path:
    """``$SLAWATCH_ALERTMANAGER``, or ``prometheus-alertmanager`` / ``alertmanager`` on
    ``PATH``; :class:`AlertmanagerMissing` if none."""
    return find_binary(
        "SLAWATCH_ALERTMANAGER", BINARY_NAMES, "prometheus-alertmanager", AlertmanagerMissing
    )


class Alertmanager(DebianServer):
    """One Alertmanager process: :meth:`start` returns once ``GET /-/ready`` answers 200;
    :meth:`stop` sends SIGTERM, then SIGKILL after ``timeout_s``. A context manager. Its
    :attr:`url` is an alertmanager receiver's ``url``."""

    name = "alertmanager"
    failed = AlertmanagerFailed

    def __init__(self, run_dir: Path, *, binary: Path | None = None) -> None:
        super().__init__(run_dir, binary or alertmanager_binary())
        self.config_path = self.run_dir / "alertmanager.yml"
        self.storage_path = self.run_dir / "alertmanager-data"

    def write_config(self) -> None:
        self.storage_path.mkdir(exist_ok=True)
        self.config_path.write_text(CONFIG)

    def command(self) -> list[str]:
        return [
            str(self.binary),
            f"--config.file={self.config_path}",
            f"--storage.path={self.storage_path}",
            f"--web.listen-address=127.0.0.1:{self.port}",
            "--cluster.listen-address=",
            "--log.level=info",
        ]
