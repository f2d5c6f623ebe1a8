"""serverlesspresso.resume.resume_order: what the API calls when a customer or barista acts.

Resumes real executions of the OrderProcessorWorkflow in moto, whose tokens were stored by the real
handlers. Two error codes moto cannot produce are driven with botocore's Stubber (see there).
"""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber

from serverlesspresso.dependencies import order_repository
from serverlesspresso.resume import (
    BARISTA_CANCEL,
    COMPLETE_ORDER,
    CUSTOMER_CANCEL,
    SUBMIT_ORDER,
    OrderNotFound,
    OrderWaitEnded,
    ResumeError,
    ResumeThrottled,
    TokenNotYetStored,
    WrongOrderState,
    resume_order,
)
from tests.helpers import BARISTA_WAIT, CUSTOMER_WAIT, load_event

SAMPLE_ORDER_ID = load_event("workflow_started")["detail"]["orderId"]
SAMPLE_TOKEN = load_event("workflow_started")["detail"]["TaskToken"]


def assert_public(order: dict[str, Any] | None, *tokens: str) -> None:
    """What resume_order hands out never carries the token (nor its bookkeeping)."""
    assert order is not None
    assert "taskToken" not in order
    assert "tokenState" not in order
    for token in tokens:
        assert token not in json.dumps(order)


def refused(error: pytest.ExceptionInfo[ResumeError], *tokens: str) -> dict[str, Any]:
    """The order a refusal carries, checked to be token-free."""
    order = error.value.order
    if order is not None:
        assert_public(order, *tokens)
    return order or {}


# -------------------------------------------------------------------------------------- submit
def test_submit_resumes_the_customer_wait_and_stores_what_was_ordered(
    workflow, workflow_started, resume, orders_table, output
):
    # Given a real order waiting for its customer, token stored by the handler
    execution_arn, started = workflow.customer_wait("order-1")
    assert workflow_started(started)["outcome"] == "stored"
    token = started["detail"]["TaskToken"]

    # When the customer submits a drink
    order = resume("order-1", SUBMIT_ORDER, attributes={"drink": "Flat White", "size": "large"})

    # Then the order is SUBMITTED with the drink, and what came back holds no token
    assert order["state"] == "SUBMITTED"
    assert (order["drink"], order["size"]) == ("Flat White", "large")
    assert_public(order, token)
    stored = orders_table.get("order-1")
    assert stored is not None
    assert (stored["state"], stored["stateRank"], stored["drink"]) == ("SUBMITTED", 20, "Flat White")
    # And the execution's customer wait succeeded with the order id, and it went on to the barista
    succeeded = workflow.wait_for_task_result(execution_arn, CUSTOMER_WAIT)
    assert succeeded["type"] == "TaskSucceeded"
    assert json.loads(succeeded["taskSucceededEventDetails"]["output"]) == {"orderId": "order-1"}
    workflow.wait_for_callback(execution_arn, BARISTA_WAIT)
    assert workflow.entered(execution_arn)[-2:] == ["Generate Order Number", BARISTA_WAIT]
    output.assert_no_secret(token)


def test_submitting_twice_in_a_row_resumes_once(
    workflow, workflow_started, resume, orders_table, sfn_requests
):
    # Given a real order the customer already submitted
    execution_arn, started = workflow.customer_wait("order-1")
    workflow_started(started)
    resume("order-1", SUBMIT_ORDER, attributes={"drink": "Latte"})
    workflow.wait_for_callback(execution_arn, BARISTA_WAIT)

    # When the customer submits again
    with pytest.raises(WrongOrderState) as second:
        resume("order-1", SUBMIT_ORDER, attributes={"drink": "Mocha"})

    # Then it is refused, and the first submission stands
    assert refused(second, started["detail"]["TaskToken"])["state"] == "SUBMITTED"
    stored = orders_table.get("order-1")
    assert stored is not None
    assert stored["drink"] == "Latte"
    assert sfn_requests == ["SendTaskSuccess"]
    assert [step for step in workflow.steps(execution_arn) if step[1] == "TaskSucceeded"].count(
        (CUSTOMER_WAIT, "TaskSucceeded")
    ) == 1


