"""OrderEndedFunction: moves an order to the terminal state its workflow ended in, once, and only for
the execution that owns the order."""

from __future__ import annotations

import pytest

from tests.helpers import CUSTOMER_WAIT, ENDING_EVENTS, load_event, setting, without

SAMPLE = load_event("order_finished")
ORDER_ID = SAMPLE["detail"]["orderId"]
USER_ID = SAMPLE["detail"]["userId"]
EXECUTION_ARN = SAMPLE["resources"][1]
CUSTOMER_TOKEN = load_event("workflow_started")["detail"]["TaskToken"]
BARISTA_TOKEN = load_event("waiting_completion")["detail"]["TaskToken"]

# sample ending -> (state, endReason)
ENDINGS = {
    "order_finished": ("COMPLETED", "completed"),
    "order_timed_out": ("TIMED_OUT", "Customer timedout"),
    "shop_unavailable": ("REJECTED", "shop capacity"),
    "order_cancelled": ("CANCELLED", "CustomerCancelled"),
}


@pytest.fixture
def waiting_order(workflow_started, waiting_completion, orders_table):
    """The sample order, waiting for its barista (both sample token events handled)."""
    assert workflow_started(load_event("workflow_started"))["outcome"] == "stored"
    assert waiting_completion(load_event("waiting_completion"))["outcome"] == "stored"
    return orders_table.get(ORDER_ID)


# ------------------------------------------------------------------------------------ happy path
@pytest.mark.parametrize("ending", ENDING_EVENTS)
def test_sample_ending_moves_the_waiting_order_to_its_terminal_state_and_drops_the_token(
    ending, waiting_order, order_ended, orders_table, output
):
    # Given the sample order waits for its barista, token stored
    assert waiting_order["taskToken"] == BARISTA_TOKEN

    # When the sample ending event arrives
    result = order_ended(load_event(ending))

    # Then the order is in that ending's terminal state, says why, and no longer holds a token
    state, reason = ENDINGS[ending]
    assert result == {"orderId": ORDER_ID, "outcome": state}
    order = orders_table.get(ORDER_ID)
    assert order is not None
    assert order["state"] == state
    assert order["stateRank"] == 100
    assert order["endReason"] == reason
    assert "taskToken" not in order
    assert "tokenState" not in order
    assert order["executionArn"] == EXECUTION_ARN
    assert order["orderNumber"] == 42  # from the barista wait (and orderFinished repeats it)
    assert [entry["state"] for entry in order["timeline"]] == [
        "WAITING_FOR_CUSTOMER",
        "WAITING_FOR_BARISTA",
        state,
    ]
    output.assert_no_secret(CUSTOMER_TOKEN, BARISTA_TOKEN)


def test_shop_unavailable_for_an_order_no_wait_ever_stored_records_the_rejection(
    order_ended, orders_table, output
):
    # Given no order item (the workflow rejected the order before its first wait)
    assert orders_table.all() == []

    # When the sample ShopUnavailable event arrives
    result = order_ended(load_event("shop_unavailable"))

    # Then the order exists, REJECTED because the shop was at capacity, owned by that execution
    assert result == {"orderId": ORDER_ID, "outcome": "REJECTED"}
    order = orders_table.get(ORDER_ID)
    assert order is not None
    assert (order["state"], order["endReason"]) == ("REJECTED", "shop capacity")
    assert (order["executionArn"], order["userId"]) == (EXECUTION_ARN, USER_ID)
    assert order["createdAt"] == order["updatedAt"]


def test_timeout_event_of_the_real_workflow_ends_the_order(
    workflow, workflow_started, order_ended, orders_table
):
    # Given a real order whose customer never submits (its wait has a one-second heartbeat)
    execution_arn, started = workflow.customer_wait("order-late", heartbeats={CUSTOMER_WAIT: 1})
    assert workflow_started(started)["outcome"] == "stored"
    assert workflow.wait_for_end(execution_arn) == "SUCCEEDED"
    timed_out = workflow.bus.wait_for("OrderProcessor.OrderTimeOut", execution_arn)

    # When the OrderTimeOut event the workflow emitted arrives
    result = order_ended(timed_out)

    # Then the order timed out because of the customer, and its dead token is gone
    assert result == {"orderId": "order-late", "outcome": "TIMED_OUT"}
    order = orders_table.get("order-late")
    assert order is not None
    assert (order["state"], order["endReason"]) == ("TIMED_OUT", "Customer timedout")
    assert "taskToken" not in order


# ------------------------------------------------------------------------------------ duplicates
@pytest.mark.parametrize("ending", ENDING_EVENTS)
def test_duplicate_ending_is_ignored_and_changes_nothing(
    ending, waiting_order, order_ended, orders_table, output
):
    # Given the ending was recorded once
    state, _ = ENDINGS[ending]
    assert order_ended(load_event(ending))["outcome"] == state
    ended = orders_table.get(ORDER_ID)

    # When EventBridge delivers it again
    result = order_ended(load_event(ending))

    # Then it is ignored and the order is exactly as before (one terminal timeline entry)
    assert result == {"orderId": ORDER_ID, "outcome": "ignored"}
    assert orders_table.get(ORDER_ID) == ended
    output.assert_no_secret(CUSTOMER_TOKEN, BARISTA_TOKEN)


