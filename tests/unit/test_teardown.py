"""The `aws` fixture's teardown stops the executions a test left running; moto's StopExecution races
its own execution thread, so the teardown must only stop an execution that is parked in a wait."""

from __future__ import annotations

import threading

import boto3
import pytest
from moto.stepfunctions.parser.backend.execution_worker import ExecutionWorker

from tests.helpers import CUSTOMER_WAIT
from tests.unit.conftest import AwsEnv, Workflow, _stop_running_executions, wait_until


def record_stops(aws: AwsEnv) -> dict[str, str]:
    """Execution ARN -> the last event in its history when the teardown sent StopExecution for it."""
    observer = boto3.client("stepfunctions")  # another client: no hook of its own
    last_event: dict[str, str] = {}

    def before_stop(params: dict[str, str], **_: object) -> None:
        events = observer.get_execution_history(executionArn=params["executionArn"], maxResults=1000)[
            "events"
        ]
        last_event[params["executionArn"]] = events[-1]["type"] if events else "(no history)"

    aws.sfn.meta.events.register("provide-client-params.sfn.StopExecution", before_stop)
    return last_event


def test_teardown_waits_for_an_execution_whose_thread_has_not_started(
    aws: AwsEnv, workflow: Workflow, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Given an execution whose moto thread has not started evaluating yet (it has no environment)
    When the teardown stops the running executions
    Then nothing fails inside moto, and the execution is stopped only once it rests in its wait"""
    may_start = threading.Event()
    evaluate = ExecutionWorker._execution_logic

    def held_back(worker: ExecutionWorker) -> None:
        may_start.wait(timeout=30)
        evaluate(worker)

    monkeypatch.setattr(ExecutionWorker, "_execution_logic", held_back)
    stops = record_stops(aws)
    execution_arn = workflow.start("order-started-late")
    looked = threading.Event()
    aws.sfn.meta.events.register("after-call.sfn.GetExecutionHistory", lambda **_: looked.set())
    errors: list[BaseException] = []

    def teardown() -> None:
        try:
            _stop_running_executions(aws.sfn)
        except Exception as error:  # what the race raised: AttributeError from inside moto
            errors.append(error)

    stopping = threading.Thread(target=teardown)
    stopping.start()
    # The execution's thread may go on once the teardown has either looked at it or given up.
    wait_until(lambda: looked.is_set() or not stopping.is_alive(), "the teardown to act")
    may_start.set()
    stopping.join(timeout=30)

    assert errors == []
    assert stops == {execution_arn: "TaskSubmitted"}


def test_teardown_leaves_nothing_running(aws: AwsEnv, workflow: Workflow) -> None:
    """Given executions in the two ways a test leaves them: just started, and waiting for a callback
    When the teardown runs
    Then each one is stopped, and only once it rests in its callback wait"""
    stops = record_stops(aws)
    waiting = workflow.start("order-waiting")
    workflow.wait_for_callback(waiting, CUSTOMER_WAIT)
    just_started = workflow.start("order-just-started")

    _stop_running_executions(aws.sfn)

    assert stops == {waiting: "TaskSubmitted", just_started: "TaskSubmitted"}
