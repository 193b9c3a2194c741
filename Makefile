# The README's two commands are `make run` and `make test`; both are idempotent on a fresh machine.
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: setup run test fuzz shuffle lint bench screenshots

setup:
	bash scripts/setup.sh

run: setup
	$(VENV)/bin/cachetop demo

test: setup
	$(PY) -m pytest -q --durations=25

# The property tests with a random seed and ten times the examples (the "fuzz" Hypothesis
# profile); `make fuzz SEED=N` repeats a run. `make test` and CI stay derandomized.
fuzz: setup
	@seed="$(SEED)"; [ -n "$$seed" ] || seed=$$(od -An -N4 -tu4 /dev/urandom | tr -d ' '); \
	echo "make fuzz: Hypothesis seed $$seed (make fuzz SEED=$$seed repeats this run)"; \
	HYPOTHESIS_PROFILE=fuzz $(PY) -m pytest -q -m hypothesis --hypothesis-seed=$$seed

# The whole suite in a random order (pytest-randomly); `make shuffle SEED=N` repeats an order.
shuffle: setup
	@seed="$(SEED)"; [ -n "$$seed" ] || seed=$$(od -An -N4 -tu4 /dev/urandom | tr -d ' '); \
	echo "make shuffle: order seed $$seed (make shuffle SEED=$$seed repeats this order)"; \
	$(PY) -m pytest -q -p randomly --randomly-seed=$$seed

lint: setup
	$(VENV)/bin/ruff check cachetop collectors tests bench scripts
	$(VENV)/bin/lint-imports

bench: setup
	$(PY) bench/poll.py
	$(PY) bench/history.py
	$(PY) bench/prom_parse.py
	$(PY) bench/tui.py
	$(PY) bench/soak.py
	$(PY) bench/keys.py
	$(PY) bench/agent.py

screenshots: setup
	$(PY) scripts/make_screenshots.py
