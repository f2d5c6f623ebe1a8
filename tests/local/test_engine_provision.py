"""Provisioning from template.yaml: everything the template declares exists in moto, and a function,
table or rule added to (a copy of) the template is provisioned and served with no engine change."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from moto import mock_aws
from moto.core.config import default_user_config
from moto.core.models import botocore_stubber

from local.dispatch import WAKE_UP
from local.engine import LocalEngine, execution_name
from local.provision import CAPTURE_RULE
from local.template import Template
from local.timescale import scale_definition, scale_seconds
from tests.template_tables import ROOT, TEMPLATE_PATH

TEMPLATE = TEMPLATE_PATH
EngineFactory = Any  # conftest's make_engine: (template path) -> context manager of LocalEngine

ASL = ROOT / "statemachine" / "order_processor.asl.json"

PROBE_HANDLER = """
import json, os

def lambda_handler(event, context):
    with open(os.environ["PROBE_OUT"], "a") as out:
        out.write(json.dumps({
            "detail": event["detail"],
            "function": context.function_name,
            "orders_table": os.environ["ORDERS_TABLE_NAME"],
            "probe_setting": os.environ["PROBE_SETTING"],
        }) + "\\n")
    if event["detail"].get("fail"):
        raise RuntimeError("probe failure")
"""


@pytest.fixture(scope="module")
def template() -> Template:
    return Template.load(TEMPLATE)


@pytest.fixture
def engine(make_engine: EngineFactory) -> Iterator[LocalEngine]:
    """The repository's template, provisioned (in both modes, see conftest `mode`)."""
    with make_engine(TEMPLATE) as local:
        yield local


def add_probe(body: dict[str, Any], out_file: Path) -> None:
    """A new table and a new function with its own rule, in the template's own style."""
    body["Resources"]["ProbeTable"] = {
        "Type": "AWS::DynamoDB::Table",
        "Properties": {
            "BillingMode": "PAY_PER_REQUEST",
            "AttributeDefinitions": [{"AttributeName": "probeId", "AttributeType": "S"}],
            "KeySchema": [{"AttributeName": "probeId", "KeyType": "HASH"}],
        },
    }
    body["Resources"]["ProbeFunction"] = {
        "Type": "AWS::Serverless::Function",
        "Properties": {
            "CodeUri": "probe_fn/",
            "Handler": "app.lambda_handler",
            "Environment": {
                "Variables": {"PROBE_OUT": str(out_file), "PROBE_SETTING": {"Ref": "ProbeTable"}}
            },
            "Events": {
                "Ping": {
                    "Type": "EventBridgeRule",
                    "Properties": {
                        "EventBusName": {"Ref": "OrderEventBus"},
                        "Pattern": {"source": ["test.probe"], "detail-type": ["Probe.Ping"]},
                    },
                }
            },
        },
    }


@pytest.fixture
def probe(
    tmp_path: Path, template_copy: Any, make_engine: EngineFactory
) -> Iterator[tuple[LocalEngine, Path]]:
    """An engine on a copy of the template with ProbeTable and ProbeFunction added."""
    (tmp_path / "probe_fn").mkdir()
    (tmp_path / "probe_fn" / "app.py").write_text(PROBE_HANDLER)
    out_file = tmp_path / "probe.jsonl"
    with make_engine(template_copy(lambda body: add_probe(body, out_file))) as local:
        yield local, out_file


def probe_calls(out_file: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out_file.read_text().splitlines()] if out_file.exists() else []


# ------------------------------------------------------------------------------------ provisioning
def test_every_table_is_created_with_the_templates_keys_and_indexes(
    engine: LocalEngine, template: Template
) -> None:
    # Given the tables the template declares
    declared = template.resources("AWS::DynamoDB::Table")
    assert declared, "the template declares tables"

    # Then each exists under its local name with the declared key schema and GSIs
    assert set(engine.table_names) == set(declared)
    for logical_id, resource in declared.items():
        table = engine.clients["dynamodb"].describe_table(TableName=engine.table_names[logical_id])["Table"]
        props = resource["Properties"]
        assert table["KeySchema"] == props["KeySchema"]
        expected_indexes = {i["IndexName"]: i["KeySchema"] for i in props.get("GlobalSecondaryIndexes", [])}
        actual_indexes = {i["IndexName"]: i["KeySchema"] for i in table.get("GlobalSecondaryIndexes", [])}
        assert actual_indexes == expected_indexes
    # and the design's orders table has both access patterns
    orders = engine.clients["dynamodb"].describe_table(TableName=engine.table_names["OrdersTable"])["Table"]
    assert {i["IndexName"] for i in orders["GlobalSecondaryIndexes"]} == {"ByState", "ByCustomer"}


