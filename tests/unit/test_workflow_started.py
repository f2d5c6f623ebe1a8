"""WorkflowStartedFunction: keeps the customer wait's task token with its order.

Sample events from events/, and events the real OrderProcessorWorkflow emitted in moto.
"""

from __future__ import annotations

import pytest

from tests.helpers import CUSTOMER_WAIT, ENDING_EVENTS, load_event, setting, without

SAMPLE = load_event("workflow_started")
ORDER_ID = SAMPLE["detail"]["orderId"]
USER_ID = SAMPLE["detail"]["userId"]
TOKEN = SAMPLE["detail"]["TaskToken"]
EXECUTION_ARN = SAMPLE["resources"][1]
BARISTA_TOKEN = load_event("waiting_completion")["detail"]["TaskToken"]


# ------------------------------------------------------------------------------------ happy path
def test_sample_event_stores_the_customer_token_with_its_order(workflow_started, orders_table, output):
    # Given the sample OrderProcessor.WorkflowStarted event and no order yet
    event = load_event("workflow_started")

    # When the handler receives it
    result = workflow_started(event)

    # Then the order waits for its customer, with the token, owned by the emitting execution
    assert result == {"orderId": ORDER_ID, "outcome": "stored"}
    order = orders_table.get(ORDER_ID)
    assert order is not None
    assert order["state"] == "WAITING_FOR_CUSTOMER"
    assert order["stateRank"] == 10
    assert order["taskToken"] == TOKEN
    assert order["tokenState"] == "WAITING_FOR_CUSTOMER"
    assert order["executionArn"] == EXECUTION_ARN
    assert order["userId"] == USER_ID
    assert [entry["state"] for entry in order["timeline"]] == ["WAITING_FOR_CUSTOMER"]
    # And the token was not written to any output
    output.assert_no_secret(TOKEN)


def test_event_of_the_real_workflow_started_by_the_sample_new_order_is_stored(
    workflow, workflow_started, orders_table, output
):
    # Given the real workflow, started by the sample Validator.NewOrder event, waiting for its customer
    new_order = load_event("new_order")
    execution_arn = workflow.start_with(new_order)
    workflow.wait_for_callback(execution_arn, CUSTOMER_WAIT)
    event = workflow.bus.wait_for("OrderProcessor.WorkflowStarted", execution_arn)

    # When its WorkflowStarted event reaches the handler
    result = workflow_started(event)

    # Then the token of that execution's wait is stored for the sample's order and user
    assert result == {"orderId": new_order["detail"]["orderId"], "outcome": "stored"}
    order = orders_table.get(new_order["detail"]["orderId"])
    assert order is not None
    assert order["taskToken"] == event["detail"]["TaskToken"]
    assert order["executionArn"] == execution_arn
    assert order["userId"] == new_order["detail"]["userId"]
    # And the execution is still waiting (the handler did not end it)
    assert workflow.status(execution_arn) == "RUNNING"
    assert workflow.task_result(execution_arn, CUSTOMER_WAIT) is None
    output.assert_no_secret(event["detail"]["TaskToken"])


# ------------------------------------------------------------------------------------ duplicates
def test_duplicate_delivery_is_reported_and_changes_nothing(workflow_started, orders_table, output):
    # Given the sample event was handled once
    assert workflow_started(load_event("workflow_started"))["outcome"] == "stored"
    stored = orders_table.get(ORDER_ID)

    # When EventBridge delivers it again
    result = workflow_started(load_event("workflow_started"))

    # Then it is a duplicate and the order is exactly as before (no second timeline entry)
    assert result == {"orderId": ORDER_ID, "outcome": "duplicate"}
    assert orders_table.get(ORDER_ID) == stored
    output.assert_no_secret(TOKEN)


# ------------------------------------------------------------------------------------ reordering
def test_customer_token_arriving_after_the_barista_token_never_overwrites_it(
    workflow_started, waiting_completion, orders_table, output
):
    # Given the barista wait's event overtook this one: the order already waits for the barista
    assert waiting_completion(load_event("waiting_completion"))["outcome"] == "stored"
    before = orders_table.get(ORDER_ID)

    # When the older WorkflowStarted event arrives
    result = workflow_started(load_event("workflow_started"))

    # Then it is stale and the newer token stays
    assert result == {"orderId": ORDER_ID, "outcome": "stale"}
    after = orders_table.get(ORDER_ID)
    assert after == before
    assert after is not None
    assert after["state"] == "WAITING_FOR_BARISTA"
    assert after["taskToken"] == BARISTA_TOKEN
    output.assert_no_secret(TOKEN, BARISTA_TOKEN)


@pytest.mark.parametrize("ending", ENDING_EVENTS)
def test_customer_token_arriving_after_the_order_ended_changes_nothing(
    ending, workflow_started, order_ended, orders_table, output
):
    # Given the order already ended
    order_ended(load_event(ending))
    ended = orders_table.get(ORDER_ID)

    # When the WorkflowStarted event arrives late
    result = workflow_started(load_event("workflow_started"))

    # Then it is stale, the order keeps its terminal state and no token is stored
    assert result == {"orderId": ORDER_ID, "outcome": "stale"}
    assert orders_table.get(ORDER_ID) == ended
    assert ended is not None
    assert "taskToken" not in ended
    output.assert_no_secret(TOKEN)


