# Jianshen — developer and CI entry points. `make` alone lists the targets.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PORT ?= 8000
PYTEST_ARGS ?= -q --durations=25
# The suite runs on TEST_WORKERS processes (pytest-xdist; every worker starts its own PostgreSQL and Redis):
# one per core, at most 4. TEST_WORKERS=0 runs it in this process; a `-n N` in PYTEST_ARGS wins too.
TEST_WORKERS ?= $(shell n=$$(nproc 2>/dev/null || echo 2); [ "$$n" -gt 4 ] && n=4; echo $$n)
XDIST_ARGS = -n $(TEST_WORKERS) --dist loadgroup
# The dependency locks (docs/DEPENDENCIES.md): make install uses test.lock, docker/Dockerfile runtime.lock.
LOCK := requirements/test.lock
UV_VERSION := 0.13.9

.DEFAULT_GOAL := help
.PHONY: help install lock lock-check system-deps demo test bench schema migrations clean

help: ## list the targets
	@echo "Jianshen make targets:"
	@grep -E '^[a-z][a-z-]*:.*## ' $(MAKEFILE_LIST) | sed -E 's/^([a-z-]+):.*## (.*)$$/  \1\t\2/' | expand -t 16
	@echo "Variables: PYTHON=$(PYTHON) PORT=$(PORT) PYTEST_ARGS='$(PYTEST_ARGS)' TEST_WORKERS=$(TEST_WORKERS)"

# The stamp is re-made whenever pyproject.toml or the lock changes. Exactly the locked versions, each file checked
# against the lock's hashes; then the project itself, built by the locked setuptools, without resolving anything.
$(VENV)/.installed: pyproject.toml $(LOCK) | lock-check
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --require-hashes -r $(LOCK)
	$(PY) -m pip install -q --no-deps --no-build-isolation -e .
	$(PY) -m esign glyphs || echo "no CJK font: certificates convert their glyphs per process (make system-deps)"
	touch $@

install: lock-check $(VENV)/.installed ## create .venv and install the locked dependencies, the test extras and the package

lock-check: ## check requirements/*.lock is in step with pyproject.toml (every install does)
	@$(PYTHON) scripts/lock.py check

lock: ## re-lock after a change to pyproject.toml (requirements/*.lock; UPGRADE=1: newest of everything; needs PyPI)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q uv==$(UV_VERSION)
	$(PY) scripts/lock.py compile $(if $(UPGRADE),--upgrade)

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

test: install system-deps ## run the test suite on TEST_WORKERS processes (PYTEST_ARGS=..., TEST_WORKERS=0: one process)
	$(PY) -m pytest $(if $(filter-out 0,$(TEST_WORKERS)),$(XDIST_ARGS)) $(PYTEST_ARGS)

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
