"""A throwaway PostgreSQL server for the tests and ``slawatch bench-reports``: Debian's
``postgresql`` package (``scripts/require-system-packages`` installs it) on a free loopback
port.

:class:`PostgresServer` runs ``initdb`` for a fresh cluster in a temporary folder (UTF8,
locale C, trust authentication: it listens on 127.0.0.1 and on a Unix socket in that
folder only), starts ``postgres`` itself (not ``pg_ctlcluster``; without fsync: the
cluster is thrown away) and removes the folder when it stops (SIGINT, PostgreSQL's fast
shutdown, then SIGKILL). The process dies with the test session
(:func:`slawatch.dev.processes.die_with_parent`): start it from the main thread.

``initdb`` and ``postgres`` refuse to run as root. As root (CI and the dev machines) both
run as the ``postgres`` system user that Debian's package creates (``nobody`` if there is
none): the child switches user between fork and exec (``subprocess.Popen(user=...)``),
*then* asks for its death signal, because a change of user clears that request (a
``setpriv`` or ``runuser`` wrapper would drop it). The cluster folder is then made under
``/tmp`` (pytest's own folders are mode 700 to root) and given to that user.

The binaries are found in ``$SLAWATCH_POSTGRES_BIN`` (a folder), else in the newest
``/usr/lib/postgresql/<version>/bin`` (Debian keeps them off ``PATH``), else on ``PATH``.
A missing one raises :class:`PostgresMissing`: a failure, never a skip.

tests/conftest.py has the ``postgres_server`` (session) and ``postgres_url`` (a fresh
database per test) fixtures.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import psycopg
from psycopg import sql

from slawatch.dev.processes import die_with_parent

#: Where Debian's ``postgresql-<version>`` packages put the server's binaries.
DEBIAN_BIN_GLOB = "/usr/lib/postgresql/*/bin"
#: What runs ``initdb`` and ``postgres`` when the tests run as root, first found wins.
UNPRIVILEGED_USERS = ("postgres", "nobody")
#: The cluster's superuser, and the database :attr:`PostgresServer.url` names.
USER = "slawatch"
DATABASE = "slawatch"
_DATABASE_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")


class PostgresMissing(RuntimeError):
    """No PostgreSQL server binaries: install postgresql (make system-packages)."""


class PostgresFailed(RuntimeError):
    """initdb or postgres failed, or the server did not accept connections in time; the
    message holds the log's tail."""


def postgres_bin_dir() -> Path:
    """The folder holding ``initdb`` and ``postgres``: ``$SLAWATCH_POSTGRES_BIN``, the
    newest ``/usr/lib/postgresql/<version>/bin``, or the one ``initdb`` on ``PATH`` is in;
    :class:`PostgresMissing` if none has both."""
    override = os.environ.get("SLAWATCH_POSTGRES_BIN")
    if override:
        candidates = [Path(override)]
    else:
        candidates = sorted(
            (Path(path) for path in glob.glob(DEBIAN_BIN_GLOB)), key=_version_key, reverse=True
        )
        on_path = shutil.which("initdb")
        if on_path:
            candidates.append(Path(on_path).resolve().parent)
    for candidate in candidates:
        if all(_executable(candidate / name) for name in ("initdb", "postgres")):
            return candidate
    where = f"$SLAWATCH_POSTGRES_BIN={override}" if override else f"{DEBIAN_BIN_GLOB} or on PATH"
    raise PostgresMissing(
        f"no PostgreSQL server binaries (initdb and postgres in {where}):"
        " run `make system-packages` or apt-get install postgresql"
    )


def _version_key(bin_dir: Path) -> tuple[int, ...]:
    """``/usr/lib/postgresql/15/bin`` -> (15,); so that 16 sorts after 9.6."""
    return tuple(int(part) for part in re.findall(r"\d+", bin_dir.parent.name))


def _executable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _unprivileged_user() -> pwd.struct_passwd:
    for name in UNPRIVILEGED_USERS:
        with contextlib.suppress(KeyError):
            return pwd.getpwnam(name)
    raise PostgresMissing(
        f"running as root and none of the users {', '.join(UNPRIVILEGED_USERS)} exists:"
        " PostgreSQL refuses to run as root; apt-get install postgresql creates `postgres`"
    )


