"""Fixtures for the handler and resume tests: moto resources built from template.yaml, a catch-all
capture of the bus, the real OrderProcessorWorkflow running in moto, and log capture.

Everything here runs inside one `mock_aws` per test (the `aws` fixture), with Step Functions
executing definitions for real, so tests assert on what the code did to moto's table, bus and
executions rather than on mocks.
"""

from __future__ import annotations

import copy
import io
import json
import logging
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest
from moto import mock_aws

from local import moto_patches
from local.template import Template
from local.waiting import wait_until as local_wait_until
from serverlesspresso.changes import ChangeFeed
from serverlesspresso.observability import logger as powertools_logger
from serverlesspresso.orders import OrderRepository, from_item, to_item
from tests.helpers import BARISTA_WAIT, CUSTOMER_WAIT, LambdaContext, load_event, load_handler, reset_clients
from tests.template_tables import create_tables, load_template

STATE_MACHINE_ID = "OrderProcessorStateMachine"
BUS_ID = "OrderEventBus"
POLL_SECONDS = 0.02
WAIT_SECONDS = 15.0
SETTLE_SECONDS = 5.0
SETTLE_POLL_SECONDS = 0.1


def wait_until(check: Callable[[], Any], what: str, timeout: float = WAIT_SECONDS) -> Any:
    """local.waiting.wait_until with the unit tests' timeout and interval; moto runs executions in threads."""
    return local_wait_until(check, what, timeout, POLL_SECONDS)


# ------------------------------------------------------------------------------------------ aws
@dataclass
class AwsEnv:
    """The moto account a test runs in, provisioned from template.yaml."""

    template: Template
    tables: dict[str, str]
    bus_name: str
    dynamodb: Any
    events: Any
    sqs: Any
    sfn: Any


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[AwsEnv]:
    """A fresh moto account with the template's tables and bus, and the functions' environment set.

    Step Functions executes definitions (needed by the workflow fixture); the shared package's
    cached clients are reset on both sides so no client outlives its mock.
    """
    reset_clients()
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        template = load_template()
        dynamodb = boto3.client("dynamodb")
        tables = create_tables(dynamodb, template)
        events = boto3.client("events")
        bus_name = template.physical_name(BUS_ID)
        events.create_event_bus(Name=bus_name)
        # The functions' environment, as template.yaml's Globals set it.
        monkeypatch.setenv("ORDERS_TABLE_NAME", tables["OrdersTable"])
        monkeypatch.setenv("CONFIG_TABLE_NAME", tables["ConfigTable"])
        monkeypatch.setenv("EVENT_BUS_NAME", bus_name)
        env = AwsEnv(
            template=template,
            tables=tables,
            bus_name=bus_name,
            dynamodb=dynamodb,
            events=events,
            sqs=boto3.client("sqs"),
            sfn=boto3.client("stepfunctions"),
        )
        try:
            yield env
        finally:
            _stop_running_executions(env.sfn)
            reset_clients()
    reset_clients()


def _stop_running_executions(sfn: Any) -> None:
    """Stop what is still running, and let it settle before the mock goes away.

    A waiting execution's thread outlives the test: moto ends a callback wait after its heartbeat
    or after 60 s (moto's default TimeoutSeconds for a task with HeartbeatSeconds; AWS's is
    99999999) and would then go on along the Catch path, calling AWS from inside a later test's
    mock. Stopped, it goes no further than the current state.

    moto's StopExecution is not safe against its own execution thread: it calls into the thread's
    evaluation environment, which the thread creates only once it has parsed the definition (before
    that, StopExecution raises AttributeError inside moto), and it switches the program state under
    a state that is being evaluated. So an execution is stopped only once it is parked: its history
    ends in the callback wait (TaskSubmitted) and has stopped growing. Then wait until no history
    grows any more, so that whatever the stopped thread still does lands in this test's mock.
    """
    running = [
        execution["executionArn"]
        for machine in sfn.list_state_machines()["stateMachines"]
        for execution in sfn.list_executions(
            stateMachineArn=machine["stateMachineArn"], statusFilter="RUNNING"
        )["executions"]
    ]
    if not running:
        return
    _settle(sfn, running, parked_only=True)
    for arn in running:
        if sfn.describe_execution(executionArn=arn)["status"] == "RUNNING":
            sfn.stop_execution(executionArn=arn)
    _settle(sfn, running, parked_only=False)


