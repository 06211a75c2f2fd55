# hkdeploy — two commands on a fresh machine: `make demo` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
JOB_DIR ?= job/demo

# Extra test steps (C unit tests, generated-file checks, ...) register themselves here from mk/*.mk.
EXTRA_TESTS :=
-include mk/*.mk

.PHONY: setup demo test lint typecheck pytest clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: setup
	$(BIN)/hkdeploy config check configs/demo.json
	$(BIN)/hkdeploy run -c configs/demo.json --job-dir $(JOB_DIR)
	$(BIN)/hkdeploy demo -c configs/demo.json --job-dir $(JOB_DIR)

lint: setup
	$(BIN)/ruff check hkdeploy tests $(wildcard bench) examples
	$(BIN)/ruff format --check hkdeploy tests $(wildcard bench) examples

typecheck: setup
	$(BIN)/mypy

pytest: setup
	$(BIN)/pytest -q

test: lint typecheck $(EXTRA_TESTS) pytest

clean:
	rm -rf job build dist .pytest_cache .mypy_cache .ruff_cache