def test_every_eventbridge_rule_exists_on_its_bus_with_the_templates_pattern(
    engine: LocalEngine, template: Template
) -> None:
    # Given every EventBridgeRule event of every function and state machine in the template
    declared = {}
    for logical_id in template.resources("AWS::Serverless::Function", "AWS::Serverless::StateMachine"):
        for event in template.properties(logical_id).get("Events", {}).values():
            if event["Type"] == "EventBridgeRule":
                props = template.resolve(event["Properties"])
                declared[props["RuleName"]] = (props["EventBusName"], props["Pattern"], logical_id)
    assert len(declared) >= 4

    # Then each is a real rule on the bus with that pattern, whose target is an SQS queue
    events = engine.clients["events"]
    for rule_name, (bus, pattern, target) in declared.items():
        rule = events.describe_rule(Name=rule_name, EventBusName=bus)
        assert json.loads(rule["EventPattern"]) == pattern
        targets = events.list_targets_by_rule(Rule=rule_name, EventBusName=bus)["Targets"]
        assert [t["Arn"].split(":")[2] for t in targets] == ["sqs"], "moto can only deliver to SQS"
        assert any(r.rule_name == rule_name and r.target == target for r in engine.provisioned.routes)
    # plus the engine's catch-all rule that records every event
    assert events.describe_rule(Name=CAPTURE_RULE, EventBusName=engine.bus_name)["State"] == "ENABLED"


def test_the_templates_queues_and_bus_exist_and_the_shop_is_open(
    engine: LocalEngine, template: Template
) -> None:
    # Then every queue the template declares exists
    assert set(engine.queue_urls) == set(template.resources("AWS::SQS::Queue"))
    for url in engine.queue_urls.values():
        engine.clients["sqs"].get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
    # and the bus has the EventBusName parameter's default name
    assert engine.bus_name == template.parameter("EventBusName")
    engine.clients["events"].describe_event_bus(Name=engine.bus_name)
    # and the shop's default config is open with the template's default capacity
    item = engine.clients["dynamodb"].get_item(
        TableName=engine.table_names["ConfigTable"], Key={"configId": {"S": "shop"}}
    )["Item"]
    assert item["isOpen"] == {"BOOL": True}
    assert item["maxInFlight"] == {"N": template.parameter("DefaultMaxInFlight")}


def test_the_state_machine_comes_from_the_asl_file_with_local_names_and_scaled_heartbeats(
    engine: LocalEngine, template: Template
) -> None:
    # Given the ASL file as written (300 s / 900 s heartbeats, ${...} placeholders)
    source = json.loads(ASL.read_text())

    # When the engine provisioned it at time_scale 0.01
    machine = engine.clients["stepfunctions"].describe_state_machine(stateMachineArn=engine.state_machine_arn)
    definition = json.loads(machine["definition"])

    # Then it has the template's name, no placeholder is left, and the names are the local ones
    assert machine["name"] == f"{template.stack_name}-OrderProcessorWorkflow"
    assert "${" not in machine["definition"]
    assert definition["States"]["Shop open?"]["Parameters"]["TableName"] == engine.table_names["ConfigTable"]
    # and every heartbeat is scaled (rounded up to whole seconds), the file itself untouched
    heartbeats = {
        name: s["HeartbeatSeconds"] for name, s in source["States"].items() if "HeartbeatSeconds" in s
    }
    assert heartbeats == {"Emit - Workflow Started TT": 300, "Emit - Awaiting Completion TT": 900}
    assert {name: definition["States"][name]["HeartbeatSeconds"] for name in heartbeats} == {
        "Emit - Workflow Started TT": 3,
        "Emit - Awaiting Completion TT": 9,
    }


