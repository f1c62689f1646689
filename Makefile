# Two commands for a fresh machine:
#   make demo    - install into .venv and run the main job: `alertscaler demo` (real Prometheus and
#                  Alertmanager from the Debian packages prometheus and prometheus-alertmanager, alertscaler,
#                  local instances, a replayed real traffic shape, a live view; Ctrl-C stops everything)
#   make test    - install into .venv (with dev tools) and run every check and test
# Also: make serve - run alertscaler alone on examples/local.yml (local processes, SQLite)
VENV   ?= .venv
PY     := $(VENV)/bin/python
PYTHON ?= python3

.PHONY: demo serve test lint unit bench clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $@

demo: $(VENV)/.installed
	$(VENV)/bin/alertscaler demo

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
