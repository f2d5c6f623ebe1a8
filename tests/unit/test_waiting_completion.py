"""WaitingCompletionFunction: keeps the barista wait's token and order number, and tells the barista
screens (OrderManager.WaitingCompletion) - never with the token."""

from __future__ import annotations

import json

import pytest

from serverlesspresso.models import EVENT_SOURCE
from serverlesspresso.resume import COMPLETE_ORDER
from tests.helpers import BARISTA_WAIT, CUSTOMER_WAIT, ENDING_EVENTS, load_event, setting, without

SAMPLE = load_event("waiting_completion")
ORDER_ID = SAMPLE["detail"]["orderId"]
USER_ID = SAMPLE["detail"]["userId"]
TOKEN = SAMPLE["detail"]["TaskToken"]
EXECUTION_ARN = SAMPLE["resources"][1]
CUSTOMER_TOKEN = load_event("workflow_started")["detail"]["TaskToken"]
SCREENS_EVENT = "OrderManager.WaitingCompletion"


def assert_no_token_in_screens_events(bus, *tokens: str) -> None:
    """The events published for the barista screens carry no TaskToken field and no token text."""
    published = json.dumps(bus.events(SCREENS_EVENT))
    assert "TaskToken" not in published
    for token in tokens:
        assert token[:24] not in published


# ------------------------------------------------------------------------------------ happy path
def test_sample_event_stores_the_barista_token_and_announces_the_order(
    workflow_started, waiting_completion, orders_table, bus, output
):
    # Given the order waits for its customer (sample WorkflowStarted handled)
    workflow_started(load_event("workflow_started"))

    # When the sample WaitingCompletion event arrives
    result = waiting_completion(load_event("waiting_completion"))

    # Then the order waits for the barista with the new token and its order number
    assert result == {"orderId": ORDER_ID, "outcome": "stored"}
    order = orders_table.get(ORDER_ID)
    assert order is not None
    assert order["state"] == "WAITING_FOR_BARISTA"
    assert order["stateRank"] == 30
    assert order["taskToken"] == TOKEN
    assert order["tokenState"] == "WAITING_FOR_BARISTA"
    assert order["orderNumber"] == 42
    assert order["executionArn"] == EXECUTION_ARN
    assert [entry["state"] for entry in order["timeline"]] == ["WAITING_FOR_CUSTOMER", "WAITING_FOR_BARISTA"]
    # And the barista screens were told, with the order's ids and number only
    announced = bus.events(SCREENS_EVENT)
    assert [event["detail"] for event in announced] == [
        {"orderId": ORDER_ID, "userId": USER_ID, "orderNumber": 42}
    ]
    assert announced[0]["source"] == EVENT_SOURCE
    assert_no_token_in_screens_events(bus, TOKEN, CUSTOMER_TOKEN)
    output.assert_no_secret(TOKEN, CUSTOMER_TOKEN)


def test_barista_wait_of_the_real_workflow_is_stored_and_announced(
    barista_wait, waiting_completion, workflow, orders_table, bus, output
):
    # Given a real order the customer submitted: its execution waits for the barista
    execution_arn, event = barista_wait("order-real")

    # When the WaitingCompletion event it emitted reaches the handler
    result = waiting_completion(event)

    # Then its token and the order number the workflow generated are stored
    assert result == {"orderId": "order-real", "outcome": "stored"}
    order = orders_table.get("order-real")
    assert order is not None
    assert order["state"] == "WAITING_FOR_BARISTA"
    assert order["taskToken"] == event["detail"]["TaskToken"]
    assert order["orderNumber"] == event["detail"]["orderNumber"] == 1
    # And the screens got the order (without the token) while the execution keeps waiting
    assert [e["detail"] for e in bus.events(SCREENS_EVENT)] == [
        {"orderId": "order-real", "userId": "user-1", "orderNumber": 1}
    ]
    assert_no_token_in_screens_events(bus, event["detail"]["TaskToken"])
    assert workflow.status(execution_arn) == "RUNNING"
    assert workflow.task_result(execution_arn, BARISTA_WAIT) is None
    output.assert_no_secret(event["detail"]["TaskToken"])


