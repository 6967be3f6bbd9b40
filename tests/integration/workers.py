"""Run `slawatch worker` as a real child process for a test, and read its outputs."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import orjson
from prometheus_client.parser import text_string_to_metric_families

from slawatch.config.settings import Settings
from tests.integration.conftest import worker_environment


class WorkerProcess:
    """One worker process (or ``command``: ``notifier``) with its own log file."""

    def __init__(
        self,
        settings: Settings,
        log_path: Path,
        command: str = "worker",
        extra_env: dict[str, str] | None = None,
    ) -> None:
        self.settings = settings
        self.log_path = log_path
        self._log = log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "slawatch", command],
            env={**worker_environment(settings), **(extra_env or {})},
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    def get(self, path: str) -> tuple[int, bytes]:
        url = f"http://127.0.0.1:{self.settings.web_port}{path}"
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()
        except OSError:
            return 0, b""

    def wait_until(self, predicate, timeout_s: float, what: str) -> None:
        deadline = time.monotonic() + timeout_s
        while not predicate():
            if self.process.poll() is not None:
                raise AssertionError(f"worker exited ({self.process.returncode}) before {what}:\n"
                                     + self.log_tail())  # fmt: skip
            if time.monotonic() > deadline:
                raise AssertionError(f"no {what} within {timeout_s}s:\n" + self.log_tail())
            time.sleep(0.05)

    def wait_ready(self, timeout_s: float = 60) -> None:
        self.wait_until(lambda: self.get("/readyz")[0] == 200, timeout_s, "readiness")

    def metric(self, name: str, **labels: str) -> float:
        text = self.get("/metrics")[1].decode()
        total = 0.0
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == name and all(
                    sample.labels.get(k) == v for k, v in labels.items()
                ):
                    total += sample.value
        return total

    def log_tail(self, chars: int = 3000) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")[-chars:]

    def kill(self) -> None:
        """kill -9: no goodbye, no commit, no leaving the group."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)
        self._log.close()

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()
        return self.process.returncode


def sla_records(records) -> list[dict]:
    return [orjson.loads(r.value) for r in records]
