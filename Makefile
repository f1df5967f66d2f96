# The two commands of the README: `make run` and `make test`. Each sets itself up.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PORT ?= 8000
STAGE ?= dev

.PHONY: run test lint unit package validate-deploy bench clean

$(BIN)/activate: requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $(BIN)/activate

# The saga on localhost: embedded AWS (moto), demo data, no credentials, no Docker.
run: $(BIN)/activate
	env -u AWS_PROFILE $(BIN)/chalice local --stage local --no-autoreload --port $(PORT)

lint: $(BIN)/activate
	$(BIN)/ruff check .
	$(BIN)/mypy app.py chalicelib tests

# Everything CI checks: lint, types, every test layer (pytest exit 5, no tests, fails).
test: lint
	bash scripts/ensure-tools.sh
	bash scripts/test.sh

clean:
	rm -rf $(VENV) build .pytest_cache .mypy_cache .ruff_cache