def _settle(sfn: Any, arns: list[str], *, parked_only: bool) -> None:
    """Wait (at most SETTLE_SECONDS) until no execution's history grows between two polls; with
    `parked_only`, also until every running one rests in a callback wait."""

    def histories() -> list[list[dict[str, Any]]]:
        return [sfn.get_execution_history(executionArn=arn, maxResults=1000)["events"] for arn in arns]

    def parked(arn: str, events: list[dict[str, Any]]) -> bool:
        if sfn.describe_execution(executionArn=arn)["status"] != "RUNNING":
            return True
        return bool(events) and events[-1]["type"] == "TaskSubmitted"

    deadline = time.monotonic() + SETTLE_SECONDS
    before = histories()
    while time.monotonic() < deadline:
        time.sleep(SETTLE_POLL_SECONDS)
        now = histories()
        steady = [len(a) for a in now] == [len(b) for b in before]
        if steady and (not parked_only or all(map(parked, arns, now))):
            return
        before = now


# --------------------------------------------------------------------------------------- orders
class OrdersTable:
    """Direct access to the orders table, for Given steps and for Then assertions."""

    def __init__(self, client: Any, name: str) -> None:
        self.client = client
        self.name = name

    def get(self, order_id: str) -> dict[str, Any] | None:
        """The stored item as plain Python values, or None."""
        item = self.client.get_item(
            TableName=self.name, Key=to_item({"orderId": order_id}), ConsistentRead=True
        )
        return from_item(item["Item"]) if "Item" in item else None

    def all(self) -> list[dict[str, Any]]:
        """Every stored item."""
        return [
            from_item(item) for item in self.client.scan(TableName=self.name, ConsistentRead=True)["Items"]
        ]

    def put(self, item: dict[str, Any]) -> None:
        """Store an item as is (e.g. an order in a state the API would have created)."""
        self.client.put_item(TableName=self.name, Item=to_item(item))

    def set(self, order_id: str, **values: Any) -> None:
        """Overwrite some attributes of an existing order (e.g. a barista claiming it)."""
        names = {f"#k{i}": key for i, key in enumerate(values)}
        self.client.update_item(
            TableName=self.name,
            Key=to_item({"orderId": order_id}),
            UpdateExpression="SET " + ", ".join(f"#k{i} = :v{i}" for i in range(len(values))),
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=to_item({f":v{i}": value for i, value in enumerate(values.values())}),
            ConditionExpression="attribute_exists(orderId)",
        )


@pytest.fixture
def orders_table(aws: AwsEnv) -> OrdersTable:
    """The template's OrdersTable, in moto."""
    return OrdersTable(aws.dynamodb, aws.tables["OrdersTable"])


@pytest.fixture
def orders(aws: AwsEnv) -> OrderRepository:
    """The orders table as the functions use it."""
    return OrderRepository(aws.tables["OrdersTable"], aws.dynamodb)


@pytest.fixture
def changes(aws: AwsEnv) -> ChangeFeed:
    """The push channel's change announcements, on the test account's bus."""
    return ChangeFeed(boto3.client("events"), aws.bus_name)


# ------------------------------------------------------------------------------- captured events
class BusCapture:
    """Everything put on the custom bus, via a catch-all rule whose target is an SQS queue."""

    def __init__(self, aws: AwsEnv) -> None:
        self.aws = aws
        self._seen: list[dict[str, Any]] = []
        self.queue_url = aws.sqs.create_queue(QueueName="bus-capture")["QueueUrl"]
        queue_arn = aws.sqs.get_queue_attributes(QueueUrl=self.queue_url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        aws.events.put_rule(
            Name="capture-everything",
            EventBusName=aws.bus_name,
            EventPattern=json.dumps({"source": [{"prefix": ""}]}),
        )
        aws.events.put_targets(
            Rule="capture-everything",
            EventBusName=aws.bus_name,
            # The whole event: moto's default target input drops `account`, which a real
            # EventBridge envelope (and our handlers' model) has.
            Targets=[
                {
                    "Id": "queue",
                    "Arn": queue_arn,
                    "InputTransformer": {"InputPathsMap": {}, "InputTemplate": "<aws.events.event.json>"},
                }
            ],
        )

    def events(self, detail_type: str | None = None) -> list[dict[str, Any]]:
        """Every event published so far (oldest first), optionally only one detail-type."""
        while True:
            messages = self.aws.sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10).get(
                "Messages", []
            )
            if not messages:
                break
            for message in messages:
                self._seen.append(json.loads(message["Body"]))
                self.aws.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])
        found = [event for event in self._seen if detail_type is None or event["detail-type"] == detail_type]
        return copy.deepcopy(found)  # tests may mutate what they get

    def wait_for(self, detail_type: str, execution_arn: str | None = None) -> dict[str, Any]:
        """The first event of `detail_type` (emitted by `execution_arn`, if given), waiting for it."""

        def find() -> dict[str, Any] | None:
            matching = [
                event
                for event in self.events(detail_type)
                if execution_arn is None or execution_arn in event.get("resources", [])
            ]
            return matching[0] if matching else None

        found: dict[str, Any] = wait_until(find, f"a {detail_type} event")
        return found