def test_function_environment_is_the_templates_globals_resolved_to_local_names(engine: LocalEngine) -> None:
    # When the environment of a function is asked for
    env = engine.function_env("OrderEndedFunction")

    # Then the Globals variables point at the local resources, next to what Lambda itself sets
    assert env["ORDERS_TABLE_NAME"] == engine.table_names["OrdersTable"]
    assert env["CONFIG_TABLE_NAME"] == engine.table_names["ConfigTable"]
    assert env["EVENT_BUS_NAME"] == engine.bus_name
    assert env["POWERTOOLS_SERVICE_NAME"] == "serverlesspresso"
    assert env["AWS_LAMBDA_FUNCTION_NAME"] == "serverlesspresso-OrderEndedFunction"
    assert env["AWS_ACCESS_KEY_ID"] == "testing"


def test_provisioning_outside_mock_aws_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    # moto's switches are process-wide: pin them to what this test means, whatever an earlier test of
    # this worker left behind (a still-running dispatcher thread of another engine, say)
    monkeypatch.setattr(botocore_stubber, "enabled", False)
    monkeypatch.setitem(default_user_config, "stepfunctions", {"execute_state_machine": False})
    # Given no mock and no moto server, When provisioning, Then nothing reaches AWS
    with pytest.raises(RuntimeError, match="inside mock_aws"):
        LocalEngine.provision(TEMPLATE)
    # nor inside a mock that does not execute state machines
    with mock_aws(), pytest.raises(RuntimeError, match="MOCK_CONFIG"):
        LocalEngine.provision(TEMPLATE)


# ------------------------------------------------------------------------------ a template change
def test_a_function_and_table_added_to_the_template_are_provisioned_and_served(
    probe: tuple[LocalEngine, Path],
) -> None:
    engine, out_file = probe

    # Then the new table exists and the new function's rule is on the bus
    assert "ProbeTable" in engine.table_names
    rules = engine.clients["events"].list_rules(EventBusName=engine.bus_name)["Rules"]
    assert "serverlesspresso-ProbeFunction-Ping" in {r["Name"] for r in rules}

    # When an event matching the new rule (and one that does not match) is put on the bus
    engine.put_event("Probe.Ping", {"n": 1}, source="test.probe")
    engine.put_event("Probe.Other", {"n": 2}, source="test.probe")
    engine.dispatcher.drain()

    # Then the handler ran once, with Globals merged with its own (resolved) environment
    assert probe_calls(out_file) == [
        {
            "detail": {"n": 1},
            "function": "serverlesspresso-ProbeFunction",
            "orders_table": engine.table_names["OrdersTable"],
            "probe_setting": engine.table_names["ProbeTable"],
        }
    ]
    probe_deliveries = [d for d in engine.delivered if d.target == "ProbeFunction"]
    assert [(d.detail_type, d.outcome) for d in probe_deliveries] == [("Probe.Ping", "ok")]
    # and both events reached the bus
    assert [e["detail"] for e in engine.events_of_type("Probe.Other")] == [{"n": 2}]


def test_a_failing_handler_is_retried_then_kept_in_its_on_failure_destination(
    probe: tuple[LocalEngine, Path],
) -> None:
    engine, out_file = probe
    invoke_config = engine.template.properties("ProbeFunction")["EventInvokeConfig"]
    attempts = 1 + invoke_config["MaximumRetryAttempts"]  # from the template's Globals

    # When the handler fails on every attempt
    event_id = engine.put_event("Probe.Ping", {"fail": True}, source="test.probe")
    engine.dispatcher.drain()

    # Then it was tried as often as Lambda would, and the event is kept, not dropped
    assert len(probe_calls(out_file)) == attempts
    outcomes = [d.outcome for d in engine.delivered if d.target == "ProbeFunction"]
    assert outcomes == ["retry"] * (attempts - 1) + ["dead"]
    [dead] = engine.dead_letters
    assert (dead.target, dead.event["id"], dead.attempts) == ("ProbeFunction", event_id, attempts)
    assert "probe failure" in dead.error
    # in the template's on-failure destination queue, as a Lambda destination record
    messages = engine.clients["sqs"].receive_message(QueueUrl=engine.queue_urls["HandlerFailureQueue"])[
        "Messages"
    ]
    record = json.loads(messages[0]["Body"])
    assert record["requestContext"]["condition"] == "RetriesExhausted"
    assert record["requestPayload"]["id"] == event_id
    assert record["responsePayload"]["errorMessage"] == "probe failure"


