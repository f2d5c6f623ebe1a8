"""What the EventBridge-triggered functions do: keep each wait's task token with its order, and record
how each order ended. Domain code: it sees parsed commands, never an event envelope."""

from __future__ import annotations

from contextlib import suppress
from dataclasses import dataclass
from typing import Any

from serverlesspresso.changes import ChangeFeed
from serverlesspresso.models import OrderEnded, TokenIssued
from serverlesspresso.observability import logger
from serverlesspresso.orders import OrderRepository, TokenStore, TokenStoreResult
from serverlesspresso.publisher import publish_event

# The error a duplicate execution is ended with, so it frees its capacity slot at once instead of
# holding it until its heartbeat expires.
DUPLICATE_EXECUTION_ERROR = "DuplicateExecution"
BARISTA_QUEUE_EVENT = "OrderManager.WaitingCompletion"


@dataclass(frozen=True)
class Outcome:
    """What a handler did with one event; returned to the caller and logged."""

    order_id: str
    outcome: str

    def as_dict(self) -> dict[str, str]:
        """JSON-friendly form, the handler's return value."""
        return {"orderId": self.order_id, "outcome": self.outcome}


def keep_task_token(
    issued: TokenIssued, *, orders: OrderRepository, sfn: Any, changes: ChangeFeed
) -> Outcome:
    """Store the token of the wait the workflow entered, so the API can resume it; announce the change.

    A token from an execution that does not own the order (a duplicate start of the same order) is
    failed right away: it could never be resumed, and its execution would hold a capacity slot.
    """
    result = _store_task_token(issued, orders=orders, sfn=sfn)
    if result.outcome is TokenStore.STORED:
        changes.order_changed(issued.order_id, issued.state)
    return Outcome(issued.order_id, result.outcome.value)


def _store_task_token(issued: TokenIssued, *, orders: OrderRepository, sfn: Any) -> TokenStoreResult:
    result = orders.store_task_token(issued)
    if result.outcome is TokenStore.FOREIGN:
        logger.warning(
            "order belongs to another execution; ending this one",
            extra={"execution": issued.execution_arn, "owner": (result.current or {}).get("executionArn")},
        )
        _end_foreign_execution(issued, sfn)
    elif result.outcome is not TokenStore.STORED:
        logger.info("token not stored", extra={"reason": result.outcome.value, "state": issued.state.value})
    return result


def _end_foreign_execution(issued: TokenIssued, sfn: Any) -> None:
    # A wait that is over already (timed out, ended, or an unknown token) holds no slot any more.
    wait_over = (sfn.exceptions.TaskTimedOut, sfn.exceptions.TaskDoesNotExist, sfn.exceptions.InvalidToken)
    with suppress(*wait_over):
        sfn.send_task_failure(
            taskToken=issued.task_token,
            error=DUPLICATE_EXECUTION_ERROR,
            cause=f"order {issued.order_id} is handled by another execution",
        )


def keep_barista_token(
    issued: TokenIssued, *, orders: OrderRepository, sfn: Any, events: Any, bus_name: str
) -> Outcome:
    """Store the barista wait's token and order number, then tell barista screens (without the token).

    OrderManager.WaitingCompletion is also what tells the push channel that the order changed.

    A redelivery of the same event publishes again while the order still waits for the barista: the
    first publish may be what failed, and screens key on orderId, so a repeat is harmless while a loss
    is not. Once the barista has resumed the order (COMPLETING/CANCELLING), a late copy is not
    announced again: it would put an order that is being finished back on the screens.
    """
    result = _store_task_token(issued, orders=orders, sfn=sfn)
    still_waiting = (result.current or {}).get("state") == issued.state.value
    if result.outcome is TokenStore.STORED or (result.outcome is TokenStore.DUPLICATE and still_waiting):
        publish_event(
            BARISTA_QUEUE_EVENT,
            {"orderId": issued.order_id, "userId": issued.user_id, "orderNumber": issued.order_number},
            bus_name=bus_name,
            client=events,
        )
    return Outcome(issued.order_id, result.outcome.value)


def record_order_end(ended: OrderEnded, *, orders: OrderRepository, changes: ChangeFeed) -> Outcome:
    """Move the order to the terminal state its workflow ended in (once; later copies change nothing)."""
    if orders.end(ended):
        logger.info("order ended", extra={"state": ended.state.value, "reason": ended.reason})
        changes.order_changed(ended.order_id, ended.state)
        return Outcome(ended.order_id, ended.state.value)
    logger.info("end already recorded or not this execution's order", extra={"state": ended.state.value})
    return Outcome(ended.order_id, "ignored")
