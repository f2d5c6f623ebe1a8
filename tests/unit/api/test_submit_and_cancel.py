"""PUT /orders/{orderId} (the customer's drink, checked against the menu) and DELETE (she cancels)."""

from __future__ import annotations

import uuid

import pytest

from tests.unit.api.conftest import ALICE, BOB, CAROL, Api, Flow
from tests.unit.conftest import CUSTOMER_WAIT, OrdersTable, wait_until


# ------------------------------------------------------------------------------------------- submit
def test_the_owner_submits_her_drink_and_the_workflow_moves_on(
    flow: Flow, api: Api, orders_table: OrdersTable
) -> None:
    # Given an order whose workflow waits for the customer
    order_id = flow.waiting_for_customer(ALICE)
    execution_arn = flow.executions[order_id]

    # When she submits a drink from the menu
    response = api.submit(order_id, ALICE, "Cappuccino", ["Oat milk", "Cinnamon"])

    # Then the order is SUBMITTED with her choice
    assert response.status == 200
    assert (response.body["state"], response.body["drink"], response.body["modifiers"]) == (
        "SUBMITTED",
        "Cappuccino",
        ["Oat milk", "Cinnamon"],
    )
    stored = orders_table.get(order_id)
    assert stored is not None
    assert (stored["drink"], stored["modifiers"]) == ("Cappuccino", ["Oat milk", "Cinnamon"])
    # And the workflow's first wait succeeded: it went on to number the order
    assert flow.workflow.wait_for_task_result(execution_arn, CUSTOMER_WAIT)["type"] == "TaskSucceeded"
    wait_until(lambda: "Generate Order Number" in flow.workflow.entered(execution_arn), "the order number")


@pytest.mark.parametrize(
    ("drink", "modifiers", "field"),
    [
        ("Tea", [], "drink"),  # not on the menu
        ("Latte", ["Oat milk", "Ketchup"], "modifiers.1"),  # unknown modifier
        ("Espresso", ["Whipped cream"], "modifiers.0"),  # on the menu, but not for this drink
    ],
)
def test_a_drink_or_modifier_not_on_the_menu_is_400_naming_the_field(
    flow: Flow, api: Api, orders_table: OrdersTable, drink: str, modifiers: list[str], field: str
) -> None:
    # Given an order waiting for the customer
    order_id = flow.waiting_for_customer(ALICE)

    # When she submits something the menu does not offer
    response = api.submit(order_id, ALICE, drink, modifiers)

    # Then it is refused naming the field, and the workflow still waits
    assert response.status == 400
    assert response.body["errors"][0]["field"] == field
    assert orders_table.get(order_id)["state"] == "WAITING_FOR_CUSTOMER"  # type: ignore[index]
    assert flow.workflow.task_result(flow.executions[order_id], CUSTOMER_WAIT) is None


def test_the_menu_is_the_shop_configs(flow: Flow, api: Api) -> None:
    # Given a barista put a new drink on the menu
    menu = [{"name": "Cortado", "modifiers": ["Oat milk"]}]
    assert api.put_config(BOB, menu=menu).status == 200
    order_id = flow.waiting_for_customer(ALICE)

    # When a customer orders it, and then an old drink no longer on the menu
    assert api.submit(order_id, ALICE, "Latte", []).status == 400
    response = api.submit(order_id, ALICE, "Cortado", ["Oat milk"])

    # Then the new drink is accepted
    assert (response.status, response.body["drink"]) == (200, "Cortado")


@pytest.mark.parametrize(
    ("raw_body", "field"),
    [
        ('{"drink": "Latte", "modifiers": [', "body"),  # not JSON
        ('{"modifiers": []}', "drink"),  # missing
        ('{"drink": 7, "modifiers": []}', "drink"),  # wrong type
        ('{"drink": "Latte", "modifiers": "Oat milk"}', "modifiers"),  # not a list
        ('{"drink": "Latte", "modifiers": ["Oat milk", "Oat milk"]}', "modifiers"),  # repeated
        ('{"drink": "Latte", "userId": "someone-else"}', "userId"),  # unknown field
        ('["Latte"]', "body"),  # not an object
    ],
)
def test_a_malformed_body_is_400_naming_the_field(
    api: Api, orders_table: OrdersTable, raw_body: str, field: str
) -> None:
    # Given an order of hers
    order_id = api.place(ALICE).body["orderId"]

    # When she sends a malformed body
    response = api.request("api_submit_order", ALICE, order_id=order_id, raw_body=raw_body)

    # Then it is a 400 that names the field, and the order is untouched
    assert response.status == 400
    assert field in [problem["field"] for problem in response.body["errors"]]
    assert orders_table.get(order_id)["state"] == "PLACED"  # type: ignore[index]


@pytest.mark.parametrize("content_type", ["text/plain", "multipart/form-data", "application/xml"])
def test_a_body_that_is_not_json_is_415(api: Api, content_type: str) -> None:
    # Given an order of hers
    order_id = api.place(ALICE).body["orderId"]

    # When she sends her drink declared as another media type (multipart without a boundary included)
    response = api.request("api_submit_order", ALICE, order_id=order_id, content_type=content_type)

    # Then it is refused naming the body, without the function trying to parse it
    assert response.status == 415
    assert response.body["errors"][0]["field"] == "body"


def test_submitting_before_the_workflow_waits_is_409_with_retry_after(
    api: Api, orders_table: OrdersTable
) -> None:
    # Given a placed order whose workflow has not stored its token yet
    order_id = api.place(ALICE).body["orderId"]

    # When the customer submits
    response = api.submit(order_id, ALICE)

    # Then she is told to retry shortly, and nothing changed
    assert response.status == 409
    assert response.headers["retry-after"] == "1"
    assert orders_table.get(order_id)["state"] == "PLACED"  # type: ignore[index]


