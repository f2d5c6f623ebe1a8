"""Orders under faults (local/faults): one scenario per fault kind, on the whole application.

Each test injects one kind of fault, deterministically (rate 1, narrowed to the calls it is about),
and asserts that nothing is lost or stuck: every order ends in exactly one terminal state, its
capacity slot is free, and what could not be delivered is in a dead-letter queue, from which
`make replay` (ops/replay.py) or the reconciler (ReconcilerFunction) settles it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

import pytest

from local.engine import LocalEngine
from local.faults import Candidate, FaultInjector, FaultKind, FaultRates
from ops.replay import replay_dead_letters
from ops.target import local_target_with
from serverlesspresso.models import OrderState
from serverlesspresso.ordering import order_view
from serverlesspresso.resume import COMPLETE_ORDER, SUBMIT_ORDER
from tests.e2e.conftest import PATIENT_TIME_SCALE
from tests.e2e.flows import COMPLETED_PATH, CUSTOMER_TIMEOUT_PATH, Shop, slot, terminal_entries, wait_for
from tests.e2e.screens import Screen
from tests.helpers import load_event

pytestmark = pytest.mark.e2e

WAITING_FOR_CUSTOMER = OrderState.WAITING_FOR_CUSTOMER
WAITING_FOR_BARISTA = OrderState.WAITING_FOR_BARISTA
ALICE = load_event("api_place_order")["requestContext"]["authorizer"]["jwt"]["claims"]["sub"]
SAMPLE_ORDER_ID = load_event("api_submit_order")["pathParameters"]["orderId"]

RELEASE = "Release capacity slot"

MakeEngine = Callable[..., AbstractContextManager[LocalEngine]]


WORKFLOW_HANDLERS = ("WorkflowStartedFunction", "WaitingCompletionFunction", "OrderEndedFunction")


def only(kind: FaultKind, where: Callable[[Candidate], bool]) -> FaultInjector:
    """An injector failing every call of `kind` that `where` picks, and nothing else."""
    return FaultInjector(FaultRates.only(kind), seed=1, only=where)


def once(kind: FaultKind) -> FaultInjector:
    """An injector failing the first call of `kind` only."""
    injected: list[Candidate] = []

    def first(candidate: Candidate) -> bool:
        injected.append(candidate)
        return len(injected) == 1

    return FaultInjector(FaultRates.only(kind), seed=1, only=first)


def call_api(engine: LocalEngine, sample: str, order_id: str | None = None) -> tuple[int, dict[str, Any]]:
    """Invoke OrderApiFunction with a sample request (as Alice, or the sample's barista) for `order_id`."""
    event = load_event(sample)
    if order_id is not None:
        text = json.dumps(event).replace(SAMPLE_ORDER_ID, order_id)
        event = json.loads(text)
    response = engine.invoke("OrderApiFunction", event)
    return response["statusCode"], json.loads(response["body"]) | {"_headers": response.get("headers", {})}


def dead_letters_of(shop: Shop) -> list[str]:
    return [f"{letter.target}: {letter.event['detail-type']}" for letter in shop.engine.dead_letters]


def replay(engine: LocalEngine) -> Any:
    """What `make replay LOCAL=...` does, against this engine."""
    target = local_target_with(engine.clients, engine.template, "test engine")
    return replay_dead_letters(
        sqs=engine.clients["sqs"],
        events=engine.clients["events"],
        queues=target.dead_letter_queues,
        bus_name=target.bus_name,
        say=lambda line: None,
    )


def assert_ended_once(shop: Shop, order_id: str, state: OrderState, execution: str) -> dict[str, Any]:
    order = shop.wait_for_end(order_id)
    assert order["state"] == state.value
    assert terminal_entries(order) == [state.value]
    assert slot(execution) not in shop.in_flight()
    return order


def complete_an_order(shop: Shop) -> tuple[str, str]:
    """A customer orders and submits, a barista completes it: (order id, execution ARN)."""
    order_id = shop.place_order(user_id="alice")
    execution = shop.execution(order_id)
    shop.act_when(order_id, WAITING_FOR_CUSTOMER, SUBMIT_ORDER)
    shop.act_when(order_id, WAITING_FOR_BARISTA, COMPLETE_ORDER)
    return order_id, execution


def assert_completed_along_the_usual_path(shop: Shop, order_id: str, execution: str) -> None:
    assert shop.finished(execution)["status"] == "SUCCEEDED"
    assert shop.path(execution) == COMPLETED_PATH
    assert_ended_once(shop, order_id, OrderState.COMPLETED, execution)


# ------------------------------------------------------------------------------ handler faults
def test_a_handler_failing_once_per_event_is_retried_and_the_order_completes(make_engine: MakeEngine) -> None:
    # Given the workflow's three handlers fail on their first attempt at every event (the push
    # fan-out is left alone: its deliveries are not part of the order's path)
    injector = only(FaultKind.HANDLER_TRANSIENT, lambda candidate: candidate.where in WORKFLOW_HANDLERS)
    with make_engine(faults=injector, time_scale=PATIENT_TIME_SCALE) as engine:
        shop = Shop(engine)

        # When a customer orders and a barista completes it
        order_id, execution = complete_an_order(shop)

        # Then the order completes along the usual path, each event handled on its second attempt
        assert_completed_along_the_usual_path(shop, order_id, execution)
        assert injector.counts == {FaultKind.HANDLER_TRANSIENT: 3}

        def attempts_of(function: str) -> list[tuple[int, str]]:
            return [(d.attempt, d.outcome) for d in engine.delivered if d.target == function]

        # (the last handler's outcome is recorded just after its effect, the ended order, is seen)
        wait_for(
            lambda: all(len(attempts_of(f)) >= 2 for f in WORKFLOW_HANDLERS) or None,
            "the second attempt's outcome of each workflow handler",
        )
        for function in WORKFLOW_HANDLERS:
            assert attempts_of(function) == [(1, "retry"), (2, "ok")]
        assert shop.problems() == []


def test_a_lost_customer_token_ends_the_order_by_heartbeat_and_frees_its_slot(
    make_engine: MakeEngine,
) -> None:
    # Given WorkflowStartedFunction fails on every attempt at the order's first token event
    injector = only(FaultKind.HANDLER_PERMANENT, lambda c: c.where == "WorkflowStartedFunction")
    with make_engine(faults=injector) as engine:
        shop = Shop(engine)

        # When a customer orders (and can never submit: the token was never stored)
        order_id = shop.place_order(user_id="alice")
        execution = shop.execution(order_id)

        # Then the customer wait times out, the order ends TIMED_OUT and its slot is free
        assert shop.finished(execution)["status"] == "SUCCEEDED"
        assert shop.path(execution) == CUSTOMER_TIMEOUT_PATH
        order = assert_ended_once(shop, order_id, OrderState.TIMED_OUT, execution)
        assert order["endReason"] == "Customer timedout"
        # And the event is in the function's on-failure queue, not lost
        assert dead_letters_of(shop) == ["WorkflowStartedFunction: OrderProcessor.WorkflowStarted"]
        # And replaying it later changes nothing: the order has ended (the handler is idempotent)
        report = replay(engine)
        assert [letter.shape for letter in report.replayed] == ["invocation record"]
        shop.engine.dispatcher.drain()
        assert shop.order(order_id) == order


def test_a_dead_lettered_ending_event_leaves_the_order_open_until_replayed(make_engine: MakeEngine) -> None:
    # Given OrderEndedFunction keeps failing on the order's orderFinished event
    injector = only(FaultKind.HANDLER_PERMANENT, lambda c: c.detail_type == "OrderProcessor.orderFinished")
    with make_engine(faults=injector, time_scale=PATIENT_TIME_SCALE) as engine:
        shop = Shop(engine)
        order_id, execution = complete_an_order(shop)
        assert shop.finished(execution)["status"] == "SUCCEEDED"
        wait_for(lambda: engine.dead_letters, "the dead letter")

        # Then the execution released its slot, but the record is stuck before its end
        assert slot(execution) not in shop.in_flight()
        assert shop.order(order_id)["state"] == OrderState.COMPLETING.value

        # When the operator replays the dead letters once the handler works again
        engine.faults = None
        injector.detach()
        report = replay(engine)

        # Then the order is COMPLETED, once, and the queue is empty
        assert [letter.event["detail-type"] for letter in report.replayed] == ["OrderProcessor.orderFinished"]
        assert_ended_once(shop, order_id, OrderState.COMPLETED, execution)
        assert replay(engine).found == []


def test_a_dead_lettered_ending_event_is_settled_by_the_reconciler(make_engine: MakeEngine) -> None:
    # Given OrderEndedFunction keeps failing on the order's orderFinished event, and a reconciler that
    # settles orders as soon as they are placed (ReconcileAfterSeconds 0)
    injector = only(FaultKind.HANDLER_PERMANENT, lambda c: c.where == "OrderEndedFunction")
    overrides = {"ReconcileAfterSeconds": "0"}
    with make_engine(faults=injector, time_scale=PATIENT_TIME_SCALE, parameter_overrides=overrides) as engine:
        shop = Shop(engine)
        order_id, execution = complete_an_order(shop)
        assert shop.finished(execution)["status"] == "SUCCEEDED"
        wait_for(lambda: engine.dead_letters, "the dead letter")
        assert shop.order(order_id)["state"] == OrderState.COMPLETING.value

        # When the scheduled reconciler runs
        report = engine.invoke("ReconcilerFunction", load_event("reconcile_schedule"))

        # Then it settles the order COMPLETED from how its execution ended, with its number
        assert [(o["orderId"], o["outcome"]) for o in report["orders"]] == [(order_id, "COMPLETED")]
        order = assert_ended_once(shop, order_id, OrderState.COMPLETED, execution)
        assert (order["endReason"], order["orderNumber"]) == ("completed", 1)
        # And a second run finds nothing left
        assert engine.invoke("ReconcilerFunction", load_event("reconcile_schedule"))["orders"] == []


# ---------------------------------------------------------------------------- workflow faults
def test_dynamodb_throttling_of_the_workflows_tasks_is_absorbed_by_their_retry_policies(
    make_engine: MakeEngine,
) -> None:
    # Given every DynamoDB call of the workflow's service tasks is throttled once
    injector = FaultInjector(FaultRates.only(FaultKind.DYNAMODB_THROTTLED), seed=1)
    with make_engine(faults=injector, time_scale=PATIENT_TIME_SCALE) as engine:
        shop = Shop(engine)

        # When an order goes through
        order_id, execution = complete_an_order(shop)

        # Then it completes along the usual path, each of its 4 DynamoDB tasks retried after throttling
        assert_completed_along_the_usual_path(shop, order_id, execution)
        failed: dict[str, set[str]] = {}
        state = ""
        for event in engine.history(execution):
            state = event.get("stateEnteredEventDetails", {}).get("name", state)
            if event["type"] == "TaskFailed":
                failed.setdefault(state, set()).add(event["taskFailedEventDetails"]["error"])
        dynamodb_states = ("Shop open?", "Is capacity available?", "Generate Order Number")
        assert failed == {name: {"DynamoDB.ThrottlingException"} for name in (*dynamodb_states, RELEASE)}
        failures = sum(1 for e in engine.history(execution) if e["type"] == "TaskFailed")
        assert failures == injector.counts[FaultKind.DYNAMODB_THROTTLED]
        assert shop.problems() == []


# ---------------------------------------------------------------------------------- API faults
def test_a_refused_new_order_event_answers_503_and_leaves_no_half_made_order(make_engine: MakeEngine) -> None:
    # Given the API's first PutEvents is answered with FailedEntryCount 1
    with make_engine(faults=once(FaultKind.PUT_EVENTS_FAILED)) as engine:
        shop = Shop(engine)

        # When a customer places an order, and again after the error
        status, body = call_api(engine, "api_place_order")
        retried_status, retried = call_api(engine, "api_place_order")

        # Then the first answer is a clear 503 naming the order, which ended REJECTED, never started
        assert (status, body["message"]) == (503, "the order could not be started; please try again")
        assert body["_headers"].get("Retry-After") == "1"
        refused = shop.order(body["orderId"])
        assert (refused["state"], refused["endReason"]) == ("REJECTED", "not started: PublishFailed")
        assert shop.executions(body["orderId"]) == []
        # And the retry is accepted and started, as any order
        assert retried_status == 202
        shop.wait_for_order(retried["orderId"], WAITING_FOR_CUSTOMER)
        assert engine.faults is not None and engine.faults.counts == {FaultKind.PUT_EVENTS_FAILED: 1}


def test_a_customer_asking_again_after_a_refused_order_is_never_refused_twice_in_a_row(
    make_engine: MakeEngine,
) -> None:
    # Given every new order's PutEvents is a candidate for a fault
    new_orders = only(
        FaultKind.PUT_EVENTS_FAILED, lambda candidate: candidate.detail_type == "Validator.NewOrder"
    )
    with make_engine(faults=new_orders) as engine:
        # When a customer places an order, again after the refusal, and then a third one
        statuses = [call_api(engine, "api_place_order")[0] for _ in range(3)]

        # Then the second attempt went through (a client that asks again as told gets its order), and
        # the next order met a fault again
        assert statuses == [503, 202, 503]
        assert engine.faults is not None and engine.faults.counts == {FaultKind.PUT_EVENTS_FAILED: 2}


def test_a_throttled_resume_answers_503_with_retry_after_and_a_retry_resumes_the_order(
    make_engine: MakeEngine,
) -> None:
    # Given the API's first SendTaskSuccess is throttled, and Alice's order waits for her
    with make_engine(faults=once(FaultKind.SEND_TASK_THROTTLED), time_scale=PATIENT_TIME_SCALE) as engine:
        shop = Shop(engine)
        order_id = shop.place_order(user_id=ALICE)
        shop.wait_for_order(order_id, WAITING_FOR_CUSTOMER)

        # When she submits her drink, and again after the error
        status, body = call_api(engine, "api_submit_order", order_id)
        waiting = shop.order(order_id)["state"]
        retried_status, _ = call_api(engine, "api_submit_order", order_id)

        # Then the first answer is 503 with Retry-After, the order still waiting for her (not half-resumed)
        assert status == 503
        assert body["_headers"].get("Retry-After") == "1"
        assert waiting == WAITING_FOR_CUSTOMER.value
        # And the retry resumes it: the workflow goes on to the barista
        assert retried_status == 200
        shop.wait_for_order(order_id, WAITING_FOR_BARISTA)
        assert engine.faults is not None and engine.faults.counts == {FaultKind.SEND_TASK_THROTTLED: 1}


# --------------------------------------------------------------------------------- push faults
def _stored_connections(engine: LocalEngine) -> dict[str, str]:
    """connectionId -> audience, as the connections table lists them."""
    table = engine.table_names["ConnectionsTable"]
    items = engine.clients["dynamodb"].scan(TableName=table, ConsistentRead=True)["Items"]
    return {item["connectionId"]["S"]: item["audience"]["S"] for item in items}


def test_a_gone_push_connection_is_removed_and_the_others_still_receive_every_change(
    make_engine: MakeEngine,
) -> None:
    # Given a display whose connection vanished without a $disconnect: the table still lists it, and
    # PostToConnection answers GoneException for it
    gone: list[str] = []
    injector = only(FaultKind.PUSH_CONNECTION_GONE, lambda candidate: candidate.connection in gone)
    with make_engine(faults=injector, time_scale=PATIENT_TIME_SCALE) as engine:
        shop = Shop(engine)
        push_url, idp = engine.push.url, engine.idp  # type: ignore[attr-defined]
        before = set(_stored_connections(engine))
        display = Screen(push_url, idp.issue_token("vanished-display", "display"), "display")
        barista = Screen(push_url, idp.issue_token("barista-bo", "barista"), "barista")
        customer = Screen(push_url, idp.issue_token("alice-phone", sub="alice"), "alice")
        try:
            wait_for(lambda: len(_stored_connections(engine)) == len(before) + 3, "the 3 connections stored")
            added = {c: audience for c, audience in _stored_connections(engine).items() if c not in before}
            gone.append(next(c for c, audience in added.items() if audience == "display"))

            # When a customer orders and a barista completes it
            order_id, execution = complete_an_order(shop)
            assert_completed_along_the_usual_path(shop, order_id, execution)

            # Then the barista's and the customer's screens followed the order to its final record
            # (each message carries the order as it is when sent, so a quick change may skip a state)
            for screen in (barista, customer):
                screen.wait_for_order(order_id, "COMPLETED")
                assert screen.latest_orders()[order_id] == order_view(shop.order(order_id))
                versions = [m["order"]["version"] for m in screen.received("order")]
                assert versions == sorted(versions) and len(versions) >= 3
            # And the fan-out forgot the gone connection (once), which heard nothing of the order
            wait_for(lambda: gone[0] not in _stored_connections(engine), "the gone connection removed")
            assert injector.gone_connections == gone
            assert injector.counts == {FaultKind.PUSH_CONNECTION_GONE: 1}
            assert display.order_ids() == set()
        finally:
            for screen in (display, barista, customer):
                screen.close()


def test_no_fault_is_injected_without_an_injector(shop: Shop) -> None:
    # Given the engine as every other test runs it (no injector)
    # When an order is placed
    order_id = shop.place_order(user_id="alice")
    shop.wait_for_order(order_id, WAITING_FOR_CUSTOMER)

    # Then nothing failed: fault injection is off by default
    assert shop.engine.faults is None
    assert all(d.outcome == "ok" for d in shop.engine.delivered)
