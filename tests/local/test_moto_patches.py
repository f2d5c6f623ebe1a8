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
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import boto3
import moto
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws
from moto.events.models import EventsBackend

from local import moto_patches
from local.engine import MOCK_CONFIG
from local.waiting import wait_until

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

    def finished() -> dict[str, Any] | None:
        description: dict[str, Any] = sfn.describe_execution(executionArn=execution_arn)
        return None if description["status"] == "RUNNING" else description

    return wait_until(finished, "end of the execution", timeout)


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

    def token() -> str | None:
        events = sfn.get_execution_history(executionArn=execution_arn)["events"]
        if not any(e["type"] == "TaskSubmitted" for e in events):
            return None
        scheduled = next(e for e in events if e["type"] == "TaskScheduled")
        parameters = json.loads(scheduled["taskScheduledEventDetails"]["parameters"])
        found: str = parameters["Entries"][0]["Detail"]["TaskToken"]
        return found

    return wait_until(token, "submitted task", timeout)


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


def create_table(name: str, key: str) -> Any:
    """An on-demand table keyed by the string `key`; returns a DynamoDB client."""
    dynamodb = boto3.client("dynamodb", region_name="us-east-1")
    dynamodb.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": key, "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": key, "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    return dynamodb


def create_counter_table(value: int) -> Any:
    """Table `t` with one item {k: "shop", n: value}; returns a DynamoDB client."""
    dynamodb = create_table("t", "k")
    dynamodb.put_item(TableName="t", Item={"k": {"S": "shop"}, "n": {"N": str(value)}})
    return dynamodb


# ------------------------------------------------------------------- dynamodb_atomic_requests
def test_concurrent_updates_of_one_item_all_apply(patched_moto: Any) -> None:
    # Given one item and threads that switch as often as the interpreter allows (so that a request
    # is interrupted between moto's condition check, its computing of new values and its write)
    dynamodb = create_counter_table(0)
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


# ------------------------------------------------------------- execution_status_while_starting
def test_executions_are_listed_while_one_is_between_being_listed_and_started(patched_moto: Any) -> None:
    # Given an execution as StartExecution leaves it for a moment: listed, its status not yet set
    from moto.stepfunctions.parser.models import stepfunctions_parser_backends

    arn = run(patched_moto, {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}})
    wait_until_done(patched_moto, arn)  # its thread ended: nothing sets its status behind this test's back
    backend = stepfunctions_parser_backends[arn.split(":")[4]][arn.split(":")[3]]
    [starting] = [e for e in backend._get_executions() if e.execution_arn == arn]
    status, starting.exec_status = starting.exec_status, None
    try:
        # When the executions are listed
        listed = patched_moto.list_executions(
            stateMachineArn=arn.rsplit(":", 1)[0].replace(":execution:", ":stateMachine:")
        )

        # Then it is listed as running, as AWS lists it from StartExecution on
        assert [(e["executionArn"], e["status"]) for e in listed["executions"]] == [(arn, "RUNNING")]
    finally:
        starting.exec_status = status


