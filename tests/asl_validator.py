"""Offline checks of an Amazon States Language definition, stricter than what moto enforces.

moto's Step Functions creates state machines real Step Functions refuses (tests/asl_corpus.py lists
such defects), so the local engine alone would let a bad ASL edit through to `sam deploy`. Three
checks, each returning the problems it finds (an empty list: none):

- `statelint`: @wmfs/statelint (npm, pinned in tools/statelint/package-lock.json; `make test` installs
  it): the Amazon States Language's own rules as a schema, the strictest offline validator we found.
  It needs Node.js; without it `StatelintUnavailable` is raised (the tests skip loudly, except in CI).
- `static_analysis`: the ASL parser and static analyser of LocalStack, which moto vendors (so no new
  dependency): the numeric and error-name rules statelint does not have.
- `own_rules`: what neither catches (see the corpus's `missed_because`): a custom error named
  `States.*`; a `States.*` name that is not a predefined error; HeartbeatSeconds not below
  TimeoutSeconds (kept although the static analyser has it: the waits' timing is the workflow's
  contract).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator, Sequence
from typing import Any

from local.template import Template
from tests.template_tables import ROOT

STATE_MACHINE = "OrderProcessorStateMachine"
PLACEHOLDER = re.compile(r"\$\{([A-Za-z0-9_]+)\}")
STATELINT_DIR = ROOT / "tools" / "statelint"
STATELINT_SCRIPT = STATELINT_DIR / "validate.js"

# The predefined error codes (https://states-language.net/spec.html#appendix-a, plus those Step
# Functions added for Map, HTTP tasks and JSONata). Every other `States.` name is refused.
PREDEFINED_ERRORS = frozenset(
    {
        "States.ALL",
        "States.BranchFailed",
        "States.DataLimitExceeded",
        "States.ExceedToleratedFailureThreshold",
        "States.HeartbeatTimeout",
        "States.Http.Socket",
        "States.IntrinsicFailure",
        "States.ItemReaderFailed",
        "States.NoChoiceMatched",
        "States.ParameterPathFailure",
        "States.Permissions",
        "States.QueryEvaluationError",
        "States.ResultPathMatchFailure",
        "States.ResultWriterFailed",
        "States.Runtime",
        "States.TaskFailed",
        "States.Timeout",
    }
)
# TimeoutSeconds when a Task state has none (the spec's default: 99999999 seconds).
DEFAULT_TASK_TIMEOUT_SECONDS = 99_999_999


def deployed_definition(template: Template, state_machine: str = STATE_MACHINE) -> dict[str, Any]:
    """The state machine's definition as Step Functions would receive it (DefinitionSubstitutions done)."""
    properties = template.properties(state_machine)
    text = (template.root / str(properties["DefinitionUri"])).read_text(encoding="utf-8")
    substitutions = template.resolve(properties["DefinitionSubstitutions"])
    definition: dict[str, Any] = json.loads(
        PLACEHOLDER.sub(lambda match: str(substitutions[match.group(1)]), text)
    )
    return definition


class StatelintUnavailable(RuntimeError):
    """Node.js or the installed statelint package is missing (run `make test`, which installs it)."""


def statelint(definitions: Sequence[dict[str, Any]]) -> list[list[str]]:
    """statelint's problems for each definition, in one Node process."""
    node = shutil.which("node")
    if node is None:
        raise StatelintUnavailable("node is not on PATH: install Node.js to validate the ASL with statelint")
    if not (STATELINT_DIR / "node_modules" / "@wmfs" / "statelint").is_dir():
        raise StatelintUnavailable(f"statelint is not installed: run `make test` (npm ci in {STATELINT_DIR})")
    result = subprocess.run(
        [node, str(STATELINT_SCRIPT)],
        input=json.dumps(list(definitions)),
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
        env={**os.environ, "NODE_OPTIONS": ""},
    )
    if result.returncode != 0:
        raise RuntimeError(f"statelint failed:\n{result.stderr[-2000:]}")
    problems: list[list[str]] = json.loads(result.stdout)
    return problems


def static_analysis(definition: dict[str, Any]) -> list[str]:
    """The LocalStack (moto-vendored) parser and static analyser's refusal, if any."""
    from moto.stepfunctions.parser.asl.static_analyser.static_analyser import StaticAnalyser

    try:
        StaticAnalyser().analyse(json.dumps(definition))
    except Exception as refusal:  # the analyser raises whatever its rule raises
        return [f"{type(refusal).__name__}: {refusal}"]
    return []


def own_rules(definition: dict[str, Any]) -> list[str]:
    """Rules Step Functions enforces that neither validator above does (see the module docstring)."""
    problems = []
    for where, state in _states(definition):
        error = state.get("Error")
        if state.get("Type") == "Fail" and isinstance(error, str) and error.startswith("States."):
            problems.append(f"{where}: custom error {error!r} uses the reserved prefix 'States.'")
        for handler in [*state.get("Retry", []), *state.get("Catch", [])]:
            unknown = [
                name
                for name in handler.get("ErrorEquals", [])
                if name.startswith("States.") and name not in PREDEFINED_ERRORS
            ]
            if unknown:
                problems.append(f"{where}: {unknown} are not predefined errors")
        heartbeat = state.get("HeartbeatSeconds")
        timeout = state.get("TimeoutSeconds", DEFAULT_TASK_TIMEOUT_SECONDS)
        if isinstance(heartbeat, int) and isinstance(timeout, int) and heartbeat >= timeout:
            problems.append(f"{where}: HeartbeatSeconds {heartbeat} is not below TimeoutSeconds {timeout}")
    return problems


def _states(definition: dict[str, Any], prefix: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    """(path, state) for every state, nested Parallel branches and Map processors included."""
    for name, state in definition.get("States", {}).items():
        where = f"{prefix}{name}"
        yield where, state
        for index, branch in enumerate(state.get("Branches", [])):
            yield from _states(branch, f"{where}/Branches[{index}]/")
        for key in ("Iterator", "ItemProcessor"):
            if key in state:
                yield from _states(state[key], f"{where}/{key}/")
