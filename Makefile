# Dogear: `make run` serves the app, `make test` runs the whole suite.
# Both bootstrap everything they need on a fresh clone.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PORT   ?= 8000
HTMX   := node_modules/htmx.org/dist/htmx.min.js

export DOGEAR_INSTANCE_PATH ?= $(CURDIR)/instance

.PHONY: run test test-postgres lint format bench bench-quick setup clean

## Set-up: a virtual environment with the project and its dev extras, then the
## front-end files from the npm registry copied under static/vendor.
$(BIN)/dogear: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

node_modules/.package-lock.json: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error

static/vendor/htmx.min.js: node_modules/.package-lock.json
	mkdir -p static/vendor
	cp $(HTMX) $@

setup: $(BIN)/dogear static/vendor/htmx.min.js

run: setup
	$(BIN)/dogear db upgrade
	$(BIN)/dogear posts load-demo
	$(BIN)/dogear serve --bind 127.0.0.1:$(PORT)

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: setup
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

test: setup lint
	$(BIN)/python -m pytest $(PYTEST_ARGS)

## The same suite against PostgreSQL (DOGEAR_TEST_POSTGRES_URL, default the local
## server), leaving out what is about SQLite's internals.
test-postgres: setup
	DOGEAR_TEST_DATABASE=postgresql $(BIN)/python -m pytest $(PYTEST_ARGS)

bench: setup
	$(BIN)/python bench/run.py $(BENCH_ARGS)

bench-quick: setup
	$(BIN)/python bench/run.py --quick

clean:
	rm -rf $(VENV) node_modules static/vendor
