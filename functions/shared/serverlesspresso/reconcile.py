"""Settling orders that no event will end: what the scheduled ReconcilerFunction does.

An order's record reaches its terminal state through OrderEndedFunction, on the event the workflow
emits as it ends. If that event is dead-lettered (or the order's token events were, and the execution
ended meanwhile), the record stays in a non-terminal state for ever although its execution ended: it
shows on the barista board and counts against the customer's open orders. The reconciler finds such
orders (the ByState index, created longer ago than an order can take), asks Step Functions how each
execution ended, and writes that ending with the same conditional write OrderEndedFunction makes, so a
late or replayed ending event and the reconciler can never both count. The execution's capacity slot
is released if it is still taken (only an execution stopped from outside, timed out as a whole or
failed before its release state leaves one behind); the DELETE is idempotent.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit, single_metric
from botocore.exceptions import ClientError

from serverlesspresso.models import NON_TERMINAL_STATES, OrderEnded, OrderState
from serverlesspresso.observability import logger
from serverlesspresso.ordering import OPEN_ORDER_WINDOW
from serverlesspresso.orders import OrderRepository, timestamp, to_item
from serverlesspresso.shop import SHOP_CONFIG_ID

SHOP_CONFIG_KEY = {"configId": SHOP_CONFIG_ID}
# endReason of an order no execution ever took up (its Validator.NewOrder never started one).
NOT_STARTED = "not started (settled by the reconciler)"
_TERMINAL_VALUES = frozenset(state.value for state in OrderState if state.is_terminal)


class CapacitySlots:
    """The shop's capacity slots (the config item's `inFlight` string set), as the reconciler sees them."""

    def __init__(self, table_name: str, client: Any) -> None:
        self.table_name = table_name
        self.client = client

    def in_use(self) -> int:
        """How many slots are taken now (strongly consistent)."""
        item = self.client.get_item(
            TableName=self.table_name, Key=to_item(SHOP_CONFIG_KEY), ConsistentRead=True
        ).get("Item", {})
        return len(item.get("inFlight", {}).get("SS", []))

    def release(self, slot: str) -> bool:
        """Remove `slot` if it is taken; False when it was not (the workflow released it already)."""
        try:
            self.client.update_item(
                TableName=self.table_name,
                Key=to_item(SHOP_CONFIG_KEY),
                UpdateExpression="DELETE inFlight :slot",
                ConditionExpression="contains(inFlight, :name)",
                ExpressionAttributeValues={":slot": {"SS": [slot]}, ":name": {"S": slot}},
            )
        except ClientError as error:
            if error.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise
            return False
        return True


@dataclass(frozen=True)
class Settled:
    """What the reconciler did with one overdue order."""

    order_id: str
    outcome: str  # the terminal state written, "running" (left alone) or "ended already"
    slot_released: bool = False

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly form."""
        return {"orderId": self.order_id, "outcome": self.outcome, "slotReleased": self.slot_released}


@dataclass
class ReconcileReport:
    """Every overdue order found and what was done with it; the capacity in use afterwards."""

    cutoff: str
    orders: list[Settled] = field(default_factory=list)
    capacity_in_use: int = 0

    def as_dict(self) -> dict[str, Any]:
        """The function's return value (what `make reconcile` prints)."""
        return {
            "cutoff": self.cutoff,
            "settled": sum(1 for s in self.orders if s.outcome in _TERMINAL_VALUES),
            "slotsReleased": sum(1 for s in self.orders if s.slot_released),
            "capacityInUse": self.capacity_in_use,
            "orders": [s.as_dict() for s in self.orders],
        }


def reconcile_orders(
    *,
    orders: OrderRepository,
    sfn: Any,
    slots: CapacitySlots,
    settle_after: timedelta | None = None,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> ReconcileReport:
    """Settle every order still open `settle_after` after it was placed; idempotent (see module docstring).

    By default, after ordering.OPEN_ORDER_WINDOW: the longest an order can take (delivery retries of
    Validator.NewOrder, both waits, the Retry back-offs), after which it no longer counts as open.
    """
    window = OPEN_ORDER_WINDOW if settle_after is None else settle_after
    report = ReconcileReport(cutoff=timestamp(now() - window))
    for state in NON_TERMINAL_STATES:
        for order_id in orders.ids_created_before(state, report.cutoff):
            order = orders.get(order_id)
            if order is None or order.get("state") != state.value:
                continue  # moved on since the index was written
            settled = _settle(order, orders=orders, sfn=sfn, slots=slots)
            report.orders.append(settled)
            logger.warning("overdue order reconciled", extra=settled.as_dict() | {"was": state.value})
            # No outcome dimension: the OrdersReconciled alarm watches the one (service) series.
            with single_metric(name="OrdersReconciled", unit=MetricUnit.Count, value=1):
                pass
    report.capacity_in_use = slots.in_use()
    with single_metric(name="CapacityInUse", unit=MetricUnit.Count, value=report.capacity_in_use):
        pass
    return report


def _settle(order: dict[str, Any], *, orders: OrderRepository, sfn: Any, slots: CapacitySlots) -> Settled:
    order_id = str(order["orderId"])
    execution_arn = order.get("executionArn")
    if not execution_arn:
        # No execution ever stored a token for it, and any that was started has ended by now (each
        # releases its own slot): the order was never taken up.
        ended = orders.reject_unstarted(order_id, NOT_STARTED)
        return Settled(order_id, OrderState.REJECTED.value if ended else "ended already")
    ending = execution_ending(order_id, str(order.get("userId", "")), str(execution_arn), sfn)
    if ending is None:
        return Settled(order_id, "running")
    written = orders.end(ending)
    released = slots.release(execution_arn.rsplit(":", 1)[1])
    return Settled(order_id, ending.state.value if written else "ended already", released)


def execution_ending(order_id: str, user_id: str, execution_arn: str, sfn: Any) -> OrderEnded | None:
    """How the order's execution ended, as OrderEndedFunction would have recorded it; None if it runs.

    A SUCCEEDED execution's output is its last state's input: `reason` on the shop-unavailable path,
    `failure` on the cancelled path, `cause` on the timed-out path, the order number when completed.
    An execution that failed, timed out, was aborted or no longer exists ended the order as CANCELLED.
    """
    try:
        described = sfn.describe_execution(executionArn=execution_arn)
    except sfn.exceptions.ExecutionDoesNotExist:
        described = {"status": "NOT_FOUND"}
    status = described["status"]
    if status in ("RUNNING", "PENDING_REDRIVE"):
        return None
    order_number: int | None = None
    if status != "SUCCEEDED":
        state, reason = OrderState.CANCELLED, f"execution {status}"
    else:
        output = json.loads(described.get("output") or "{}")
        if "reason" in output:
            state, reason = OrderState.REJECTED, f"shop {output['reason']}"
        elif "failure" in output:
            state, reason = OrderState.CANCELLED, str(output["failure"].get("Error", "cancelled"))
        elif isinstance(output.get("cause"), str):
            state, reason = OrderState.TIMED_OUT, output["cause"]
        else:
            state, reason = OrderState.COMPLETED, "completed"
            order_number = output.get("Order", {}).get("Payload", {}).get("orderNumber")
    return OrderEnded(order_id, user_id, execution_arn, state, reason, order_number)
