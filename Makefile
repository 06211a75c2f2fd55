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

.PHONY: setup setup-demo system-deps system-deps-demo demo test test-fast lint typecheck pytest clean

# `make setup`: the system packages every test uses (installed as root on Debian/Ubuntu, else the apt
# line is printed) and .venv with hkdeploy editable + the dev tools. `make demo` needs less.
setup: system-deps $(STAMP)
setup-demo: system-deps-demo $(STAMP)

system-deps:
	@bash mk/system-deps.sh test

system-deps-demo:
	@bash mk/system-deps.sh demo

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev,lab]'
	# labgrid's pyserial fork and pyserial install the same `serial` package: labgrid's goes last
	$(BIN)/pip install --quiet --force-reinstall --no-deps pyserial-labgrid
	touch $(STAMP)

demo: setup-demo
	$(BIN)/hkdeploy config check configs/demo.json
	$(BIN)/hkdeploy run -c configs/demo.json --job-dir $(JOB_DIR)
	$(BIN)/hkdeploy demo -c configs/demo.json --job-dir $(JOB_DIR)

lint: setup
	$(BIN)/ruff check hkdeploy tests tools $(wildcard bench) examples
	$(BIN)/ruff format --check hkdeploy tests tools $(wildcard bench) examples

typecheck: setup
	$(BIN)/mypy

pytest: setup
	$(BIN)/pytest -q

# The edit-test loop: no TensorFlow conversion, no host-port streaming, no emulator (markers set in
# tests/conftest.py); under a minute.
test-fast: setup
	$(BIN)/ruff check hkdeploy tests tools $(wildcard bench) examples
	$(BIN)/pytest -q -m "not slow"

test: lint typecheck $(EXTRA_TESTS) pytest

clean:
	rm -rf job build dist .pytest_cache .mypy_cache .ruff_cache