def test_submitting_twice_is_409(flow: Flow, api: Api) -> None:
    # Given an order the customer already submitted
    order_id = flow.waiting_for_customer(ALICE)
    assert api.submit(order_id, ALICE).status == 200

    # When she submits again
    response = api.submit(order_id, ALICE, "Mocha", [])

    # Then the second submit is a conflict (not a retryable one), and her first choice stands
    assert response.status == 409
    assert "retry-after" not in response.headers
    assert api.get(order_id, ALICE).body["drink"] == "Latte"


def test_submitting_after_the_wait_timed_out_is_410_and_the_order_is_not_moved(
    flow: Flow, api: Api, orders_table: OrdersTable
) -> None:
    # Given an order whose customer wait has timed out in the workflow, before the timeout was recorded
    order_id = flow.waiting_for_customer(ALICE, heartbeats={CUSTOMER_WAIT: 1})
    execution_arn = flow.executions[order_id]
    wait_until(lambda: "Customer timedout" in flow.workflow.entered(execution_arn), "the customer timeout")
    # moto answers a closed wait's token only once its execution has ended (AWS: TaskTimedOut at once)
    flow.workflow.wait_for_end(execution_arn)

    # When the customer submits
    response = api.submit(order_id, ALICE)

    # Then the wait is gone (410), and the order is left for the timeout event to end
    assert response.status == 410
    assert orders_table.get(order_id)["state"] == "WAITING_FOR_CUSTOMER"  # type: ignore[index]


def test_submitting_an_ended_order_is_410(flow: Flow, api: Api) -> None:
    # Given an order the customer cancelled, its end recorded
    order_id = flow.waiting_for_customer(ALICE)
    assert api.cancel_own(order_id, ALICE).status == 200
    flow.ended(order_id, "OrderProcessor.OrderCancelled")

    # When she submits a drink
    response = api.submit(order_id, ALICE)

    # Then the order's wait has ended
    assert response.status == 410


@pytest.mark.parametrize("intruder", [CAROL, BOB], ids=["another customer", "a barista"])
def test_only_the_owner_submits(flow: Flow, api: Api, orders_table: OrdersTable, intruder: object) -> None:
    order_id = flow.waiting_for_customer(ALICE)

    response = api.submit(order_id, intruder)  # type: ignore[arg-type]

    assert response.status == 403
    assert orders_table.get(order_id)["state"] == "WAITING_FOR_CUSTOMER"  # type: ignore[index]


def test_submitting_to_an_unknown_order_is_404_and_without_identity_401(api: Api) -> None:
    assert api.submit(str(uuid.uuid4()), ALICE).status == 404
    assert api.submit(str(uuid.uuid4()), None).status == 401


# ------------------------------------------------------------------------------------------- cancel
def test_the_owner_cancels_while_waiting_and_the_workflow_ends_cancelled(
    flow: Flow, api: Api, orders_table: OrdersTable
) -> None:
    # Given an order waiting for the customer
    order_id = flow.waiting_for_customer(ALICE)

    # When she cancels it
    response = api.cancel_own(order_id, ALICE)

    # Then it is CANCELLING, and the workflow's wait failed with CustomerCancelled
    assert (response.status, response.body["state"]) == (200, "CANCELLING")
    cancelled = flow.ended(order_id, "OrderProcessor.OrderCancelled")
    assert cancelled["detail"]["failure"]["Error"] == "CustomerCancelled"
    assert orders_table.get(order_id)["state"] == "CANCELLED"  # type: ignore[index]


def test_the_owner_may_cancel_while_the_order_waits_for_a_barista_who_has_not_started(
    flow: Flow, api: Api
) -> None:
    order_id = flow.waiting_for_barista(ALICE)

    response = api.cancel_own(order_id, ALICE)

    assert (response.status, response.body["state"]) == (200, "CANCELLING")


def test_the_owner_cannot_cancel_once_a_barista_is_making_it(
    flow: Flow, api: Api, orders_table: OrdersTable
) -> None:
    # Given a barista has started making her order
    order_id = flow.waiting_for_barista(ALICE)
    assert api.make(order_id, BOB).status == 200

    # When she cancels
    response = api.cancel_own(order_id, ALICE)

    # Then it is a conflict and the workflow still waits for the barista
    assert response.status == 409
    assert orders_table.get(order_id)["state"] == "WAITING_FOR_BARISTA"  # type: ignore[index]


def test_cancelling_states_the_api_cannot_act_on(flow: Flow, api: Api) -> None:
    # Given a placed order (token not stored yet) and a cancelled one
    placed = api.place(ALICE).body["orderId"]
    ended = flow.waiting_for_customer(ALICE)
    assert api.cancel_own(ended, ALICE).status == 200
    flow.ended(ended, "OrderProcessor.OrderCancelled")

    # Then cancelling the first asks to retry, the second is gone
    first = api.cancel_own(placed, ALICE)
    assert (first.status, first.headers.get("retry-after")) == (409, "1")
    assert api.cancel_own(ended, ALICE).status == 410


def test_only_the_owner_cancels_with_delete(flow: Flow, api: Api) -> None:
    order_id = flow.waiting_for_customer(ALICE)

    assert api.cancel_own(order_id, CAROL).status == 403
    assert api.cancel_own(order_id, BOB).status == 403  # baristas cancel with POST .../cancel
    assert api.cancel_own(order_id, None).status == 401
    assert api.cancel_own(str(uuid.uuid4()), ALICE).status == 404
    assert api.get(order_id, ALICE).body["state"] == "WAITING_FOR_CUSTOMER"
