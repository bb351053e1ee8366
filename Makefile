# The few verbs a newcomer needs. Everything installs into .venv on first use.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: install native demo test collector deploy-configs bench lint format clean

# The optional Rust accelerator (native/): built into .venv when cargo is present, rebuilt only
# when its sources change (cargo keeps native/target/ between builds).
NATIVE_STAMP := $(VENV)/.native-stamp
NATIVE_SOURCES := native/Cargo.toml native/Cargo.lock native/pyproject.toml $(wildcard native/src/*.rs)
# what runs a second time on the Python path (LUMEN_NATIVE=0) after the whole suite ran native
NATIVE_OFF_TESTS := tests/test_native_differential.py tests/test_otlp_wire.py tests/test_logging_pipeline.py \
	tests/test_otlp_bridge.py tests/test_cli_doctor.py

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	@echo "==> installing lumen-otel[all] and the dev tools into $(VENV)"
	@$(BIN)/python -m pip install -q --upgrade "pip>=25.1"
	@$(BIN)/python -m pip install -q -e '.[all]' --group dev
	@touch $(STAMP)

install: $(STAMP)

$(NATIVE_STAMP): $(STAMP) $(NATIVE_SOURCES)
	@if command -v cargo >/dev/null 2>&1; then \
	  echo "==> building the native accelerator (native/, Rust) into $(VENV)"; \
	  PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m pip install -q --no-build-isolation ./native && touch $@; \
	else \
	  echo "==> note: cargo not found: the native accelerator is not built, lumen-otel runs its Python path"; \
	fi

native: $(NATIVE_STAMP)      ## build and install the optional Rust accelerator (needs cargo)

demo: install                ## run the four-service demo and print one request's trace
	$(BIN)/lumen-otel demo

test: install native         ## run the test suite, native accelerator on, then a subset on the Python path (run `make collector` first for the collector tests)
	$(BIN)/python -m pytest $(PYTEST_ARGS)
	@if [ -f $(NATIVE_STAMP) ]; then \
	  echo "==> the same subset on the Python path (LUMEN_NATIVE=0)"; \
	  LUMEN_NATIVE=0 $(BIN)/python -m pytest $(NATIVE_OFF_TESTS); \
	fi

collector:                   ## build bin/lumen-otelcol from collector-config/builder.yaml
	scripts/build-collector.sh

deploy-configs:              ## regenerate deploy/kubernetes ConfigMaps from collector-config/ (a test checks drift)
	$(BIN)/python scripts/gen-k8s-configmaps.py

bench: install native        ## run the benchmarks against the peer stacks
	$(BIN)/python benchmarks/run_all.py

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	@if command -v cargo >/dev/null 2>&1; then cd native && cargo fmt --check; \
	else echo "==> note: cargo not found: native/ not checked"; fi
	@if cargo clippy --version >/dev/null 2>&1; then cd native && cargo clippy --all-targets -- -D warnings; \
	else echo "==> note: clippy not installed: native/ not linted"; fi

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) bin build dist .pytest_cache .mypy_cache .ruff_cache native/target
