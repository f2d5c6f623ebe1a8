"""More guards found by mutation testing (`make mutate`): what a customer is told when a refusal has
another reason than a barista making her order, and what the token handlers announce and log about a
token they do not store. Same setting as test_guards.py: moto's tables built from template.yaml, the
domain functions the handlers call, no workflow.
"""

from __future__ import annotations

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber
from pydantic import ValidationError

from serverlesspresso.changes import ChangeFeed
from serverlesspresso.models import OrderEnded, OrderState, TokenIssued
from serverlesspresso.orders import OrderRepository
from serverlesspresso.resume import CUSTOMER_CANCEL, SUBMIT_ORDER, WrongOrderState, resume_order
from serverlesspresso.shop import ShopConfigStore, ShopConfigUpdate
from serverlesspresso.tracking import keep_barista_token, keep_task_token
from tests.unit.conftest import AwsEnv, BusCapture, OrdersTable, Output
from tests.unit.test_guards import ALICE, AN_HOUR_AGO, EXECUTION, OTHER_EXECUTION, stored_order


def waiting(state: OrderState, token_state: OrderState, **extra: object) -> dict[str, object]:
    """Alice's order in `state`, holding the token of its execution's wait in `token_state`."""
    return stored_order(state, executionArn=EXECUTION, taskToken="tok", tokenState=token_state.value, **extra)


class _NoCallbacks:
    """A Step Functions client no test step may call: a refused resume must not reach the workflow."""

    def send_task_success(self, **_: object) -> None:
        raise AssertionError("SendTaskSuccess sent for a refused resume")

    def send_task_failure(self, **_: object) -> None:
        raise AssertionError("SendTaskFailure sent for a refused resume")


def _failing_duplicate(task_token: str) -> tuple[object, Stubber]:
    """A Step Functions client that accepts the one SendTaskFailure ending a duplicate execution."""
    sfn = boto3.client("stepfunctions")
    stubber = Stubber(sfn)
    stubber.add_response(
        "send_task_failure",
        {},
        expected_params={
            "taskToken": task_token,
            "error": "DuplicateExecution",
            "cause": "order order-1 is handled by another execution",
        },
    )
    return sfn, stubber


# ---------------------------------------------------------------------------------------- resume
def test_a_customer_cancelling_an_order_the_barista_is_completing_is_told_it_is_completing(
    orders: OrderRepository, orders_table: OrdersTable
) -> None:
    # Given Bob has made Alice's order and is handing it over (COMPLETING)
    completing = waiting(OrderState.COMPLETING, OrderState.WAITING_FOR_BARISTA, baristaId="bob-sub")
    orders_table.put(completing)

    # When Alice cancels it
    # Then she is refused because the order is completing (not "being made": that refusal is for an
    # order still waiting), the workflow is not told anything, and the order is untouched
    with pytest.raises(WrongOrderState, match="is COMPLETING; cannot customer-cancel"):
        resume_order("order-1", CUSTOMER_CANCEL, orders=orders, sfn=_NoCallbacks())
    assert orders_table.get("order-1") == completing


def test_a_resume_step_functions_refused_leaves_both_moves_in_the_timeline(
    orders: OrderRepository, orders_table: OrdersTable
) -> None:
    # Given Alice's order waits for her drink, having been placed before
    orders_table.put(
        waiting(
            OrderState.WAITING_FOR_CUSTOMER,
            OrderState.WAITING_FOR_CUSTOMER,
            timeline=[
                {"state": "PLACED", "at": AN_HOUR_AGO},
                {"state": "WAITING_FOR_CUSTOMER", "at": AN_HOUR_AGO},
            ],
        )
    )
    # And Step Functions fails SendTaskSuccess
    sfn = boto3.client("stepfunctions")
    stubber = Stubber(sfn)
    stubber.add_client_error("send_task_success", service_error_code="ServiceUnavailable")

    # When she submits
    with stubber, pytest.raises(ClientError):
        resume_order("order-1", SUBMIT_ORDER, orders=orders, sfn=sfn)

    # Then the order is back waiting for her, and its timeline shows the way there and back
    stored = orders_table.get("order-1")
    assert stored is not None
    assert stored["state"] == "WAITING_FOR_CUSTOMER"
    assert [entry["state"] for entry in stored["timeline"]] == [
        "PLACED",
        "WAITING_FOR_CUSTOMER",
        "SUBMITTED",
        "WAITING_FOR_CUSTOMER",
    ]


