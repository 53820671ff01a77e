# The documented entry points. Everything runs inside .venv, created on first use.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# The published governs-ai-sdk 1.0.0 installs the same module name (`governs_ai`) as our SDK, so it
# gets a venv of its own; tests/e2e/test_published_sdk.py drives our server with it.
SDK10_VENV := .venv-sdk10

.PHONY: install serve test check bench clean

install: $(STAMP)

# opa-golib-python-bindings (real OPA in-process, our test oracle) declares Requires-Python >= 3.14
# but its py3-none wheel runs on 3.11; pip needs --ignore-requires-python for it, so it is kept
# out of pyproject's extras and installed here.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	$(BIN)/pip install --quiet --ignore-requires-python opa-golib-python-bindings==0.4.4
	$(PYTHON) -m venv $(SDK10_VENV)
	$(SDK10_VENV)/bin/pip install --quiet governs-ai-sdk==1.0.0
	touch $(STAMP)

# The precheck server on 127.0.0.1:8000 (GOVERNOR_HOST/GOVERNOR_PORT to change). The first start
# creates the default organisation and prints its API keys once, with a curl example.
serve: $(STAMP)
	$(BIN)/governor serve

test: $(STAMP)
	$(BIN)/pytest

check: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python bench/run.py
	$(BIN)/python bench/storage.py
	$(BIN)/python bench/decorator.py
	$(BIN)/python bench/analytics.py
	$(BIN)/python bench/server.py

clean:
	rm -rf $(VENV) $(SDK10_VENV) .pytest_cache .mypy_cache .ruff_cache build dist