# ---------------------------------------------------------- callback_skips_starting_executions
def test_a_callback_is_delivered_while_an_earlier_execution_still_parses_its_definition(
    patched_moto: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given an execution that started first but is still parsing its definition (held there by this
    # test; under load a later execution can get past parsing sooner)
    from moto.stepfunctions.parser.backend import execution_worker

    held_definition = json.dumps({"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}})
    parser = execution_worker.AmazonStateLanguageParser
    parsing, release = threading.Event(), threading.Event()

    class HeldParser(parser):  # type: ignore[misc,valid-type]
        @staticmethod
        def parse(definition: str) -> Any:
            if definition == held_definition:
                parsing.set()
                release.wait(10)
            return parser.parse(definition)

    monkeypatch.setattr(execution_worker, "AmazonStateLanguageParser", HeldParser)
    held = patched_moto.create_state_machine(name="held", definition=held_definition, roleArn=ROLE)
    parsing_arn = patched_moto.start_execution(stateMachineArn=held["stateMachineArn"], name="parsing")[
        "executionArn"
    ]
    assert parsing.wait(10)
    try:
        # and a later execution waiting for its task token
        waiting_arn = run(patched_moto, callback_task(heartbeat=None), name="waiting")
        token = wait_for_token(patched_moto, waiting_arn)

        # When that execution's consumer answers
        patched_moto.send_task_success(taskToken=token, output='{"answered": true}')
    finally:
        release.set()

    # Then the answer reaches the waiting execution, and the held one runs on unharmed
    result = wait_until_done(patched_moto, waiting_arn)
    assert result["status"] == "SUCCEEDED", result
    assert json.loads(result["output"]) == {"answered": True}
    assert wait_until_done(patched_moto, parsing_arn)["status"] == "SUCCEEDED"


# ------------------------------------------------------------------------------ asl_parse_once
def counting_parses(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """A list that gets one entry per ANTLR parse of a definition from now on."""
    from moto.stepfunctions.parser.asl.parse import asl_parser

    parses: list[str] = []

    class CountingParser(asl_parser.ASLParser):
        def state_machine(self) -> Any:
            parses.append("parse")
            return super().state_machine()

    monkeypatch.setattr(asl_parser, "ASLParser", CountingParser)
    return parses


def test_executions_of_one_definition_parse_it_once(
    patched_moto: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a count of ANTLR parses, and a state machine (its own definition text: other tests'
    # parses are not counted)
    parses = counting_parses(monkeypatch)
    definition = {
        "Comment": f"parse once {uuid.uuid4()}",
        "StartAt": "P",
        "States": {"P": {"Type": "Pass", "Result": {"ok": True}, "End": True}},
    }
    arn = patched_moto.create_state_machine(name="m", definition=json.dumps(definition), roleArn=ROLE)[
        "stateMachineArn"
    ]

    # When it runs three times
    for name in ("a", "b", "c"):
        execution_arn = patched_moto.start_execution(stateMachineArn=arn, name=name, input="{}")[
            "executionArn"
        ]
        result = wait_until_done(patched_moto, execution_arn)
        # Then each execution still gets the definition's result
        assert (result["status"], json.loads(result["output"])) == ("SUCCEEDED", {"ok": True})

    # And the definition was parsed once (when it was created), not once per execution
    assert len(parses) == 1


def test_describing_or_recreating_a_parsed_definition_does_not_parse_it_again(
    patched_moto: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a state machine that has run once (its own definition text), and a count of ANTLR parses
    definition = json.dumps(
        {
            "Comment": f"described {uuid.uuid4()}",
            "StartAt": "P",
            "States": {"P": {"Type": "Pass", "Result": {"ok": True}, "End": True}},
        }
    )
    arn = patched_moto.create_state_machine(name="m", definition=definition, roleArn=ROLE)["stateMachineArn"]
    execution_arn = patched_moto.start_execution(stateMachineArn=arn, name="a", input="{}")["executionArn"]
    assert wait_until_done(patched_moto, execution_arn)["status"] == "SUCCEEDED"
    parses = counting_parses(monkeypatch)

    # When the execution and the machine are described again and again, and the same definition is
    # created as another state machine
    for _ in range(3):
        patched_moto.describe_execution(executionArn=execution_arn)
        patched_moto.describe_state_machine(stateMachineArn=arn)
    patched_moto.create_state_machine(name="again", definition=definition, roleArn=ROLE)

    # Then nothing was parsed again
    assert parses == []

    # And a definition that does not parse is still refused
    with pytest.raises(ClientError, match="in definition"):
        patched_moto.create_state_machine(name="bad", definition='{"StartAt": "Nowhere"}', roleArn=ROLE)


# --------------------------------------------------------------------- asl_task_clients_reused
def dynamodb_task_definition() -> dict[str, Any]:
    """One dynamodb:getItem task: moto needs a DynamoDB client to run it."""
    return {
        "StartAt": "Get",
        "States": {
            "Get": {
                "Type": "Task",
                "Resource": "arn:aws:states:::dynamodb:getItem",
                "Parameters": {"TableName": "t", "Key": {"k": {"S": "shop"}}},
                "ResultSelector": {"n.$": "$.Item.n.N"},
                "End": True,
            }
        },
    }


def test_service_tasks_reuse_their_client(patched_moto: Any) -> None:
    # Given a state machine with a DynamoDB task, and a count of the DynamoDB clients created
    create_counter_table(7)
    created: list[str] = []
    boto3._get_default_session().events.register(
        "creating-client-class.dynamodb", lambda **_: created.append("dynamodb")
    )
    arn = patched_moto.create_state_machine(
        name="m", definition=json.dumps(dynamodb_task_definition()), roleArn=ROLE
    )["stateMachineArn"]

    # When it runs three times
    for name in ("a", "b", "c"):
        execution_arn = patched_moto.start_execution(stateMachineArn=arn, name=name, input="{}")[
            "executionArn"
        ]
        result = wait_until_done(patched_moto, execution_arn)
        # Then each task read the item
        assert (result["status"], json.loads(result["output"])) == ("SUCCEEDED", {"n": "7"})

    # And one client served all three tasks
    assert created == ["dynamodb"]


def test_a_task_client_is_not_created_while_a_local_function_swaps_the_environment(
    patched_moto: Any,
) -> None:
    # Given a DynamoDB task whose client does not exist yet, and a local function that is running
    # (it holds the environment lock while its variables are in os.environ)
    from local.lambdas import ENVIRONMENT_LOCK

    create_counter_table(7)
    arn = patched_moto.create_state_machine(
        name="m", definition=json.dumps(dynamodb_task_definition()), roleArn=ROLE
    )["stateMachineArn"]
    with ENVIRONMENT_LOCK:
        # When the task starts meanwhile
        execution_arn = patched_moto.start_execution(stateMachineArn=arn, name="a", input="{}")[
            "executionArn"
        ]
        time.sleep(0.5)
        # Then it waits (botocore would copy os.environ while it is being changed)
        assert patched_moto.describe_execution(executionArn=execution_arn)["status"] == "RUNNING"

    # And it runs once the function is done
    assert wait_until_done(patched_moto, execution_arn)["status"] == "SUCCEEDED"


# ------------------------------------------------------------------------- jsonpath_parse_once
def test_a_json_path_is_parsed_once(patched_moto: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a state that reads a path (its own: other tests' parses are not counted) and a count of
    # jsonpath_ng parses of that path from here on
    from jsonpath_ng.ext import parser as jsonpath_parser

    field = f"f{uuid.uuid4().hex}"
    definition = {"StartAt": "P", "States": {"P": {"Type": "Pass", "InputPath": f"$.{field}", "End": True}}}
    arn = patched_moto.create_state_machine(name="m", definition=json.dumps(definition), roleArn=ROLE)[
        "stateMachineArn"
    ]
    parses: list[str] = []

    class CountingParser(jsonpath_parser.ExtendedJsonPathParser):
        def parse(self, string: str, lexer: Any = None) -> Any:
            if field in string:
                parses.append(string)
            return super().parse(string, lexer)

    monkeypatch.setattr(jsonpath_parser, "ExtendedJsonPathParser", CountingParser)

    # When it runs three times
    for number in range(3):
        execution_arn = patched_moto.start_execution(
            stateMachineArn=arn, name=f"e{number}", input=json.dumps({field: {"n": number}})
        )["executionArn"]
        result = wait_until_done(patched_moto, execution_arn)
        # Then each execution reads its own input
        assert json.loads(result["output"]) == {"n": number}

    # And the path was parsed once
    assert len(parses) == 1


def test_events_delivered_to_targets_parse_their_input_paths_once(
    patched_moto: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a rule with a target, and a count of jsonpath_ng parses from here on
    from jsonpath_ng.ext import parser as jsonpath_parser
    from moto.events.utils import EventTemplateParser

    events = boto3.client("events", region_name="us-east-1")
    sqs = boto3.client("sqs", region_name="us-east-1")
    queue_url = sqs.create_queue(QueueName="target")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    events.put_rule(Name="all", EventPattern=json.dumps({"source": ["test"]}))
    events.put_targets(Rule="all", Targets=[{"Id": "q", "Arn": queue_arn}])
    parses: list[str] = []

    class CountingParser(jsonpath_parser.ExtendedJsonPathParser):
        def parse(self, string: str, lexer: Any = None) -> Any:
            parses.append(string)
            return super().parse(string, lexer)

    monkeypatch.setattr(jsonpath_parser, "ExtendedJsonPathParser", CountingParser)

    # When three events are delivered to the target
    for number in range(3):
        events.put_events(
            Entries=[{"Source": "test", "DetailType": "Ping", "Detail": json.dumps({"n": number})}]
        )

    # Then each arrives with its own detail
    bodies = [
        json.loads(m["Body"])
        for m in sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10)["Messages"]
    ]
    assert sorted(body["detail"]["n"] for body in bodies) == [0, 1, 2]
    # And the input template's paths were parsed at most once each, not once per event
    assert len(parses) <= len(EventTemplateParser.DEFAULT_EVENT_INPUT_PATHS_MAP)


# -------------------------------------------------------- sqs_receive_without_queue_attributes
def test_receiving_messages_does_not_recount_the_queue(
    patched_moto: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a queue with a backlog, and a count of the passes over all its messages from here on
    from moto.sqs.models import Queue

    sqs = boto3.client("sqs", region_name="us-east-1")
    queue_url = sqs.create_queue(QueueName="backlog")["QueueUrl"]
    for number in range(20):
        sqs.send_message(QueueUrl=queue_url, MessageBody=str(number))
    passes: list[str] = []
    count_messages = Queue.approximate_number_of_messages

    def counted(self: Queue) -> int:
        passes.append(self.name)
        return int(count_messages.fget(self))  # type: ignore[attr-defined]

    monkeypatch.setattr(Queue, "approximate_number_of_messages", property(counted))

    # When ten messages are received
    received = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10)["Messages"]

    # Then ten distinct messages arrive (all are within their retention period)
    assert len({m["Body"] for m in received}) == 10
    # And the queue's messages were not counted once per message received
    assert passes == []


# ------------------------------------------------------------------------------ sqs_message_clock
def test_queue_attributes_are_counted_without_a_datetime_per_message(
    patched_moto: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a queue with messages: one received (invisible for a minute), one delayed, three waiting
    import moto.sqs.models as sqs_models

    sqs = boto3.client("sqs", region_name="us-east-1")
    queue_url = sqs.create_queue(QueueName="counted")["QueueUrl"]
    sqs.send_message(QueueUrl=queue_url, MessageBody="first")
    assert sqs.receive_message(QueueUrl=queue_url, VisibilityTimeout=60)["Messages"][0]["Body"] == "first"
    sqs.send_message(QueueUrl=queue_url, MessageBody="later", DelaySeconds=60)
    for number in range(3):
        sqs.send_message(QueueUrl=queue_url, MessageBody=str(number))
    clock_reads: list[float] = []
    real_clock = sqs_models.unix_time_millis

    def counted_clock(*args: Any) -> float:
        clock_reads.append(1)
        return real_clock(*args)

    monkeypatch.setattr(sqs_models, "unix_time_millis", counted_clock)

    # When its attributes are read
    attributes = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["All"])["Attributes"]

    # Then each message is counted where it belongs
    assert attributes["ApproximateNumberOfMessages"] == "3"
    assert attributes["ApproximateNumberOfMessagesNotVisible"] == "1"
    assert attributes["ApproximateNumberOfMessagesDelayed"] == "1"
    # And moto's datetime clock was not read once per message
    assert clock_reads == []


# ------------------------------------------------------------------ kms_symmetric_key_without_rsa
def test_a_symmetric_key_encrypts_without_generating_an_rsa_key(
    patched_moto: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a count of RSA key generations
    from moto.kms import utils as kms_utils

    generated: list[int] = []
    real_generate = kms_utils.rsa.generate_private_key

    def counted(*args: Any, **kwargs: Any) -> Any:
        generated.append(1)
        return real_generate(*args, **kwargs)

    monkeypatch.setattr(kms_utils.rsa, "generate_private_key", counted)
    kms = boto3.client("kms", region_name="us-east-1")

    # When a symmetric key (what a table's SSE uses) is created and encrypts and decrypts
    key_id = kms.create_key()["KeyMetadata"]["KeyId"]
    blob = kms.encrypt(KeyId=key_id, Plaintext=b"coffee")["CiphertextBlob"]

    # Then no RSA key was generated for it, and it still works
    assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"coffee"
    assert generated == []

    # And an RSA key still gets its key pair
    rsa_key = kms.create_key(KeySpec="RSA_2048", KeyUsage="SIGN_VERIFY")["KeyMetadata"]["KeyId"]
    assert kms.get_public_key(KeyId=rsa_key)["PublicKey"]
    assert generated == [1]


# --------------------------------------------------------------- dynamodb_attribute_values_direct
def test_items_come_back_as_written_without_visiting_every_attribute_value_member(
    patched_moto: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given an item holding every attribute type, nested too, and a count of the AttributeValue
    # members moto's serializer visits from here on
    from moto.core.serialize import BaseJSONSerializer

    dynamodb = create_table("typed", "id")
    scalars: dict[str, Any] = {
        "s": {"S": "text"},
        "n": {"N": "12.5"},
        "b": {"B": b"\x00\xffbytes"},
        "ss": {"SS": ["a", "b"]},
        "ns": {"NS": ["1", "2"]},
        "bs": {"BS": [b"\x01", b"\x02"]},
        "yes": {"BOOL": True},
        "nothing": {"NULL": True},
    }
    item = {"id": {"S": "one"}, **scalars, "m": {"M": {"inner": {"L": [{"S": "x"}, {"M": scalars}]}}}}
    dynamodb.put_item(TableName="typed", Item=item)
    visited: list[str] = []
    member = BaseJSONSerializer._serialize_structure_member

    def counted(self: Any, serialized: Any, value: Any, shape: Any, key: str) -> None:
        if getattr(getattr(shape, "parent", None), "name", None) == "AttributeValue":
            visited.append(key)
        member(self, serialized, value, shape, key)

    monkeypatch.setattr(BaseJSONSerializer, "_serialize_structure_member", counted)

    # When it is read back by GetItem, Query and Scan
    got = dynamodb.get_item(TableName="typed", Key={"id": {"S": "one"}})["Item"]
    queried = dynamodb.query(
        TableName="typed",
        KeyConditionExpression="id = :id",
        ExpressionAttributeValues={":id": {"S": "one"}},
    )["Items"]
    scanned = dynamodb.scan(TableName="typed")["Items"]

    # Then each answer holds the item exactly as written
    assert got == item
    assert queried == [item]
    assert scanned == [item]
    # And no AttributeValue member was visited one by one
    assert visited == []


# ------------------------------------------------------------------ response_methods_listed_once
def test_a_response_class_lists_its_methods_once(patched_moto: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a service that has served one request, and a count of inspections of its response class
    import inspect

    from moto.sqs.responses import SQSResponse

    sqs = boto3.client("sqs", region_name="us-east-1")
    sqs.create_queue(QueueName="inspected")
    inspected: list[type] = []
    real_getmembers = inspect.getmembers

    def counted(subject: Any, *args: Any) -> Any:
        if subject is SQSResponse:
            inspected.append(subject)
        return real_getmembers(subject, *args)

    monkeypatch.setattr(inspect, "getmembers", counted)

    # When it serves more requests
    sqs.list_queues()
    queue_url = sqs.get_queue_url(QueueName="inspected")["QueueUrl"]

    # Then they are answered as before
    assert queue_url.endswith("/inspected")
    # And its methods were not listed again for each request
    assert inspected == []


# -------------------------------------------------------------------- server_backend_lookup_once
def test_the_server_finds_a_hosts_service_once(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given the patched moto server (in this process: restore what it sets process-wide afterwards)
    # that has served one DynamoDB request, and a count of its scans of moto's services from here on
    import urllib.request

    from moto import backends
    from moto.core.config import default_user_config

    from local.server import start_server

    monkeypatch.setenv("MOTO_PORT", "0")
    monkeypatch.setitem(
        default_user_config, "stepfunctions", dict(default_user_config.get("stepfunctions", {}))
    )
    server, url = start_server(port=0)
    try:
        dynamodb = boto3.client(
            "dynamodb",
            region_name="us-east-1",
            endpoint_url=url,
            aws_access_key_id="k",
            aws_secret_access_key="s",
        )
        dynamodb.list_tables()
        scans: list[int] = []
        real_scan = backends.list_of_moto_modules

        def counted() -> Any:
            scans.append(1)
            return real_scan()

        monkeypatch.setattr(backends, "list_of_moto_modules", counted)

        # When it serves more requests for that service
        tables = [dynamodb.list_tables()["TableNames"] for _ in range(3)]

        # Then they reach DynamoDB as before
        assert tables == [[], [], []]
        # And the service was not looked up again for each request
        assert scans == []
    finally:
        urllib.request.urlopen(urllib.request.Request(f"{url}/moto-api/reset", method="POST")).read()
        server.stop()