# ------------------------------------------------------------------------------- token handlers
def test_a_duplicate_executions_barista_wait_is_not_announced_to_the_baristas(
    orders: OrderRepository, orders_table: OrdersTable, bus: BusCapture, aws: AwsEnv
) -> None:
    # Given Alice's order waits for a barista in the execution that owns it
    owned = waiting(OrderState.WAITING_FOR_BARISTA, OrderState.WAITING_FOR_BARISTA, orderNumber=7)
    orders_table.put(owned)
    sfn, stubber = _failing_duplicate("dup-token")

    # When a second execution of the same order reaches its barista wait, with another number
    with stubber:
        outcome = keep_barista_token(
            TokenIssued(
                "order-1", ALICE, OTHER_EXECUTION, "dup-token", OrderState.WAITING_FOR_BARISTA, order_number=8
            ),
            orders=orders,
            sfn=sfn,
            events=aws.events,
            bus_name=aws.bus_name,
        )

    # Then the duplicate is ended, the baristas' screens are not told about it, and the order is as it was
    stubber.assert_no_pending_responses()
    assert outcome.as_dict() == {"orderId": "order-1", "outcome": "foreign"}
    assert bus.events("OrderManager.WaitingCompletion") == []
    assert orders_table.get("order-1") == owned


def test_ending_a_duplicate_execution_is_logged_with_the_execution_that_owns_the_order(
    orders: OrderRepository, orders_table: OrdersTable, changes: ChangeFeed, output: Output
) -> None:
    # Given Alice's order belongs to one execution
    orders_table.put(stored_order(OrderState.WAITING_FOR_CUSTOMER, executionArn=EXECUTION, taskToken="tok"))
    sfn, stubber = _failing_duplicate("dup-token")

    # When a second execution of the same order reports its customer wait
    with stubber:
        keep_task_token(
            TokenIssued("order-1", ALICE, OTHER_EXECUTION, "dup-token", OrderState.WAITING_FOR_CUSTOMER),
            orders=orders,
            sfn=sfn,
            changes=changes,
        )

    # Then a warning names both executions, so an operator can tell which one runs the order
    warnings = [r for r in output.log_records() if r["level"] == "WARNING"]
    assert [(r["message"], r["execution"], r["owner"]) for r in warnings] == [
        ("order belongs to another execution; ending this one", OTHER_EXECUTION, EXECUTION)
    ]


def test_a_token_that_is_not_stored_is_logged_with_why_and_a_stored_one_is_not(
    orders: OrderRepository, orders_table: OrdersTable, changes: ChangeFeed, output: Output
) -> None:
    # Given Alice's order, placed and not yet touched by its workflow
    orders_table.put(stored_order(OrderState.PLACED))
    first_wait = TokenIssued("order-1", ALICE, EXECUTION, "tok-1", OrderState.WAITING_FOR_CUSTOMER)

    # When its workflow reports the customer wait, and the same event is delivered again
    stored = keep_task_token(first_wait, orders=orders, sfn=_NoCallbacks(), changes=changes)
    logged_after_storing = [r["message"] for r in output.log_records()]
    again = keep_task_token(first_wait, orders=orders, sfn=_NoCallbacks(), changes=changes)

    # Then only the redelivery, which stores nothing, is logged, saying why
    assert (stored.outcome, again.outcome) == ("stored", "duplicate")
    assert "token not stored" not in logged_after_storing
    not_stored = [r for r in output.log_records() if r["message"] == "token not stored"]
    assert [(r["reason"], r["state"]) for r in not_stored] == [("duplicate", "WAITING_FOR_CUSTOMER")]


def test_the_push_channel_hears_of_a_stored_wait_once_and_not_of_its_redelivery(
    orders: OrderRepository, orders_table: OrdersTable, changes: ChangeFeed, bus: BusCapture
) -> None:
    # Given Alice's order, placed and not yet touched by its workflow
    orders_table.put(stored_order(OrderState.PLACED))
    first_wait = TokenIssued("order-1", ALICE, EXECUTION, "tok-1", OrderState.WAITING_FOR_CUSTOMER)

    def announced() -> list[tuple[str, str]]:
        return [
            (e["detail"]["orderId"], e["detail"]["state"]) for e in bus.events("OrderManager.OrderChanged")
        ]

    # When its workflow reports the customer wait
    keep_task_token(first_wait, orders=orders, sfn=_NoCallbacks(), changes=changes)

    # Then the change is announced at once, for the wait the order entered
    assert announced() == [("order-1", "WAITING_FOR_CUSTOMER")]

    # When the same event is delivered again, Then nothing more is announced (screens refresh once)
    keep_task_token(first_wait, orders=orders, sfn=_NoCallbacks(), changes=changes)
    assert announced() == [("order-1", "WAITING_FOR_CUSTOMER")]


