"""A real, local PostgreSQL for the Debezium end-to-end test and the Postgres demo.

Debian's server package (``postgresql``, see ``scripts/install-postgres.sh``) provides the
binaries; :class:`LocalPostgres` runs ``initdb`` in a temporary folder and starts
``postgres`` on a free loopback port with ``wal_level=logical`` (what Debezium's
``pgoutput`` decoding needs), trust authentication on loopback only, and no fsync (the
data is thrown away). PostgreSQL refuses to run as root: when the process is root, the
cluster belongs to the ``postgres`` system user that Debian's package creates and the
server runs as that user. SQL goes through ``psql`` (no client library needed).
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

from streams.runtime.broker import free_port
from streams.runtime.processes import LocalServer

#: The CRM schema (deals, leads, activities) of the Debezium demo and test.
CRM_SCHEMA = Path(__file__).with_name("crm_schema.sql")


class PostgresError(RuntimeError):
    """PostgreSQL could not be found, initialised or started (message has the log)."""


def find_bindir() -> Path:
    """The folder of ``initdb`` and ``postgres``: Debian's newest ``/usr/lib/postgresql/N/bin``,
    else ``pg_config --bindir``, else the ``PATH``."""
    debian = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/postgres"),
        key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0,
    )
    if debian:
        return debian[-1].parent
    pg_config = shutil.which("pg_config")
    if pg_config:
        out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, check=False)
        bindir = Path(out.stdout.strip())
        if (bindir / "postgres").exists():
            return bindir
    found = shutil.which("postgres")
    if found:
        return Path(found).resolve().parent
    raise PostgresError(
        "PostgreSQL's server is not installed: run scripts/install-postgres.sh "
        "(apt-get install postgresql)"
    )


def _run_as() -> str | None:
    """The user the server runs as: ``postgres`` when we are root, else ourselves."""
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam("postgres")
    except KeyError as exc:
        raise PostgresError("running as root needs the 'postgres' system user") from exc
    return "postgres"


@dataclass
class LocalPostgres(LocalServer):
    """One PostgreSQL server on loopback with logical decoding; a context manager."""

    stop_signal: ClassVar[int] = signal.SIGINT  # fast shutdown

    port: int = 0
    work_dir: Path | None = None
    superuser: str = "crm"
    database: str = "crm"
    start_timeout: float = 60.0
    _proc: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)
    _owns_work_dir: bool = field(default=False, init=False, repr=False)
    _bindir: Path | None = field(default=None, init=False, repr=False)

    @property
    def data_dir(self) -> Path:
        assert self.work_dir is not None
        return self.work_dir / "data"

    @property
    def log_file(self) -> Path:
        assert self.work_dir is not None
        return self.work_dir / "postgres.log"

    @property
    def dsn(self) -> str:
        return f"postgresql://{self.superuser}@127.0.0.1:{self.port}/{self.database}"

    def log_tail(self, lines: int = 40) -> str:
        if self.work_dir is None or not self.log_file.exists():
            return "(no postgres log)"
        return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])

    def start(self) -> LocalPostgres:
        self._bindir = find_bindir()
        user = _run_as()
        work_dir = self._make_work_dir("crm-pulse-postgres-")
        if user is not None:  # the server's user must own its folders (and reach them)
            entry = pwd.getpwnam(user)
            os.chown(work_dir, entry.pw_uid, entry.pw_gid)
            os.chmod(work_dir, 0o755)
            _open_path_to(work_dir)
        self.port = self.port or free_port()
        init = subprocess.run(
            [str(self._bindir / "initdb"), "-D", str(self.data_dir), "-U", self.superuser,
             "--auth=trust", "--encoding=UTF8", "--locale=C", "--no-sync"],
            capture_output=True, text=True, check=False, user=user, cwd=self.work_dir,
        )  # fmt: skip
        if init.returncode != 0:
            raise PostgresError(f"initdb failed:\n{init.stdout}{init.stderr}")
        log = open(self.log_file, "wb")  # noqa: SIM115 - lives with the server
        if user is not None:
            entry = pwd.getpwnam(user)
            os.chown(self.log_file, entry.pw_uid, entry.pw_gid)
        settings = {
            "listen_addresses": "127.0.0.1",
            "port": str(self.port),
            "unix_socket_directories": str(self.work_dir),
            "wal_level": "logical",
            "max_wal_senders": "10",
            "max_replication_slots": "10",
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
            "shared_buffers": "32MB",
        }
        cmd = [str(self._bindir / "postgres"), "-D", str(self.data_dir)]
        for name, value in settings.items():
            cmd += ["-c", f"{name}={value}"]
        self._spawn(cmd, log, user=user, cwd=work_dir)
        try:
            self.psql(f"CREATE DATABASE {self.database}", database="postgres")
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_ready(self) -> None:
        assert self._bindir is not None and self._proc is not None
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise PostgresError(
                    f"postgres exited with code {self._proc.returncode}:\n{self.log_tail()}"
                )
            ready = subprocess.run(
                [str(self._bindir / "pg_isready"), "-h", "127.0.0.1", "-p", str(self.port),
                 "-U", self.superuser, "-d", "postgres"],
                capture_output=True, check=False,
            )  # fmt: skip
            if ready.returncode == 0:
                return
            time.sleep(0.2)
        raise PostgresError(f"postgres not ready after {self.start_timeout}s:\n{self.log_tail()}")

    def psql(self, sql: str, *, database: str | None = None) -> str:
        """Run SQL (one or more statements) with ``psql``; returns the unaligned output."""
        assert self._bindir is not None
        proc = subprocess.run(
            [str(self._bindir / "psql"), "-h", "127.0.0.1", "-p", str(self.port),
             "-U", self.superuser, "-d", database or self.database, "-X", "-q", "-A", "-t",
             "-v", "ON_ERROR_STOP=1"],
            input=sql, capture_output=True, text=True, check=False,
        )  # fmt: skip
        if proc.returncode != 0:
            raise PostgresError(f"psql failed ({proc.returncode}): {proc.stderr.strip()}")
        return proc.stdout

    def load_schema(self, path: Path = CRM_SCHEMA) -> None:
        """Create the CRM tables (``crm_schema.sql``)."""
        self.psql(path.read_text())


def _open_path_to(path: Path) -> None:
    """Let the server's user traverse the parents of its folder (a 0700 temp root would
    hide it); only the execute bit is added, and only where it is missing."""
    for parent in path.resolve().parents:
        mode = parent.stat().st_mode
        if not mode & 0o001:
            with contextlib.suppress(PermissionError):
                os.chmod(parent, mode | 0o001)


@contextlib.contextmanager
def local_postgres(port: int = 0) -> Iterator[LocalPostgres]:
    """Start a local PostgreSQL for the duration of a ``with`` block."""
    with LocalPostgres(port=port) as server:
        yield server