@pytest.fixture
def bus(aws: AwsEnv) -> BusCapture:
    """Captures every event put on the custom bus from now on."""
    return BusCapture(aws)


# ------------------------------------------------------------------------------------- workflow
@dataclass
class Workflow:
    """The real OrderProcessorWorkflow (statemachine/*.asl.json with its DefinitionSubstitutions
    resolved from template.yaml) running in moto."""

    aws: AwsEnv
    bus: BusCapture
    _machines: dict[tuple[tuple[str, int], ...], str] = field(default_factory=dict)
    _started: int = 0

    def definition(self, heartbeats: dict[str, int] | None = None) -> str:
        """The deployed definition; `heartbeats` shortens HeartbeatSeconds of named states."""
        template = self.aws.template
        properties = template.properties(STATE_MACHINE_ID)
        text = (template.root / properties["DefinitionUri"]).read_text(encoding="utf-8")
        for name, value in template.resolve(properties["DefinitionSubstitutions"]).items():
            text = text.replace("${" + name + "}", str(value))
        assert "${" not in text, "a placeholder has no DefinitionSubstitution"
        definition = json.loads(text)
        for state, seconds in (heartbeats or {}).items():
            definition["States"][state]["HeartbeatSeconds"] = seconds
        return json.dumps(definition)

    def machine(self, heartbeats: dict[str, int] | None = None) -> str:
        """ARN of the state machine (one per heartbeat variant, created on first use)."""
        key = tuple(sorted((heartbeats or {}).items()))
        if key not in self._machines:
            name = self.aws.template.physical_name(STATE_MACHINE_ID)
            if key:
                name += "-" + "-".join(f"{seconds}s" for _, seconds in key)
            self._machines[key] = self.aws.sfn.create_state_machine(
                name=name,
                definition=self.definition(heartbeats),
                roleArn="arn:aws:iam::123456789012:role/OrderProcessorRole",
                type="STANDARD",
            )["stateMachineArn"]
        return self._machines[key]

    def start(
        self, order_id: str, user_id: str = "user-1", *, heartbeats: dict[str, int] | None = None
    ) -> str:
        """Start an execution for one order, with a Validator.NewOrder envelope as input."""
        new_order = load_event("new_order")
        new_order["detail"] = {"orderId": order_id, "userId": user_id}
        return self.start_with(new_order, heartbeats=heartbeats)

    def start_with(self, new_order: dict[str, Any], *, heartbeats: dict[str, int] | None = None) -> str:
        """Start an execution with `new_order` as input: the rule passes the whole event."""
        self._started += 1
        return str(
            self.aws.sfn.start_execution(
                stateMachineArn=self.machine(heartbeats),
                # Named: a rule cannot name executions, but moto builds a broken ARN without a name.
                name=f"{new_order['detail']['orderId']}-{self._started}"[-80:],
                input=json.dumps(new_order),
            )["executionArn"]
        )

    def history(self, execution_arn: str) -> list[dict[str, Any]]:
        """The execution's event history, oldest first."""
        events: list[dict[str, Any]] = self.aws.sfn.get_execution_history(
            executionArn=execution_arn, maxResults=1000
        )["events"]
        return events

    def steps(self, execution_arn: str) -> list[tuple[str, str]]:
        """(state name, history event type) for every event after the first state was entered.

        The workflow is sequential, so every event belongs to the state entered last.
        """
        steps: list[tuple[str, str]] = []
        state = ""
        for event in self.history(execution_arn):
            if event["type"].endswith("StateEntered"):
                state = event["stateEnteredEventDetails"]["name"]
            if state:
                steps.append((state, event["type"]))
        return steps

    def entered(self, execution_arn: str) -> list[str]:
        """Names of the states the execution entered, in order."""
        return [state for state, kind in self.steps(execution_arn) if kind.endswith("StateEntered")]

    def task_result(self, execution_arn: str, state: str) -> dict[str, Any] | None:
        """The history event that closed `state`'s task (TaskSucceeded/TaskFailed/TaskTimedOut)."""
        current = ""
        for event in self.history(execution_arn):
            if event["type"].endswith("StateEntered"):
                current = event["stateEnteredEventDetails"]["name"]
            elif current == state and event["type"] in ("TaskSucceeded", "TaskFailed", "TaskTimedOut"):
                return event
        return None

    def wait_for_task_result(self, execution_arn: str, state: str) -> dict[str, Any]:
        """Block until `state`'s task closed (the execution records it in its own thread)."""
        result: dict[str, Any] = wait_until(
            lambda: self.task_result(execution_arn, state), f"{state} of {execution_arn} to close"
        )
        return result

    def wait_for_callback(self, execution_arn: str, state: str) -> None:
        """Block until the execution is waiting in `state` for its task token.

        TaskSubmitted is recorded once PutEvents returned, right before the wait is armed (a
        callback sent earlier can be lost in moto; local.moto_patches closes the last gap).
        """
        wait_until(
            lambda: (state, "TaskSubmitted") in self.steps(execution_arn),
            f"{execution_arn} to wait in {state}",
        )

    def status(self, execution_arn: str) -> str:
        """RUNNING, SUCCEEDED, FAILED, TIMED_OUT or ABORTED."""
        return str(self.aws.sfn.describe_execution(executionArn=execution_arn)["status"])

    def wait_for_end(self, execution_arn: str) -> str:
        """Block until the execution is no longer running; returns its final status."""
        return str(
            wait_until(lambda: (s := self.status(execution_arn)) != "RUNNING" and s, "the execution to end")
        )

    def customer_wait(
        self, order_id: str, user_id: str = "user-1", **options: Any
    ) -> tuple[str, dict[str, Any]]:
        """Start an order and return (execution ARN, its OrderProcessor.WorkflowStarted event)."""
        execution_arn = self.start(order_id, user_id, **options)
        self.wait_for_callback(execution_arn, CUSTOMER_WAIT)
        return execution_arn, self.bus.wait_for("OrderProcessor.WorkflowStarted", execution_arn)

    def slots_taken(self) -> set[str]:
        """Execution names holding a capacity slot on the shop config item."""
        item = self.aws.dynamodb.get_item(
            TableName=self.aws.tables["ConfigTable"], Key=to_item({"configId": "shop"}), ConsistentRead=True
        ).get("Item", {})
        return set(from_item(item).get("inFlight", set()))


