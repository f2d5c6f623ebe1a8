"""ReconcilerFunction: settles orders whose execution ended while their record did not, from how the
execution ended (the real workflow in moto), releasing a capacity slot only when one is still taken."""

from __future__ import annotations

import pytest

from serverlesspresso.reconcile import NOT_STARTED
from serverlesspresso.resume import COMPLETE_ORDER
from tests.helpers import CUSTOMER_WAIT, load_event
from tests.unit.conftest import _invoker

SCHEDULE = load_event("reconcile_schedule")


@pytest.fixture
def reconciler(aws, monkeypatch):
    """The handler, settling every order placed before now (SETTLE_AFTER_SECONDS=0)."""
    monkeypatch.setenv("SETTLE_AFTER_SECONDS", "0")
    return _invoker("reconciler")


def outcomes(report):
    return {entry["orderId"]: (entry["outcome"], entry["slotReleased"]) for entry in report["orders"]}


def test_a_completed_order_whose_ending_event_was_lost_is_settled_completed(
    barista_wait, waiting_completion, workflow, resume, reconciler, orders_table
):
    # Given an order the barista completed, whose orderFinished event never reached OrderEndedFunction
    execution_arn, waiting = barista_wait("lost-ending")
    assert waiting_completion(waiting)["outcome"] == "stored"
    resume("lost-ending", COMPLETE_ORDER)
    assert workflow.wait_for_end(execution_arn) == "SUCCEEDED"
    assert orders_table.get("lost-ending")["state"] == "COMPLETING"

    # When the reconciler runs
    report = reconciler(SCHEDULE)

    # Then the order is COMPLETED with its number, as the event would have recorded it; the workflow had
    # released its slot already
    assert outcomes(report) == {"lost-ending": ("COMPLETED", False)}
    order = orders_table.get("lost-ending")
    assert (order["state"], order["endReason"], order["orderNumber"]) == ("COMPLETED", "completed", 1)
    assert [entry["state"] for entry in order["timeline"]][-1] == "COMPLETED"
    assert workflow.slots_taken() == set()
    assert (report["settled"], report["slotsReleased"], report["capacityInUse"]) == (1, 0, 0)


def test_a_timed_out_order_is_settled_with_the_executions_cause(
    workflow, workflow_started, reconciler, orders_table
):
    # Given an order whose customer wait timed out (1 s heartbeat), its OrderTimeOut event lost
    execution_arn, started = workflow.customer_wait("slow", heartbeats={CUSTOMER_WAIT: 1})
    assert workflow_started(started)["outcome"] == "stored"
    assert workflow.wait_for_end(execution_arn) == "SUCCEEDED"

    # When the reconciler runs
    report = reconciler(SCHEDULE)

    # Then the order TIMED_OUT for the reason the execution gives, and no longer holds a token
    assert outcomes(report) == {"slow": ("TIMED_OUT", False)}
    order = orders_table.get("slow")
    assert (order["state"], order["endReason"]) == ("TIMED_OUT", "Customer timedout")
    assert "taskToken" not in order


def test_an_aborted_execution_ends_its_order_cancelled_and_frees_the_slot_it_held(
    aws, workflow, workflow_started, reconciler, orders_table
):
    # Given an order waiting for its customer whose execution was stopped from outside, slot still taken
    execution_arn, started = workflow.customer_wait("stopped")
    assert workflow_started(started)["outcome"] == "stored"
    aws.sfn.stop_execution(executionArn=execution_arn)
    # (AWS ends a stopped execution at once; moto 5.2.5 when its wait ends, going no further. The wait
    # is ended by its token: a short heartbeat instead could expire before the stop on a loaded
    # machine, and its Catch path would free the slot)
    aws.sfn.send_task_failure(taskToken=started["detail"]["TaskToken"], error="Stopped", cause="test")
    # (AWS says ABORTED; moto 5.2.5 says FAILED: either way the execution ended in its wait)
    status = workflow.wait_for_end(execution_arn)
    assert status in ("ABORTED", "FAILED")
    assert workflow.slots_taken() == {execution_arn.rsplit(":", 1)[1]}

    # When the reconciler runs
    report = reconciler(SCHEDULE)

    # Then the order is CANCELLED, says why, and its slot is free again
    assert outcomes(report) == {"stopped": ("CANCELLED", True)}
    assert orders_table.get("stopped")["endReason"] == f"execution {status}"
    assert workflow.slots_taken() == set()
    assert report["capacityInUse"] == 0


