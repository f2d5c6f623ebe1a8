"""No API response, no event we publish and no log line ever carries a task token.

The tokens are the real ones the workflow issued in moto during the scenarios (taken from its two
callback events, the only place they may appear), and the scenarios touch every route, success and
error answers alike, while tokens are stored on the orders.
"""

from __future__ import annotations

import json

from tests.unit.api.conftest import ALICE, BOB, CAROL, Api, Flow
from tests.unit.conftest import CUSTOMER_WAIT, Output, wait_until

CALLBACK_EVENTS = {"OrderProcessor.WorkflowStarted", "OrderProcessor.WaitingCompletion"}


def _run_scenarios(flow: Flow, api: Api) -> None:
    # A full order: customer submits, barista makes, releases, makes again and completes.
    served = flow.waiting_for_barista(ALICE)
    api.get(served, ALICE)
    api.get(served, BOB)
    api.get(served, CAROL)  # 403
    api.submit(served, ALICE)  # 409: already submitted
    api.cancel_own(served, CAROL)  # 403
    api.list(ALICE)
    api.list(BOB)
    api.list(BOB, state="WAITING_FOR_BARISTA", limit="1")
    api.make(served, BOB)
    api.make(served, CAROL)  # 403
    api.unmake(served, BOB)
    api.make(served, BOB)
    api.cancel_own(served, ALICE)  # 409: being made
    api.complete(served, BOB)
    api.complete(served, BOB)  # 409
    flow.ended(served, "OrderProcessor.orderFinished")
    api.get(served, ALICE)
    api.make(served, BOB)  # 410

    # A customer who cancels while her token is stored, after a refused drink.
    cancelled = flow.waiting_for_customer(ALICE)
    api.submit(cancelled, ALICE, "Tea", [])  # 400
    api.make(cancelled, BOB)  # 409
    api.complete(cancelled, BOB)  # 409
    api.cancel_own(cancelled, ALICE)
    flow.ended(cancelled, "OrderProcessor.OrderCancelled")

    # A barista who cancels, with a reason.
    refused = flow.waiting_for_barista(CAROL)
    api.cancel(refused, BOB, reason="machine broke")
    flow.ended(refused, "OrderProcessor.OrderCancelled")

    # A customer whose wait timed out in the workflow before the timeout was recorded.
    late = flow.waiting_for_customer(CAROL, heartbeats={CUSTOMER_WAIT: 1})
    wait_until(lambda: "Customer timedout" in flow.workflow.entered(flow.executions[late]), "the timeout")
    api.submit(late, CAROL)  # 410
    api.get(late, CAROL)
    api.get_config(ALICE)
    api.put_config(BOB, isOpen=True)


def test_no_response_event_or_log_line_contains_a_task_token(flow: Flow, api: Api, output: Output) -> None:
    # Given orders in every state the API acts on, holding real task tokens
    # When customers and baristas call every route (see _run_scenarios)
    _run_scenarios(flow, api)
    tokens = flow.task_tokens()

    # Then the workflow did issue tokens (two per served order, one per order it waited on)...
    assert len(tokens) >= 6
    assert {response.status for response in api.responses} >= {200, 202, 400, 403, 409, 410}
    # ...and none of them, nor a prefix of one, is in any response (body or headers)
    for response in api.responses:
        text = json.dumps(response.raw)
        for token in tokens:
            assert token[:24] not in text, f"a task token leaked in a {response.status} response"
    # ...nor in any event other than the workflow's own callback events
    published = [event for event in flow.bus.events() if event["detail-type"] not in CALLBACK_EVENTS]
    assert {event["detail-type"] for event in published} >= {
        "Validator.NewOrder",
        "OrderManager.WaitingCompletion",
    }
    for event in published:
        text = json.dumps(event)
        for token in tokens:
            assert token[:24] not in text, f"a task token leaked in {event['detail-type']}"
    # ...nor in any log line the functions wrote
    output.assert_no_secret(*tokens)
