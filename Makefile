# Two commands on a fresh machine: `make run` (demo dataflow) and `make test` (the suite).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-dev

.PHONY: run test venv bench check clean lint

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(STAMP): $(VENV)/bin/python pyproject.toml
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

## Run the quick-start dataflow on this machine (creates .venv on first use).
run: $(STAMP)
	$(VENV)/bin/dora-zmq run dataflows/quickstart.yml

## Run the whole test suite (creates .venv with the dev extras on first use).
test: $(STAMP)
	$(VENV)/bin/lint-imports --no-cache
	$(PY) -m pytest -q $(PYTEST_ARGS)

## Validate every example dataflow.
check: $(STAMP)
	for f in dataflows/*.yml; do $(VENV)/bin/dora-zmq check $$f || exit 1; done

## Benchmarks against raw pyzmq (see README, "Benchmarks").
bench: $(STAMP)
	$(PY) benchmarks/run.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
