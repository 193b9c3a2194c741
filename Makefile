# The README's two commands are `make run` and `make test`; both are idempotent on a fresh machine.
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: setup run test lint bench screenshots

setup:
	bash scripts/setup.sh

run: setup
	$(VENV)/bin/cachetop demo

test: setup
	$(PY) -m pytest -q

lint: setup
	$(VENV)/bin/ruff check cachetop collectors tests bench

bench: setup
	$(PY) bench/poll.py
	$(PY) bench/history.py
	$(PY) bench/prom_parse.py
	$(PY) bench/tui.py
	$(PY) bench/soak.py

screenshots: setup
	$(PY) scripts/make_screenshots.py