# --------------------------------------------------------------------------------------- malformed
MALFORMED = {
    "missing orderId": (without("detail", "orderId"), "detail.orderId"),
    "empty orderId": (setting("", "detail", "orderId"), "detail.orderId"),
    "orderId with a slash": (setting("../other", "detail", "orderId"), "detail.orderId"),
    "missing userId": (without("detail", "userId"), "detail.userId"),
    "missing token": (without("detail", "TaskToken"), "detail.TaskToken"),
    "token too long": (setting(TOKEN * 3, "detail", "TaskToken"), "detail.TaskToken"),
    "token not a string": (setting(12345, "detail", "TaskToken"), "detail.TaskToken"),
    "wrong detail-type": (setting("OrderProcessor.WaitingCompletion", "detail-type"), "detail-type"),
    "foreign source": (setting("someone.else", "source"), "source"),
    "no execution ARN in resources": (setting(SAMPLE["resources"][:1], "resources"), "resources"),
    "no resources": (without("resources"), "resources"),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_event_is_rejected_logged_and_nothing_is_written(
    case, workflow_started, orders_table, output
):
    # Given a WorkflowStarted event with one defect
    event = load_event("workflow_started")
    mutate, field = MALFORMED[case]
    mutate(event)

    # When the handler receives it
    result = workflow_started(event)

    # Then it is rejected without touching the table, with one ERROR line naming the defect and
    # not the token (nor the over-long value)
    assert result == {"outcome": "rejected"}
    assert orders_table.all() == []
    output.assert_rejected_malformed(field, TOKEN)


# ------------------------------------------------------------------------------- foreign execution
def test_second_execution_of_an_owned_order_is_failed_and_leaves_its_wait(
    workflow, workflow_started, orders_table, output
):
    # Given execution A owns the order: its customer token is stored
    first_arn, first = workflow.customer_wait("order-dup")
    assert workflow_started(first)["outcome"] == "stored"
    # And a second execution B of the same order (a duplicate start) waits for its customer too
    second_arn, second = workflow.customer_wait("order-dup")
    assert workflow.slots_taken() == {first_arn.rsplit(":", 1)[1], second_arn.rsplit(":", 1)[1]}

    # When B's WorkflowStarted event arrives
    result = workflow_started(second)

    # Then B is foreign and A's token stays the stored one
    assert result == {"orderId": "order-dup", "outcome": "foreign"}
    order = orders_table.get("order-dup")
    assert order is not None
    assert order["taskToken"] == first["detail"]["TaskToken"]
    assert order["executionArn"] == first_arn
    assert [entry["state"] for entry in order["timeline"]] == ["WAITING_FOR_CUSTOMER"]
    # And B received SendTaskFailure(DuplicateExecution): it left its wait through the Catch,
    # emitted OrderCancelled and gave its capacity slot back
    assert workflow.wait_for_end(second_arn) == "SUCCEEDED"
    failure = workflow.task_result(second_arn, CUSTOMER_WAIT)
    assert failure is not None
    assert failure["type"] == "TaskFailed"
    assert failure["taskFailedEventDetails"]["error"] == "DuplicateExecution"
    assert workflow.entered(second_arn)[-2:] == ["Emit - Order cancelled", "Release capacity slot"]
    assert workflow.slots_taken() == {first_arn.rsplit(":", 1)[1]}
    # And A still waits for its customer
    assert workflow.status(first_arn) == "RUNNING"
    assert workflow.task_result(first_arn, CUSTOMER_WAIT) is None
    output.assert_no_secret(first["detail"]["TaskToken"], second["detail"]["TaskToken"])


def test_event_naming_another_user_for_an_owned_order_is_foreign(
    workflow_started, orders_table, output, sfn_requests
):
    # Given the sample order is stored for its user
    assert workflow_started(load_event("workflow_started"))["outcome"] == "stored"
    before = orders_table.get(ORDER_ID)
    # And an event for the same order and execution that names another user
    event = load_event("workflow_started")
    event["detail"]["userId"] = "someone-else"
    event["detail"]["TaskToken"] = TOKEN[::-1]

    # When it arrives
    result = workflow_started(event)

    # Then it is foreign, the order (its user and token) is unchanged, and the wait that token
    # belongs to is failed (Step Functions does not know this fake token; the request was sent)
    assert result == {"orderId": ORDER_ID, "outcome": "foreign"}
    assert orders_table.get(ORDER_ID) == before
    assert sfn_requests == ["SendTaskFailure"]
    output.assert_no_secret(TOKEN, TOKEN[::-1])


# ------------------------------------------------------------------------------- the log check
def test_output_capture_sees_what_the_functions_log(output):
    # Given the shared Powertools logger, When something is logged through it the way the
    # functions log, Then the capture the no-token assertions above rely on contains it
    from serverlesspresso.observability import logger

    logger.info("carrying a secret", extra={"value": TOKEN})
    with pytest.raises(AssertionError):
        output.assert_no_secret(TOKEN)
    assert [record["message"] for record in output.log_records()] == ["carrying a secret"]
