# Two commands do everything on a fresh clone: `make run` and `make test`.
# Each creates .venv when it is missing and (re)installs when pyproject.toml changes.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PYTEST_ARGS ?=
# Two workers: most tests wait on sockets and databases, so two processes halve the wall time on 2 cores.
PYTEST_WORKERS ?= 2

.PHONY: run test test-quick lint install install-dev bench clean

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "optivgi-csms needs Python 3.11 or newer; set PYTHON=/path/to/python3.11")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Stamps make re-installation happen only when the dependency list changes.
# The sim extra comes with `make run` so the quick start's simulator works out of the box.
$(VENV)/.installed: $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[sim]'
	@touch $@

$(VENV)/.installed-dev: $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $@ $(VENV)/.installed

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

## make run: install, migrate the default SQLite database, serve OCPP on 0.0.0.0:9000
run: install
	$(BIN)/optivgi-csms db upgrade
	$(BIN)/optivgi-csms serve

## make test: install with the dev extra, lint, run the whole suite
## (tests that stop the shared PostgreSQL server run alone, after the others)
test: install-dev
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS) -m 'not restarts_postgres' $(PYTEST_ARGS)
	$(BIN)/python -m pytest -m restarts_postgres $(PYTEST_ARGS)

## make test-quick: the suite without the slow end-to-end cases
test-quick: install-dev
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS) -m 'not slow' -x -q $(PYTEST_ARGS)

## make bench: scheduler benchmarks against Opti-VGI and in acnportal (their own venv; ~30 min)
BENCH_VENV := benchmarks/.venv
$(BENCH_VENV)/.installed: benchmarks/requirements.txt
	$(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/python -m pip install --quiet -r benchmarks/requirements.txt
	@touch $@

bench: $(BENCH_VENV)/.installed
	$(BENCH_VENV)/bin/python benchmarks/scheduler.py
	$(BENCH_VENV)/bin/python benchmarks/acn_evaluation.py --limit-kw 150 80 50

lint: install-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
