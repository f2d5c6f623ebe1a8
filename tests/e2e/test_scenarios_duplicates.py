"""At-least-once delivery: the same event twice, two starts for one order, late and stale copies.

EventBridge may deliver an event more than once and out of order, and an EventBridge rule cannot
name the execution it starts. The order must still end once, as it would without the copies.
"""

from __future__ import annotations

from typing import Any

import pytest

from serverlesspresso.models import OrderState
from serverlesspresso.resume import COMPLETE_ORDER, SUBMIT_ORDER
from tests.e2e.flows import (
    CANCELLED_AT_CUSTOMER_WAIT_PATH,
    COMPLETED_PATH,
    NEW_ORDER,
    Shop,
    slot,
    terminal_entries,
    wait_for,
    without_volatile,
)

pytestmark = pytest.mark.e2e

WAITING_FOR_CUSTOMER = OrderState.WAITING_FOR_CUSTOMER
WAITING_FOR_BARISTA = OrderState.WAITING_FOR_BARISTA


def complete(shop: Shop, order_id: str) -> dict[str, Any]:
    """The customer submits and a barista completes; returns the ended order."""
    shop.act_when(order_id, WAITING_FOR_CUSTOMER, SUBMIT_ORDER)
    shop.act_when(order_id, WAITING_FOR_BARISTA, COMPLETE_ORDER)
    return shop.wait_for_end(order_id)


def test_the_same_new_order_event_delivered_twice_starts_one_workflow(patient_shop: Shop) -> None:
    shop = patient_shop
    # Given an order whose workflow waits for its customer
    order_id = shop.place_order()
    execution = shop.execution(order_id)
    shop.wait_for_order(order_id, WAITING_FOR_CUSTOMER)
    [new_order] = shop.events(order_id, NEW_ORDER)

    # When EventBridge delivers the same Validator.NewOrder again
    shop.redeliver(new_order)

    def deliveries() -> list[str]:
        return [d.outcome for d in shop.engine.delivered if d.event_id == new_order["id"]]

    wait_for(
        lambda: deliveries().count("ok") + deliveries().count("dead") == 2, "the second delivery's outcome"
    )
    assert deliveries().count("ok") == 2, shop.engine.delivered

    # Then the start was idempotent: one execution, one announced wait
    assert shop.executions(order_id) == [execution]
    assert len(shop.events(order_id, "OrderProcessor.WorkflowStarted")) == 1
    # And the order completes normally
    order = complete(shop, order_id)
    assert shop.finished(execution)["status"] == "SUCCEEDED"
    assert shop.path(execution) == COMPLETED_PATH
    assert (order["state"], order["executionArn"]) == ("COMPLETED", execution)
    assert terminal_entries(order) == ["COMPLETED"]
    assert shop.ending_event(order_id)["detail-type"] == "OrderProcessor.orderFinished"
    assert shop.in_flight() == set()
    assert shop.problems() == []


def test_two_new_order_events_for_one_order_leave_one_workflow_to_act(patient_shop: Shop) -> None:
    shop = patient_shop
    # Given an order, and a second Validator.NewOrder for it (a retried publish: another event id)
    order_id = shop.place_order(user_id="alice")
    shop.engine.start_order(order_id, "alice")

    # When both executions announce their customer wait
    executions = wait_for(
        lambda: arns if len(arns := shop.executions(order_id)) == 2 else None, "both executions"
    )
    waiting = shop.wait_for_order(order_id, WAITING_FOR_CUSTOMER)

    # Then the first whose token was stored owns the order, and the other ends at once
    owner = waiting["executionArn"]
    [duplicate] = [arn for arn in executions if arn != owner]
    assert shop.finished(duplicate)["status"] == "SUCCEEDED"
    assert shop.path(duplicate) == CANCELLED_AT_CUSTOMER_WAIT_PATH
    [ended_duplicate] = [
        event
        for event in shop.events(order_id, "OrderProcessor.OrderCancelled")
        if duplicate in event["resources"]
    ]
    assert ended_duplicate["detail"]["failure"]["Error"] == "DuplicateExecution"
    # without touching the order, and with its capacity slot released
    assert shop.order(order_id)["state"] == "WAITING_FOR_CUSTOMER"
    assert shop.order(order_id)["executionArn"] == owner
    assert shop.in_flight() == {slot(owner)}

    # When the customer and a barista go on
    order = complete(shop, order_id)

    # Then the owner completes the order normally, once
    assert shop.finished(owner)["status"] == "SUCCEEDED"
    assert shop.path(owner) == COMPLETED_PATH
    assert (order["state"], order["executionArn"], order["orderNumber"]) == ("COMPLETED", owner, 1)
    assert terminal_entries(order) == ["COMPLETED"]
    [finished] = shop.events(order_id, "OrderProcessor.orderFinished")
    assert owner in finished["resources"]
    assert shop.in_flight() == set()
    assert shop.problems() == []


def test_handlers_given_duplicate_and_stale_events_mid_run_end_the_order_as_without(
    patient_shop: Shop,
) -> None:
    shop = patient_shop
    # Given an order run once without any copies, for comparison
    control_id = shop.place_order(user_id="carol")
    control = complete(shop, control_id)
    control_execution = shop.execution(control_id)
    shop.finished(control_execution)

    # And an order like it, waiting for its customer
    order_id = shop.place_order(user_id="alice")
    execution = shop.execution(order_id)
    shop.wait_for_order(order_id, WAITING_FOR_CUSTOMER)
    [started] = shop.events(order_id, "OrderProcessor.WorkflowStarted")

    # When WorkflowStarted reaches its handler again while the workflow waits for the customer
    # Then the handler sees a duplicate and changes nothing
    before = shop.order(order_id)
    assert shop.invoke_again(started) == [{"orderId": order_id, "outcome": "duplicate"}]
    assert shop.order(order_id) == before

    # When, after the customer submitted, the old WorkflowStarted (out of order) and WaitingCompletion
    # (again) reach their handlers while the workflow waits for the barista
    shop.act(order_id, SUBMIT_ORDER)
    waiting = shop.wait_for_order(order_id, WAITING_FOR_BARISTA)
    [announced] = shop.wait_for_event(order_id, "OrderProcessor.WaitingCompletion")
    stale = shop.invoke_again(started)
    repeated = shop.invoke_again(announced)

    # Then the stale token is refused, the repeated one recognised, and the record is as it was
    assert stale == [{"orderId": order_id, "outcome": "stale"}]
    assert repeated == [{"orderId": order_id, "outcome": "duplicate"}]
    assert shop.order(order_id) == waiting

    # When the barista completes, and then every event of the run reaches its handler once more,
    # newest first
    shop.act(order_id, COMPLETE_ORDER)
    order = shop.wait_for_end(order_id)
    finished = shop.ending_event(order_id)
    late = [shop.invoke_again(event) for event in (finished, announced, started)]

    # Then the late copies are all refused and change nothing
    assert late == [[{"orderId": order_id, "outcome": outcome}] for outcome in ("ignored", "stale", "stale")]
    assert shop.order(order_id) == order
    # And the order ended exactly as the one without copies, through the same states
    assert without_volatile(order) == without_volatile(control)
    shop.finished(execution)
    assert shop.path(execution) == shop.path(control_execution) == COMPLETED_PATH
    assert shop.in_flight() == set()
    assert shop.problems() == []