# ------------------------------------------------------------------------------ workflow starts
@pytest.fixture
def workflow_only(template_copy: Any, make_engine: EngineFactory) -> Iterator[LocalEngine]:
    """The template without its functions: the NewOrder rule and the state machine alone."""

    def drop_functions(body: dict[str, Any]) -> None:
        for logical_id, resource in list(body["Resources"].items()):
            if resource["Type"] == "AWS::Serverless::Function":
                del body["Resources"][logical_id]

    with make_engine(template_copy(drop_functions)) as local:
        yield local


def test_each_new_order_event_starts_one_named_execution(workflow_only: LocalEngine) -> None:
    engine = workflow_only
    # When two NewOrder events arrive for the same order (e.g. a client retry)
    first = engine.start_order("7", "alice")
    second = engine.start_order("7", "alice")
    engine.dispatcher.drain()

    # Then the rule started one execution per event, named after the order and the event
    names = sorted(e["name"] for e in engine.executions_for_order("7"))
    assert names == sorted([f"7-{first[:8]}", f"7-{second[:8]}"])
    execution = engine.executions_for_order("7")[0]["executionArn"]
    described = engine.clients["stepfunctions"].describe_execution(executionArn=execution)
    assert json.loads(described["input"])["detail-type"] == "Validator.NewOrder"

    # When the first event is delivered again (EventBridge delivers at least once)
    route = next(r for r in engine.provisioned.routes if r.target_kind == "state_machine")
    [seen] = [e for e in engine.events_of_type("Validator.NewOrder") if e["id"] == first]
    engine.clients["sqs"].send_message(QueueUrl=route.queue_url, MessageBody=json.dumps(seen))
    engine.dispatcher.drain()

    # Then StartExecution is idempotent for the same name and input: still two executions
    assert len(engine.executions_for_order("7")) == 2
    assert all(d.outcome == "ok" for d in engine.delivered)


def test_a_start_that_keeps_failing_ends_in_the_rules_dead_letter_queue(
    template_copy: Any, make_engine: EngineFactory
) -> None:
    # Given a namer that gives every execution the same name, so a second order cannot start
    def drop_functions(body: dict[str, Any]) -> None:
        for logical_id, resource in list(body["Resources"].items()):
            if resource["Type"] == "AWS::Serverless::Function":
                del body["Resources"][logical_id]

    with make_engine(template_copy(drop_functions), execution_namer=lambda event: "same-name") as engine:
        rule = engine.template.properties("OrderProcessorStateMachine")["Events"]["NewOrder"]["Properties"]
        attempts = 1 + rule["RetryPolicy"]["MaximumRetryAttempts"]  # the template's RetryPolicy

        # When two different orders arrive
        engine.start_order("1", "alice")
        second = engine.start_order("2", "bob")
        engine.dispatcher.drain()

        # Then the first started; the second was retried as the rule says, then parked in its DLQ
        assert [e["name"] for e in engine.executions()] == ["same-name"]
        outcomes = [d.outcome for d in engine.delivered if d.event_id == second]
        assert outcomes == ["retry"] * (attempts - 1) + ["dead"]
        assert "ExecutionAlreadyExists" in engine.dead_letters[0].error
        [message] = engine.clients["sqs"].receive_message(
            QueueUrl=engine.queue_urls["NewOrderDLQ"], MessageAttributeNames=["All"]
        )["Messages"]
        assert json.loads(message["Body"])["id"] == second
        assert message["MessageAttributes"]["ERROR_CODE"]["StringValue"] == "ExecutionAlreadyExists"


def test_parameter_overrides_reach_the_workflow_and_the_seeded_config(make_engine: EngineFactory) -> None:
    # When the stack is provisioned with a smaller default capacity
    with make_engine(TEMPLATE, parameter_overrides={"DefaultMaxInFlight": "3"}) as engine:
        # Then the workflow's fallback and the seeded shop config both use it
        machine = engine.clients["stepfunctions"].describe_state_machine(
            stateMachineArn=engine.state_machine_arn
        )
        capacity_check = json.loads(machine["definition"])["States"]["Is capacity available?"]
        assert capacity_check["Parameters"]["ExpressionAttributeValues"][":defaultMaxInFlight"] == {"N": "3"}
        item = engine.clients["dynamodb"].get_item(
            TableName=engine.table_names["ConfigTable"], Key={"configId": {"S": "shop"}}
        )["Item"]
        assert item["maxInFlight"] == {"N": "3"}


