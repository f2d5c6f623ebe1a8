"""The workshop's "Testing the Step Functions workflow" walkthrough (shared seed page), in-process.

The test plays the console user: it starts an execution by hand, copies each TaskToken from the
TaskScheduled event of the waiting state, and resumes the workflow with SendTaskSuccess. No handler
runs (the `workflow` fixture delivers nothing).
"""

from __future__ import annotations

import json
from typing import Any

from local.engine import LocalEngine
from tests.e2e.flows import COMPLETED_PATH

CUSTOMER_WAIT = "Emit - Workflow Started TT"
BARISTA_WAIT = "Emit - Awaiting Completion TT"
SEED_INPUT = {"detail": {"orderId": "1", "userId": "testuser"}}
SEED_TASK_OUTPUT = '{"orderId":1}'


def start(workflow: LocalEngine, name: str) -> str:
    """Start an execution with the walkthrough's input, as the console's Start execution does."""
    response = workflow.clients["stepfunctions"].start_execution(
        stateMachineArn=workflow.state_machine_arn, name=name, input=json.dumps(SEED_INPUT)
    )
    arn: str = response["executionArn"]
    return arn


def emitted(workflow: LocalEngine, detail_type: str) -> list[dict[str, Any]]:
    """Details of the events of that type that reached the bus so far."""
    workflow.dispatcher.collect_events()
    return [event["detail"] for event in workflow.events_of_type(detail_type)]


def shop_item(workflow: LocalEngine) -> dict[str, Any]:
    item: dict[str, Any] = workflow.clients["dynamodb"].get_item(
        TableName=workflow.table_names["ConfigTable"], Key={"configId": {"S": "shop"}}, ConsistentRead=True
    )["Item"]
    return item


def test_seed_walkthrough_two_callbacks_then_success(workflow: LocalEngine) -> None:
    sfn = workflow.clients["stepfunctions"]

    # Given an execution started with the walkthrough's payload
    execution = start(workflow, "walkthrough-1")

    # When the customer's wait is reached, Then its TaskScheduled event carries the token, and the
    # emitted WorkflowStarted event carries the same token with the order and user
    token = workflow.task_token(execution, CUSTOMER_WAIT)
    assert sfn.describe_execution(executionArn=execution)["status"] == "RUNNING"
    [started] = workflow.wait_for(lambda: emitted(workflow, "OrderProcessor.WorkflowStarted"), 10, "event")
    assert (started["TaskToken"], started["orderId"], started["userId"]) == (token, "1", "testuser")
    # and the order holds a capacity slot named after the execution
    assert shop_item(workflow)["inFlight"] == {"SS": ["walkthrough-1"]}

    # When the customer's callback arrives (CloudShell: send-task-success --task-output '{"orderId":1}')
    sfn.send_task_success(taskToken=token, output=SEED_TASK_OUTPUT)

    # Then the workflow numbers the order and waits for the barista with a new token
    barista_token = workflow.task_token(execution, BARISTA_WAIT)
    assert barista_token != token
    [waiting] = workflow.wait_for(lambda: emitted(workflow, "OrderProcessor.WaitingCompletion"), 10, "event")
    assert waiting["TaskToken"] == barista_token
    assert waiting["orderNumber"] == 1  # the first order of the day, as a number

    # When the barista's callback arrives
    sfn.send_task_success(taskToken=barista_token, output=SEED_TASK_OUTPUT)

    # Then the execution succeeds through the seed's states, in the seed's order
    result = workflow.wait_for_execution(execution)
    assert result["status"] == "SUCCEEDED"
    path = workflow.state_path(execution)
    assert path == COMPLETED_PATH
    output = json.loads(result["output"])
    assert output["order"] == {"orderId": 1}  # the barista's callback output, at ResultPath $.order
    assert output["Order"]["Payload"] == {"orderNumber": 1}
    # and the capacity slot is free again
    assert "inFlight" not in shop_item(workflow)
    [finished] = emitted(workflow, "OrderProcessor.orderFinished")
    assert finished["orderNumber"] == 1


def test_customer_who_never_answers_times_out(workflow: LocalEngine) -> None:
    # Given an execution waiting for the customer
    execution = start(workflow, "walkthrough-customer-timeout")
    workflow.task_token(execution, CUSTOMER_WAIT)

    # When nobody answers within the (scaled) heartbeat
    result = workflow.wait_for_execution(execution)

    # Then the customer timeout path runs and the slot is released
    assert result["status"] == "SUCCEEDED"
    assert workflow.state_path(execution)[2:] == [
        CUSTOMER_WAIT,
        "Customer timedout",
        "Emit - Order timed out",
        "Release capacity slot",
    ]
    [timed_out] = emitted(workflow, "OrderProcessor.OrderTimeOut")
    assert timed_out["cause"] == "Customer timedout"
    assert "inFlight" not in shop_item(workflow)


def test_barista_who_never_answers_times_out(workflow: LocalEngine) -> None:
    # Given an order the customer submitted
    execution = start(workflow, "walkthrough-barista-timeout")
    workflow.clients["stepfunctions"].send_task_success(
        taskToken=workflow.task_token(execution, CUSTOMER_WAIT), output=SEED_TASK_OUTPUT
    )
    workflow.task_token(execution, BARISTA_WAIT)

    # When the barista does not answer within the (scaled) heartbeat
    result = workflow.wait_for_execution(execution)

    # Then the barista timeout path runs and the slot is released
    assert result["status"] == "SUCCEEDED"
    assert workflow.state_path(execution)[4:] == [
        BARISTA_WAIT,
        "Barista timedout",
        "Emit - Order timed out",
        "Release capacity slot",
    ]
    [timed_out] = emitted(workflow, "OrderProcessor.OrderTimeOut")
    assert timed_out["cause"] == "Barista timedout"
    assert "inFlight" not in shop_item(workflow)
