# metropilot: `make run` and `make test` are all a new machine needs (see README.md).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
RUNTIME_STAMP := $(VENV)/.runtime-installed
DEV_STAMP := $(VENV)/.dev-installed

.PHONY: run test bench lint format install install-dev browser wrk clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(RUNTIME_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(DEV_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $@ $(RUNTIME_STAMP)

install: $(RUNTIME_STAMP)
install-dev: $(DEV_STAMP)

## run: the platform on its embedded default (SQLite, in-process bus, simulated metropolis)
run: $(RUNTIME_STAMP)
	$(BIN)/metropilot run

## test: the whole suite (SQLite and PostgreSQL, API, headless Chromium)
test: $(DEV_STAMP) browser
	$(BIN)/python -m pytest

## bench: the figures of BENCHMARKS.md (several minutes)
bench: $(DEV_STAMP) browser wrk
	$(BIN)/python -m benchmarks.run_all

lint: $(DEV_STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/mypy

format: $(DEV_STAMP)
	$(BIN)/ruff format src tests benchmarks
	$(BIN)/ruff check --fix src tests benchmarks

# Debian's Chromium drives the page tests; installed when missing (needs root, as on CI).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "Installing Debian's chromium for the browser tests"; \
	  apt-get install -y --no-install-recommends chromium >/dev/null 2>&1 || \
	  echo "Could not install chromium: browser tests will be skipped with a reason."; }

wrk:
	@command -v wrk >/dev/null 2>&1 || apt-get install -y --no-install-recommends wrk >/dev/null 2>&1 || \
	  echo "Could not install wrk: the load benchmarks will say so."

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
