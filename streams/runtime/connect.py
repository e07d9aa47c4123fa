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
import json
import logging
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from streams.runtime.broker import SLF4J_BINDING, free_port
from streams.runtime.processes import LocalServer, fetch_maven_jars

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
    deps = "\n".join(
        f"    <dependency><groupId>{g}</groupId><artifactId>{a}</artifactId>"
        f"<version>{v}</version></dependency>"
        for g, a, v in connect_artifacts(kafka_version, debezium_version)
    )
    return fetch_maven_jars(
        cache_dir / f"connect-{kafka_version}-debezium-{debezium_version}",
        _POM.format(dependencies=deps),
        wanted=("connect-runtime-*.jar", "debezium-connector-postgres-*.jar"),
        error=ConnectError,
        label=f"Kafka Connect {kafka_version} + Debezium {debezium_version}",
        marker=f"{kafka_version} {debezium_version}\n",
    )


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
class LocalConnect(LocalServer):
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
        return self._tail_of(("connect.log", "console.log"), lines, "(no connect log)")

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
        work_dir = self._make_work_dir("crm-pulse-connect-")
        self.port = self.port or free_port()
        props = work_dir / "worker.properties"
        props.write_text(self.worker_properties())
        (work_dir / "log4j2.properties").write_text(_LOG4J2.format(log_file=self.log_file))
        console = open(work_dir / "console.log", "wb")  # noqa: SIM115 - lives with the JVM
        cmd = [
            java, f"-Xmx{self.heap}", "-Xms128m", "-XX:+UseG1GC", "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={work_dir / 'log4j2.properties'}",
            "-cp", f"{libs}/*", "org.apache.kafka.connect.cli.ConnectStandalone", str(props),
        ]  # fmt: skip
        proc = self._spawn(cmd, console)
        log.info("local Kafka Connect ready on %s (pid %s)", self.url, proc.pid)
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
