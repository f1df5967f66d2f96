# The two commands of the README: `make run` and `make test`. Each sets itself up.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PORT ?= 8000
STAGE ?= dev
DEPLOY_TESTS ?= 1

.PHONY: run stop reset test lint unit package validate-deploy bench clean

# First run: about half a minute of downloads (uv installs from PyPI, as pip would, in
# parallel; it lists each package it installed). pip stays in the venv for anyone who wants it.
$(BIN)/activate: requirements.txt requirements-dev.txt
	@echo "== setting up $(VENV) (first time only)"
	@started=$$(date +%s); \
	$(PYTHON) -m venv $(VENV) && \
	$(BIN)/pip install --quiet "pip<26.3" && \
	{ { $(BIN)/pip install --quiet "uv>=0.13,<0.14" && \
	    $(BIN)/uv pip install --python $(BIN)/python --compile-bytecode -r requirements-dev.txt; } || \
	  { echo "== uv failed (it reads no pip.conf: an index or certificate set there?); pip instead"; \
	    $(BIN)/pip install -r requirements-dev.txt; }; } && \
	echo "== $(VENV) ready in $$(( $$(date +%s) - started )) s"
	touch $(BIN)/activate

# The saga on localhost: embedded AWS (moto), demo data, no credentials, no Docker.
# Its state is kept in STATE_DIR across restarts (local/persistence.py): FRESH=1 starts
# from fresh demo data, STATE_DIR= (empty) keeps everything in memory only.
STATE_DIR ?= .local-state
run: $(BIN)/activate
	BIN=$(BIN) PORT=$(PORT) LOCAL_STATE_DIR=$(STATE_DIR) LOCAL_STATE_FRESH=$(FRESH) bash scripts/run.sh

# Stop the `make run` of this checkout (from another terminal; Ctrl-C works too).
stop:
	bash scripts/stop.sh

# Forget the state of `make run` (bookings, balances, sold seats): the next run starts
# fresh. Refused while a server uses it.
reset: $(BIN)/activate
	$(if $(STATE_DIR),$(BIN)/python -m local.persistence reset "$(STATE_DIR)")

lint: $(BIN)/activate
	$(BIN)/ruff check .
	$(BIN)/mypy app.py chalicelib tests deploy bench local ops

# Everything CI checks: lint, types, the offline deploy checks, every test layer
# (pytest exit 5, no tests, fails).
test: lint
	bash scripts/ensure-tools.sh
	$(MAKE) validate-deploy DEPLOY_TESTS=0
	REQUIRE_DEPLOY_REHEARSAL=1 bash scripts/test.sh

clean:
	rm -rf $(VENV) build .pytest_cache .mypy_cache .ruff_cache

# --- Deploy (docs/deploy.md) ------------------------------------------------------------
# build/<stage>/sam.json + deployment.zip: Chalice's template merged with the resources
# deploy/resources.py generates (tables, state machines, roles, environment wiring).
package: $(BIN)/activate
	mkdir -p build
	EMBEDDED_AWS=false $(BIN)/python -m deploy.resources --stage $(STAGE) > build/resources-$(STAGE).json
	rm -rf build/$(STAGE)
	AWS_DEFAULT_REGION=$${AWS_DEFAULT_REGION:-us-east-1} EMBEDDED_AWS=false \
		$(BIN)/chalice package --stage $(STAGE) --merge-template build/resources-$(STAGE).json build/$(STAGE)

# Offline: ASL linters (npm), cfn-lint before and after the SAM transform, the deploy
# rehearsal in moto. Needs no AWS account.
node_modules/.package-lock.json: package.json package-lock.json
	npm ci --no-audit --no-fund

validate-deploy: $(BIN)/activate node_modules/.package-lock.json
	$(BIN)/pip install --quiet -r deploy/requirements.txt
	$(MAKE) package STAGE=dev
	$(MAKE) package STAGE=prod
	BIN=$(BIN) STAGES="dev prod" DEPLOY_TESTS=$(DEPLOY_TESTS) bash deploy/validate.sh

# Benchmarks (bench/): printed and written to docs/benchmarks.md; never asserted in tests.
bench: $(BIN)/activate
	env -u AWS_PROFILE -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY -u AWS_SESSION_TOKEN $(BIN)/python -m bench.run
