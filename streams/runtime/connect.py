"""A real, local Kafka Connect (standalone) running Debezium's PostgreSQL connector.

No Docker: the jars of ``org.apache.kafka:connect-runtime`` and ``connect-json`` (the
broker's Kafka version) and ``io.debezium:debezium-connector-postgres`` are fetched once
from Maven Central with ``mvn dependency:copy-dependencies`` (their runtime dependencies
resolved from the POMs) into the cache, next to the broker's jars. :class:`LocalConnect`
runs ``ConnectStandalone`` as a child JVM with the JSON converter, its REST API on a free
loopback port and its offsets in a file, against our broker; :meth:`LocalConnect.add_connector`
registers a connector over REST and waits until its task runs.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import shutil
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

from streams.processes import stop_process_group
from streams.runtime.broker import SLF4J_BINDING, free_port

log = logging.getLogger(__name__)

DEBEZIUM_VERSION = "3.6.1.Final"


class ConnectError(RuntimeError):
    """Kafka Connect could not be fetched, started or configured (message has the log)."""


def connect_artifacts(kafka_version: str, debezium_version: str) -> list[tuple[str, str, str]]:
    """The Maven artifacts (group, artifact, version) of the Connect worker's classpath."""
    group, artifact, version = SLF4J_BINDING
    return [
        ("org.apache.kafka", "connect-runtime", kafka_version),
        ("org.apache.kafka", "connect-json", kafka_version),
        ("io.debezium", "debezium-connector-postgres", debezium_version),
        (group, artifact, version),
    ]


_POM = """<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>crm-pulse</groupId><artifactId>local-connect</artifactId><version>1</version>
  <dependencies>
{dependencies}
  </dependencies>
</project>
"""


