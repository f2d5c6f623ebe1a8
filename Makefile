# Serverlesspresso developer tasks. GNU make; creates its virtual environments on a fresh clone.
#   make test    lint + type-check + template checks + every test
#   make build   sam build (needs a Python 3.13 interpreter, found via pyenv)
#   make demo    a rush at the coffee bar on the embedded local engine  [CUSTOMERS=30 TIME_SCALE=0.02 SEED=7]
#   make mutate  mutation testing of the domain package and handlers (slow; not part of make test)
#   make local   the whole stack on loopback, foreground  [PORT=4566 API_PORT=3000 TIME_SCALE=1]

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := test

PYTHON ?= python3.11
VENV := .venv
TOOLS := .venv-tools
BIN := $(VENV)/bin

# The SAM CLI must not try to phone home (CI and developers may have no network but PyPI).
export SAM_CLI_TELEMETRY := 0

# Python sources to lint and type-check: only the directories that hold some.
PY_DIRS := $(foreach d,functions local tests bench,$(if $(wildcard $(d)/*.py $(d)/*/*.py $(d)/*/*/*.py),$(d)))

# pip on this machine prints "Location ... is ignored" for its offline wheel directories; drop those
# lines only. `|| true` because grep exits 1 when it filtered everything; pipefail keeps pip's status.
PIP_FILTER := { grep -v 'is ignored' || true; }

$(VENV)/.installed: requirements-dev.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt 2>&1 | $(PIP_FILTER)
	@touch $@

$(TOOLS)/.installed: requirements-tools.txt
	@test -x $(TOOLS)/bin/python || $(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/python -m pip install --quiet -r requirements-tools.txt 2>&1 | $(PIP_FILTER)
	@touch $@

.PHONY: venv lint unit test build clean

venv: $(VENV)/.installed $(TOOLS)/.installed

lint: $(VENV)/.installed $(TOOLS)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy $(PY_DIRS)
	$(BIN)/cfn-lint template.yaml
	$(TOOLS)/bin/sam validate --lint

unit: $(VENV)/.installed
	$(BIN)/pytest

# Tests run in parallel (pytest-xdist): every test has its own moto state (mock_aws is per test
# and per process) and the guard in tests/conftest.py loads in each worker.
test: lint
	$(BIN)/pytest -n auto

# sam build runs the python3.13 build workflow, which needs a python3.13 on PATH. pyenv's shim is
# not enough (3.13 is installed but not selected), so put the interpreter's own bin first.
build: $(TOOLS)/.installed
	@py313=""; \
	for candidate in "$$(pyenv prefix 3.13.0 2>/dev/null)/bin" $$(ls -d "$${PYENV_ROOT:-$$HOME/.pyenv}"/versions/3.13.*/bin 2>/dev/null | sort -rV); do \
	  if [ -x "$$candidate/python3.13" ]; then py313="$$candidate"; break; fi; \
	done; \
	if [ -z "$$py313" ] && python3.13 -c 'import sys' >/dev/null 2>&1; then py313="$$(dirname "$$(python3.13 -c 'import sys; print(sys.executable)')")"; fi; \
	if [ -z "$$py313" ]; then \
	  echo "error: sam build needs a Python 3.13 interpreter (the Lambda runtime is python3.13)." >&2; \
	  echo "       Install one (e.g. 'pyenv install 3.13.0') and run 'make build' again." >&2; \
	  exit 1; \
	fi; \
	echo "sam build with $$py313/python3.13"; \
	PATH="$$py313:$$PATH" $(TOOLS)/bin/sam build

clean:
	rm -rf .aws-sam .pytest_cache .mypy_cache .ruff_cache
	find . -path ./$(VENV) -prune -o -path ./$(TOOLS) -prune -o -type d -name __pycache__ -prune -exec rm -rf {} +

# A bearer token for the local HTTP API (make local), printed as the last line:
#   make token USER=alice            a customer
#   make token USER=bob ROLE=barista a barista
ROLE ?= customer
.PHONY: token
token: $(VENV)/.installed
	@$(BIN)/python -m local.token_cli "$(USER)" --role "$(ROLE)"

# The application on one machine, no AWS account (local/cli.py, local/demo.py). A variable is passed
# on only when given (command line or environment), so each default lives in one place: the script.
given = $(if $(filter command line environment%,$(origin $(1))),$(2) $($(1)))

.PHONY: local demo
# The tools venv too: the README's walkthrough against `make local` uses its AWS CLI.
local: $(VENV)/.installed $(TOOLS)/.installed
	@$(BIN)/python -m local.cli $(call given,PORT,--port) $(call given,API_PORT,--api-port) \
	  $(call given,TIME_SCALE,--time-scale)

demo: $(VENV)/.installed
	@$(BIN)/python -m local.demo $(call given,CUSTOMERS,--customers) $(call given,TIME_SCALE,--time-scale) \
	  $(call given,SEED,--seed)

# Benchmarks (bench/README.md): cost per order, cold starts and package sizes (hence the build first;
# without a Python 3.13 the sizes are skipped), the local engine's throughput, its timeout paths. Each
# prints its table and writes bench/results/<name>.json. Not tests: nothing here passes or fails on a figure.
.PHONY: bench
bench: $(VENV)/.installed $(TOOLS)/.installed
	-@$(MAKE) --no-print-directory build
	$(BIN)/python bench/cost.py
	$(BIN)/python bench/cold_start.py
	$(BIN)/python bench/throughput.py
	$(BIN)/python bench/local_timeouts.py

# Mutation testing of the shared package and the handlers (bench/mutate.py, bench/mutation_equivalents.md):
# prints the kill rate per file and every survivor, writes bench/results/mutation.json. Not part of
# `make test` or CI (it runs the suite once per mutant's tests). Niced: it takes both CPUs.
#   make mutate [JOBS=2] [FILES=orders.py,resume.py] [MAX_TESTS=30]
$(VENV)/.mutate-installed: requirements-mutate.txt $(VENV)/.installed
	$(BIN)/python -m pip install --quiet -r requirements-mutate.txt 2>&1 | $(PIP_FILTER)
	@touch $@

.PHONY: mutate
mutate: $(VENV)/.mutate-installed
	nice -n 10 $(BIN)/python bench/mutate.py $(call given,JOBS,--jobs) $(call given,FILES,--files) \
	  $(call given,MAX_TESTS,--max-tests)
