# slawatch: one Makefile for people and CI. `make help` lists the targets.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
DURATION ?= 0
RATE ?= 200

.DEFAULT_GOAL := help
.PHONY: help venv install lint test test-unit test-integration demo bench bench-policy bench-alerts bench-reports bench-state bench-recovery bench-scale bench-http chaos schemas system-packages clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-18s %s\n", $$1, $$2}'

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
	  { echo "slawatch needs Python 3.11 or newer (found: $$($(PYTHON) --version))"; exit 1; }
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: $(BIN)/python pyproject.toml constraints.txt
	$(BIN)/pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[embedded,dev,rocksdb]'
	@touch $@

venv: $(VENV)/.installed ## create .venv and install slawatch with its embedded, dev and rocksdb extras

install: venv ## same as venv

system-packages: ## install (or name) the system packages the tests need
	@bash scripts/require-system-packages

lint: venv ## ruff, mypy and the dependency rule; the schema files must match the models
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy slawatch
	$(BIN)/lint-imports
	$(BIN)/slawatch schemas check

test: venv system-packages lint ## install everything and run the whole suite
	$(BIN)/pytest

test-unit: venv ## unit tests only (no broker, no redis)
	$(BIN)/pytest tests/unit

test-integration: venv system-packages ## integration tests only
	$(BIN)/pytest tests/integration

demo: venv ## run everything on embedded defaults; DURATION=60 stops after a minute; ASTERISK=queue_log also follows a played copy of it
	$(BIN)/slawatch demo --duration $(DURATION) --rate $(RATE) $(if $(ASTERISK),--asterisk-queue-log $(ASTERISK))

bench: venv ## throughput, detection delay, memory and recovery (several minutes)
	$(BIN)/slawatch bench

bench-policy: venv ## business-time due computations and replay throughput (no broker)
	$(BIN)/slawatch bench-policy

chaos: venv ## 3 workers, 12 partitions, 20 kill -9, a pause, one added, one removed; checked against replay
	$(BIN)/slawatch chaos

bench-state: venv ## the SLA state over a simulated month, with and without retention (no broker)
	$(BIN)/slawatch bench-state

bench-recovery: venv ## restart and failover of a worker holding 1,000,000 open timers, memory and RocksDB
	$(BIN)/slawatch bench-recovery

bench-scale: venv ## events per second with 1, 2 and 3 workers on one backlog (standby replicas 0, then 1)
	$(BIN)/slawatch bench-scale --out bench-results/scale.json
	$(BIN)/slawatch bench-scale --standby-replicas 1 --out bench-results/scale-standby.json

bench-http: venv ## HTTP ingest on loopback: events per second accepted and p99 latency (embedded broker)
	$(BIN)/slawatch bench-http

bench-reports: venv system-packages ## SLA log sink into PostgreSQL, reports over 1,000,000 cycles
	$(BIN)/slawatch bench-reports

bench-alerts: venv ## notifier: alerts routed per second with Redis dedup, delay to a local receiver
	$(BIN)/slawatch bench-alerts

schemas: venv ## regenerate schemas/json from the Python models
	$(BIN)/slawatch schemas export

clean: ## remove the venv and the run folder
	rm -rf $(VENV) .run .pytest_cache .mypy_cache .ruff_cache .hypothesis