# ------------------------------------------------------------------------------------ duplicates
def test_duplicate_delivery_keeps_the_order_and_republishes_without_the_token(
    workflow_started, waiting_completion, orders_table, bus, output
):
    # Given the sample WaitingCompletion was handled once
    workflow_started(load_event("workflow_started"))
    assert waiting_completion(load_event("waiting_completion"))["outcome"] == "stored"
    stored = orders_table.get(ORDER_ID)

    # When EventBridge delivers it again
    result = waiting_completion(load_event("waiting_completion"))

    # Then it is a duplicate, the order is unchanged, and the screens are told again (the first
    # publish may be what failed) - never with the token
    assert result == {"orderId": ORDER_ID, "outcome": "duplicate"}
    assert orders_table.get(ORDER_ID) == stored
    announced = bus.events(SCREENS_EVENT)
    assert len(announced) == 2
    assert (
        announced[0]["detail"]
        == announced[1]["detail"]
        == {
            "orderId": ORDER_ID,
            "userId": USER_ID,
            "orderNumber": 42,
        }
    )
    assert_no_token_in_screens_events(bus, TOKEN)
    output.assert_no_secret(TOKEN, CUSTOMER_TOKEN)


def test_duplicate_arriving_after_the_barista_resumed_is_not_announced_again(
    barista_wait, waiting_completion, resume, workflow, orders_table, bus, output
):
    # Given a real order whose barista wait was stored, announced, and then completed by the barista
    execution_arn, event = barista_wait("order-done")
    assert waiting_completion(event)["outcome"] == "stored"
    resume("order-done", COMPLETE_ORDER)
    assert workflow.wait_for_end(execution_arn) == "SUCCEEDED"
    completing = orders_table.get("order-done")
    assert completing is not None
    assert completing["state"] == "COMPLETING"

    # When a late copy of the WaitingCompletion event arrives
    result = waiting_completion(event)

    # Then nothing changes and the screens are not told to make the order again
    assert result == {"orderId": "order-done", "outcome": "duplicate"}
    assert orders_table.get("order-done") == completing
    assert len(bus.events(SCREENS_EVENT)) == 1
    output.assert_no_secret(event["detail"]["TaskToken"])


# ------------------------------------------------------------------------------------ reordering
def test_barista_token_arriving_before_the_customer_token_is_kept(
    waiting_completion, workflow_started, orders_table, bus, output
):
    # Given the WaitingCompletion event overtook the WorkflowStarted event
    assert waiting_completion(load_event("waiting_completion"))["outcome"] == "stored"
    stored = orders_table.get(ORDER_ID)

    # When the older WorkflowStarted event arrives after it
    assert workflow_started(load_event("workflow_started"))["outcome"] == "stale"

    # Then the newer (barista) token is still the stored one
    assert orders_table.get(ORDER_ID) == stored
    assert stored is not None
    assert stored["taskToken"] == TOKEN
    assert stored["state"] == "WAITING_FOR_BARISTA"
    assert len(bus.events(SCREENS_EVENT)) == 1
    output.assert_no_secret(TOKEN, CUSTOMER_TOKEN)


@pytest.mark.parametrize("ending", ENDING_EVENTS)
def test_barista_token_arriving_after_the_order_ended_changes_nothing_and_is_not_announced(
    ending, workflow_started, order_ended, waiting_completion, orders_table, bus, output
):
    # Given the order waited for its customer and then ended (e.g. orderFinished overtook this event)
    workflow_started(load_event("workflow_started"))
    order_ended(load_event(ending))
    ended = orders_table.get(ORDER_ID)

    # When the WaitingCompletion event arrives late
    result = waiting_completion(load_event("waiting_completion"))

    # Then it is stale, the order stays ended without a token, and no barista is asked to make it
    assert result == {"orderId": ORDER_ID, "outcome": "stale"}
    assert orders_table.get(ORDER_ID) == ended
    assert ended is not None
    assert ended["stateRank"] == 100
    assert "taskToken" not in ended
    assert bus.events(SCREENS_EVENT) == []
    output.assert_no_secret(TOKEN, CUSTOMER_TOKEN)