# ---------------------------------------------------------------------------------------- versions
def test_each_write_numbers_the_orders_next_version(
    orders: OrderRepository, orders_table: OrdersTable
) -> None:
    # Given Alice places an order
    placed = orders.create("order-1", ALICE)

    # When its workflow reaches the customer wait, and a redelivery of that event is refused
    orders.store_task_token(TokenIssued("order-1", ALICE, EXECUTION, "tok", OrderState.WAITING_FOR_CUSTOMER))
    orders.store_task_token(TokenIssued("order-1", ALICE, EXECUTION, "tok", OrderState.WAITING_FOR_CUSTOMER))

    # Then the order's versions count its writes, 1 then 2 (push messages carry it: a screen shows a
    # message only if it is newer than what it has), and a refused write counts nothing
    assert placed["version"] == 1
    assert orders_table.get("order-1")["version"] == 2  # type: ignore[index]


def test_the_timeline_keeps_every_state_the_order_went_through(
    orders: OrderRepository, orders_table: OrdersTable
) -> None:
    # Given Alice places an order
    orders.create("order-1", ALICE)

    # When its workflow reaches the customer wait, and then times out
    orders.store_task_token(TokenIssued("order-1", ALICE, EXECUTION, "tok", OrderState.WAITING_FOR_CUSTOMER))
    orders.end(OrderEnded("order-1", ALICE, EXECUTION, OrderState.TIMED_OUT, "customer timeout"))

    # Then its timeline holds the three states, in order
    timeline = orders_table.get("order-1")["timeline"]  # type: ignore[index]
    assert [entry["state"] for entry in timeline] == ["PLACED", "WAITING_FOR_CUSTOMER", "TIMED_OUT"]


def test_orders_created_before_a_cutoff_exclude_one_created_at_the_cutoff(
    orders: OrderRepository, orders_table: OrdersTable
) -> None:
    # Given two PLACED orders, one created a millisecond before noon and one at noon exactly
    orders_table.put(stored_order(OrderState.PLACED, orderId="earlier", createdAt="2026-11-29T11:59:59.999Z"))
    orders_table.put(stored_order(OrderState.PLACED, orderId="at-noon", createdAt="2026-11-29T12:00:00.000Z"))

    # When the reconciler asks for the PLACED orders created before noon
    found = list(orders.ids_created_before(OrderState.PLACED, "2026-11-29T12:00:00.000Z"))

    # Then only the earlier one is there: an order as old as the cutoff may still be on its way
    assert found == ["earlier"]


# -------------------------------------------------------------------------------------------- shop
def test_a_slot_just_released_counts_as_free_before_the_workflow_removes_it(aws: AwsEnv) -> None:
    # Given the shop item holds two capacity slots, of executions a and b
    aws.dynamodb.put_item(
        TableName=aws.tables["ConfigTable"],
        Item={"configId": {"S": "shop"}, "inFlight": {"SS": ["a", "b"]}},
    )
    shop = ShopConfigStore(aws.tables["ConfigTable"], aws.dynamodb, 20, default_require_admission=False)

    # When the config is read for the change of a's order, which has just ended
    # Then one order is in flight; read for no ended order, two are
    assert shop.get(released_slot="a").ordersInFlight == 1
    assert shop.get().ordersInFlight == 2


def test_a_slot_released_while_the_shop_holds_none_leaves_nothing_in_flight(aws: AwsEnv) -> None:
    # Given a fresh shop: no item, so no slot held
    shop = ShopConfigStore(aws.tables["ConfigTable"], aws.dynamodb, 20, default_require_admission=False)

    # When the config is read for the change of an order that has just ended
    # Then nothing is in flight (and nothing fails)
    assert shop.get(released_slot="a").ordersInFlight == 0


def test_a_fresh_shops_admission_code_admits_ten_orders(aws: AwsEnv) -> None:
    # Given no shop item. Then one admission code lets in the documented default of 10 orders
    shop = ShopConfigStore(aws.tables["ConfigTable"], aws.dynamodb, 20, default_require_admission=False)
    assert shop.get().ordersPerAdmissionCode == 10


@pytest.mark.parametrize(("orders_per_code", "allowed"), [(1, True), (0, False), (1000, True), (1001, False)])
def test_an_admission_code_admits_1_to_1000_orders(orders_per_code: int, allowed: bool) -> None:
    # Given a barista's PUT /config body setting how many orders one admission code lets in
    body = {"ordersPerAdmissionCode": orders_per_code}

    # When it is read, Then the documented bounds hold
    if allowed:
        assert ShopConfigUpdate.model_validate(body).changes() == body
    else:
        with pytest.raises(ValidationError):
            ShopConfigUpdate.model_validate(body)
