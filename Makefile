# CRM Pulse developer commands. `make help` lists them.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.DEFAULT_GOAL := help

help: ## List the developer commands
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | sort | awk 'BEGIN {FS = ":.*## "}; {printf "  make %-12s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

venv: $(STAMP) ## Create .venv and install CRM Pulse with its test tools

kafka: $(STAMP) ## Fetch the Apache Kafka jars from Maven Central into the cache (once)
	bash scripts/install-maven.sh
	$(BIN)/python -c "from streams.settings import Settings; from streams.runtime.broker import ensure_jars; s = Settings(); print(ensure_jars(s.cache_dir, s.kafka_version))"

prometheus: ## Install Prometheus from Debian's packages (needs root or sudo)
	bash scripts/install-prometheus.sh

demo: $(STAMP) kafka ## Run the demo: local Kafka + worker + simulator + /metrics (Ctrl-C stops)
	$(BIN)/crm-pulse demo

demo-postgres: $(STAMP) kafka connect postgres ## Demo: PostgreSQL -> Debezium (Kafka Connect) -> worker; SQL UPDATEs raise alerts
	$(BIN)/crm-pulse demo --source postgres

alertmanager: ## Install Prometheus Alertmanager from Debian's packages (needs root or sudo)
	bash scripts/install-alertmanager.sh

postgres: ## Install PostgreSQL's server from Debian's packages (needs root or sudo)
	bash scripts/install-postgres.sh

connect: $(STAMP) ## Fetch Kafka Connect + Debezium's PostgreSQL connector jars into the cache (once)
	bash scripts/install-maven.sh
	$(BIN)/python -c "from streams.settings import Settings; from streams.runtime.connect import ensure_connect_jars; s = Settings(); print(ensure_connect_jars(s.cache_dir, s.kafka_version))"

compose-tool: ## Install Debian's docker-compose to validate docker-compose.yml (no engine)
	bash scripts/install-compose.sh

dashboards: $(STAMP) ## Generate grafana/dashboards/*.json from the KPI catalog
	$(BIN)/python -m streams.dashboards --out grafana/dashboards

test: $(STAMP) kafka connect prometheus alertmanager compose-tool postgres ## Run the full test suite (unit + integration on a real broker)
	$(BIN)/python -m pytest tests

unit: $(STAMP) ## Run the unit tests only (no broker)
	$(BIN)/python -m pytest tests/unit

lint: $(STAMP) ## ruff check + ruff format --check + mypy
	$(BIN)/ruff check streams tests benchmarks
	$(BIN)/ruff format --check streams tests benchmarks
	$(BIN)/mypy

format: $(STAMP) ## Format the code with ruff
	$(BIN)/ruff format streams tests benchmarks
	$(BIN)/ruff check --fix streams tests benchmarks

schemas: $(STAMP) ## Export the JSON Schemas of the contracts to schemas/
	$(BIN)/crm-pulse schemas --out schemas

$(VENV)/.bench-installed: $(STAMP)
	$(BIN)/pip install --quiet -e '.[test,bench]'
	touch $@

bench: $(VENV)/.bench-installed kafka ## Run the throughput/latency benchmark (BENCH_ARGS=--quick)
	$(BIN)/python benchmarks/run.py $(BENCH_ARGS)

bench-diff: $(VENV)/.bench-installed kafka ## Differential check: alerts and KPIs of the recorded stream vs benchmarks/golden/ (DIFF_ARGS)
	$(BIN)/python benchmarks/differential.py compare benchmarks/golden/base-a902ea3.jsonl.gz $(DIFF_ARGS)

bench-profile: $(VENV)/.bench-installed kafka ## py-spy profile of a worker under the benchmark load (PROFILE_ARGS="--mode parity")
	$(BIN)/python benchmarks/profile_worker.py $(PROFILE_ARGS)

soak: $(STAMP) kafka ## Soak: RSS over time under a steady load, 10 min (SOAK_ARGS="--minutes 3", "--recovery 100000")
	$(BIN)/python benchmarks/soak.py $(SOAK_ARGS)

bench-stages: $(STAMP) ## Offline cost per event of each worker stage (engine, KPI facts...), no Kafka
	$(BIN)/python benchmarks/stages.py

bench-anomaly: $(STAMP) ## Anomaly harness: detectors vs baselines on labelled series, then ns/point
	$(BIN)/python benchmarks/anomaly_bench.py
	$(BIN)/python benchmarks/anomaly_detector.py

clean: ## Remove caches and build output (keeps .venv)
	rm -rf .pytest_cache .mypy_cache .ruff_cache build dist *.egg-info

.PHONY: help venv kafka connect postgres demo-postgres prometheus alertmanager compose-tool dashboards demo test unit lint format schemas bench bench-diff bench-profile soak bench-stages bench-anomaly clean