def ensure_connect_jars(
    cache_dir: Path, kafka_version: str = "4.1.1", debezium_version: str = DEBEZIUM_VERSION
) -> Path:
    """Return the folder holding every jar of Connect + Debezium, fetching it once."""
    root = cache_dir / f"connect-{kafka_version}-debezium-{debezium_version}"
    libs = root / "libs"
    marker = root / ".complete"
    if marker.exists():
        return libs
    root.mkdir(parents=True, exist_ok=True)
    with open(root / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if marker.exists():
            return libs
        mvn = shutil.which("mvn")
        if mvn is None:
            raise ConnectError("Apache Maven ('mvn') is needed to fetch the Kafka Connect jars")
        deps = "\n".join(
            f"    <dependency><groupId>{g}</groupId><artifactId>{a}</artifactId>"
            f"<version>{v}</version></dependency>"
            for g, a, v in connect_artifacts(kafka_version, debezium_version)
        )
        (root / "pom.xml").write_text(_POM.format(dependencies=deps))
        if libs.exists():
            shutil.rmtree(libs)
        cmd = [
            mvn, "-B", "-q", "-f", str(root / "pom.xml"),
            "dependency:copy-dependencies", f"-DoutputDirectory={libs}", "-DincludeScope=runtime",
        ]  # fmt: skip
        log.info("fetching Kafka Connect %s + Debezium %s jars into %s",
                 kafka_version, debezium_version, libs)  # fmt: skip
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        wanted = ("connect-runtime-*.jar", "debezium-connector-postgres-*.jar")
        if proc.returncode != 0 or not all(any(libs.glob(g)) for g in wanted):
            raise ConnectError(
                f"mvn could not fetch Kafka Connect / Debezium (exit {proc.returncode}):\n"
                + (proc.stdout + proc.stderr)[-4000:]
            )
        marker.write_text(f"{kafka_version} {debezium_version}\n")
    return libs


_LOG4J2 = """status = warn
appender.file.type = File
appender.file.name = FILE
appender.file.fileName = {log_file}
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.file.ref = FILE
logger.reflections.name = org.reflections
logger.reflections.level = ERROR
"""


def debezium_postgres_config(
    *,
    host: str,
    port: int,
    user: str,
    database: str,
    topic_prefix: str,
    slot: str,
    publication: str = "crm_pulse",
    tables: Sequence[str] = ("public.deals", "public.leads", "public.activities"),
    password: str = "",
) -> dict[str, str]:
    """Debezium's PostgreSQL connector over ``pgoutput`` for the CRM schema.

    ``decimal.handling.mode=double``: amounts arrive as JSON numbers (the default, precise,
    would send base64 bytes); the publication is the schema's own (not auto-created).
    """
    return {
        "connector.class": "io.debezium.connector.postgresql.PostgresConnector",
        "tasks.max": "1",
        "plugin.name": "pgoutput",
        "database.hostname": host,
        "database.port": str(port),
        "database.user": user,
        "database.password": password,
        "database.dbname": database,
        "topic.prefix": topic_prefix,
        "table.include.list": ",".join(tables),
        "publication.name": publication,
        "publication.autocreate.mode": "disabled",
        "slot.name": slot,
        "snapshot.mode": "initial",
        "decimal.handling.mode": "double",
        "time.precision.mode": "adaptive_time_microseconds",
        "tombstones.on.delete": "true",
    }


@dataclass
class LocalConnect:
    """One Kafka Connect standalone worker on loopback; use as a context manager."""

    bootstrap: str
    cache_dir: Path
    kafka_version: str = "4.1.1"
    debezium_version: str = DEBEZIUM_VERSION
    port: int = 0
    heap: str = "384m"
    work_dir: Path | None = None
    #: ``schemas.enable`` of the JSON converter: the ``schema``/``payload`` envelope or not
    schemas_enable: bool = False
    start_timeout: float = 120.0
    _proc: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)
    _owns_work_dir: bool = field(default=False, init=False, repr=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_file(self) -> Path:
        assert self.work_dir is not None
        return self.work_dir / "connect.log"

    def log_tail(self, lines: int = 60) -> str:
        chunks = []
        if self.work_dir is not None:
            for name in ("connect.log", "console.log"):
                path = self.work_dir / name
                if path.exists():
                    text = path.read_text(errors="replace").splitlines()[-lines:]
                    chunks.append(f"--- {name} ---\n" + "\n".join(text))
        return "\n".join(chunks) or "(no connect log)"

    def worker_properties(self) -> str:
        assert self.work_dir is not None
        schemas = str(self.schemas_enable).lower()
        return "\n".join([
            f"bootstrap.servers={self.bootstrap}",
            "key.converter=org.apache.kafka.connect.json.JsonConverter",
            "value.converter=org.apache.kafka.connect.json.JsonConverter",
            f"key.converter.schemas.enable={schemas}",
            f"value.converter.schemas.enable={schemas}",
            f"offset.storage.file.filename={self.work_dir / 'connect.offsets'}",
            "offset.flush.interval.ms=1000",
            f"listeners=http://127.0.0.1:{self.port}",
            "plugin.discovery=only_scan",
            "",
        ])  # fmt: skip

    def start(self) -> LocalConnect:
        libs = ensure_connect_jars(self.cache_dir, self.kafka_version, self.debezium_version)
        java = shutil.which("java")
        if java is None:
            raise ConnectError("a Java runtime (17+) is needed to run Kafka Connect")
        if self.work_dir is None:
            self.work_dir = Path(tempfile.mkdtemp(prefix="crm-pulse-connect-"))
            self._owns_work_dir = True
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self.port = self.port or free_port()
        props = self.work_dir / "worker.properties"
        props.write_text(self.worker_properties())
        (self.work_dir / "log4j2.properties").write_text(_LOG4J2.format(log_file=self.log_file))
        console = open(self.work_dir / "console.log", "wb")  # noqa: SIM115 - lives with the JVM
        cmd = [
            java, f"-Xmx{self.heap}", "-Xms128m", "-XX:+UseG1GC", "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={self.work_dir / 'log4j2.properties'}",
            "-cp", f"{libs}/*", "org.apache.kafka.connect.cli.ConnectStandalone", str(props),
        ]  # fmt: skip
        self._proc = subprocess.Popen(
            cmd, stdout=console, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        log.info("local Kafka Connect ready on %s (pid %s)", self.url, self._proc.pid)
        return self

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            assert self._proc is not None
            if self._proc.poll() is not None:
                raise ConnectError(
                    f"Kafka Connect exited with code {self._proc.returncode}:\n{self.log_tail()}"
                )
            with contextlib.suppress(OSError, ConnectError):
                self.request("GET", "/connectors")
                return
            time.sleep(0.5)
        raise ConnectError(
            f"Kafka Connect not ready after {self.start_timeout}s:\n{self.log_tail()}"
        )

    def request(self, method: str, path: str, body: Any = None) -> Any:
        """One call of Connect's REST API; the JSON answer (``None`` when empty)."""
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(
            self.url + path, data=data, method=method,
            headers={"Content-Type": "application/json", "Accept": "application/json"},
        )  # fmt: skip
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                raw = resp.read()
        except urllib.error.HTTPError as exc:
            raise ConnectError(f"{method} {path}: HTTP {exc.code} {exc.read()[:2000]!r}") from exc
        return json.loads(raw) if raw else None

    def add_connector(
        self, name: str, config: Mapping[str, str], timeout: float = 90.0
    ) -> dict[str, Any]:
        """Register ``name`` and wait until the connector and its task are RUNNING."""
        self.request("POST", "/connectors", {"name": name, "config": dict(config)})
        deadline = time.monotonic() + timeout
        status: dict[str, Any] = {}
        while time.monotonic() < deadline:
            with contextlib.suppress(ConnectError):
                status = self.request("GET", f"/connectors/{name}/status")
                tasks = status.get("tasks") or []
                states = [status.get("connector", {}).get("state")]
                states += [t.get("state") for t in tasks]
                if "FAILED" in states:
                    raise ConnectError(
                        f"connector {name} failed: {json.dumps(status)[:4000]}\n{self.log_tail()}"
                    )
                if tasks and all(s == "RUNNING" for s in states):
                    return status
            time.sleep(0.5)
        raise ConnectError(f"connector {name} not running after {timeout}s: {status}\n"
                           f"{self.log_tail()}")  # fmt: skip

    def stop(self, timeout: float = 30.0) -> None:
        """Stop the JVM (SIGTERM, then SIGKILL) and remove a temporary work dir."""
        proc, self._proc = self._proc, None
        stop_process_group(proc, timeout=timeout)
        if self._owns_work_dir and self.work_dir is not None:
            shutil.rmtree(self.work_dir, ignore_errors=True)

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def __enter__(self) -> LocalConnect:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
