"""One regression test per patch in local/moto_patches.py.

Each test fails on stock moto 5.2.5, i.e. with its patch skipped:

    LOCAL_MOTO_PATCHES_SKIP=<patch name> .venv/bin/pytest tests/local/test_moto_patches.py

(the `patched_moto` fixture applies every patch not named there).
"""

from __future__ import annotations

import json
import re
import sys
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import boto3
import moto
import pytest
from moto import mock_aws
from moto.events.models import EventsBackend

from local import moto_patches
from local.engine import MOCK_CONFIG

ROLE = "arn:aws:iam::123456789012:role/local"


@pytest.fixture
def patched_moto() -> Iterator[Any]:
    """Patches applied (minus $LOCAL_MOTO_PATCHES_SKIP), moto executing state machines."""
    moto_patches.apply()
    with mock_aws(config=MOCK_CONFIG):
        yield boto3.client("stepfunctions", region_name="us-east-1")


def run(sfn: Any, definition: dict[str, Any], execution_input: str = "{}", name: str = "e1") -> str:
    """Create a state machine from definition and start one execution; return its ARN."""
    arn = sfn.create_state_machine(name="m", definition=json.dumps(definition), roleArn=ROLE)[
        "stateMachineArn"
    ]
    execution_arn: str = sfn.start_execution(stateMachineArn=arn, name=name, input=execution_input)[
        "executionArn"
    ]
    return execution_arn


def wait_until_done(sfn: Any, execution_arn: str, timeout: float = 15.0) -> dict[str, Any]:
    """DescribeExecution once the execution left RUNNING."""
    deadline = time.monotonic() + timeout
    while (description := sfn.describe_execution(executionArn=execution_arn))["status"] == "RUNNING":
        assert time.monotonic() < deadline, "execution still running"
        time.sleep(0.05)
    result: dict[str, Any] = description
    return result


def callback_task(heartbeat: int | None) -> dict[str, Any]:
    """A putEvents.waitForTaskToken task whose errors are caught into $.failure."""
    task: dict[str, Any] = {
        "Type": "Task",
        "Resource": "arn:aws:states:::events:putEvents.waitForTaskToken",
        "Parameters": {
            "Entries": [
                {"Detail": {"TaskToken.$": "$$.Task.Token"}, "DetailType": "Test.Wait", "Source": "test"}
            ]
        },
        "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.failure", "Next": "Caught"}],
        "End": True,
    }
    if heartbeat is not None:
        task["HeartbeatSeconds"] = heartbeat
    return {"StartAt": "Wait", "States": {"Wait": task, "Caught": {"Type": "Pass", "End": True}}}


# ---------------------------------------------------------------------------- start_time_iso
def test_execution_start_time_is_an_iso_8601_string(patched_moto: Any) -> None:
    # Given a state that reads $$.Execution.StartTime and splits it as our "Generate Order Number" does
    definition = {
        "StartAt": "Read",
        "States": {
            "Read": {
                "Type": "Pass",
                "Parameters": {
                    "startTime.$": "$$.Execution.StartTime",
                    "day.$": "States.ArrayGetItem(States.StringSplit($$.Execution.StartTime, 'T'), 0)",
                },
                "End": True,
            }
        },
    }

    # When it runs
    result = wait_until_done(patched_moto, run(patched_moto, definition))

    # Then StartTime is AWS's format (UTC, milliseconds, Z) and the date part splits off
    assert result["status"] == "SUCCEEDED", result
    output = json.loads(result["output"])
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", output["startTime"]), output
    started = datetime.fromisoformat(output["startTime"].replace("Z", "+00:00"))
    assert abs(started - result["startDate"]) < timedelta(seconds=1)
    assert output["day"] == started.strftime("%Y-%m-%d")


