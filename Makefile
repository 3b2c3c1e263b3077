# Two commands on a fresh machine: `make run` (demo dataflow) and `make test` (the suite).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-dev

.PHONY: run test venv bench check clean lint compat compat-venv

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

## Run the whole test suite (creates .venv with the dev extras on first use); the differential
## tests against the reference implementations skip without .venv-compat (see `make compat`).
test: $(STAMP)
	$(VENV)/bin/lint-imports --no-cache
	$(PY) -m pytest -q $(PYTEST_ARGS)

## The reference implementations (dora-rs 1.1.0, degirum_tools) in their own venv, for tests/compat.
COMPAT_VENV ?= .venv-compat
COMPAT_STAMP := $(COMPAT_VENV)/.installed

$(COMPAT_STAMP): tests/compat/requirements.txt
	$(PYTHON) -m venv $(COMPAT_VENV)
	$(COMPAT_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(COMPAT_VENV)/bin/python -m pip install --quiet -r tests/compat/requirements.txt
	touch $(COMPAT_STAMP)

compat-venv: $(COMPAT_STAMP)

## Differential tests: the same programs on the references and on dora_zmq.
compat: $(STAMP) $(COMPAT_STAMP)
	DORA_ZMQ_COMPAT_VENV=$(COMPAT_VENV) $(PY) -m pytest -q tests/compat $(PYTEST_ARGS)

## Validate every example dataflow.
check: $(STAMP)
	for f in dataflows/*.yml; do $(VENV)/bin/dora-zmq check $$f || exit 1; done

## Benchmarks against raw pyzmq (see README, "Benchmarks").
bench: $(STAMP)
	$(PY) benchmarks/run.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) $(COMPAT_VENV) build *.egg-info .pytest_cache
