# Two commands for a fresh machine:
#   make serve   - install into .venv and run alertscaler on examples/local.yml (local processes, SQLite)
#   make test    - install into .venv (with dev tools) and run every check and test
VENV   ?= .venv
PY     := $(VENV)/bin/python
PYTHON ?= python3

.PHONY: serve test lint unit bench clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $@

serve: $(VENV)/.installed
	$(VENV)/bin/alertscaler serve -c examples/local.yml

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

test: lint
	$(PY) -m pytest -q -p no:cacheprovider

bench: $(VENV)/.installed
	$(PY) bench/ingest.py

clean:
	rm -rf $(VENV) alertscaler-state .pytest_cache .mypy_cache .ruff_cache
