# Jianshen — developer and CI entry points. `make` alone lists the targets.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PORT ?= 8000
PYTEST_ARGS ?= -q --durations=25

.DEFAULT_GOAL := help
.PHONY: help install system-deps demo test bench schema migrations clean

help: ## list the targets
	@echo "Jianshen make targets:"
	@grep -E '^[a-z][a-z-]*:.*## ' $(MAKEFILE_LIST) | sed -E 's/^([a-z-]+):.*## (.*)$$/  \1\t\2/' | expand -t 16
	@echo "Variables: PYTHON=$(PYTHON) PORT=$(PORT) PYTEST_ARGS='$(PYTEST_ARGS)'"

# The stamp is re-made whenever pyproject.toml changes (new or changed dependencies).
$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[test]"
	touch $@

install: $(VENV)/.installed ## create .venv and install the package with its test extras

system-deps: ## install redis-server, pdfsig, CJK fonts, PostgreSQL (apt; root)
	bash scripts/install-system-deps.sh

# The demo's console shows warnings and the banner; requests and notices go to var/log/ (override either variable).
demo: export JIANSHEN_LOG_FILE ?= var/log/jianshen.log
demo: export JIANSHEN_CONSOLE_LOG_LEVEL ?= WARNING
demo: install ## migrate the SQLite database, load demo data (prints accounts, tokens), serve on 127.0.0.1:PORT
	@mkdir -p var
	$(PY) -m api migrate
	$(PY) -m api load-demo --tokens var/demo-tokens.json --host 127.0.0.1 --port $(PORT)
	$(PY) -m api serve --host 127.0.0.1 --port $(PORT) --demo-tokens var/demo-tokens.json

test: install system-deps ## run the test suite (PYTEST_ARGS=...)
	$(PY) -m pytest $(PYTEST_ARGS)

bench: install ## run every bench/*.py (results go to docs/PERFORMANCE.md by hand)
	@set -e; for script in bench/*.py; do \
		[ -e "$$script" ] || { echo "no benchmarks in bench/"; break; }; \
		echo "== $$script"; $(PY) "$$script"; \
	done

schema: install ## export the GraphQL SDL to graphql/schema.graphql
	$(PY) -m api export-schema --output graphql/schema.graphql
	$(PY) -m api export-manifest --output graphql/operations/manifest.json

migrations: install ## make Tortoise migrations from model changes
	$(VENV)/bin/tortoise -c api.db.TORTOISE_ORM makemigrations

clean: ## remove var/ and test/build artefacts (keeps .venv)
	rm -rf var/ .pytest_cache/ .coverage htmlcov/ build/ dist/ *.egg-info/ bench/results/
	find . -path ./$(VENV) -prune -o -name __pycache__ -type d -exec rm -rf {} +
