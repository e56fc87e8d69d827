# Digest: every command a developer or CI needs, on a fresh clone.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install browser demo dev test lint format bench clean

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

browser:  ## Debian's Chromium for the web page's tests (needs root; once).
	command -v chromium >/dev/null || \
		(apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y chromium)

demo: install  ## Summarise a real document through the whole stack.
	$(BIN)/digest demo $(FILE)

dev: install  ## Executor and backend in the foreground, for development.
	$(BIN)/digest dev

lint: install  ## ruff (lint and format check) and mypy.
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

test: lint browser  ## The whole test suite, after lint.
	$(BIN)/pytest $(PYTEST_ARGS)

bench: install  ## Benchmarks (slow; not part of the tests).
	$(BIN)/python -m pip install --quiet -e '.[dev,bench]'
	$(BIN)/python bench/summary_latency.py
	$(BIN)/python bench/executor_steps.py
	$(BIN)/python bench/executor_overhead.py

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
