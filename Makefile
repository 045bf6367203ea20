# Two commands on a fresh machine: `make run` and `make test`. See README.md.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
SERVICES_ENV = eval "$$(scripts/services.sh env)"
# Tests use Redis database 1 so a running `make run` (database 0) is left alone; each
# xdist worker moves to a database of its own (gw0 -> 1, gw1 -> 2: tests/support/workers.py).
# PYTHONDONTWRITEBYTECODE (set in some images) would make every xdist worker and every server
# or worker a test starts compile the project, and pytest rewrite each test module, again.
# One math thread per process: three workers already share two cores, and torch's own pool of
# two threads per worker spun on cores the others needed (the training tests took twice the
# CPU; bench/RESULTS.md "Test suite wall time").
TEST_ENV = eval "$$(scripts/services.sh env 1)"; export FLYWHEEL_ALLOW_DEV_SECRET=true; \
	unset PYTHONDONTWRITEBYTECODE; export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
# Three workers on two cores: many tests wait on a subprocess, a browser or a timer, and a
# third worker fills those waits (bench/RESULTS.md has the measured wall times).
# loadfile keeps a module's tests on one worker, so module-scoped fixtures (a trained
# adapter, a demo load) are built once.
# The order modules are handed out in is tests/conftest.py's (HEAVIEST_FIRST).
PYTEST_PARALLEL = -n 3 --dist loadfile --no-loadscope-reorder
FAST = not browser and not stack and not slow
# pytest exits 5 when it collected nothing (a typo in a path or marker): never a pass, and
# never a 5 a CI could read as "no tests, fine".
NO_TESTS_FAIL = status=$$?; if [ $$status -eq 5 ]; then echo "pytest collected no tests" >&2; \
	exit 1; fi; exit $$status

.PHONY: setup services run test test-fast test-client lint format bench stop clean-data

setup:
	@scripts/bootstrap.sh

services: setup
	@scripts/services.sh start

run: setup
	@scripts/run.sh

test: services lint test-client
	@$(TEST_ENV); $(VENV)/bin/pytest $(PYTEST_PARALLEL) $(PYTEST_ARGS); $(NO_TESTS_FAIL)

# The inner loop: no browser, no supervised stack, no slow test (pyproject.toml says which).
# It keeps the test databases between runs (--reuse-db: migrate applies only what is new),
# which saves each worker the ~25 s of building one; PYTEST_ARGS=--create-db starts afresh.
test-fast: services
	@$(TEST_ENV); $(VENV)/bin/pytest $(PYTEST_PARALLEL) --reuse-db -m "$(FAST)" $(PYTEST_ARGS); \
	$(NO_TESTS_FAIL)

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
