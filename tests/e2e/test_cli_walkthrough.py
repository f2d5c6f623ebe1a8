"""The workshop's walkthrough with the real AWS CLI against `make local` (README, "Run it locally").

`python -m local.cli` (what `make local` runs) starts in a subprocess on free ports; the AWS CLI from
.venv-tools runs the README's commands, which are the seed page's verbatim apart from
`--endpoint-url` (and `--query`/`--output` to pick values out): start-execution with the seed's input
and no name, get-execution-history to find each TaskToken, send-task-success with
`--task-output '{"orderId":1}'` twice, describe-execution. The stack runs at time scale 1, as on AWS.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

import pytest

from local.waiting import wait_until
from tests.e2e.flows import COMPLETED_PATH
from tests.helpers import BARISTA_WAIT, CUSTOMER_WAIT, REPO_ROOT

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

AWS_CLI = REPO_ROOT / ".venv-tools" / "bin" / "aws"
SEED_INPUT = '{"detail":{"orderId":"1","userId":"testuser"}}'
SEED_TASK_OUTPUT = '{"orderId":1}'
# The README's queries. The parameters of the latest TaskScheduled event are those of the wait the
# execution is in (the console's "open the TaskScheduled event").
STATE_MACHINE_ARN = "stateMachines[0].stateMachineArn"
LATEST_TASK_PARAMETERS = "events[?type==`TaskScheduled`].taskScheduledEventDetails.parameters | [-1]"
READY_TIMEOUT = 60.0
T = TypeVar("T")


@dataclass
class LocalProcess:
    """`python -m local.cli` in a subprocess, its output collected line by line."""

    process: subprocess.Popen[str]
    endpoint_url: str = ""  # from the banner, once it is ready
    lines: list[str] = field(default_factory=list)

    def output(self) -> str:
        """Everything printed so far."""
        return "\n".join(self.lines)

    def wait_for_line(self, pattern: str, timeout: float) -> re.Match[str]:
        """The first output line matching `pattern` (regex), waiting up to `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in list(self.lines):
                if found := re.search(pattern, line):
                    return found
            if self.process.poll() is not None:
                break
            time.sleep(0.05)
        raise AssertionError(f"no line matching {pattern!r}; output:\n{self.output()}")


@pytest.fixture
def local_stack() -> Iterator[LocalProcess]:
    """`make local` on free ports, ready; interrupted at the end if the test did not stop it.

    Port 0: each server binds a free port itself. A port picked here and passed on could be taken by
    then (any outgoing connection may get it as its ephemeral port): that start failed once in about
    20 `make test` runs.
    """
    process = subprocess.Popen(
        [sys.executable, "-m", "local.cli", *("--port", "0", "--api-port", "0", "--push-port", "0")],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    running = LocalProcess(process)
    assert process.stdout is not None
    stdout = process.stdout
    reader = threading.Thread(target=lambda: running.lines.extend(line.rstrip("\n") for line in stdout))
    reader.start()
    try:
        running.wait_for_line(r"^Ready in \d+\.\d\ds", READY_TIMEOUT)
        running.endpoint_url = running.wait_for_line(r"^AWS endpoint\s+(http://\S+)", 1).group(1)
        yield running
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        reader.join(timeout=10)


def aws(local: LocalProcess, *arguments: str) -> Any:
    """Run one AWS CLI command as the README does (`$LOCAL` appended); its output, parsed unless text."""
    environment = {
        **os.environ,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "AWS_PAGER": "",
    }
    completed = subprocess.run(
        [str(AWS_CLI), *arguments, f"--endpoint-url={local.endpoint_url}"],
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert completed.returncode == 0, f"aws {' '.join(arguments)}: {completed.stderr}"
    text = completed.stdout.strip()
    return text if "--output" in arguments else json.loads(text or "null")


def poll(fetch: Callable[[], T | None], what: str, timeout: float = 30.0) -> T:
    """Repeat `fetch` until it returns something truthy (every 0.2 s: each call runs the AWS CLI)."""
    return wait_until(fetch, what, timeout, interval=0.2)


def entered_states(history: dict[str, Any]) -> list[str]:
    """Names of the states entered, in order."""
    return [
        e["stateEnteredEventDetails"]["name"] for e in history["events"] if "stateEnteredEventDetails" in e
    ]


def scheduled_task_token(history: dict[str, Any], state_name: str) -> str | None:
    """The TaskToken in the TaskScheduled event of the named state (the console's view), if any yet."""
    events = history["events"]
    entered = [
        i for i, e in enumerate(events) if e.get("stateEnteredEventDetails", {}).get("name") == state_name
    ]
    if not entered:
        return None
    scheduled = next((e for e in events[entered[-1] :] if e["type"] == "TaskScheduled"), None)
    if scheduled is None:
        return None
    token: str = json.loads(scheduled["taskScheduledEventDetails"]["parameters"])["Entries"][0]["Detail"][
        "TaskToken"
    ]
    return token


def copy_task_token(local: LocalProcess, execution_arn: str, state_name: str) -> str:
    """What the walkthrough's reader does: wait for the state, then copy the token of its TaskScheduled."""

    def history_with_token() -> tuple[dict[str, Any], str] | None:
        history = aws(local, "stepfunctions", "get-execution-history", "--execution-arn", execution_arn)
        token = scheduled_task_token(history, state_name)
        # Waiting in that state: its task was submitted and nothing came after it yet.
        waiting = token is not None and history["events"][-1]["type"] == "TaskSubmitted"
        return (history, token) if waiting and token else None

    _, token = poll(history_with_token, f"TaskScheduled event of {state_name!r}")
    # The README's shortcut (latest TaskScheduled's parameters, printed as text) shows the same token.
    parameters = aws(
        local,
        "stepfunctions",
        "get-execution-history",
        "--execution-arn",
        execution_arn,
        "--query",
        LATEST_TASK_PARAMETERS,
        "--output",
        "text",
    )
    assert json.loads(parameters)["Entries"][0]["Detail"]["TaskToken"] == token
    return token


def test_the_seed_walkthrough_with_the_aws_cli_against_make_local(local_stack: LocalProcess) -> None:
    # Given `make local`, which printed its state machine's ARN, and the AWS CLI finding that machine
    printed_arn = local_stack.wait_for_line(r"^State machine\s+(arn:\S+)", 1).group(1)
    state_machine = aws(
        local_stack, "stepfunctions", "list-state-machines", "--query", STATE_MACHINE_ARN, "--output", "text"
    )
    assert state_machine == printed_arn

    # When the walkthrough starts an execution with the seed's input (no name, as on the console)
    execution_arn = aws(
        local_stack,
        "stepfunctions",
        "start-execution",
        "--state-machine-arn",
        state_machine,
        "--input",
        SEED_INPUT,
        "--query",
        "executionArn",
        "--output",
        "text",
    )

    # And copies the TaskToken of `Emit - Workflow Started TT` and sends task success with it
    customer_token = copy_task_token(local_stack, execution_arn, CUSTOMER_WAIT)
    sent = aws(
        local_stack,
        "stepfunctions",
        "send-task-success",
        "--task-output",
        SEED_TASK_OUTPUT,
        "--task-token",
        customer_token,
    )
    assert sent is None  # the CLI prints nothing on success

    # And does the same for `Emit - Awaiting Completion TT`
    barista_token = copy_task_token(local_stack, execution_arn, BARISTA_WAIT)
    assert barista_token != customer_token
    aws(
        local_stack,
        "stepfunctions",
        "send-task-success",
        "--task-output",
        SEED_TASK_OUTPUT,
        "--task-token",
        barista_token,
    )

    # Then the execution SUCCEEDS (describe-execution --query status, as in the README)
    def finished() -> str | None:
        status: str = aws(
            local_stack,
            "stepfunctions",
            "describe-execution",
            "--execution-arn",
            execution_arn,
            "--query",
            "status",
        )
        return status if status != "RUNNING" else None

    assert poll(finished, "end of the execution") == "SUCCEEDED"
    # through the seed's states, with the barista's task output as the order, and an AWS-style name
    assert not execution_arn.endswith(":None")
    history = aws(local_stack, "stepfunctions", "get-execution-history", "--execution-arn", execution_arn)
    assert entered_states(history) == COMPLETED_PATH
    described = aws(local_stack, "stepfunctions", "describe-execution", "--execution-arn", execution_arn)
    assert json.loads(described["output"])["order"] == {"orderId": 1}

    # And `make local` logged the events it routed and the states entered, one line each
    local_stack.wait_for_line(r"\[event\] OrderProcessor\.WorkflowStarted → WorkflowStartedFunction ok$", 10)
    local_stack.wait_for_line(r"\[event\] OrderProcessor\.orderFinished → OrderEndedFunction ok$", 10)
    local_stack.wait_for_line(rf"\[state\] 1 {re.escape(BARISTA_WAIT)}$", 10)
    local_stack.wait_for_line(r"\[state\] 1 execution SUCCEEDED", 10)

    # When it is interrupted (Ctrl-C), Then it stops cleanly
    local_stack.process.send_signal(signal.SIGINT)
    assert local_stack.process.wait(timeout=30) == 0
    local_stack.wait_for_line(r"^Stopped\.$", 5)
    assert "Traceback" not in local_stack.output()
