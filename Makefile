# Two commands on a fresh machine: `make run` and `make test`. See README.md.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
SERVICES_ENV = eval "$$(scripts/services.sh env)"
# Tests use Redis database 1 so a running `make run` (database 0) is left alone.
TEST_ENV = eval "$$(scripts/services.sh env 1)"; export FLYWHEEL_ALLOW_DEV_SECRET=true

.PHONY: setup services run test test-client lint format bench stop clean-data

setup:
	@scripts/bootstrap.sh

services: setup
	@scripts/services.sh start

run: setup
	@scripts/run.sh

test: services lint test-client
	@$(TEST_ENV); $(VENV)/bin/pytest $(PYTEST_ARGS)

# The Python client is its own package: installed as a user would, tested on its own.
test-client: setup
	@$(VENV)/bin/pip install --quiet --no-build-isolation ./clients/python
	@cd clients/python && ../../$(VENV)/bin/python -m pytest

lint: setup
	@$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check . && $(VENV)/bin/lint-imports

format: setup
	@$(VENV)/bin/ruff format . && $(VENV)/bin/ruff check --fix .

bench: services
	@$(SERVICES_ENV); scripts/bench.sh

stop:
	@scripts/services.sh stop

clean-data: stop
	rm -rf .run
