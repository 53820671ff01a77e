# The documented entry points. Everything runs inside .venv, created on first use.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

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
	touch $(STAMP)

# Until the server lands, `serve` builds the development bundle and evaluates a sample precheck.
serve: $(STAMP)
	@mkdir -p .governor
	$(BIN)/governor build bundles/development -o .governor/development.tar.gz --revision development
	$(BIN)/governor eval -d .governor/development.tar.gz -i examples/precheck-input.json \
		--format pretty data.governor.decision

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

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache build dist