def test_an_order_whose_execution_still_runs_is_left_alone(
    workflow, workflow_started, reconciler, orders_table
):
    # Given an order whose workflow still waits for the customer
    execution_arn, started = workflow.customer_wait("waiting")
    assert workflow_started(started)["outcome"] == "stored"
    before = orders_table.get("waiting")

    # When the reconciler runs
    report = reconciler(SCHEDULE)

    # Then it reports the order as running and changes nothing: neither the record nor the slot
    assert outcomes(report) == {"waiting": ("running", False)}
    assert orders_table.get("waiting") == before
    assert workflow.slots_taken() == {execution_arn.rsplit(":", 1)[1]}
    assert report["capacityInUse"] == 1


def test_an_order_no_execution_took_up_is_rejected_as_not_started(aws, reconciler, orders_table):
    # Given an order the API wrote PLACED whose Validator.NewOrder never started an execution
    from serverlesspresso.dependencies import order_repository

    order_repository().create("orphan", "user-1")

    # When the reconciler runs
    report = reconciler(SCHEDULE)

    # Then the order is REJECTED as never started
    assert outcomes(report) == {"orphan": ("REJECTED", False)}
    order = orders_table.get("orphan")
    assert (order["state"], order["endReason"]) == ("REJECTED", NOT_STARTED)


def test_reconciling_twice_changes_nothing_and_a_late_ending_event_is_ignored(
    barista_wait, waiting_completion, workflow, resume, reconciler, order_ended, orders_table, bus
):
    # Given a completed order already settled by the reconciler
    execution_arn, waiting = barista_wait("twice")
    assert waiting_completion(waiting)["outcome"] == "stored"
    resume("twice", COMPLETE_ORDER)
    workflow.wait_for_end(execution_arn)
    assert outcomes(reconciler(SCHEDULE)) == {"twice": ("COMPLETED", False)}
    settled = orders_table.get("twice")

    # When it runs again, and the lost orderFinished event turns up after all (a replay)
    again = reconciler(SCHEDULE)
    late = order_ended(bus.wait_for("OrderProcessor.orderFinished", execution_arn))

    # Then neither finds anything left to do: one terminal state, written once
    assert again["orders"] == []
    assert late["outcome"] == "ignored"
    assert orders_table.get("twice") == settled


def test_orders_younger_than_the_longest_order_lifetime_are_not_looked_at(aws, monkeypatch, orders_table):
    # Given the deployed setting (no SETTLE_AFTER_SECONDS: two hours) and an order placed just now
    from serverlesspresso.dependencies import order_repository

    monkeypatch.delenv("SETTLE_AFTER_SECONDS", raising=False)
    order_repository().create("fresh", "user-1")

    # When the reconciler runs
    report = _invoker("reconciler")(SCHEDULE)

    # Then the order is untouched
    assert report["orders"] == []
    assert orders_table.get("fresh")["state"] == "PLACED"


def test_a_malformed_trigger_is_refused_before_anything_is_read(reconciler):
    # Given an event that is not an EventBridge envelope
    # When the reconciler is invoked with it
    # Then it raises a validation error (the invocation fails and is alarmed), having settled nothing
    from aws_lambda_powertools.utilities.parser import ValidationError

    with pytest.raises(ValidationError):
        reconciler({"hello": "world"})


def test_the_templates_default_settle_time_is_the_longest_an_order_can_take(aws):
    # Given the template's ReconcileAfterSeconds default and the domain's open-order window
    from serverlesspresso.ordering import OPEN_ORDER_WINDOW

    default = aws.template.body["Parameters"]["ReconcileAfterSeconds"]["Default"]

    # Then they are the same time: the reconciler settles exactly what no longer counts as open
    assert default == OPEN_ORDER_WINDOW.total_seconds()
