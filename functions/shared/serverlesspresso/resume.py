"""Resuming an order's workflow: what the HTTP API calls when a customer or barista acts.

Look the token up and move the order to a pending state in one conditional write (so two clicks
cannot both resume), then SendTaskSuccess / SendTaskFailure; if that call fails, undo the move.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from contextlib import suppress
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from serverlesspresso.models import OrderState
from serverlesspresso.orders import ConditionFailed, OrderRepository, utc_now


class ResumeError(Exception):
    """Base of the domain errors a resume can end in; `order` is the order as stored, when known."""

    def __init__(self, message: str, order: Mapping[str, Any] | None = None) -> None:
        super().__init__(message)
        self.order = dict(order) if order else None


class OrderNotFound(ResumeError):
    """No order with this id."""


class TokenNotYetStored(ResumeError):
    """The workflow has not reached this wait yet (or its event is still on the way): retry shortly."""


class OrderWaitEnded(ResumeError):
    """The wait is over: the order ended, timed out, or its execution no longer exists."""


class WrongOrderState(ResumeError):
    """The order is in a state this action does not apply to."""


class ResumeThrottled(ResumeError):
    """Step Functions throttled the call after the client's own retries; the order is as it was: retry."""


@dataclass(frozen=True)
class ResumeAction:
    """One way of resuming a wait: which states it applies to, and how it ends the wait."""

    name: str
    from_states: frozenset[OrderState]
    pending_state: OrderState
    not_yet_states: frozenset[OrderState]
    failure_error: str | None = None  # None: SendTaskSuccess; else SendTaskFailure with this error
    require_unclaimed: bool = False  # only while no barista has claimed the order


SUBMIT_ORDER = ResumeAction(
    name="submit",
    from_states=frozenset({OrderState.WAITING_FOR_CUSTOMER}),
    pending_state=OrderState.SUBMITTED,
    not_yet_states=frozenset({OrderState.PLACED}),
)
COMPLETE_ORDER = ResumeAction(
    name="complete",
    from_states=frozenset({OrderState.WAITING_FOR_BARISTA}),
    pending_state=OrderState.COMPLETING,
    not_yet_states=frozenset({OrderState.SUBMITTED}),
)
CUSTOMER_CANCEL = ResumeAction(
    name="customer-cancel",
    from_states=frozenset({OrderState.WAITING_FOR_CUSTOMER, OrderState.WAITING_FOR_BARISTA}),
    pending_state=OrderState.CANCELLING,
    not_yet_states=frozenset({OrderState.PLACED, OrderState.SUBMITTED}),
    failure_error="CustomerCancelled",
    require_unclaimed=True,
)
BARISTA_CANCEL = ResumeAction(
    name="barista-cancel",
    from_states=frozenset({OrderState.WAITING_FOR_CUSTOMER, OrderState.WAITING_FOR_BARISTA}),
    pending_state=OrderState.CANCELLING,
    not_yet_states=frozenset({OrderState.PLACED, OrderState.SUBMITTED}),
    failure_error="BaristaCancelled",
)

# Step Functions errors that mean the wait is over for good; a retry cannot fix any of them.
_WAIT_OVER = {"TaskTimedOut", "TaskDoesNotExist", "InvalidToken"}
# ... and those that mean "not now": the caller may simply try again.
_THROTTLED = {"ThrottlingException", "TooManyRequestsException", "RequestLimitExceeded"}


