"""What the local child servers (Kafka, Kafka Connect, PostgreSQL) share: their jars
fetched once from Maven Central, a work dir (temporary unless given), one process group
started and stopped, a tail of their logs, and the context-manager protocol."""

from __future__ import annotations

import fcntl
import logging
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType
from typing import IO, Any, ClassVar, Self

from streams.processes import stop_process_group

log = logging.getLogger(__name__)


def fetch_maven_jars(
    root: Path,
    pom: str,
    *,
    wanted: Iterable[str],
    error: type[Exception],
    label: str,
    marker: str,
) -> Path:
    """Return ``root/libs`` holding every runtime jar of ``pom``, fetched once with
    ``mvn dependency:copy-dependencies`` (a file lock keeps concurrent fetches apart).

    ``wanted``: globs that must match a jar afterwards; ``label`` names what is fetched in
    messages; ``marker`` is written to ``root/.complete`` once the jars are there.
    """
    libs = root / "libs"
    done = root / ".complete"
    if done.exists():
        return libs
    root.mkdir(parents=True, exist_ok=True)
    with open(root / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if done.exists():
            return libs
        mvn = shutil.which("mvn")
        if mvn is None:
            raise error(f"Apache Maven ('mvn') is needed to fetch the {label} jars")
        (root / "pom.xml").write_text(pom)
        if libs.exists():
            shutil.rmtree(libs)
        cmd = [
            mvn, "-B", "-q", "-f", str(root / "pom.xml"),
            "dependency:copy-dependencies", f"-DoutputDirectory={libs}", "-DincludeScope=runtime",
        ]  # fmt: skip
        log.info("fetching %s jars into %s", label, libs)
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if proc.returncode != 0 or not all(any(libs.glob(g)) for g in wanted):
            raise error(
                f"mvn could not fetch {label} (exit {proc.returncode}):\n"
                + (proc.stdout + proc.stderr)[-4000:]
            )
        done.write_text(marker)
    return libs


class LocalServer:
    """Base of the local servers: subclasses are dataclasses declaring ``work_dir``,
    ``_proc`` and ``_owns_work_dir`` and implementing :meth:`start`."""

    work_dir: Path | None
    _proc: subprocess.Popen[bytes] | None
    _owns_work_dir: bool
    #: what :meth:`stop` sends first (SIGKILL follows after the timeout)
    stop_signal: ClassVar[int] = signal.SIGTERM

    def start(self) -> Self:
        raise NotImplementedError

    def _wait_ready(self) -> None:
        raise NotImplementedError

    def _spawn(self, cmd: list[str], output: IO[bytes], **popen: Any) -> subprocess.Popen[bytes]:
        """Start ``cmd`` in its own process group (output to ``output``) and wait until it
        is ready; a server that does not get ready is stopped before the error goes up."""
        self._proc = subprocess.Popen(
            cmd, stdout=output, stderr=subprocess.STDOUT, start_new_session=True, **popen
        )
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        return self._proc

    def _make_work_dir(self, prefix: str) -> Path:
        """The given work dir, else a fresh temporary one removed by :meth:`stop`."""
        if self.work_dir is None:
            self.work_dir = Path(tempfile.mkdtemp(prefix=prefix))
            self._owns_work_dir = True
        self.work_dir.mkdir(parents=True, exist_ok=True)
        return self.work_dir

    def _tail_of(self, names: Iterable[str], lines: int, empty: str) -> str:
        """Last ``lines`` of each file ``names`` of the work dir (for error messages)."""
        chunks = []
        if self.work_dir is not None:
            for name in names:
                path = self.work_dir / name
                if path.exists():
                    text = path.read_text(errors="replace").splitlines()[-lines:]
                    chunks.append(f"--- {name} ---\n" + "\n".join(text))
        return "\n".join(chunks) or empty

    def stop(self, timeout: float = 30.0) -> None:
        """Stop the process group (``stop_signal``, then SIGKILL) and remove a temporary
        work dir."""
        proc, self._proc = self._proc, None
        stop_process_group(proc, self.stop_signal, timeout)
        if self._owns_work_dir and self.work_dir is not None:
            shutil.rmtree(self.work_dir, ignore_errors=True)

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
