"""What customers and baristas can do with orders and the shop config: the HTTP API's domain logic.

Every function takes the Caller (from the authorizer's claims) and decides on its own who may do what,
so the rules hold whatever front end calls them. Errors are domain exceptions; the API maps each to
one status code. Nothing returned from here contains a task token: orders leave through order_view.
"""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from botocore.exceptions import BotoCoreError, ClientError

from serverlesspresso.admission import AdmissionCode, AdmissionDesk
from serverlesspresso.changes import ChangeFeed
from serverlesspresso.identity import Caller
from serverlesspresso.models import OrderState
from serverlesspresso.orders import (
    BY_CUSTOMER_INDEX,
    BY_STATE_INDEX,
    INDEX_PARTITION_KEYS,
    ConditionFailed,
    OrderRepository,
    timestamp,
)
from serverlesspresso.publisher import PublishFailed, publish_event
from serverlesspresso.resume import (
    BARISTA_CANCEL,
    COMPLETE_ORDER,
    CUSTOMER_CANCEL,
    SUBMIT_ORDER,
    OrderNotFound,
    OrderWaitEnded,
    ResumeError,
    TokenNotYetStored,
    WrongOrderState,
    resume_order,
)
from serverlesspresso.shop import (
    InvalidShopRequest,
    ShopConfig,
    ShopConfigStore,
    ShopConfigUpdate,
    check_drink,
)

NEW_ORDER_EVENT = "Validator.NewOrder"

# The fields of an order that may leave the service. A whitelist, so a field added to the item later
# (like taskToken, tokenState or executionArn today) stays private until someone decides otherwise.
PUBLIC_ORDER_FIELDS = (
    "orderId",
    "state",
    "orderNumber",
    "drink",
    "modifiers",
    "baristaId",
    "createdAt",
    "updatedAt",
    "timeline",
    "endReason",
    "version",
    "customerName",  # what the barista calls out and the display may show: a name, nothing more
)

# An order that has not ended this long after it was placed is stuck (the workflow's longest path is
# an hour of EventBridge delivery retries for Validator.NewOrder, then 5 + 15 minutes of waits), so it
# stops counting towards the customer's open orders rather than blocking them for ever.
OPEN_ORDER_WINDOW = timedelta(hours=2)

DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 50
_MAX_PAGE_TOKEN_LENGTH = 2048


class Forbidden(Exception):
    """The caller is signed in but may not do this (wrong role, or not the order's owner)."""


class InvalidRequest(ValueError):
    """A well-formed request the domain refuses (a drink not on the menu, a bad page token)."""

    def __init__(self, message: str, field: str) -> None:
        super().__init__(message)
        self.field = field


class TooManyOpenOrders(Exception):
    """The customer already has maxOpenOrdersPerCustomer orders open."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"you already have {limit} open orders; wait for one to finish")
        self.limit = limit


class OrderNotStarted(Exception):
    """The order was written but Validator.NewOrder could not be published; it was ended as REJECTED."""

    def __init__(self, order_id: str) -> None:
        super().__init__("the order could not be started; please try again")
        self.order_id = order_id


class DrinkChoice(Protocol):
    """What a customer submits for her order: a drink and its modifiers (names, checked by the menu)."""

    drink: str
    modifiers: list[str]


def no_request() -> None:
    """The request reader of a call that reads nothing from the request."""


@dataclass(frozen=True)
class Page:
    """A page of orders for the API: the public views and the opaque token for the next page."""

    orders: list[dict[str, Any]]
    next_token: str | None

    def as_dict(self) -> dict[str, Any]:
        """JSON body of GET /orders."""
        return {"orders": self.orders, "nextToken": self.next_token}


def order_view(order: Mapping[str, Any]) -> dict[str, Any]:
    """The public shape of an order: only PUBLIC_ORDER_FIELDS, never a task token or an execution ARN."""
    return {name: order[name] for name in PUBLIC_ORDER_FIELDS if name in order}


def require_barista(caller: Caller) -> None:
    """Forbidden unless the caller is in the barista group."""
    if not caller.is_barista:
        raise Forbidden("baristas only")


def require_staff_screen(caller: Caller) -> None:
    """Forbidden unless the caller is a barista or the shop's display."""
    if not (caller.is_barista or caller.is_display):
        raise Forbidden("baristas and the shop's display only")


