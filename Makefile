# `make run` and `make test` are the two commands; both set up what they need.
# `make lint` (ruff, then mypy) is the first half of `make test`, to run alone.
SHELL := /bin/bash
.SHELLFLAGS := -o pipefail -ec
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.genop-installed

.PHONY: run test lint venv bench diagram clean

$(STAMP): pyproject.toml requirements.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements.lock 2>&1 | { grep -v "^WARNING: Location" || true; }
	$(BIN)/pip install --quiet --disable-pip-version-check --no-deps -e .
	touch $(STAMP)

venv: $(STAMP)

run: venv
	$(BIN)/genop system up

lint: venv
	$(BIN)/ruff check .
	$(BIN)/mypy

# Tests run on TEST_WORKERS processes (pytest-xdist; one per core, at most 4): each worker
# has its own Prefect server, Prefect home and throw-away databases (tests/conftest.py), and
# an idle worker takes over tests still queued on a busy one (worksteal). TEST_WORKERS=0: serial.
TEST_WORKERS ?= auto

test: lint
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) --maxprocesses=4 --dist worksteal

bench: venv
	$(BIN)/python bench/intake_bench.py
	$(BIN)/python bench/settlement_bench.py
	$(BIN)/python bench/escalation_bench.py

diagram: venv
	$(BIN)/python -m genop.lifecycle --write

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
