# Serverlesspresso developer tasks. GNU make; creates its virtual environments on a fresh clone.
#   make test    lint + type-check + template checks + every test
#   make build   sam build (needs a Python 3.13 interpreter: the Lambda runtime's)
#   make demo    a rush at the coffee bar on the embedded local engine  [CUSTOMERS=30 TIME_SCALE=0.02 SEED=7]
#   make local   the whole stack on loopback, foreground  [PORT=4566 API_PORT=3000 PUSH_PORT=3001 TIME_SCALE=1]
#   make watch   print the push channel's messages for a user  USER=alice [ROLE=barista|display]
#   make deploy  the stack to AWS and its three screens on CloudFront, then their URLs  [ENV=dev|prod]
#                (README: Deploy; make publish [ENV=] re-publishes web/ only, make outputs prints the URLs)
#   make barista add a barista  EMAIL=...  [ENV=dev|prod] [REMOVE=1]
#   make smoke   one order to COMPLETED, a cancel and an alarm check on the deployed stack  [ENV=dev|prod]
#                make smoke LOCAL=1: the same against a fresh local stack (make test runs it)
#   make mutate  mutation testing of the domain package and handlers (slow; not part of make test)

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := test

# The interpreter the virtual environments are made with: PYTHON=... when given, else the best one
# scripts/find-python finds (3.13 as the Lambda runtime, else 3.12, else 3.11 or newer), which says what
# to install when there is none.
PYTHON ?=
VENV := .venv
TOOLS := .venv-tools
BIN := $(VENV)/bin
STATELINT := tools/statelint/node_modules/.installed

# The SAM CLI must not try to phone home (CI and developers may have no network but PyPI).
export SAM_CLI_TELEMETRY := 0

# Python sources to lint and type-check: only the directories that hold some.
PY_DIRS := $(foreach d,functions local ops tests bench,$(if $(wildcard $(d)/*.py $(d)/*/*.py $(d)/*/*/*.py),$(d)))

# pip on this machine prints "Location ... is ignored" for its offline wheel directories; drop those
# lines only. `|| true` because grep exits 1 when it filtered everything; pipefail keeps pip's status.
PIP_FILTER := { grep -v 'is ignored' || true; }

# $(call make_venv,DIR): create DIR with the chosen interpreter unless it exists.
make_venv = test -x $(1)/bin/python || { py="$(or $(PYTHON),$$(sh scripts/find-python))" \
  && echo "creating $(1) with $$py" && "$$py" -m venv $(1); }

$(VENV)/.installed: requirements-dev.txt
	@$(call make_venv,$(VENV))
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt 2>&1 | $(PIP_FILTER)
	@touch $@

$(TOOLS)/.installed: requirements-tools.txt
	@$(call make_venv,$(TOOLS))
	$(TOOLS)/bin/python -m pip install --quiet -r requirements-tools.txt 2>&1 | $(PIP_FILTER)
	@touch $@

.PHONY: venv lint unit test build clean

venv: $(VENV)/.installed $(TOOLS)/.installed

lint: lint-python lint-template

.PHONY: lint-python lint-template
lint-python: $(VENV)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy $(PY_DIRS)

# cfn-lint with its informational checks too (I3011: every stateful resource says what happens to it
# when the stack is deleted or replaced).
lint-template: $(VENV)/.installed $(TOOLS)/.installed
	$(BIN)/cfn-lint --include-checks I -- template.yaml
	$(TOOLS)/bin/sam validate --lint

unit: $(VENV)/.installed
	$(BIN)/pytest

