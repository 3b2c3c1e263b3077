# Two commands on a fresh machine: `make run` (demo dataflow) and `make test` (the suite).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-dev

.PHONY: run test venv bench check clean lint typecheck compat compat-venv otel-range

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

## Static checks (`make lint`), then the whole test suite (creates .venv with the dev extras on first use); the differential
## tests against the reference implementations skip without .venv-compat (see `make compat`).
test: lint
	$(PY) -m pytest -q $(PYTEST_ARGS)

## The reference implementations (dora-rs 1.1.0, degirum_tools) in their own venv, for tests/compat.
## Older degirum_tools releases go beside it, each in degirum_tools-VERSION/ (their
## dependencies are the venv's); tests/compat/streams_refs.py lists the same versions.
COMPAT_VENV ?= .venv-compat
COMPAT_STAMP := $(COMPAT_VENV)/.installed
DEGIRUM_OLDER ?= 0.25.1

$(COMPAT_STAMP): tests/compat/requirements.txt Makefile
	$(PYTHON) -m venv $(COMPAT_VENV)
	$(COMPAT_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(COMPAT_VENV)/bin/python -m pip install --quiet -r tests/compat/requirements.txt
	for v in $(DEGIRUM_OLDER); do \
	  $(COMPAT_VENV)/bin/python -m pip install --quiet --no-deps --upgrade --target $(COMPAT_VENV)/degirum_tools-$$v degirum_tools==$$v || exit 1; \
	done
	touch $(COMPAT_STAMP)

compat-venv: $(COMPAT_STAMP)

## Differential tests: the same programs on the references and on dora_zmq.
compat: $(STAMP) $(COMPAT_STAMP)
	DORA_ZMQ_COMPAT_VENV=$(COMPAT_VENV) $(PY) -m pytest -q tests/compat $(PYTEST_ARGS)

## The differential span tests (dora_zmq's spans against the SDK's own, tests/tracing) at both
## ends of the OpenTelemetry range pinned in pyproject.toml, each in its own venv (.venv-otel-VERSION).
## The lowest is the first release whose OTLP/HTTP exporter has the client tracing/_sdk.py uses.
OTEL_LOWEST ?= 1.45.0
OTEL_HIGHEST ?= 1.45.2
OTEL_TESTS := tests/tracing/test_node_spans.py tests/tracing/test_lean_paths.py tests/tracing/test_otlp_direct.py
OTEL_PACKAGES = opentelemetry-api==$* opentelemetry-sdk==$* opentelemetry-exporter-otlp-proto-http==$* \
	opentelemetry-proto==$*

.venv-otel-%/.installed: pyproject.toml
	$(PYTHON) -m venv .venv-otel-$*
	.venv-otel-$*/bin/python -m pip install --quiet -e . pytest pytest-timeout $(OTEL_PACKAGES)
	touch $@

otel-range: .venv-otel-$(OTEL_LOWEST)/.installed .venv-otel-$(OTEL_HIGHEST)/.installed
	for v in $(OTEL_LOWEST) $(OTEL_HIGHEST); do \
	  .venv-otel-$$v/bin/python -c "import opentelemetry.sdk.version as v; assert v.__version__ == '$$v', v.__version__" \
	  && .venv-otel-$$v/bin/python -m pytest -q -p no:cacheprovider $(OTEL_TESTS) || exit 1; \
	done

## Static checks, run first by `make test`: the import layers (lint-imports), ruff (lint and format) and mypy strict.
lint: $(STAMP)
	$(VENV)/bin/lint-imports --no-cache
	$(VENV)/bin/ruff check dora_zmq tests benchmarks
	$(VENV)/bin/ruff format --check dora_zmq tests benchmarks
	$(VENV)/bin/mypy

## Types: mypy strict on the package (files and options from [tool.mypy] in pyproject.toml).
## Not yet part of `lint` and `test`: it joins them once every package is clean.
typecheck: $(STAMP)
	$(VENV)/bin/mypy

## Validate every example dataflow.
check: $(STAMP)
	for f in dataflows/*.yml; do $(VENV)/bin/dora-zmq check $$f || exit 1; done

## Benchmarks against raw pyzmq (see README, "Benchmarks").
bench: $(STAMP)
	$(PY) benchmarks/run.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) $(COMPAT_VENV) .venv-otel-* build *.egg-info .pytest_cache
