"""POST /orders/{orderId}/make, /unmake, /complete and /cancel: baristas only."""

from __future__ import annotations

import uuid

import pytest

from tests.unit.api.conftest import ALICE, BOB, DAVE, Api, Flow
from tests.unit.conftest import BARISTA_WAIT, CUSTOMER_WAIT, OrdersTable


# --------------------------------------------------------------------------------- make / unmake
def test_a_barista_claims_an_order_and_may_claim_it_again(
    flow: Flow, api: Api, orders_table: OrdersTable
) -> None:
    # Given an order waiting for a barista
    order_id = flow.waiting_for_barista(ALICE)

    # When a barista starts making it (twice: a double tap)
    first, again = api.make(order_id, BOB), api.make(order_id, BOB)

    # Then the order records who is making it, and the repeat changes nothing
    assert (first.status, first.body["baristaId"]) == (200, BOB.sub)
    assert (again.status, again.body["baristaId"]) == (200, BOB.sub)
    assert orders_table.get(order_id)["baristaId"] == BOB.sub  # type: ignore[index]
    assert orders_table.get(order_id)["state"] == "WAITING_FOR_BARISTA"  # type: ignore[index]


def test_another_barista_cannot_take_a_claimed_order(flow: Flow, api: Api, orders_table: OrdersTable) -> None:
    order_id = flow.waiting_for_barista(ALICE)
    assert api.make(order_id, BOB).status == 200

    response = api.make(order_id, DAVE)

    assert response.status == 409
    assert orders_table.get(order_id)["baristaId"] == BOB.sub  # type: ignore[index]


def test_the_claiming_barista_releases_the_order_for_others(
    flow: Flow, api: Api, orders_table: OrdersTable
) -> None:
    # Given Bob is making an order
    order_id = flow.waiting_for_barista(ALICE)
    assert api.make(order_id, BOB).status == 200

    # When Dave tries to release it, then Bob releases it
    by_dave = api.unmake(order_id, DAVE)
    by_bob = api.unmake(order_id, BOB)

    # Then only Bob's release counts, and Dave can now take it
    assert by_dave.status == 409
    assert by_bob.status == 200
    assert "baristaId" not in by_bob.body
    assert "baristaId" not in orders_table.get(order_id)  # type: ignore[operator]
    assert api.make(order_id, DAVE).body["baristaId"] == DAVE.sub


def test_releasing_an_order_nobody_holds_changes_nothing(flow: Flow, api: Api) -> None:
    order_id = flow.waiting_for_barista(ALICE)

    response = api.unmake(order_id, BOB)

    assert (response.status, response.body["state"]) == (200, "WAITING_FOR_BARISTA")


def _submitted_order(orders_table: OrdersTable) -> str:
    """An order the customer has just submitted: the workflow has not announced the barista wait yet."""
    order_id = str(uuid.uuid4())
    orders_table.put(
        {
            "orderId": order_id,
            "userId": ALICE.sub,
            "state": "SUBMITTED",
            "stateRank": 20,
            "createdAt": "2026-11-29T09:00:00.000Z",
            "drink": "Latte",
            "modifiers": [],
        }
    )
    return order_id


def test_an_order_is_claimable_only_once_it_waits_for_a_barista(
    flow: Flow, api: Api, orders_table: OrdersTable
) -> None:
    # Given a placed order, one waiting for its customer, and one just submitted
    placed = api.place(ALICE).body["orderId"]
    choosing = flow.waiting_for_customer(ALICE)
    submitted = _submitted_order(orders_table)

    # When a barista tries to make each
    responses = [api.make(order_id, BOB) for order_id in (placed, choosing, submitted)]

    # Then each is a conflict; only the submitted one is worth retrying shortly
    assert [(r.status, r.headers.get("retry-after")) for r in responses] == [
        (409, None),
        (409, None),
        (409, "1"),
    ]
    assert all("baristaId" not in orders_table.get(o) for o in (placed, choosing, submitted))  # type: ignore[operator]


@pytest.mark.parametrize("action", ["make", "unmake", "complete", "cancel"])
def test_barista_routes_refuse_customers_with_403(
    flow: Flow, api: Api, orders_table: OrdersTable, action: str
) -> None:
    # Given an order waiting for a barista
    order_id = flow.waiting_for_barista(ALICE)
    before = orders_table.get(order_id)

    # When its own customer calls a barista route
    response = getattr(api, action)(order_id, ALICE)

    # Then it is forbidden and nothing changed
    assert response.status == 403
    assert orders_table.get(order_id) == before