# Tests run in parallel (pytest-xdist): every test has its own moto state (mock_aws is per test
# and per process) and the guard in tests/conftest.py loads in each worker. worksteal: an idle
# worker takes tests queued for a busy one, so one long end-to-end test does not leave a tail.
# The Python lint runs first (seconds, and a typo fails fast); the template checks (cfn-lint and
# sam validate, ~10 s of CPU that mostly waits on imports) run beside pytest, their output printed
# after pytest's, and either one failing fails `make test`.
test: lint-python $(TOOLS)/.installed $(STATELINT)
	@template_log="$$(mktemp)"; \
	$(MAKE) --no-print-directory lint-template >"$$template_log" 2>&1 & template_checks=$$!; \
	status=0; $(BIN)/pytest -n auto --dist worksteal || status=$$?; \
	template_status=0; wait $$template_checks || template_status=$$?; \
	echo "--- template checks (make lint-template) ---"; cat "$$template_log"; rm -f "$$template_log"; \
	if [ $$template_status -ne 0 ]; then echo "error: make lint-template failed" >&2; fi; \
	exit $$(( status ? status : template_status ))

# statelint (npm, pinned by tools/statelint/package-lock.json) validates the ASL in
# tests/test_asl_validation.py. Without Node.js those tests skip and say so, loudly; CI must have it.
$(STATELINT): tools/statelint/package-lock.json
	@if command -v npm >/dev/null 2>&1; then \
	  npm ci --prefix tools/statelint --silent --no-audit --no-fund && touch $@; \
	elif [ -n "$${CI:-}" ]; then \
	  echo "error: CI must validate the ASL with statelint: install Node.js (with npm)." >&2; exit 1; \
	else \
	  echo "WARNING: Node.js (npm) not found: the ASL will NOT be checked with statelint;" >&2; \
	  echo "WARNING: install Node.js 18 or newer to run those checks." >&2; \
	fi

# sam build runs the python3.13 build workflow, which needs a python3.13 first on PATH (a pyenv
# shim of an installed but unselected 3.13 is not enough): put the interpreter's own directory first.
build: $(TOOLS)/.installed
	@py313="$$(sh scripts/find-python 3.13 2>/dev/null)" || { \
	  echo "error: sam build needs a Python 3.13 interpreter (the Lambda runtime is python3.13)." >&2; \
	  echo "       Install one (e.g. 'pyenv install 3.13' or 'brew install python@3.13') and run 'make build' again." >&2; \
	  exit 1; }; \
	echo "sam build with $$py313"; \
	PATH="$$(dirname "$$py313"):$$PATH" $(TOOLS)/bin/sam build

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
# without a Python 3.13 the sizes are skipped), the local engine's throughput, its timeout paths,
# make local under a rush (profiled with py-spy), the push channel's latency (200 WebSocket clients on
# the local stack). Each prints its table and writes bench/results/<name>.json. Not tests: nothing
# here passes or fails on a figure.
.PHONY: bench
bench: $(VENV)/.installed $(TOOLS)/.installed
	-@$(MAKE) --no-print-directory build
	$(BIN)/python bench/cost.py
	$(BIN)/python bench/cold_start.py
	$(BIN)/python bench/throughput.py
	$(BIN)/python bench/local_timeouts.py
	$(BIN)/python bench/rush.py --profile
	$(BIN)/python bench/push.py

# Operators' commands (ops/, README "Deploy" and "Operations"). ENV=dev is samconfig.toml's [default]
# environment, ENV=prod its [prod] one; credentials and region come from the usual AWS chain. A shell's
# own ENV (a path to its startup file) is not an environment name and is ignored: GIVEN_ENV is empty then.
GIVEN_ENV := $(if $(or $(findstring /,$(ENV)),$(filter-out command line environment%,$(origin ENV))),,$(ENV))
DEPLOY_ENV := $(or $(GIVEN_ENV),dev)
OPS := $(BIN)/python -m

# make deploy [ENV=prod]: the stack and its screens. The pre-flight (credentials, region, the Powertools
# layer published there) says what is wrong before anything is created; then sam build, an unattended
# sam deploy of that samconfig environment, web/ published to the stack's bucket with its runtime
# config (ops/publish.py) and the CloudFront cache invalidated, then the URLs a person needs.
.PHONY: deploy publish
deploy: $(VENV)/.installed $(TOOLS)/.installed
	@$(OPS) ops.deploy preflight --env "$(DEPLOY_ENV)"
	@$(MAKE) --no-print-directory build
	@$(OPS) ops.deploy deploy --env "$(DEPLOY_ENV)" --sam $(TOOLS)/bin/sam