class PostgresServer:
    """One throwaway PostgreSQL cluster and its ``postgres`` process. :meth:`start`
    returns once it accepts connections; :meth:`stop` shuts it down and removes the
    cluster. A context manager."""

    start_timeout_s = 30.0

    def __init__(self, bin_dir: Path | None = None) -> None:
        self.bin_dir = bin_dir or postgres_bin_dir()
        #: Who runs initdb and postgres: ``None`` for this process's user, else the
        #: unprivileged user it switches to (when this process is root).
        self.run_as = _unprivileged_user() if os.geteuid() == 0 else None
        self.cluster_dir: Path | None = None
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None

    # -- where ------------------------------------------------------------------

    @property
    def data_dir(self) -> Path:
        return self._cluster_dir / "data"

    @property
    def socket_dir(self) -> Path:
        return self._cluster_dir / "socket"

    @property
    def log_path(self) -> Path:
        return self._cluster_dir / "postgres.log"

    @property
    def _cluster_dir(self) -> Path:
        if self.cluster_dir is None:
            raise RuntimeError("the server has not been started")
        return self.cluster_dir

    def url_for(self, database: str) -> str:
        """SQLAlchemy's URL for ``database`` on this server (the psycopg 3 driver)."""
        return f"postgresql+psycopg://{USER}@127.0.0.1:{self.port}/{database}"

    def dsn_for(self, database: str) -> str:
        """libpq's (and psycopg's) URL for ``database`` on this server."""
        return f"postgresql://{USER}@127.0.0.1:{self.port}/{database}"

    @property
    def url(self) -> str:
        """SQLAlchemy's URL for the ``slawatch`` database."""
        return self.url_for(DATABASE)

    @property
    def dsn(self) -> str:
        """libpq's URL for the ``slawatch`` database."""
        return self.dsn_for(DATABASE)

    # -- lifecycle --------------------------------------------------------------

    def start(self, timeout_s: float | None = None, attempts: int = 3) -> None:
        """initdb a fresh cluster, then start postgres on a free port (another one if the
        port was taken meanwhile) and create the ``slawatch`` database."""
        if self.process is not None:
            raise RuntimeError("the server was started already: stop() it first")
        try:
            self._make_cluster_dir()
            self._initdb()
            for attempt in range(1, attempts + 1):
                self.port = _free_port()
                log_offset = self.log_path.stat().st_size if self.log_path.exists() else 0
                self._spawn()
                try:
                    self._wait_ready(timeout_s or self.start_timeout_s)
                    break
                except PostgresFailed:
                    self._stop_process()
                    taken = "address already in use" in self._log_since(log_offset).lower()
                    if not taken or attempt == attempts:
                        raise
            self.create_database(DATABASE)
        except BaseException:
            self.stop()
            raise

    def _make_cluster_dir(self) -> None:
        if self.run_as is None:
            self.cluster_dir = Path(tempfile.mkdtemp(prefix="slawatch-postgres-"))
        else:
            # The postgres user must reach it: not under pytest's mode-700 folders.
            self.cluster_dir = Path(tempfile.mkdtemp(prefix="slawatch-postgres-", dir="/tmp"))
            os.chown(self.cluster_dir, self.run_as.pw_uid, self.run_as.pw_gid)
        self.socket_dir.mkdir(mode=0o700)
        self.log_path.touch(mode=0o600)
        if self.run_as is not None:
            for path in (self.socket_dir, self.log_path):
                os.chown(path, self.run_as.pw_uid, self.run_as.pw_gid)

    def _initdb(self) -> None:
        command = [
            str(self.bin_dir / "initdb"),
            "--pgdata",
            str(self.data_dir),
            "--username",
            USER,
            "--auth",
            "trust",
            "--encoding",
            "UTF8",
            "--locale",
            "C",
            "--no-sync",
            "--no-instructions",
        ]
        with self.log_path.open("ab") as log:
            done = subprocess.run(
                command,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=self._cluster_dir,
                check=False,
                **self._as_user(),
            )
        if done.returncode != 0:
            raise PostgresFailed(f"initdb exited with {done.returncode}: {self.log_tail()}")

    def _spawn(self) -> None:
        command = [
            str(self.bin_dir / "postgres"),
            "-D",
            str(self.data_dir),
            "-p",
            str(self.port),
            "-k",
            str(self.socket_dir),
            "-c",
            "listen_addresses=127.0.0.1",
            # A throwaway cluster: nothing needs to survive a crash.
            "-c",
            "fsync=off",
            "-c",
            "synchronous_commit=off",
            "-c",
            "full_page_writes=off",
        ]
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                command,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=self._cluster_dir,
                start_new_session=True,
                # Popen switches user before it calls preexec_fn: the death signal asked
                # for there survives (a change of user would clear it).
                preexec_fn=die_with_parent(),
                **self._as_user(),
            )

    def _as_user(self) -> dict[str, Any]:
        """Popen's arguments that run the child as :attr:`run_as` (with its groups, like
        ``setpriv --init-groups``); none when not root."""
        user = self.run_as
        if user is None:
            return {}
        return {
            "user": user.pw_uid,
            "group": user.pw_gid,
            "extra_groups": os.getgrouplist(user.pw_name, user.pw_gid),
            "env": {**os.environ, "HOME": str(self._cluster_dir), "USER": user.pw_name},
        }

    def _wait_ready(self, timeout_s: float) -> None:
        process = self.process
        assert process is not None
        deadline = time.monotonic() + timeout_s
        last_error: Exception | None = None
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise PostgresFailed(
                    f"postgres exited with {process.returncode} at start: {self.log_tail()}"
                )
            # postmaster.pid says "ready" once it accepts connections: no connection is
            # tried before that (on a port taken by another server one could hang).
            if self._postmaster_ready(process.pid):
                try:
                    with psycopg.connect(self.dsn_for("postgres"), connect_timeout=2):
                        return
                except psycopg.OperationalError as error:
                    last_error = error
            time.sleep(0.02)
        raise PostgresFailed(
            f"postgres not accepting connections on 127.0.0.1:{self.port} within"
            f" {timeout_s} s ({last_error}): {self.log_tail()}"
        )

    def _postmaster_ready(self, pid: int) -> bool:
        """Whether ``postmaster.pid`` (PID, data folder, start time, port, socket folder,
        listen address, shared memory key, status) says this process is ready on
        :attr:`port`."""
        try:
            lines = (self.data_dir / "postmaster.pid").read_text().splitlines()
        except OSError:
            return False
        return (
            len(lines) >= 8
            and lines[0].strip() == str(pid)
            and lines[3].strip() == str(self.port)
            and lines[7].strip() == "ready"
        )

    def create_database(self, name: str) -> str:
        """Create the empty database ``name`` (lower-case letters, digits and ``_``: it
        goes into URLs unquoted); return its SQLAlchemy URL."""
        if not _DATABASE_NAME.fullmatch(name):
            raise ValueError(f"not a plain database name: {name!r}")
        with psycopg.connect(self.dsn_for("postgres"), autocommit=True) as connection:
            connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return self.url_for(name)

    def stop(self, timeout_s: float = 10.0) -> None:
        """Shut down (SIGINT: fast shutdown; SIGKILL after ``timeout_s``), then remove the
        cluster. Does nothing when not started; safe to call twice."""
        try:
            self._stop_process(timeout_s)
        finally:
            cluster_dir, self.cluster_dir = self.cluster_dir, None
            if cluster_dir is not None:
                shutil.rmtree(cluster_dir, ignore_errors=True)

    def pause(self) -> None:
        """Shut the server down and keep its cluster: a database outage for a test;
        :meth:`resume` brings it back with its data."""
        self._stop_process()

    def resume(self, timeout_s: float | None = None) -> None:
        """Start the paused cluster again on the same port (its clients reconnect)."""
        if self.process is not None or self.cluster_dir is None:
            raise RuntimeError("resume() needs a server that was started, then paused")
        self._spawn()
        self._wait_ready(timeout_s or self.start_timeout_s)

    def _stop_process(self, timeout_s: float = 10.0) -> None:
        process = self.process
        if process is None:
            return
        try:
            if process.poll() is None:
                process.send_signal(signal.SIGINT)
                try:
                    process.wait(timeout_s)
                except subprocess.TimeoutExpired:
                    # The postmaster's children notice its death and exit on their own;
                    # the whole session is killed so none is left behind.
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(process.pid, signal.SIGKILL)
                    process.wait()
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
            self.process = None

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    # -- logs -------------------------------------------------------------------

    def log_tail(self, chars: int = 2000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:].strip()
        except (OSError, RuntimeError):
            return "(no log)"

    def _log_since(self, offset: int) -> str:
        try:
            with self.log_path.open("rb") as log:
                log.seek(offset)
                return log.read().decode(errors="replace")
        except OSError:
            return ""

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