# --------------------------------------------------------------------------------------- malformed
MALFORMED = {
    "missing orderId": (without("detail", "orderId"), "detail.orderId"),
    "missing userId": (without("detail", "userId"), "detail.userId"),
    "missing orderNumber": (without("detail", "orderNumber"), "detail.orderNumber"),
    "orderNumber as a string": (setting("42", "detail", "orderNumber"), "detail.orderNumber"),
    "orderNumber as a float": (setting(4.2, "detail", "orderNumber"), "detail.orderNumber"),
    "orderNumber as a boolean": (setting(True, "detail", "orderNumber"), "detail.orderNumber"),
    "orderNumber zero": (setting(0, "detail", "orderNumber"), "detail.orderNumber"),
    "missing token": (without("detail", "TaskToken"), "detail.TaskToken"),
    "empty token": (setting("", "detail", "TaskToken"), "detail.TaskToken"),
    "token too long": (setting(TOKEN * 3, "detail", "TaskToken"), "detail.TaskToken"),
    "wrong detail-type": (setting("OrderProcessor.WorkflowStarted", "detail-type"), "detail-type"),
    "no execution ARN in resources": (setting(SAMPLE["resources"][:1], "resources"), "resources"),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_event_is_rejected_logged_and_nothing_is_written_or_published(
    case, waiting_completion, orders_table, bus, output
):
    # Given a WaitingCompletion event with one defect
    event = load_event("waiting_completion")
    mutate, field = MALFORMED[case]
    mutate(event)

    # When the handler receives it
    result = waiting_completion(event)

    # Then it is rejected: no order written, nothing published, one ERROR line without the token
    assert result == {"outcome": "rejected"}
    assert orders_table.all() == []
    assert bus.events() == []
    output.assert_rejected_malformed(field, TOKEN)


# ------------------------------------------------------------------------------- foreign execution
def test_barista_wait_of_a_second_execution_is_failed_and_not_announced(
    workflow, workflow_started, waiting_completion, orders_table, bus, output
):
    # Given execution A owns the order (its customer token is stored)
    first_arn, first = workflow.customer_wait("order-dup")
    assert workflow_started(first)["outcome"] == "stored"
    before = orders_table.get("order-dup")
    # And a second execution B of the same order got past its customer wait anyway. (The API only
    # ever resumes the stored token, so here the test resumes B's token itself: it stands for any
    # producer that should not have done so.)
    second_arn, second = workflow.customer_wait("order-dup")
    workflow.aws.sfn.send_task_success(taskToken=second["detail"]["TaskToken"], output="{}")
    workflow.wait_for_callback(second_arn, BARISTA_WAIT)
    second_barista = bus.wait_for("OrderProcessor.WaitingCompletion", second_arn)

    # When B's WaitingCompletion event arrives
    result = waiting_completion(second_barista)

    # Then it is foreign: A's order is untouched and no barista is asked to make B's order
    assert result == {"orderId": "order-dup", "outcome": "foreign"}
    assert orders_table.get("order-dup") == before
    assert bus.events(SCREENS_EVENT) == []
    # And B left its barista wait with DuplicateExecution, through the cancel path
    assert workflow.wait_for_end(second_arn) == "SUCCEEDED"
    failure = workflow.task_result(second_arn, BARISTA_WAIT)
    assert failure is not None
    assert failure["type"] == "TaskFailed"
    assert failure["taskFailedEventDetails"]["error"] == "DuplicateExecution"
    assert "Emit - Order cancelled" in workflow.entered(second_arn)
    # And A still waits for its customer
    assert workflow.task_result(first_arn, CUSTOMER_WAIT) is None
    output.assert_no_secret(first["detail"]["TaskToken"], second_barista["detail"]["TaskToken"])