# make publish [ENV=prod]: web/ again, after a change to the screens only (no sam build or deploy)
publish: $(VENV)/.installed
	@$(OPS) ops.deploy publish --env "$(DEPLOY_ENV)"

# make outputs [ENV=prod]: the deployed stack's outputs again (API URL, user pool, alarm topic ...)
.PHONY: outputs
outputs: $(VENV)/.installed
	@$(OPS) ops.deploy outputs --env "$(DEPLOY_ENV)"

# make barista EMAIL=ana@example.com [ENV=prod] [REMOVE=1]: add (or remove) a barista
.PHONY: barista
barista: $(VENV)/.installed
	@test -n "$(EMAIL)" || { echo "usage: make barista EMAIL=ana@example.com [ENV=dev|prod] [REMOVE=1]" >&2; exit 2; }
	@$(OPS) ops.baristas "$(EMAIL)" --env "$(DEPLOY_ENV)" $(if $(REMOVE),--remove)

# make smoke [ENV=prod]: after a deploy, temporary users run one order to COMPLETED (heard on the push
# channel) and a cancel over the real API, the stack's alarms are checked, the users deleted.
# make smoke LOCAL=1: the same code against a fresh local stack on free ports (tests/ops/test_smoke.py).
.PHONY: smoke
smoke: $(VENV)/.installed
	@$(OPS) ops.smoke $(if $(LOCAL),--local,--env "$(DEPLOY_ENV)")

# Operations under faults (issue 14; README: Runbook).
#   make chaos                        the demo's rush with faults injected (seeded), then replay + reconcile
#   make replay [ENV=prod | LOCAL=http://127.0.0.1:4566] [DRY_RUN=1]   dead-lettered events back on the bus
#   make reconcile [ENV=prod | LOCAL=http://127.0.0.1:4566]            settle overdue orders now
# Without ENV or LOCAL, replay and reconcile act on `make local` (http://127.0.0.1:4566).
.PHONY: chaos replay reconcile
chaos: $(VENV)/.installed
	@$(BIN)/python -m local.faults.chaos $(call given,CUSTOMERS,--customers) \
	  $(call given,TIME_SCALE,--time-scale) $(call given,SEED,--seed) $(call given,RATE,--rate)

replay: $(VENV)/.installed
	@$(OPS) ops.cli replay $(if $(GIVEN_ENV),--env $(GIVEN_ENV)) $(call given,LOCAL,--local) $(if $(DRY_RUN),--dry-run)

reconcile: $(VENV)/.installed
	@$(OPS) ops.cli reconcile $(if $(GIVEN_ENV),--env $(GIVEN_ENV)) $(call given,LOCAL,--local)

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

# Mutation testing of the shared package and the handlers (bench/mutate.py, bench/mutation_equivalents.md):
# prints the kill rate per file and every survivor, writes bench/results/mutation.json. Not part of
# `make test` or CI (it runs the suite once per mutant's tests). Niced: it takes both CPUs.
#   make mutate [JOBS=2] [FILES=orders.py,resume.py] [MAX_TESTS=30] [MERGE=1]
# MERGE=1 keeps the other files' mutants in bench/results/mutation.json (per-file runs add up to one).
$(VENV)/.mutate-installed: requirements-mutate.txt $(VENV)/.installed
	$(BIN)/python -m pip install --quiet -r requirements-mutate.txt 2>&1 | $(PIP_FILTER)
	@touch $@

.PHONY: mutate
mutate: $(VENV)/.mutate-installed
	nice -n 10 $(BIN)/python bench/mutate.py $(call given,JOBS,--jobs) $(call given,FILES,--files) \
	  $(call given,MAX_TESTS,--max-tests) $(if $(MERGE),--merge)