def test_execution_names_are_valid_and_bounded() -> None:
    # Given an order id with characters Step Functions rejects, and a very long one
    odd = execution_name({"id": "0123456789abcdef", "detail": {"orderId": "a b/c:d"}})
    long = execution_name({"id": "0123456789abcdef", "detail": {"orderId": "x" * 200}})

    # Then the names keep the event part and only valid characters, within 80
    assert odd == "a_b_c_d-01234567"
    assert len(long) == 80
    assert long.endswith("-01234567")


def test_scaled_seconds_round_up_to_whole_seconds() -> None:
    assert [scale_seconds(s, 0.01) for s in (300, 900, 1, 0)] == [3, 9, 1, 0]
    assert [scale_seconds(s, 0.001) for s in (300, 900)] == [1, 1]
    assert scale_seconds(300, 1.0) == 300


def test_nested_waits_and_timeouts_are_scaled_too() -> None:
    # Given a definition with an execution timeout, a Wait inside a Parallel and a Task inside a Map
    task = {"Type": "Task", "Resource": "x", "TimeoutSeconds": 60, "HeartbeatSeconds": 30, "End": True}
    wait = {"StartAt": "W", "States": {"W": {"Type": "Wait", "Seconds": 600, "End": True}}}
    definition: dict[str, Any] = {
        "StartAt": "P",
        "TimeoutSeconds": 3600,
        "States": {
            "P": {
                "Type": "Parallel",
                "Branches": [wait],
                "Next": "M",
            },
            "M": {"Type": "Map", "ItemProcessor": {"StartAt": "T", "States": {"T": task}}, "End": True},
        },
    }

    # When scaled by 0.01
    scaled = scale_definition(definition, 0.01)

    # Then every duration shrinks, the heartbeat stays below its timeout, and the input is untouched
    assert scaled["TimeoutSeconds"] == 36
    assert scaled["States"]["P"]["Branches"][0]["States"]["W"]["Seconds"] == 6
    scaled_task = scaled["States"]["M"]["ItemProcessor"]["States"]["T"]
    assert (scaled_task["HeartbeatSeconds"], scaled_task["TimeoutSeconds"]) == (1, 2)
    assert definition["States"]["M"]["ItemProcessor"]["States"]["T"]["TimeoutSeconds"] == 60


def test_probe_environment_does_not_leak_into_the_test_process(probe: tuple[LocalEngine, Path]) -> None:
    engine, out_file = probe
    # When a handler ran with its environment
    engine.put_event("Probe.Ping", {"n": 1}, source="test.probe")
    engine.dispatcher.drain()
    # Then the process environment is as before (the function's variables were set only meanwhile)
    assert probe_calls(out_file)
    assert "PROBE_OUT" not in os.environ
    assert "AWS_LAMBDA_FUNCTION_NAME" not in os.environ


def test_the_background_dispatcher_delivers_and_stops_cleanly(probe: tuple[LocalEngine, Path]) -> None:
    # Given the dispatcher's background threads, one per queue
    engine, out_file = probe
    engine.dispatcher.start()
    assert {t.name for t in threading.enumerate()} >= {"local-dispatcher-capture"}

    # When an event arrives while they wait in their long polls, and then the dispatcher stops
    engine.put_event("Probe.Ping", {"n": 7}, source="test.probe")
    engine.wait_for(lambda: probe_calls(out_file) or None, timeout=10)
    engine.dispatcher.stop()

    # Then the event was delivered once, every thread has ended, and nothing went wrong
    assert [call["detail"] for call in probe_calls(out_file)] == [{"n": 7}]
    assert not engine.dispatcher.running
    assert not [t for t in threading.enumerate() if t.name.startswith("local-dispatcher-")]
    assert engine.dispatcher.errors == []
    # And a wake-up left in a queue is neither delivered nor recorded as an event
    sqs = engine.clients["sqs"]
    provisioned = engine.provisioned
    for queue_url in (provisioned.capture_queue_url, *(route.queue_url for route in provisioned.routes)):
        sqs.send_message(QueueUrl=queue_url, MessageBody=WAKE_UP)
    engine.dispatcher.drain(timeout=10, settle=0.2)
    assert len(probe_calls(out_file)) == 1
    assert all(isinstance(event, dict) for event in engine.dispatcher.events_seen)
    assert all(delivery.outcome == "ok" for delivery in engine.dispatcher.delivered)