@pytest.fixture
def workflow(aws: AwsEnv, bus: BusCapture) -> Iterator[Workflow]:
    """The real workflow in moto, with the local engine's moto fixes installed for the test.

    The fixes (local/moto_patches.py) make moto behave like AWS where the workflow depends on it:
    `$$.Execution.StartTime` as an ISO string (Generate Order Number splits it), callbacks that
    arrive just before the heartbeat wait is armed, and SendTaskFailure's cause.
    """
    already = set(moto_patches.installed())
    moto_patches.apply()
    try:
        yield Workflow(aws, bus)
    finally:
        if not already:
            moto_patches.revert()


# ------------------------------------------------------------------------------------- handlers
Handler = Callable[[dict[str, Any]], dict[str, str]]


def _invoker(function_dir: str) -> Handler:
    module = load_handler(function_dir)

    context = LambdaContext(
        function_name=function_dir,
        invoked_function_arn=f"arn:aws:lambda:us-east-1:123456789012:function:{function_dir}",
    )

    def invoke(event: dict[str, Any]) -> dict[str, str]:
        result: dict[str, str] = module.lambda_handler(event, context)
        return result

    return invoke


@pytest.fixture
def workflow_started(aws: AwsEnv) -> Handler:
    """WorkflowStartedFunction's handler, invoked the way Lambda would."""
    return _invoker("workflow_started")


@pytest.fixture
def waiting_completion(aws: AwsEnv) -> Handler:
    """WaitingCompletionFunction's handler."""
    return _invoker("waiting_completion")


@pytest.fixture
def order_ended(aws: AwsEnv) -> Handler:
    """OrderEndedFunction's handler."""
    return _invoker("order_ended")


