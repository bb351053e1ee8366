# The few verbs a newcomer needs. Everything installs into .venv on first use.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: install demo test collector deploy-configs bench lint format clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	@echo "==> installing lumen-otel[all] and the dev tools into $(VENV)"
	@$(BIN)/python -m pip install -q --upgrade "pip>=25.1"
	@$(BIN)/python -m pip install -q -e '.[all]' --group dev
	@touch $(STAMP)

install: $(STAMP)

demo: install                ## run the four-service demo and print one request's trace
	$(BIN)/lumen-otel demo

test: install                ## run the test suite (builds nothing: run `make collector` first for the collector tests)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

collector:                   ## build bin/lumen-otelcol from collector-config/builder.yaml
	scripts/build-collector.sh

deploy-configs:              ## regenerate deploy/kubernetes ConfigMaps from collector-config/ (a test checks drift)
	$(BIN)/python scripts/gen-k8s-configmaps.py

bench: install               ## run the benchmarks against the peer stacks
	$(BIN)/python benchmarks/run_all.py

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) bin build dist .pytest_cache .mypy_cache .ruff_cache