# ------------------------------------------------------------------------------------ reordering
@pytest.mark.parametrize(
    ("first", "late"), [("order_finished", "order_timed_out"), ("order_cancelled", "order_finished")]
)
def test_a_second_different_ending_never_replaces_the_first(
    first, late, waiting_order, order_ended, orders_table
):
    # Given the order already ended one way
    order_ended(load_event(first))
    ended = orders_table.get(ORDER_ID)

    # When an event claiming another ending arrives
    result = order_ended(load_event(late))

    # Then it is ignored: the first ending stands
    assert result == {"orderId": ORDER_ID, "outcome": "ignored"}
    assert orders_table.get(ORDER_ID) == ended
    assert ended is not None
    assert ended["state"] == ENDINGS[first][0]


def test_finished_order_stays_completed_when_a_token_event_arrives_late(
    workflow_started, order_ended, waiting_completion, orders_table
):
    # Given orderFinished overtook the WaitingCompletion event
    workflow_started(load_event("workflow_started"))
    order_ended(load_event("order_finished"))

    # When the token event arrives afterwards
    assert waiting_completion(load_event("waiting_completion"))["outcome"] == "stale"

    # Then the order is still COMPLETED and holds no token
    order = orders_table.get(ORDER_ID)
    assert order is not None
    assert order["state"] == "COMPLETED"
    assert "taskToken" not in order


# --------------------------------------------------------------------------------------- malformed
MALFORMED = {
    "finished without orderId": ("order_finished", without("detail", "orderId"), "detail.orderId"),
    "finished with orderNumber as a string": (
        "order_finished",
        setting("42", "detail", "orderNumber"),
        "detail.orderNumber",
    ),
    "finished without orderNumber": (
        "order_finished",
        without("detail", "orderNumber"),
        "detail.orderNumber",
    ),
    "timeout with an unknown cause": (
        "order_timed_out",
        setting("Cook timedout", "detail", "cause"),
        "detail.cause",
    ),
    "shop unavailable for an unknown reason": (
        "shop_unavailable",
        setting("rain", "detail", "reason"),
        "detail.reason",
    ),
    "cancelled without a failure": ("order_cancelled", without("detail", "failure"), "detail.failure"),
    "cancelled without an error name": (
        "order_cancelled",
        without("detail", "failure", "Error"),
        "detail.failure.Error",
    ),
    "unknown detail-type": ("order_finished", setting("OrderProcessor.Whatever", "detail-type"), "event"),
    "token event sent to this function": ("workflow_started", lambda event: None, "event"),
    "no execution ARN in resources": (
        "order_timed_out",
        setting(SAMPLE["resources"][:1], "resources"),
        "resources",
    ),
    "foreign source": ("order_finished", setting("someone.else", "source"), "source"),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_event_is_rejected_logged_and_nothing_is_written(case, order_ended, orders_table, output):
    # Given an ending event with one defect
    name, mutate, field = MALFORMED[case]
    event = load_event(name)
    mutate(event)

    # When the handler receives it
    result = order_ended(event)

    # Then it is rejected without writing anything, with one ERROR line naming the defect
    assert result == {"outcome": "rejected"}
    assert orders_table.all() == []
    rejection = output.errors("rejected malformed event")
    assert len(rejection) == 1
    assert any(problem["field"].endswith(field) for problem in rejection[0]["problems"])
    output.assert_no_secret(CUSTOMER_TOKEN)


# ------------------------------------------------------------------------------- foreign execution
def test_ending_from_another_execution_leaves_the_owned_order_alone(
    waiting_order, order_ended, orders_table, output
):
    # Given the sample order is owned by its execution and waits for the barista
    # And an ending event from another execution of the same order
    event = load_event("order_cancelled")
    event["resources"][1] = EXECUTION_ARN + "-duplicate"

    # When it arrives
    result = order_ended(event)

    # Then it is ignored: the order still waits, with its token
    assert result == {"orderId": ORDER_ID, "outcome": "ignored"}
    assert orders_table.get(ORDER_ID) == waiting_order


def test_cancellation_of_a_duplicate_execution_does_not_cancel_the_order(
    workflow, workflow_started, order_ended, orders_table, output
):
    # Given execution A owns the order, and a duplicate execution B was failed by WorkflowStarted
    first_arn, first = workflow.customer_wait("order-dup")
    assert workflow_started(first)["outcome"] == "stored"
    second_arn, second = workflow.customer_wait("order-dup")
    assert workflow_started(second)["outcome"] == "foreign"
    before = orders_table.get("order-dup")
    assert workflow.wait_for_end(second_arn) == "SUCCEEDED"
    cancelled = workflow.bus.wait_for("OrderProcessor.OrderCancelled", second_arn)
    assert cancelled["detail"]["failure"]["Error"] == "DuplicateExecution"

    # When B's OrderCancelled event arrives
    result = order_ended(cancelled)

    # Then it is ignored: A's order still waits for its customer with A's token
    assert result == {"orderId": "order-dup", "outcome": "ignored"}
    assert orders_table.get("order-dup") == before
    assert before is not None
    assert (before["state"], before["executionArn"]) == ("WAITING_FOR_CUSTOMER", first_arn)
    assert workflow.status(first_arn) == "RUNNING"
    output.assert_no_secret(first["detail"]["TaskToken"], second["detail"]["TaskToken"])
