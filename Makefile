# Serverlesspresso developer tasks. GNU make; creates its virtual environments on a fresh clone.
#   make test    lint + type-check + template checks + every test
#   make build   sam build (needs a Python 3.13 interpreter, found via pyenv)
#   make demo    a rush at the coffee bar on the embedded local engine  [CUSTOMERS=30 TIME_SCALE=0.02 SEED=7]
#   make local   the whole stack on loopback, foreground  [PORT=4566 API_PORT=3000 PUSH_PORT=3001 TIME_SCALE=1]
#   make watch   print the push channel's messages for a user  USER=alice [ROLE=barista|display]

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

# The push channel's messages for one user, one JSON line each, against `make local`:
#   make watch USER=alice            a customer's feed      make watch USER=bob ROLE=barista  every order
.PHONY: watch
watch: $(VENV)/.installed
	@$(BIN)/python -m local.push.watch "$(USER)" --role "$(ROLE)" $(call given,PUSH_URL,--url)

.PHONY: local demo
# The tools venv too: the README's walkthrough against `make local` uses its AWS CLI.
local: $(VENV)/.installed $(TOOLS)/.installed
	@$(BIN)/python -m local.cli $(call given,PORT,--port) $(call given,API_PORT,--api-port) \
	  $(call given,PUSH_PORT,--push-port) $(call given,TIME_SCALE,--time-scale)

demo: $(VENV)/.installed
	@$(BIN)/python -m local.demo $(call given,CUSTOMERS,--customers) $(call given,TIME_SCALE,--time-scale) \
	  $(call given,SEED,--seed)

# Benchmarks (bench/README.md): cost per order, cold starts and package sizes (hence the build first;
# without a Python 3.13 the sizes are skipped), the local engine's throughput, its timeout paths, the
# push channel's latency (200 WebSocket clients on the local stack). Each
# prints its table and writes bench/results/<name>.json. Not tests: nothing here passes or fails on a figure.
.PHONY: bench
bench: $(VENV)/.installed $(TOOLS)/.installed
	-@$(MAKE) --no-print-directory build
	$(BIN)/python bench/cost.py
	$(BIN)/python bench/cold_start.py
	$(BIN)/python bench/throughput.py
	$(BIN)/python bench/local_timeouts.py
	$(BIN)/python bench/push.py

# A URL, as the last line, that opens a screen of the running `make local` already signed in (once):
#   make -s link SCREEN=order USER=alice           the order app
#   make -s link SCREEN=barista USER=bob           the barista board (ROLE=barista by default)
#   make -s link SCREEN=display USER=screen        the display            [ROLE=... API_PORT=3000]
SCREEN ?= order
.PHONY: link
link: $(VENV)/.installed
	@$(BIN)/python -m local.web.link --screen "$(SCREEN)" --user "$(USER)" $(call given,ROLE,--role) \
	  $(call given,API_PORT,--api-port)

# The three screens during a scripted rush, as PNGs in docs/screenshots/ (shown in the README). Needs a
# Chromium (Debian's `chromium` package; local/web/chromium.py).
.PHONY: screenshots
screenshots: $(VENV)/.installed
	@$(BIN)/python -m local.web.screenshots --out docs/screenshots