def test_two_concurrent_submits_send_exactly_one_task_success(aws, workflow, workflow_started, orders_table):
    # Given a real order waiting for its customer
    execution_arn, started = workflow.customer_wait("order-1")
    workflow_started(started)
    # And a second submit that arrives exactly while the first one's SendTaskSuccess is in flight
    # (after the first one's claim, before Step Functions answered): the worst interleaving
    sfn = boto3.client("stepfunctions")
    sent: list[str] = []
    second_outcome: list[Exception | dict[str, Any]] = []

    def on_send_task_success(**_: Any) -> None:
        sent.append("SendTaskSuccess")
        if len(second_outcome) == 0:
            try:
                second_outcome.append(
                    resume_order("order-1", SUBMIT_ORDER, orders=order_repository(), sfn=sfn)
                )
            except ResumeError as error:
                second_outcome.append(error)

    sfn.meta.events.register("before-call.sfn.SendTaskSuccess", on_send_task_success)

    # When the first submit runs
    first = resume_order("order-1", SUBMIT_ORDER, orders=order_repository(), sfn=sfn)

    # Then exactly one SendTaskSuccess left the process: the first submit's
    assert sent == ["SendTaskSuccess"]
    assert first["state"] == "SUBMITTED"
    # And the second submit was refused because the first had already claimed the wait
    assert len(second_outcome) == 1
    assert isinstance(second_outcome[0], WrongOrderState)
    assert second_outcome[0].order is not None
    assert second_outcome[0].order["state"] == "SUBMITTED"
    # And the execution's customer wait succeeded, and it went on to the barista
    assert workflow.wait_for_task_result(execution_arn, CUSTOMER_WAIT)["type"] == "TaskSucceeded"
    workflow.wait_for_callback(execution_arn, BARISTA_WAIT)


# ------------------------------------------------------------------------------- complete/cancel
def test_complete_resumes_the_barista_wait_and_the_order_finishes(
    barista_wait, waiting_completion, order_ended, workflow, resume, orders_table, output
):
    # Given a real order waiting for its barista, token stored by the handler
    execution_arn, waiting = barista_wait("order-1")
    assert waiting_completion(waiting)["outcome"] == "stored"

    # When the barista completes it
    order = resume("order-1", COMPLETE_ORDER)

    # Then the order is COMPLETING, the barista wait succeeded, and the workflow finished the order
    assert order["state"] == "COMPLETING"
    assert_public(order, waiting["detail"]["TaskToken"])
    assert workflow.wait_for_end(execution_arn) == "SUCCEEDED"
    assert workflow.wait_for_task_result(execution_arn, BARISTA_WAIT)["type"] == "TaskSucceeded"
    assert workflow.entered(execution_arn)[-2:] == ["Emit - Order finished", "Release capacity slot"]
    assert workflow.slots_taken() == set()
    # And its orderFinished event completes the order
    finished = workflow.bus.wait_for("OrderProcessor.orderFinished", execution_arn)
    assert order_ended(finished)["outcome"] == "COMPLETED"
    stored = orders_table.get("order-1")
    assert stored is not None
    assert (stored["state"], stored["orderNumber"]) == ("COMPLETED", 1)
    output.assert_no_secret(waiting["detail"]["TaskToken"])


def test_customer_cancel_fails_the_customer_wait_and_the_order_is_cancelled(
    workflow, workflow_started, order_ended, resume, orders_table, output
):
    # Given a real order waiting for its customer
    execution_arn, started = workflow.customer_wait("order-1")
    workflow_started(started)

    # When the customer cancels it
    order = resume("order-1", CUSTOMER_CANCEL)

    # Then the order is CANCELLING and the wait failed with CustomerCancelled, through the cancel path
    assert order["state"] == "CANCELLING"
    assert_public(order, started["detail"]["TaskToken"])
    assert workflow.wait_for_end(execution_arn) == "SUCCEEDED"
    failure = workflow.wait_for_task_result(execution_arn, CUSTOMER_WAIT)
    assert failure["taskFailedEventDetails"]["error"] == "CustomerCancelled"
    cancelled = workflow.bus.wait_for("OrderProcessor.OrderCancelled", execution_arn)
    assert cancelled["detail"]["failure"] == {
        "Error": "CustomerCancelled",
        "Cause": "customer-cancel by request",
    }
    # And its OrderCancelled event cancels the order
    assert order_ended(cancelled)["outcome"] == "CANCELLED"
    stored = orders_table.get("order-1")
    assert stored is not None
    assert (stored["state"], stored["endReason"]) == ("CANCELLED", "CustomerCancelled")


