"""One order at a time through the workflow as deployed (template.yaml's ASL on the local engine).

Each scenario drives customers and baristas through the domain functions the API calls and asserts on
the outcome: the states the execution entered, the order record, the shop's capacity slots and the
events that reached the bus. Duplicates and concurrency: test_scenarios_duplicates.py and
test_scenarios_rush.py.
"""

from __future__ import annotations

import pytest

from local.engine import LocalEngine
from serverlesspresso.models import OrderState
from serverlesspresso.resume import (
    BARISTA_CANCEL,
    COMPLETE_ORDER,
    CUSTOMER_CANCEL,
    SUBMIT_ORDER,
    OrderWaitEnded,
    ResumeAction,
)
from tests.e2e.flows import (
    BARISTA_TIMEOUT_PATH,
    CANCELLED_AT_BARISTA_WAIT_PATH,
    CANCELLED_AT_CUSTOMER_WAIT_PATH,
    COMPLETED_PATH,
    CUSTOMER_TIMEOUT_PATH,
    NEW_ORDER,
    REJECTED_CLOSED_PATH,
    REJECTED_FULL_PATH,
    Shop,
    slot,
    terminal_entries,
    wait_for,
)

pytestmark = pytest.mark.e2e

WAITING_FOR_CUSTOMER = OrderState.WAITING_FOR_CUSTOMER
WAITING_FOR_BARISTA = OrderState.WAITING_FOR_BARISTA


def test_a_customer_submits_and_a_barista_completes_the_order(patient_shop: Shop) -> None:
    shop = patient_shop
    # Given an open shop and a customer's new order
    order_id = shop.place_order(user_id="alice")
    execution = shop.execution(order_id)

    # When the customer submits once the workflow waits for them, and a barista completes it
    shop.act_when(
        order_id, WAITING_FOR_CUSTOMER, SUBMIT_ORDER, output={"orderId": order_id, "drink": "Latte"}
    )
    shop.act_when(order_id, WAITING_FOR_BARISTA, COMPLETE_ORDER)

    # Then the execution succeeds through the seed's states
    assert shop.finished(execution)["status"] == "SUCCEEDED"
    assert shop.path(execution) == COMPLETED_PATH
    # And the order is COMPLETED with the number the workflow gave it (the first of the day)
    order = shop.wait_for_end(order_id)
    assert (order["state"], order["orderNumber"], order["endReason"]) == ("COMPLETED", 1, "completed")
    assert order["executionArn"] == execution
    assert terminal_entries(order) == ["COMPLETED"]
    assert "taskToken" not in order
    # And each of the order's events reached the bus once, the number as a number, no token to screens
    expected_types = sorted(
        [
            NEW_ORDER,
            "OrderProcessor.WorkflowStarted",
            "OrderProcessor.WaitingCompletion",
            "OrderManager.WaitingCompletion",
            "OrderProcessor.orderFinished",
            # to the push channel: WAITING_FOR_CUSTOMER and COMPLETED recorded by the handlers
            "OrderManager.OrderChanged",
            "OrderManager.OrderChanged",
        ]
    )
    # (the last OrderChanged follows the order's final write: wait for it to reach the bus)
    wait_for(lambda: sorted(shop.detail_types(order_id)) == expected_types, "the order's events")
    [queued] = shop.events(order_id, "OrderManager.WaitingCompletion")
    assert queued["detail"] == {"orderId": order_id, "userId": "alice", "orderNumber": 1}
    finished = shop.ending_event(order_id)
    assert finished["detail-type"] == "OrderProcessor.orderFinished"
    assert finished["detail"]["orderNumber"] == 1
    assert execution in finished["resources"]
    # And its capacity slot is free again; nothing was dead-lettered
    assert shop.in_flight() == set()
    assert shop.problems() == []


