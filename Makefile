# The two commands a fresh machine needs: `make run` and `make test`. `make help` lists the rest.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.DEFAULT_GOAL := help
.PHONY: help venv services-up services-down services-status stop migrate run worker api shell bench drills test test-unit openapi \
        test-integration test-e2e lint typecheck clean

help: ## List the targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-18s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "error: $(PYTHON) is needed"; exit 1; }
	@echo "Creating the Python environment in $(VENV)"
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/pip install -q --upgrade pip
	@$(BIN)/pip install -q -e '.[dev,bench]'
	@touch $(STAMP)

venv: $(STAMP) ## Create the Python environment (.venv) with the pinned packages

services-up: venv ## Install (first time) and start Kafka, Cassandra and PostgreSQL on loopback; idempotent
	@$(BIN)/python -m app.tools.services up

services-down: venv ## Stop the services (their data stays in .state/)
	@$(BIN)/python -m app.tools.services down

stop: services-down ## Same as services-down

services-status: venv ## Say what runs where
	@$(BIN)/python -m app.tools.services status

migrate: services-up ## Create topics, keyspace and tables (idempotent)
	@$(BIN)/cart migrate

run: migrate ## Run the system: services, the API and the workers, restarted if they die (Ctrl-C stops them)
	@$(BIN)/cart run

shell: venv ## The interactive cart shell, against the running API
	@$(BIN)/cart shell

bench: venv ## Measure the running system (`make run` elsewhere) and the machine's ceilings into bench/ (BENCH_ARGS=...)
	@$(BIN)/cart bench $(BENCH_ARGS)

test: migrate ## Run the whole test suite against the real services
	@$(BIN)/python -m pytest

drills: migrate ## Every fault drill under load at full length (prints the figures; about 15 min)
	@CART_LONG_DRILLS=1 $(BIN)/python -m pytest tests/drills -m drill -s

test-unit: venv ## Unit tests only (no services needed)
	@$(BIN)/python -m pytest tests/unit

test-integration: migrate ## Integration tests against the real services
	@$(BIN)/python -m pytest tests/integration

test-e2e: migrate ## End-to-end tests over HTTP and the CLI
	@$(BIN)/python -m pytest tests/e2e

openapi: venv ## Write the API's OpenAPI document to docs/openapi.json (a test fails when it is stale)
	@$(BIN)/cart openapi --write

lint: venv ## Ruff and mypy
	@$(BIN)/ruff check . && $(BIN)/ruff format --check . && $(BIN)/mypy

clean: services-down ## Stop services and delete all local state and the environment
	rm -rf .state $(VENV)
