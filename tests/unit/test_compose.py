"""docker-compose.yml, the Dockerfile and prometheus.yml, checked without a Docker engine."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
COMPOSE = REPO / "docker-compose.yml"
PINNED = re.compile(r"^[\w./-]+(:[\w.-]+)?(@sha256:[0-9a-f]{64})?$")


def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return data


def test_compose_file_is_valid_for_a_real_compose_parser() -> None:
    binary = shutil.which("docker-compose")
    assert binary, "docker-compose is missing: run `make compose-tool`"
    done = subprocess.run(
        [binary, "-f", str(COMPOSE), "config", "--quiet"],
        capture_output=True, text=True, cwd=REPO, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    services = subprocess.run(
        [binary, "-f", str(COMPOSE), "config", "--services"],
        capture_output=True, text=True, cwd=REPO, timeout=60, check=True,
    ).stdout.split()  # fmt: skip
    assert set(services) == {
        "kafka",
        "topics",
        "worker",
        "simulator",
        "prometheus",
        "grafana",
        "alertmanager",
    }


def test_every_image_is_pinned() -> None:
    for name, service in compose()["services"].items():
        image = service.get("image")
        assert image, f"{name} has no image name"
        assert PINNED.match(image), f"{name}: {image}"
        assert ":" in image.rsplit("/", 1)[-1] or "@sha256:" in image, f"{name} has no tag"
        assert not image.endswith(":latest"), f"{name} uses latest"
    base = re.search(r"^FROM (\S+)", (REPO / "Dockerfile").read_text(), re.M)
    assert base and ":" in base.group(1) and "latest" not in base.group(1)


def test_every_referenced_file_exists() -> None:
    for name, service in compose()["services"].items():
        if "build" in service:
            context = REPO / (service["build"] if isinstance(service["build"], str)
                              else service["build"]["context"])  # fmt: skip
            assert (context / "Dockerfile").is_file(), name
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0]
            if source.startswith("."):
                assert (REPO / source).exists(), f"{name}: {source}"
    for line in (REPO / "Dockerfile").read_text().splitlines():
        if line.startswith("COPY "):
            sources = line.split()[1:-1]
            for source in sources:
                if "*" not in source:
                    assert (REPO / source).exists(), source
            assert any(list(REPO.glob(source)) for source in sources), line


def test_long_running_services_have_health_checks_and_local_ports() -> None:
    services = compose()["services"]
    for name in ("kafka", "worker", "simulator", "prometheus", "grafana", "alertmanager"):
        assert services[name].get("healthcheck", {}).get("test"), name
    for name, service in services.items():
        for port in service.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), f"{name} publishes {port} beyond localhost"


def test_worker_listens_on_the_container_network_with_a_token() -> None:
    services = compose()["services"]
    env = services["worker"]["environment"]
    assert env["CRM_PULSE_WEB_HOST"] == "0.0.0.0"
    assert env["CRM_PULSE_API_TOKEN"]
    scrape = yaml.safe_load((REPO / "prometheus" / "prometheus.yml").read_text())
    targets = [t for job in scrape["scrape_configs"] for c in job["static_configs"]
               for t in c["targets"]]  # fmt: skip
    assert targets == [f"worker:{env['CRM_PULSE_WEB_PORT']}"]
    grafana = services["grafana"]["environment"]
    assert grafana["GF_AUTH_ANONYMOUS_ENABLED"] == "true"
    assert grafana["GF_AUTH_ANONYMOUS_ORG_ROLE"] == "Viewer"
    assert services["kafka"]["image"].startswith("apache/kafka:")
    assert "broker,controller" in services["kafka"]["environment"]["KAFKA_PROCESS_ROLES"]


def test_amtool_accepts_the_example_alertmanager_config() -> None:
    amtool = shutil.which("amtool")
    assert amtool, "amtool is missing: run `make alertmanager`"
    done = subprocess.run([amtool, "check-config", str(REPO / "alertmanager" / "alertmanager.yml")],
                          capture_output=True, text=True, check=False)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout + done.stderr
    assert "5 receivers" in done.stdout + done.stderr


def test_promtool_accepts_the_prometheus_config() -> None:
    promtool = shutil.which("promtool")
    assert promtool, "promtool is missing: run `make prometheus`"
    done = subprocess.run(
        [promtool, "check", "config", str(REPO / "prometheus" / "prometheus.yml")],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout + done.stderr