@pytest.mark.parametrize(
    ("who", "expected_path"),
    [("Customer", CUSTOMER_TIMEOUT_PATH), ("Barista", BARISTA_TIMEOUT_PATH)],
    ids=["customer", "barista"],
)
def test_a_wait_nobody_answers_times_out(shop: Shop, who: str, expected_path: list[str]) -> None:
    # Given an order waiting for the customer, or (submitted) for a barista, holding a capacity slot
    order_id = shop.place_order()
    execution = shop.execution(order_id)
    if who == "Barista":
        shop.act_when(order_id, WAITING_FOR_CUSTOMER, SUBMIT_ORDER)
    shop.wait_for_order(order_id, WAITING_FOR_BARISTA if who == "Barista" else WAITING_FOR_CUSTOMER)
    assert shop.in_flight() == {slot(execution)}

    # When nobody answers within the (scaled) heartbeat
    result = shop.finished(execution)

    # Then the workflow goes through the seed's timeout Pass state and ends normally
    assert result["status"] == "SUCCEEDED"
    assert shop.path(execution) == expected_path
    # And the bus got OrderTimeOut with the cause, as the order's only ending
    order = shop.wait_for_end(order_id)
    timed_out = shop.ending_event(order_id)
    assert timed_out["detail-type"] == "OrderProcessor.OrderTimeOut"
    assert timed_out["detail"]["cause"] == f"{who} timedout"
    # And the order is TIMED_OUT for that reason, its token gone, its slot released
    assert (order["state"], order["endReason"]) == ("TIMED_OUT", f"{who} timedout")
    assert terminal_entries(order) == ["TIMED_OUT"]
    assert "taskToken" not in order
    assert shop.in_flight() == set()
    assert shop.problems() == []


@pytest.mark.parametrize(
    ("action", "submitted_first", "error", "expected_path"),
    [
        (CUSTOMER_CANCEL, False, "CustomerCancelled", CANCELLED_AT_CUSTOMER_WAIT_PATH),
        (CUSTOMER_CANCEL, True, "CustomerCancelled", CANCELLED_AT_BARISTA_WAIT_PATH),
        (BARISTA_CANCEL, True, "BaristaCancelled", CANCELLED_AT_BARISTA_WAIT_PATH),
    ],
    ids=["customer-before-submitting", "customer-before-a-barista-starts", "barista"],
)
def test_a_cancelled_order_ends_cancelled_and_frees_its_slot(
    patient_shop: Shop, action: ResumeAction, submitted_first: bool, error: str, expected_path: list[str]
) -> None:
    shop = patient_shop
    # Given an order waiting for its customer, or submitted and waiting for a barista
    order_id = shop.place_order()
    execution = shop.execution(order_id)
    if submitted_first:
        shop.act_when(order_id, WAITING_FOR_CUSTOMER, SUBMIT_ORDER)
    waiting = shop.wait_for_order(order_id, WAITING_FOR_BARISTA if submitted_first else WAITING_FOR_CUSTOMER)
    assert shop.in_flight() == {slot(execution)}

    # When it is cancelled, with a reason
    shop.act(order_id, action, cause="out of oat milk")

    # Then the workflow emits OrderCancelled with the error and the reason, and releases the slot
    assert shop.finished(execution)["status"] == "SUCCEEDED"
    assert shop.path(execution) == expected_path
    order = shop.wait_for_end(order_id)
    cancelled = shop.ending_event(order_id)
    assert cancelled["detail-type"] == "OrderProcessor.OrderCancelled"
    assert cancelled["detail"]["failure"] == {"Error": error, "Cause": "out of oat milk"}
    assert (order["state"], order["endReason"]) == ("CANCELLED", error)
    assert terminal_entries(order) == ["CANCELLED"]
    assert order.get("orderNumber") == waiting.get("orderNumber")  # kept if it had one, none invented
    assert shop.in_flight() == set()
    assert shop.problems() == []


def test_a_closed_shop_rejects_a_new_order(shop: Shop) -> None:
    # Given the shop is closed
    shop.configure(isOpen=False)

    # When a customer orders
    order_id = shop.place_order()
    execution = shop.execution(order_id)

    # Then the workflow says why, takes no slot and never waits for anyone
    assert shop.finished(execution)["status"] == "SUCCEEDED"
    assert shop.path(execution) == REJECTED_CLOSED_PATH
    order = shop.wait_for_end(order_id)
    assert (order["state"], order["endReason"]) == ("REJECTED", "shop closed")
    unavailable = shop.ending_event(order_id)
    assert (unavailable["detail-type"], unavailable["detail"]["reason"]) == (
        "OrderProcessor.ShopUnavailable",
        "closed",
    )
    wait_for(
        lambda: (
            shop.detail_types(order_id)
            == [NEW_ORDER, "OrderProcessor.ShopUnavailable", "OrderManager.OrderChanged"]
        ),  # REJECTED, to push
        "the order's events",
    )
    assert shop.in_flight() == set()
    assert shop.problems() == []