@pytest.mark.parametrize("action", ["make", "unmake", "complete", "cancel"])
def test_barista_routes_on_an_unknown_order_are_404_and_without_identity_401(api: Api, action: str) -> None:
    assert getattr(api, action)(str(uuid.uuid4()), BOB).status == 404
    assert getattr(api, action)(str(uuid.uuid4()), None).status == 401


@pytest.mark.parametrize("action", ["make", "unmake", "complete", "cancel"])
def test_barista_routes_on_an_ended_order_are_410(flow: Flow, api: Api, action: str) -> None:
    # Given an order that was completed
    order_id = flow.waiting_for_barista(ALICE)
    assert api.complete(order_id, BOB).status == 200
    flow.ended(order_id, "OrderProcessor.orderFinished")

    # When a barista acts on it again
    response = getattr(api, action)(order_id, BOB)

    # Then its wait is over
    assert response.status == 410


# ---------------------------------------------------------------------------- complete / cancel
def test_a_barista_completes_an_order_and_it_ends_completed(
    flow: Flow, api: Api, orders_table: OrdersTable
) -> None:
    # Given Bob is making an order
    order_id = flow.waiting_for_barista(ALICE)
    assert api.make(order_id, BOB).status == 200

    # When he completes it
    response = api.complete(order_id, BOB)

    # Then it is COMPLETING, the barista wait succeeded and the workflow finished the order
    assert (response.status, response.body["state"]) == (200, "COMPLETING")
    execution_arn = flow.executions[order_id]
    assert flow.workflow.wait_for_task_result(execution_arn, BARISTA_WAIT)["type"] == "TaskSucceeded"
    flow.ended(order_id, "OrderProcessor.orderFinished")
    assert flow.workflow.wait_for_end(execution_arn) == "SUCCEEDED"
    stored = orders_table.get(order_id)
    assert stored is not None
    assert (stored["state"], stored["baristaId"]) == ("COMPLETED", BOB.sub)


def test_completing_before_the_barista_wait_is_409(flow: Flow, api: Api, orders_table: OrdersTable) -> None:
    # Given an order the customer has not submitted yet, and one just submitted
    choosing = flow.waiting_for_customer(ALICE)
    submitted = _submitted_order(orders_table)

    # When a barista completes them
    too_early, almost = api.complete(choosing, BOB), api.complete(submitted, BOB)

    # Then the first is a plain conflict (the workflow still waits for the customer), the second
    # is worth retrying shortly (the barista wait is about to be announced)
    assert (too_early.status, too_early.headers.get("retry-after")) == (409, None)
    assert flow.workflow.task_result(flow.executions[choosing], CUSTOMER_WAIT) is None
    assert (almost.status, almost.headers.get("retry-after")) == (409, "1")
    assert orders_table.get(submitted)["state"] == "SUBMITTED"  # type: ignore[index]


def test_completing_twice_is_409(flow: Flow, api: Api) -> None:
    order_id = flow.waiting_for_barista(ALICE)
    assert api.complete(order_id, BOB).status == 200

    assert api.complete(order_id, BOB).status == 409


def test_a_barista_cancels_with_a_reason_that_reaches_the_workflow(
    flow: Flow, api: Api, orders_table: OrdersTable
) -> None:
    # Given an order waiting for a barista
    order_id = flow.waiting_for_barista(ALICE)

    # When a barista cancels it, saying why
    response = api.cancel(order_id, BOB, reason="out of oat milk")

    # Then it is CANCELLING, the workflow's wait failed as BaristaCancelled with that cause
    assert (response.status, response.body["state"]) == (200, "CANCELLING")
    cancelled = flow.ended(order_id, "OrderProcessor.OrderCancelled")
    assert cancelled["detail"]["failure"] == {"Error": "BaristaCancelled", "Cause": "out of oat milk"}
    assert orders_table.get(order_id)["state"] == "CANCELLED"  # type: ignore[index]


def test_a_barista_may_cancel_an_order_still_waiting_for_its_customer(flow: Flow, api: Api) -> None:
    order_id = flow.waiting_for_customer(ALICE)

    response = api.cancel(order_id, BOB)

    assert (response.status, response.body["state"]) == (200, "CANCELLING")
    assert (
        flow.ended(order_id, "OrderProcessor.OrderCancelled")["detail"]["failure"]["Error"]
        == "BaristaCancelled"
    )


@pytest.mark.parametrize("raw_body", ['{"reason": ""}', '{"reason": 5}', '{"why": "x"}', "{"])
def test_a_malformed_cancel_body_is_400(flow: Flow, api: Api, raw_body: str) -> None:
    order_id = flow.waiting_for_barista(ALICE)

    response = api.request("api_cancel_order", BOB, order_id=order_id, raw_body=raw_body)

    assert response.status == 400
    assert api.get(order_id, BOB).body["state"] == "WAITING_FOR_BARISTA"