def test_customer_cancel_is_refused_once_a_barista_claimed_the_order(
    barista_wait, waiting_completion, workflow, resume, orders_table, sfn_requests
):
    # Given a real order waiting for its barista, which a barista has claimed
    execution_arn, waiting = barista_wait("order-1")
    waiting_completion(waiting)
    orders_table.set("order-1", baristaId="barista-1")
    before = orders_table.get("order-1")

    # When the customer tries to cancel it
    with pytest.raises(WrongOrderState, match="already being made") as error:
        resume("order-1", CUSTOMER_CANCEL)

    # Then nothing changed: no callback was sent, the order and the execution still wait for the barista
    assert sfn_requests == ["SendTaskSuccess"]  # the submit in the Given, nothing since
    assert refused(error, waiting["detail"]["TaskToken"])["baristaId"] == "barista-1"
    assert orders_table.get("order-1") == before
    assert workflow.status(execution_arn) == "RUNNING"
    assert workflow.task_result(execution_arn, BARISTA_WAIT) is None


def test_barista_cancel_of_a_claimed_order_fails_the_barista_wait(
    barista_wait, waiting_completion, workflow, resume, orders_table
):
    # Given a real order waiting for its barista, claimed by a barista
    execution_arn, waiting = barista_wait("order-1")
    waiting_completion(waiting)
    orders_table.set("order-1", baristaId="barista-1")

    # When the barista cancels it
    order = resume("order-1", BARISTA_CANCEL, cause="out of oat milk")

    # Then the barista wait failed with BaristaCancelled and the reason given
    assert order["state"] == "CANCELLING"
    assert workflow.wait_for_end(execution_arn) == "SUCCEEDED"
    failure = workflow.wait_for_task_result(execution_arn, BARISTA_WAIT)
    assert failure["taskFailedEventDetails"]["error"] == "BaristaCancelled"
    cancelled = workflow.bus.wait_for("OrderProcessor.OrderCancelled", execution_arn)
    assert cancelled["detail"]["failure"] == {"Error": "BaristaCancelled", "Cause": "out of oat milk"}


# -------------------------------------------------------------------------------------- refusals
def test_unknown_order_is_not_found_and_not_created(aws, resume, orders_table, sfn_requests):
    # Given no orders, When someone submits an unknown order, Then OrderNotFound, and no item appears
    with pytest.raises(OrderNotFound) as error:
        resume("no-such-order", SUBMIT_ORDER, attributes={"drink": "Latte"})
    assert error.value.order is None
    assert orders_table.all() == []
    assert sfn_requests == []


@pytest.mark.parametrize(("state", "action"), [("PLACED", SUBMIT_ORDER), ("SUBMITTED", COMPLETE_ORDER)])
def test_resuming_a_wait_whose_token_is_not_stored_yet_asks_to_retry(
    state, action, aws, resume, orders_table, sfn_requests
):
    # Given an order that has not reached the wait yet (its token event is still on the way)
    orders_table.put({"orderId": "order-1", "userId": "user-1", "state": state, "stateRank": 5})
    before = orders_table.get("order-1")

    # When the action is attempted, Then TokenNotYetStored, and the order is unchanged
    with pytest.raises(TokenNotYetStored) as error:
        resume("order-1", action)
    assert refused(error)["state"] == state
    assert orders_table.get("order-1") == before
    assert sfn_requests == []


@pytest.mark.parametrize("ending", ["order_finished", "order_timed_out", "order_cancelled"])
def test_resuming_an_ended_order_says_the_wait_ended(
    ending, workflow_started, order_ended, resume, orders_table, sfn_requests
):
    # Given the sample order waited for its customer and then ended
    workflow_started(load_event("workflow_started"))
    order_ended(load_event(ending))
    ended = orders_table.get(SAMPLE_ORDER_ID)

    # When the customer submits, Then OrderWaitEnded, and the order is unchanged
    with pytest.raises(OrderWaitEnded) as error:
        resume(SAMPLE_ORDER_ID, SUBMIT_ORDER)
    assert refused(error, SAMPLE_TOKEN)["stateRank"] == 100
    assert orders_table.get(SAMPLE_ORDER_ID) == ended
    assert sfn_requests == []


def test_completing_an_order_that_waits_for_its_customer_is_the_wrong_state(
    workflow, workflow_started, resume, orders_table, sfn_requests
):
    # Given a real order waiting for its customer
    execution_arn, started = workflow.customer_wait("order-1")
    workflow_started(started)
    before = orders_table.get("order-1")

    # When a barista tries to complete it
    with pytest.raises(WrongOrderState) as error:
        resume("order-1", COMPLETE_ORDER)

    # Then it is refused, the order is unchanged, and the customer wait was not touched
    assert sfn_requests == []
    assert refused(error, started["detail"]["TaskToken"])["state"] == "WAITING_FOR_CUSTOMER"
    assert orders_table.get("order-1") == before
    assert workflow.task_result(execution_arn, CUSTOMER_WAIT) is None
    assert workflow.status(execution_arn) == "RUNNING"