# ------------------------------------------------------------------------------------------ customers
def place_order(
    caller: Caller,
    *,
    orders: OrderRepository,
    shop: ShopConfigStore,
    events: Any,
    bus_name: str,
    admission: AdmissionDesk | None = None,
    admission_code: str | None = None,
    new_order_id: Callable[[], str] = lambda: str(uuid.uuid4()),
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> dict[str, Any]:
    """Start an order for the caller: write it PLACED, then publish Validator.NewOrder {orderId, userId}.

    When the shop requires admission, `admission_code` must be a current code with places left
    (AdmissionRefused otherwise); one place is taken only once the open-order limit let the order in.

    The order is written first so the workflow's events always find it. If the publish fails, the order
    is ended as REJECTED (no half-started order is left behind) and OrderNotStarted is raised.

    The open-order limit reads the ByCustomer index, which is eventually consistent: a burst of requests
    from one customer within the index's replication lag (typically well under a second) can each see
    the same count and together exceed the limit by a few orders. That is acceptable for a fairness
    limit; shop capacity itself is enforced atomically by the workflow (the inFlight set).
    """
    config = shop.get()
    since = timestamp(now() - OPEN_ORDER_WINDOW)
    if orders.count_open_orders(caller.user_id, since) >= config.maxOpenOrdersPerCustomer:
        raise TooManyOpenOrders(config.maxOpenOrdersPerCustomer)
    if config.requireAdmission:
        if admission is None:
            raise ValueError("the shop requires admission: pass the AdmissionDesk")
        admission.admit(admission_code, config.ordersPerAdmissionCode, now())
    order_id = new_order_id()
    order = orders.create(order_id, caller.user_id, caller.display_name)
    try:
        publish_event(
            NEW_ORDER_EVENT, {"orderId": order_id, "userId": caller.user_id}, bus_name=bus_name, client=events
        )
    except (PublishFailed, ClientError, BotoCoreError) as failure:
        # A timeout may hide a publish that did succeed. If no workflow has touched the order yet, it
        # is rejected (a workflow that comes later finds it REJECTED, its token events are refused as
        # stale, and it ends by timing out, releasing its capacity slot); if one already has, the
        # order was placed after all, and asking the customer to try again would make a second one.
        if orders.reject_unstarted(order_id, f"not started: {type(failure).__name__}"):
            raise OrderNotStarted(order_id) from None
        order = orders.get(order_id) or order
    ChangeFeed(events, bus_name).order_changed(order_id, OrderState.PLACED)
    return order_view(order)


# The calls on one order take the request as a reader (`read_request`, `read_choice`) rather than as
# values: it is read only once the order is known to be the caller's, so a stranger's malformed body
# is refused as not theirs (403/404) and learns nothing from a validation error (authorization first).


def get_order_for(
    caller: Caller, order_id: str, *, orders: OrderRepository, read_request: Callable[[], object] = no_request
) -> dict[str, Any]:
    """The order, if the caller owns it or is a barista."""
    order = _load(order_id, orders)
    if order.get("userId") != caller.user_id and not caller.is_barista:
        raise Forbidden("not your order")
    read_request()
    return order_view(order)


def submit_drink(
    caller: Caller,
    order_id: str,
    read_choice: Callable[[], DrinkChoice],
    *,
    orders: OrderRepository,
    shop: ShopConfigStore,
    sfn: Any,
    changes: ChangeFeed,
) -> dict[str, Any]:
    """The owner chooses the drink (checked against the menu); resumes the workflow's first wait."""
    _load_owned(caller, order_id, orders)
    chosen = read_choice()
    drink, modifiers = chosen.drink, list(chosen.modifiers)
    try:
        check_drink(shop.get(), drink, modifiers)
    except InvalidShopRequest as invalid:
        raise InvalidRequest(str(invalid), invalid.field) from None
    choice = {"drink": drink, "modifiers": list(modifiers)}
    resumed = resume_order(
        order_id,
        SUBMIT_ORDER,
        orders=orders,
        sfn=sfn,
        output={"orderId": order_id, **choice},
        attributes=choice,
    )
    changes.order_changed(order_id, SUBMIT_ORDER.pending_state)
    return order_view(resumed)


def cancel_by_customer(
    caller: Caller,
    order_id: str,
    *,
    orders: OrderRepository,
    sfn: Any,
    changes: ChangeFeed,
    read_request: Callable[[], object] = no_request,
) -> dict[str, Any]:
    """The owner cancels, as long as no barista has started making the order."""
    _load_owned(caller, order_id, orders)
    read_request()
    resumed = resume_order(
        order_id, CUSTOMER_CANCEL, orders=orders, sfn=sfn, cause="cancelled by the customer"
    )
    changes.order_changed(order_id, CUSTOMER_CANCEL.pending_state)
    return order_view(resumed)


def list_orders(
    caller: Caller,
    *,
    orders: OrderRepository,
    state: OrderState | None = None,
    limit: int = DEFAULT_PAGE_SIZE,
    next_token: str | None = None,
) -> Page:
    """Newest first: a customer's own orders (optionally of one state); for a barista, the queue.

    The barista's queue is the orders in `state` (default WAITING_FOR_BARISTA: ready to be made).
    The display reads the queue as a barista does (and can change nothing).
    A customer's state filter is applied after the page is read, so such a page may hold fewer than
    `limit` orders while nextToken says there are more.
    """
    if not 1 <= limit <= MAX_PAGE_SIZE:
        raise InvalidRequest(f"limit must be between 1 and {MAX_PAGE_SIZE}", "limit")
    if caller.is_barista or caller.is_display:
        index, partition = BY_STATE_INDEX, (state or OrderState.WAITING_FOR_BARISTA).value
        filter_state = None
    else:
        index, partition, filter_state = BY_CUSTOMER_INDEX, caller.user_id, state
    start_key = decode_page_token(next_token, index, partition) if next_token else None
    page = orders.query_index(index, partition, limit=limit, start_key=start_key, state=filter_state)
    return Page(
        orders=[order_view(order) for order in page.orders],
        next_token=encode_page_token(page.last_key) if page.last_key else None,
    )


# ------------------------------------------------------------------------------------------- baristas
def claim_order(
    caller: Caller, order_id: str, *, orders: OrderRepository, changes: ChangeFeed
) -> dict[str, Any]:
    """A barista starts making the order (records baristaId); idempotent for the same barista."""
    require_barista(caller)
    try:
        claimed = orders.set_barista(order_id, caller.user_id, OrderState.WAITING_FOR_BARISTA)
    except ConditionFailed as refused:
        raise _why_claim_refused(order_id, caller, refused.current) from None
    changes.order_changed(order_id, OrderState.WAITING_FOR_BARISTA)
    return order_view(claimed)


def release_order(
    caller: Caller, order_id: str, *, orders: OrderRepository, changes: ChangeFeed
) -> dict[str, Any]:
    """The barista who claimed the order gives it back to the queue; idempotent when nobody holds it."""
    require_barista(caller)
    try:
        released = orders.clear_barista(order_id, caller.user_id, OrderState.WAITING_FOR_BARISTA)
    except ConditionFailed as refused:
        raise _why_claim_refused(order_id, caller, refused.current) from None
    changes.order_changed(order_id, OrderState.WAITING_FOR_BARISTA)
    return order_view(released)


def complete_order(
    caller: Caller, order_id: str, *, orders: OrderRepository, sfn: Any, changes: ChangeFeed
) -> dict[str, Any]:
    """A barista hands the drink over: resumes the second wait with success."""
    require_barista(caller)
    resumed = resume_order(order_id, COMPLETE_ORDER, orders=orders, sfn=sfn)
    changes.order_changed(order_id, COMPLETE_ORDER.pending_state)
    return order_view(resumed)


def cancel_by_barista(
    caller: Caller,
    order_id: str,
    *,
    orders: OrderRepository,
    sfn: Any,
    changes: ChangeFeed,
    reason: str | None = None,
) -> dict[str, Any]:
    """A barista cancels (out of milk...): resumes the current wait with failure BaristaCancelled."""
    require_barista(caller)
    cause = reason or "cancelled by the barista"
    resumed = resume_order(order_id, BARISTA_CANCEL, orders=orders, sfn=sfn, cause=cause)
    changes.order_changed(order_id, BARISTA_CANCEL.pending_state)
    return order_view(resumed)


# ---------------------------------------------------------------------------------------- shop config
def get_shop_config(caller: Caller, *, shop: ShopConfigStore) -> ShopConfig:
    """Anyone signed in may read the menu and whether the shop is open."""
    return shop.get()


def current_admission(caller: Caller, *, shop: ShopConfigStore, admission: AdmissionDesk) -> AdmissionCode:
    """The admission code the display shows now (baristas and the display only)."""
    require_staff_screen(caller)
    return admission.current(shop.get().ordersPerAdmissionCode)


def update_shop_config(
    caller: Caller, update: ShopConfigUpdate, *, shop: ShopConfigStore, changes: ChangeFeed
) -> ShopConfig:
    """A barista changes some of isOpen, maxInFlight, maxOpenOrdersPerCustomer, menu (only those)."""
    require_barista(caller)
    updated = shop.update(update)
    changes.shop_changed()
    return updated


# ------------------------------------------------------------------------------------------ internals
def _load(order_id: str, orders: OrderRepository) -> dict[str, Any]:
    order = orders.get(order_id)
    if order is None:
        raise OrderNotFound(f"order {order_id} does not exist")
    return order


def _load_owned(caller: Caller, order_id: str, orders: OrderRepository) -> dict[str, Any]:
    # Ownership never changes after creation (every write is guarded on userId), so checking it on a
    # read before the conditional write cannot be raced.
    order = _load(order_id, orders)
    if order.get("userId") != caller.user_id:
        raise Forbidden("not your order")
    return order


def _why_claim_refused(order_id: str, caller: Caller, current: dict[str, Any] | None) -> ResumeError:
    if current is None:
        return OrderNotFound(f"order {order_id} does not exist")
    state = OrderState(current["state"])
    if state.is_terminal:
        return OrderWaitEnded(f"order {order_id} has ended ({state.value})")
    if state is OrderState.SUBMITTED:
        return TokenNotYetStored(f"order {order_id} is not in the barista queue yet; retry shortly")
    if state is OrderState.WAITING_FOR_BARISTA and current.get("baristaId") not in (None, caller.user_id):
        return WrongOrderState(f"order {order_id} is being made by another barista")
    return WrongOrderState(f"order {order_id} is {state.value}; it is not waiting for a barista")


def encode_page_token(last_key: Mapping[str, Any]) -> str:
    """Opaque nextToken: base64url of DynamoDB's LastEvaluatedKey as JSON."""
    raw = json.dumps(last_key, separators=(",", ":"), sort_keys=True).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_page_token(token: str, index: str, partition_value: str) -> dict[str, Any]:
    """The ExclusiveStartKey a nextToken stands for; InvalidRequest unless it is one this query produced.

    The key must have exactly the index's key attributes, as strings, and the partition the query reads,
    so a token cannot be crafted to start another customer's (or another state's) listing.
    """
    invalid = InvalidRequest("nextToken is not valid for this listing", "nextToken")
    if len(token) > _MAX_PAGE_TOKEN_LENGTH:
        raise invalid
    try:
        key = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except (binascii.Error, ValueError):
        raise invalid from None
    partition_name = INDEX_PARTITION_KEYS[index]
    expected = {"orderId", "createdAt", partition_name}
    if not isinstance(key, dict) or set(key) != expected:
        raise invalid
    if not all(
        isinstance(value, dict) and set(value) == {"S"} and isinstance(value["S"], str)
        for value in key.values()
    ):
        raise invalid
    if key[partition_name]["S"] != partition_value:
        raise invalid
    return key