# ------------------------------------------------------------------ callback_before_heartbeat
def test_a_callback_sent_before_the_heartbeat_wait_is_armed_is_not_lost(
    patched_moto: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a consumer as fast as it can be: it answers the task token while PutEvents is still
    # returning to the state machine, i.e. before moto starts the heartbeat wait
    real_put_events = EventsBackend.put_events

    def put_events_and_answer_at_once(self: EventsBackend, events: list[dict[str, Any]]) -> Any:
        response = real_put_events(self, events)
        for entry in events:
            token = json.loads(entry["Detail"])["TaskToken"]
            boto3.client("stepfunctions", region_name="us-east-1").send_task_success(
                taskToken=token, output='{"answered": true}'
            )
        return response

    monkeypatch.setattr(EventsBackend, "put_events", put_events_and_answer_at_once)

    # When a callback task with a heartbeat runs
    result = wait_until_done(patched_moto, run(patched_moto, callback_task(heartbeat=1)))

    # Then the answer is the task's result, not a States.HeartbeatTimeout a second later
    assert result["status"] == "SUCCEEDED", result
    assert json.loads(result["output"]) == {"answered": True}


# -------------------------------------------------------------------- send_task_failure_cause
def test_send_task_failure_keeps_the_cause(patched_moto: Any) -> None:
    # Given a callback task waiting for its token (no heartbeat: only SendTaskFailure matters here)
    execution_arn = run(patched_moto, callback_task(heartbeat=None))
    token = wait_for_token(patched_moto, execution_arn)

    # When the consumer fails the task with an error and a cause
    patched_moto.send_task_failure(taskToken=token, error="OrderCancelled", cause="customer cancelled")

    # Then the Catch's ResultPath receives both, as on AWS
    result = wait_until_done(patched_moto, execution_arn)
    assert json.loads(result["output"])["failure"] == {
        "Error": "OrderCancelled",
        "Cause": "customer cancelled",
    }


def wait_for_token(sfn: Any, execution_arn: str, timeout: float = 10.0) -> str:
    """The token from the TaskScheduled event's parameters, once the task was submitted."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        events = sfn.get_execution_history(executionArn=execution_arn)["events"]
        if any(e["type"] == "TaskSubmitted" for e in events):
            scheduled = next(e for e in events if e["type"] == "TaskScheduled")
            parameters = json.loads(scheduled["taskScheduledEventDetails"]["parameters"])
            token: str = parameters["Entries"][0]["Detail"]["TaskToken"]
            return token
        time.sleep(0.05)
    raise AssertionError("the task was never submitted")


# ------------------------------------------------------------------------ event_account_field
def test_events_delivered_to_a_target_carry_the_account(patched_moto: Any) -> None:
    # Given a rule on a custom bus that sends every event to an SQS queue
    events = boto3.client("events", region_name="us-east-1")
    sqs = boto3.client("sqs", region_name="us-east-1")
    events.create_event_bus(Name="bus")
    queue_url = sqs.create_queue(QueueName="target")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    events.put_rule(Name="all", EventBusName="bus", EventPattern=json.dumps({"source": ["test"]}))
    events.put_targets(Rule="all", EventBusName="bus", Targets=[{"Id": "q", "Arn": queue_arn}])

    # When an event is put on the bus
    events.put_events(
        Entries=[{"Source": "test", "DetailType": "Ping", "Detail": '{"n": 1}', "EventBusName": "bus"}]
    )

    # Then the delivered event has every top-level field of an EventBridge event, account included
    body = json.loads(sqs.receive_message(QueueUrl=queue_url)["Messages"][0]["Body"])
    assert body["account"] == "123456789012"
    assert {"version", "id", "detail-type", "source", "time", "region", "resources", "detail"} <= body.keys()
    assert body["detail"] == {"n": 1}


# --------------------------------------------------------------- start_execution_default_name
def test_an_execution_started_without_a_name_gets_a_generated_one(patched_moto: Any) -> None:
    # Given a state machine that reads its execution's name, as our capacity slot does
    definition = {
        "StartAt": "Name",
        "States": {"Name": {"Type": "Pass", "Parameters": {"name.$": "$$.Execution.Name"}, "End": True}},
    }
    arn = patched_moto.create_state_machine(name="m", definition=json.dumps(definition), roleArn=ROLE)[
        "stateMachineArn"
    ]

    # When it is started twice without a name (`aws stepfunctions start-execution`, the console)
    first = patched_moto.start_execution(stateMachineArn=arn, input="{}")["executionArn"]
    second = patched_moto.start_execution(stateMachineArn=arn, input="{}")["executionArn"]

    # Then each execution has its own generated name, in its ARN and in the context object
    assert first != second
    for execution_arn in (first, second):
        name = execution_arn.rsplit(":", 1)[1]
        assert re.fullmatch(r"[0-9a-f-]{36}", name), execution_arn
        result = wait_until_done(patched_moto, execution_arn)
        assert result["status"] == "SUCCEEDED", result
        assert json.loads(result["output"]) == {"name": name}


# ------------------------------------------------------------------- dynamodb_atomic_requests
def test_concurrent_updates_of_one_item_all_apply(patched_moto: Any) -> None:
    # Given one item and threads that switch as often as the interpreter allows (so that a request
    # is interrupted between moto's condition check, its computing of new values and its write)
    dynamodb = boto3.client("dynamodb", region_name="us-east-1")
    dynamodb.create_table(
        TableName="t",
        KeySchema=[{"AttributeName": "k", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "k", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    dynamodb.put_item(TableName="t", Item={"k": {"S": "shop"}, "n": {"N": "0"}})
    previous_interval = sys.getswitchinterval()
    threads, increments = 4, 100

    def increment() -> None:
        for _ in range(increments):
            dynamodb.update_item(
                TableName="t",
                Key={"k": {"S": "shop"}},
                UpdateExpression="SET n = n + :one",
                ExpressionAttributeValues={":one": {"N": "1"}},
            )

    # When they all increment the same counter at once (as executions take order numbers)
    sys.setswitchinterval(1e-5)
    try:
        workers = [threading.Thread(target=increment) for _ in range(threads)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
    finally:
        sys.setswitchinterval(previous_interval)

    # Then no increment is lost, as DynamoDB applies each request atomically
    item = dynamodb.get_item(TableName="t", Key={"k": {"S": "shop"}}, ConsistentRead=True)["Item"]
    assert int(item["n"]["N"]) == threads * increments


# ------------------------------------------------------------------------------- the mechanism
def test_patches_refuse_another_moto_version(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a moto other than the pinned one
    monkeypatch.setattr(moto, "__version__", "5.3.0")

    # When the patches are checked, Then they refuse, unless explicitly allowed (then they warn)
    with pytest.raises(RuntimeError, match=r"targets moto 5\.2\.5, found 5\.3\.0"):
        moto_patches.check_moto_version()
    with pytest.warns(RuntimeWarning, match="re-check every patch"):
        moto_patches.check_moto_version(allow_other_version=True)


def test_a_skipped_patch_is_removed_and_can_be_reinstalled() -> None:
    from moto.events.utils import EventTemplateParser

    # Given every patch installed
    moto_patches.apply(skip=())
    patched = EventTemplateParser.DEFAULT_EVENT_INPUT_TEMPLATE
    try:
        # When one is skipped, Then moto's own behaviour is back for that one only
        assert "event_account_field" not in moto_patches.apply(skip={"event_account_field"})
        assert '"account"' not in EventTemplateParser.DEFAULT_EVENT_INPUT_TEMPLATE
        assert "start_time_iso" in moto_patches.installed()
    finally:
        moto_patches.apply()
    assert moto_patches.apply(skip=()) == sorted(moto_patches.PATCHES)
    assert patched == EventTemplateParser.DEFAULT_EVENT_INPUT_TEMPLATE
    with pytest.raises(ValueError, match="unknown moto patch"):
        moto_patches.apply(skip={"no_such_patch"})


# ---------------------------------------------------------------------- task_timeout_default


def test_a_heartbeat_task_without_timeout_seconds_gets_aws_default_timeout(patched_moto: Any) -> None:
    # Given a callback task with HeartbeatSeconds and no TimeoutSeconds (like the seed's two waits)
    from moto.stepfunctions.parser.asl.component.common.timeouts.timeout import TimeoutSeconds
    from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser

    definition = json.dumps(callback_task(heartbeat=300))

    # When moto parses it (waiting out moto's 60 s would make this test slow; the parsed
    # timeout is what the interpreter waits on)
    program: Any = AmazonStateLanguageParser.parse(definition)[0]
    wait_state = next(state for state in program.states.states.values() if state.name == "Wait")

    # Then its TimeoutSeconds is AWS's default, not moto's 60 s that would cut every wait short
    assert isinstance(wait_state.timeout, TimeoutSeconds)
    assert wait_state.timeout.timeout_seconds == TimeoutSeconds.DEFAULT_TIMEOUT_SECONDS