def resume_order(
    order_id: str,
    action: ResumeAction,
    *,
    orders: OrderRepository,
    sfn: Any,
    output: Mapping[str, Any] | None = None,
    cause: str | None = None,
    attributes: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Resume the order's current wait with `action`; returns the order as it is after the move.

    `attributes` are stored in the same conditional write (e.g. the drink a customer submits).
    Raises OrderNotFound, TokenNotYetStored, OrderWaitEnded or WrongOrderState.
    """
    previous = _claim_wait(orders, order_id, action, attributes or {})
    token = previous["taskToken"]
    try:
        if action.failure_error is None:
            sfn.send_task_success(taskToken=token, output=json.dumps(dict(output or {"orderId": order_id})))
        else:
            sfn.send_task_failure(
                taskToken=token, error=action.failure_error, cause=cause or f"{action.name} by request"
            )
    except ClientError as error:
        _undo_claim(orders, order_id, action, previous)
        code = error.response["Error"]["Code"]
        if code in _WAIT_OVER:
            raise OrderWaitEnded(f"the order's wait has ended ({code})", _public(previous)) from None
        if code in _THROTTLED:
            raise ResumeThrottled(f"Step Functions is busy ({code}); try again", _public(previous)) from None
        raise
    current = orders.get(order_id)
    return _public(current or previous)


def _claim_wait(
    orders: OrderRepository, order_id: str, action: ResumeAction, attributes: Mapping[str, Any]
) -> dict[str, Any]:
    """Move the order to the action's pending state if it is waiting for it; returns the item before."""
    now = utc_now()
    state_values = {f":from{i}": state.value for i, state in enumerate(sorted(action.from_states))}
    condition = (
        f"#state IN ({', '.join(state_values)}) AND tokenState = #state AND attribute_exists(taskToken)"
    )
    if action.require_unclaimed:
        condition += " AND attribute_not_exists(baristaId)"
    sets = [
        "#state = :pending",
        "stateRank = :rank",
        "updatedAt = :now",
        "timeline = list_append(if_not_exists(timeline, :empty), :entry)",
    ]
    values: dict[str, Any] = state_values | {
        ":pending": action.pending_state.value,
        ":rank": action.pending_state.rank,
        ":now": now,
        ":empty": [],
        ":entry": [{"state": action.pending_state.value, "at": now}],
    }
    names = {"#state": "state"}
    for index, (name, value) in enumerate(attributes.items()):
        names[f"#a{index}"] = name
        values[f":a{index}"] = value
        sets.append(f"#a{index} = :a{index}")
    try:
        return orders.update(order_id, "SET " + ", ".join(sets), condition, values, names, "ALL_OLD")
    except ConditionFailed as refused:
        raise _why_refused(order_id, action, refused.current) from None


def _why_refused(order_id: str, action: ResumeAction, current: dict[str, Any] | None) -> ResumeError:
    if current is None:
        return OrderNotFound(f"order {order_id} does not exist")
    state = OrderState(current["state"])
    public = _public(current)
    if state.is_terminal:
        return OrderWaitEnded(f"order {order_id} has ended ({state.value})", public)
    if state in action.not_yet_states:
        message = f"order {order_id} is not waiting yet ({state.value}); retry shortly"
        return TokenNotYetStored(message, public)
    if action.require_unclaimed and current.get("baristaId") and state in action.from_states:
        return WrongOrderState(f"order {order_id} is already being made", public)
    return WrongOrderState(f"order {order_id} is {state.value}; cannot {action.name}", public)


def _undo_claim(
    orders: OrderRepository, order_id: str, action: ResumeAction, previous: dict[str, Any]
) -> None:
    """Put the order back where it was, unless something else has moved it meanwhile."""
    now = utc_now()
    # If a workflow event already moved the order on, that state is the truth: keep it.
    with suppress(ConditionFailed):
        orders.update(
            order_id,
            # The timeline records the way back too, so its last entry is always the current state.
            "SET #state = :previous, stateRank = :previousRank, updatedAt = :now, "
            "timeline = list_append(if_not_exists(timeline, :empty), :entry)",
            "#state = :pending",
            {
                ":previous": previous["state"],
                ":previousRank": previous["stateRank"],
                ":pending": action.pending_state.value,
                ":now": now,
                ":empty": [],
                ":entry": [{"state": previous["state"], "at": now}],
            },
            {"#state": "state"},
            "NONE",
        )


def _public(order: Mapping[str, Any]) -> dict[str, Any]:
    """The order without its task token: what may leave this package."""
    return {key: value for key, value in order.items() if key not in ("taskToken", "tokenState")}