# -------------------------------------------------------------------------------- dead tokens
def test_submit_after_the_heartbeat_expired_says_the_wait_ended_and_reverts_the_order(
    workflow, workflow_started, resume, orders_table, output
):
    # Given a real order whose customer wait (one-second heartbeat) has timed out, while its
    # OrderTimeOut event has not been handled yet
    execution_arn, started = workflow.customer_wait("order-1", heartbeats={CUSTOMER_WAIT: 1})
    workflow_started(started)
    assert workflow.wait_for_end(execution_arn) == "SUCCEEDED"
    assert workflow.wait_for_task_result(execution_arn, CUSTOMER_WAIT)["type"] == "TaskTimedOut"
    before = orders_table.get("order-1")

    # When the customer submits
    with pytest.raises(OrderWaitEnded) as error:
        resume("order-1", SUBMIT_ORDER, attributes={"drink": "Latte"})

    # Then the order is back where it was, not left SUBMITTED (moto answers InvalidToken for a
    # token of a finished execution; AWS's TaskTimedOut is covered with the Stubber below)
    assert refused(error, started["detail"]["TaskToken"])["state"] == "WAITING_FOR_CUSTOMER"
    after = orders_table.get("order-1")
    assert after is not None
    assert before is not None
    assert (after["state"], after["stateRank"]) == ("WAITING_FOR_CUSTOMER", 10)
    assert after["taskToken"] == before["taskToken"]
    assert after["timeline"][-1]["state"] == "WAITING_FOR_CUSTOMER"
    output.assert_no_secret(started["detail"]["TaskToken"])


def test_submit_with_a_token_step_functions_does_not_know_says_the_wait_ended(
    aws, workflow_started, resume, orders_table, output
):
    # Given the sample order, whose token no execution issued (Step Functions answers InvalidToken)
    workflow_started(load_event("workflow_started"))

    # When the customer submits
    with pytest.raises(OrderWaitEnded, match="InvalidToken") as error:
        resume(SAMPLE_ORDER_ID, SUBMIT_ORDER)

    # Then the order is back to waiting for its customer
    assert refused(error, SAMPLE_TOKEN)["state"] == "WAITING_FOR_CUSTOMER"
    after = orders_table.get(SAMPLE_ORDER_ID)
    assert after is not None
    assert (after["state"], after["stateRank"]) == ("WAITING_FOR_CUSTOMER", 10)
    assert after["timeline"][-1]["state"] == "WAITING_FOR_CUSTOMER"
    output.assert_no_secret(SAMPLE_TOKEN)


# Stubber: moto never raises TaskTimedOut or TaskDoesNotExist (it does not record that a wait
# closed: a token of an ended execution gets InvalidToken, one of a running execution that moved on
# is silently accepted). The request shape and AWS's error codes are asserted with a stubbed client.
@pytest.mark.parametrize(
    ("code", "raised"),
    [
        ("TaskTimedOut", OrderWaitEnded),
        ("TaskDoesNotExist", OrderWaitEnded),
        ("ThrottlingException", ResumeThrottled),
        ("InternalFailure", ClientError),
    ],
)
def test_step_functions_errors_on_submit_revert_the_order(
    code, raised, workflow_started, orders_table, output
):
    # Given the sample order waits for its customer
    workflow_started(load_event("workflow_started"))
    # And Step Functions answers SendTaskSuccess for exactly that token with `code`
    sfn = boto3.client("stepfunctions")
    stubber = Stubber(sfn)
    stubber.add_client_error(
        "send_task_success",
        service_error_code=code,
        expected_params={"taskToken": SAMPLE_TOKEN, "output": json.dumps({"orderId": SAMPLE_ORDER_ID})},
    )

    # When the customer submits
    with stubber, pytest.raises(raised, match=code):
        resume_order(SAMPLE_ORDER_ID, SUBMIT_ORDER, orders=order_repository(), sfn=sfn)

    # Then a closed wait is reported as OrderWaitEnded, throttling as ResumeThrottled (the API's 503 +
    # Retry-After) and anything else is raised as is; either way the order is back to waiting for its
    # customer, token kept
    stubber.assert_no_pending_responses()
    after = orders_table.get(SAMPLE_ORDER_ID)
    assert after is not None
    assert (after["state"], after["stateRank"], after["taskToken"]) == (
        "WAITING_FOR_CUSTOMER",
        10,
        SAMPLE_TOKEN,
    )
    assert after["timeline"][-1]["state"] == "WAITING_FOR_CUSTOMER"
    output.assert_no_secret(SAMPLE_TOKEN)