def test_a_full_shop_rejects_orders_until_one_ends(patient_shop: Shop) -> None:
    shop = patient_shop
    # Given a shop that makes two orders at a time, and two orders in progress
    shop.configure(maxInFlight=2)
    first, second = shop.place_order(), shop.place_order()
    for order_id in (first, second):
        shop.wait_for_order(order_id, WAITING_FOR_CUSTOMER)
    first_execution, second_execution = shop.execution(first), shop.execution(second)
    assert shop.in_flight() == {slot(first_execution), slot(second_execution)}

    # When a third order arrives
    third = shop.place_order()

    # Then it is rejected for capacity, and the two slots stay as they were
    rejected = shop.wait_for_end(third)
    assert (rejected["state"], rejected["endReason"]) == ("REJECTED", "shop capacity")
    assert shop.path(shop.execution(third)) == REJECTED_FULL_PATH
    assert shop.ending_event(third)["detail"]["reason"] == "capacity"
    assert shop.in_flight() == {slot(first_execution), slot(second_execution)}

    # When the first order ends (its customer cancels)
    shop.act(first, CUSTOMER_CANCEL)
    shop.finished(first_execution)

    # Then its slot is free and the next order gets in
    assert shop.in_flight() == {slot(second_execution)}
    fourth = shop.place_order()
    shop.wait_for_order(fourth, WAITING_FOR_CUSTOMER)
    assert shop.in_flight() == {slot(second_execution), slot(shop.execution(fourth))}
    assert shop.problems() == []


def test_a_callback_after_the_order_timed_out_is_refused_and_changes_nothing(shop: Shop) -> None:
    # Given an order whose customer never answered: it timed out and ended
    order_id = shop.place_order()
    execution = shop.execution(order_id)
    shop.wait_for_order(order_id, WAITING_FOR_CUSTOMER)
    shop.finished(execution)
    timed_out = shop.wait_for_end(order_id)
    history = shop.engine.history(execution)

    # When the customer submits after all
    with pytest.raises(OrderWaitEnded) as refused:
        shop.act(order_id, SUBMIT_ORDER)

    # Then the domain error says the wait has ended, shows the order without its token, and neither
    # the record nor the execution changed
    assert refused.value.order is not None
    assert refused.value.order["state"] == "TIMED_OUT"
    assert "taskToken" not in refused.value.order
    assert shop.order(order_id) == timed_out
    assert shop.engine.history(execution) == history
    assert shop.problems() == []


def test_a_callback_racing_the_timeout_is_refused_and_the_order_stays_waiting(workflow: LocalEngine) -> None:
    shop = Shop(workflow)
    dispatcher = workflow.dispatcher  # not running: this test decides what is delivered, and when
    # Given an order whose customer wait was announced and its token stored
    order_id = shop.place_order()

    def token_stored() -> bool:
        dispatcher.poll_once()
        return bool(shop.order(order_id)["state"] == "WAITING_FOR_CUSTOMER")

    wait_for(token_stored, "the customer's token stored")
    before = shop.order(order_id)
    execution = before["executionArn"]
    # And the wait has just timed out, the end not yet delivered (the event is still on its way)
    shop.finished(execution)
    assert shop.path(execution) == CUSTOMER_TIMEOUT_PATH
    history = workflow.history(execution)

    # When the customer submits in that moment
    with pytest.raises(OrderWaitEnded):
        shop.act(order_id, SUBMIT_ORDER)

    # Then the claim is undone: the order waits as before (the timeline shows the attempt), the
    # execution is unchanged
    after = shop.order(order_id)
    unchanged = ("state", "stateRank", "taskToken", "tokenState", "executionArn", "userId")
    assert {key: after.get(key) for key in unchanged} == {key: before.get(key) for key in unchanged}
    timeline = [entry["state"] for entry in after["timeline"]]
    assert timeline == [entry["state"] for entry in before["timeline"]] + [
        "SUBMITTED",
        "WAITING_FOR_CUSTOMER",
    ]
    assert workflow.history(execution) == history
    # And once the timeout is delivered, the order ends TIMED_OUT like any other
    dispatcher.drain()
    assert shop.order(order_id)["state"] == "TIMED_OUT"
    assert shop.problems() == []