@pytest.fixture
def sfn_requests(aws: AwsEnv) -> list[str]:
    """Names of the Step Functions operations the functions' shared client sends from now on
    (recorded from botocore's before-call event: the requests themselves, not a mock)."""
    from serverlesspresso.aws import sfn_client

    sent: list[str] = []

    def record(model: Any, **_: Any) -> None:
        sent.append(model.name)

    sfn_client().meta.events.register("before-call.sfn", record)
    return sent


Resume = Callable[..., dict[str, Any]]


@pytest.fixture
def resume(aws: AwsEnv) -> Resume:
    """serverlesspresso.resume.resume_order wired as the API will wire it: the shared repository
    and Step Functions client of serverlesspresso.dependencies / serverlesspresso.aws."""
    from serverlesspresso.aws import sfn_client
    from serverlesspresso.dependencies import order_repository
    from serverlesspresso.resume import ResumeAction, resume_order

    def call(order_id: str, action: ResumeAction, **options: Any) -> dict[str, Any]:
        return resume_order(order_id, action, orders=order_repository(), sfn=sfn_client(), **options)

    return call


@pytest.fixture
def barista_wait(
    workflow: Workflow, workflow_started: Handler, resume: Resume
) -> Callable[..., tuple[str, dict[str, Any]]]:
    """Drive a real order to its barista wait: start it, store its customer token with the
    handler, submit it. Returns (execution ARN, the OrderProcessor.WaitingCompletion event), the
    event not yet delivered to its handler."""
    from serverlesspresso.resume import SUBMIT_ORDER

    def drive(order_id: str, user_id: str = "user-1") -> tuple[str, dict[str, Any]]:
        execution_arn, started = workflow.customer_wait(order_id, user_id)
        assert workflow_started(started)["outcome"] == "stored"
        resume(order_id, SUBMIT_ORDER)
        workflow.wait_for_callback(execution_arn, BARISTA_WAIT)
        return execution_arn, workflow.bus.wait_for("OrderProcessor.WaitingCompletion", execution_arn)

    return drive


# ------------------------------------------------------------------------------------------ logs
class Output:
    """What a test run wrote: stdout/stderr (Powertools' JSON log lines, EMF metrics) and any
    record that went through the standard logging tree."""

    def __init__(self, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture) -> None:
        self.capsys = capsys
        self.caplog = caplog
        self.text = ""

    def read(self) -> str:
        """Everything written since the test started (accumulates across calls)."""
        captured = self.capsys.readouterr()
        self.text += captured.out + captured.err
        return self.text + self.caplog.text

    def log_records(self) -> list[dict[str, Any]]:
        """The Powertools JSON log lines written so far, parsed."""
        records = []
        for line in self.read().splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict) and "level" in record and "message" in record:
                records.append(record)
        return records

    def errors(self, message: str) -> list[dict[str, Any]]:
        """The ERROR log records with exactly this message."""
        return [r for r in self.log_records() if r["level"] == "ERROR" and r["message"] == message]

    def assert_no_secret(self, *secrets: str) -> None:
        """No secret (nor the first 24 characters of one, as a truncated repr would show) was written."""
        text = self.read()
        for secret in secrets:
            assert secret not in text
            assert secret[:24] not in text

    def assert_rejected_malformed(self, field: str, *secrets: str) -> None:
        """One ERROR line "rejected malformed event" naming `field`, and no secret anywhere."""
        rejections = self.errors("rejected malformed event")
        assert len(rejections) == 1
        assert field in {problem["field"] for problem in rejections[0]["problems"]}
        self.assert_no_secret(*secrets)


class _CurrentStdout(io.TextIOBase):
    """Writes to whatever sys.stdout is at the time of the write (capsys swaps it per test phase)."""

    def write(self, text: str) -> int:
        return sys.stdout.write(text)

    def flush(self) -> None:
        sys.stdout.flush()


@pytest.fixture
def output(capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture) -> Iterator[Output]:
    """Captures the functions' output. Powertools' handler keeps the stdout it saw at import; for
    the test it writes to the current sys.stdout instead, which capsys captures."""
    handler = powertools_logger.registered_handler
    assert isinstance(handler, logging.StreamHandler)
    previous = handler.stream
    handler.stream = _CurrentStdout()  # assigned, not setStream(): no flush of the old stream
    try:
        yield Output(capsys, caplog)
    finally:
        handler.stream = previous
