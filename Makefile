# Two commands for a fresh machine:
#   make demo    - install into .venv and run the main job: `alertscaler demo` (real Prometheus and
#                  Alertmanager from the Debian packages prometheus and prometheus-alertmanager, alertscaler,
#                  local instances, a replayed real traffic shape, a live view; Ctrl-C stops everything)
#   make test    - install into .venv (with dev tools), .heat-venv (a real OpenStack Heat for the Heat
#                  tests, from tests/heat/requirements.txt) and .opera-venv (xOpera for the tosca tests, from
#                  tests/tosca/requirements.txt), then run every check and test
# Also: make serve - run alertscaler alone on examples/local.yml (local processes, SQLite)
#       make unit  - the fast lane: unit and API tests (under a minute)
VENV   ?= .venv
PY     := $(VENV)/bin/python
PYTHON ?= python3
# Heat (API + engine, tests/heat/launcher.py) has its own environment: it pins many oslo libraries.
HEAT_VENV ?= .heat-venv
HEAT_REQUIREMENTS := tests/heat/requirements.txt
# xOpera (the tosca provider) too: opera 0.7.0 pins PyYAML 5.4.1, which has no wheel for Python 3.11 and only
# builds with Cython < 3 and no build isolation, so that is installed first.
OPERA_VENV ?= .opera-venv
OPERA_REQUIREMENTS := tests/tosca/requirements.txt

.PHONY: demo serve test lint unit bench clean heat-venv opera-venv

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $@

# Rebuilt from scratch when the requirements change; the .gitignore keeps it out of `git status`.
$(HEAT_VENV)/.installed: $(HEAT_REQUIREMENTS)
	rm -rf $(HEAT_VENV)
	$(PYTHON) -m venv $(HEAT_VENV)
	echo '*' > $(HEAT_VENV)/.gitignore
	$(HEAT_VENV)/bin/python -m pip install -q --upgrade pip
	$(HEAT_VENV)/bin/python -m pip install -q -r $(HEAT_REQUIREMENTS)
	touch $@

heat-venv: $(HEAT_VENV)/.installed

$(OPERA_VENV)/.installed: $(OPERA_REQUIREMENTS)
	rm -rf $(OPERA_VENV)
	$(PYTHON) -m venv $(OPERA_VENV)
	echo '*' > $(OPERA_VENV)/.gitignore
	$(OPERA_VENV)/bin/python -m pip install -q --upgrade pip
	$(OPERA_VENV)/bin/python -m pip install -q "cython<3" wheel setuptools
	$(OPERA_VENV)/bin/python -m pip install -q --no-build-isolation PyYAML==5.4.1
	$(OPERA_VENV)/bin/python -m pip install -q -r $(OPERA_REQUIREMENTS)
	touch $@

opera-venv: $(OPERA_VENV)/.installed

demo: $(VENV)/.installed
	$(VENV)/bin/alertscaler demo

serve: $(VENV)/.installed
	$(VENV)/bin/alertscaler serve -c examples/local.yml

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports
	$(PY) tests/architecture/purity.py

test: lint heat-venv opera-venv
	$(PY) -m pytest -q -p no:cacheprovider

# The fast lane: unit and API tests only (in process, no server, no cloud; under a minute). The next ring is
# `$(PY) -m pytest -m "not slow"`: everything but real Heat, opera, end-to-end and other tests over ~5 s.
unit: $(VENV)/.installed
	$(PY) -m pytest -q -p no:cacheprovider tests/unit tests/api

bench: $(VENV)/.installed
	$(PY) bench/ingest.py

clean:
	rm -rf $(VENV) $(HEAT_VENV) $(OPERA_VENV) alertscaler-state .pytest_cache .mypy_cache .ruff_cache
