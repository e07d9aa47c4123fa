"""A real, local, single-node Apache Kafka (KRaft) for the demo and the integration tests.

No Docker: the jars of ``org.apache.kafka:kafka_2.13`` (plus an slf4j binding for log4j2)
are fetched once from Maven Central with ``mvn dependency:copy-dependencies`` into a cache
directory, a KRaft log directory is formatted with ``kafka.tools.StorageTool`` and
``kafka.Kafka`` runs as a child JVM on free loopback ports with a small heap.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from streams.errors import PulseError
from streams.runtime.processes import LocalServer, fetch_maven_jars

if TYPE_CHECKING:
    from streams.settings import Settings

log = logging.getLogger(__name__)

SLF4J_BINDING = ("org.apache.logging.log4j", "log4j-slf4j-impl", "2.24.3")


class BrokerError(PulseError, RuntimeError):
    """The local broker could not be fetched, formatted or started (message has the log)."""


_POM = """<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>crm-pulse</groupId><artifactId>local-kafka</artifactId><version>{version}</version>
  <dependencies>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka_2.13</artifactId>
      <version>{version}</version></dependency>
    <dependency><groupId>{b_group}</groupId><artifactId>{b_artifact}</artifactId>
      <version>{b_version}</version></dependency>
  </dependencies>
</project>
"""

_LOG4J2 = """status = warn
appender.file.type = File
appender.file.name = FILE
appender.file.fileName = {log_file}
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.file.ref = FILE
logger.kafka.name = kafka
logger.kafka.level = INFO
logger.state.name = state.change.logger
logger.state.level = WARN
"""

_SERVER = """process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:{controller_port}
listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port}
advertised.listeners=PLAINTEXT://127.0.0.1:{port}
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs={log_dir}
num.partitions=1
auto.create.topics.enable=true
offsets.topic.replication.factor=1
offsets.topic.num.partitions=4
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=4
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
log.segment.bytes=104857600
log.cleaner.dedupe.buffer.size=16777216
"""


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def ensure_jars(cache_dir: Path, version: str) -> Path:
    """Return the folder holding every jar of Kafka ``version``, fetching it once."""
    group, artifact, b_version = SLF4J_BINDING
    pom = _POM.format(version=version, b_group=group, b_artifact=artifact, b_version=b_version)
    return fetch_maven_jars(
        cache_dir / f"kafka-{version}", pom, wanted=["kafka_2.13-*.jar"], error=BrokerError,
        label=f"Kafka {version}", marker=version,
    )  # fmt: skip


def _cluster_id() -> str:
    return base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")


@dataclass
class LocalKafka(LocalServer):
    """One KRaft broker+controller process on loopback; use as a context manager."""

    cache_dir: Path
    version: str = "4.1.1"
    port: int = 0
    heap: str = "512m"
    work_dir: Path | None = None
    start_timeout: float = 90.0
    _proc: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)
    _owns_work_dir: bool = field(default=False, init=False, repr=False)

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def log_file(self) -> Path:
        assert self.work_dir is not None
        return self.work_dir / "server.log"

    def log_tail(self, lines: int = 60) -> str:
        """Last lines of the broker log and console (for error messages)."""
        return self._tail_of(("server.log", "console.log"), lines, "(no broker log)")

    def _java(self, libs: Path) -> list[str]:
        java = shutil.which("java")
        if java is None:
            raise BrokerError("a Java runtime (17+) is needed to run Kafka")
        assert self.work_dir is not None
        return [
            java, f"-Xmx{self.heap}", f"-Xms{min(256, int(self.heap[:-1]))}m",
            "-XX:+UseG1GC", "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={self.work_dir / 'log4j2.properties'}",
            "-cp", f"{libs}/*",
        ]  # fmt: skip

    def start(self) -> LocalKafka:
        libs = ensure_jars(self.cache_dir, self.version)
        work_dir = self._make_work_dir("crm-pulse-kafka-")
        self.port = self.port or free_port()
        controller_port = free_port()
        log_dir = work_dir / "kraft-logs"
        props = work_dir / "server.properties"
        props.write_text(
            _SERVER.format(port=self.port, controller_port=controller_port, log_dir=log_dir)
        )
        (work_dir / "log4j2.properties").write_text(_LOG4J2.format(log_file=self.log_file))
        java = self._java(libs)
        fmt = subprocess.run(
            [*java, "kafka.tools.StorageTool", "format", f"--cluster-id={_cluster_id()}",
             "-c", str(props)],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        if fmt.returncode != 0:
            raise BrokerError(f"kafka storage format failed:\n{fmt.stdout}{fmt.stderr}")
        console = open(work_dir / "console.log", "wb")  # noqa: SIM115 - lives with the JVM
        proc = self._spawn([*java, "kafka.Kafka", str(props)], console)
        log.info("local Kafka %s ready on %s (pid %s)", self.version, self.bootstrap, proc.pid)
        return self

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            assert self._proc is not None
            if self._proc.poll() is not None:
                raise BrokerError(
                    f"Kafka exited with code {self._proc.returncode}:\n{self.log_tail()}"
                )
            started = self.log_file.exists() and "Kafka Server started" in self.log_file.read_text(
                errors="replace"
            )
            if started:
                with (
                    contextlib.suppress(OSError),
                    socket.create_connection(("127.0.0.1", self.port), timeout=1),
                ):
                    return
            time.sleep(0.2)
        raise BrokerError(f"Kafka not ready after {self.start_timeout}s:\n{self.log_tail()}")


async def wait_until_serving(
    settings: Settings, topics: Iterable[str], groups: Iterable[str] = (), timeout: float = 60.0
) -> None:
    """Wait until the broker of ``settings`` serves every partition of ``topics`` (its
    leader answers a list-offsets request without error) and coordinates ``groups``.

    A fresh broker announces leaders in its metadata a moment before it acts as one, and
    creates its group-coordination topic on the first request: clients that start meanwhile
    log ``NotLeaderForPartitionError`` and ``GroupCoordinatorNotAvailableError`` while
    they retry. Waiting here, quietly, keeps those out of a fresh start's output.
    """
    from aiokafka.errors import KafkaError
    from aiokafka.protocol.offset import OffsetRequest

    from streams.runtime.clients import new_admin

    names = sorted(set(topics))
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    admin = new_admin(settings, "launcher")
    await admin.start()
    try:
        pending_groups = sorted(set(groups))
        while True:
            waiting: list[str] = []
            try:
                for topic in await admin.describe_topics(names):
                    parts = topic.get("partitions") or []
                    leaders = {p.get("leader", -1) for p in parts}
                    if not parts or -1 in leaders:
                        waiting.append(f"{topic.get('topic')}: no leader")
                        continue
                    for leader in leaders:
                        ask = [p["partition"] for p in parts if p["leader"] == leader]
                        request = OffsetRequest(-1, 0, [(topic["topic"], [(p, -1) for p in ask])])
                        response = await admin._send_request_to_node(leader, request)
                        for name, answers in response.topics:
                            waiting += [f"{name}:{a[0]} error {a[1]}" for a in answers if a[1]]
                for group in list(pending_groups):
                    await admin.find_coordinator(group)  # raises until the coordinator is up
                    pending_groups.remove(group)
            except (TimeoutError, KafkaError, OSError) as exc:
                waiting.append(f"{type(exc).__name__}: {exc}")
            if not waiting and not pending_groups:
                return
            if loop.time() > deadline:
                raise BrokerError(
                    f"broker {settings.bootstrap_servers} not serving after {timeout}s: {waiting}"
                )
            await asyncio.sleep(0.1)
    finally:
        await admin.close()
