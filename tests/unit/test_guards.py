"""The guards the domain package rests on, each shown failing the way it would if it broke.

Found by mutation testing (`make mutate`, bench/mutate.py): every test here fails when one single
change is made to a guard that the rest of the suite let through. They run against moto's tables
(built from template.yaml) and call the domain functions the handlers call; no workflow is needed.
"""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError, EndpointConnectionError, ReadTimeoutError
from botocore.stub import Stubber
from pydantic import ValidationError

from serverlesspresso.changes import ChangeFeed
from serverlesspresso.identity import Caller
from serverlesspresso.models import OrderEnded, OrderState, TokenIssued
from serverlesspresso.ordering import (
    InvalidRequest,
    OrderNotStarted,
    TooManyOpenOrders,
    claim_order,
    list_orders,
    order_view,
    place_order,
    release_order,
)
from serverlesspresso.orders import OrderRepository, TokenStore, timestamp
from serverlesspresso.resume import (
    COMPLETE_ORDER,
    CUSTOMER_CANCEL,
    SUBMIT_ORDER,
    OrderNotFound,
    OrderWaitEnded,
    TokenNotYetStored,
    WrongOrderState,
    resume_order,
)
from serverlesspresso.shop import ShopConfigStore, ShopConfigUpdate
from serverlesspresso.tracking import keep_task_token
from tests.unit.conftest import AwsEnv, BusCapture, OrdersTable

ALICE = "alice-sub"
CAROL = "carol-sub"
EXECUTION = "arn:aws:states:us-east-1:123456789012:execution:OrderProcessor:order-1-1"
OTHER_EXECUTION = "arn:aws:states:us-east-1:123456789012:execution:OrderProcessor:order-1-2"
AN_HOUR_AGO = "2026-11-29T09:00:00.000Z"


@pytest.fixture
def shop(aws: AwsEnv) -> ShopConfigStore:
    """The shop config item, with the template's default capacity, admission codes off."""
    return ShopConfigStore(aws.tables["ConfigTable"], aws.dynamodb, 20, default_require_admission=False)


def stored_order(state: OrderState, **extra: Any) -> dict[str, Any]:
    """An order as the functions would have written it, in `state`, owned by Alice."""
    return {
        "orderId": "order-1",
        "userId": ALICE,
        "state": state.value,
        "stateRank": state.rank,
        "createdAt": AN_HOUR_AGO,
        "updatedAt": AN_HOUR_AGO,
        "timeline": [{"state": state.value, "at": AN_HOUR_AGO}],
        **extra,
    }


def token(
    user_id: str = ALICE, execution_arn: str = EXECUTION, state: OrderState = OrderState.WAITING_FOR_CUSTOMER
):
    """The wait a workflow event announces for order-1."""
    return TokenIssued("order-1", user_id, execution_arn, "token-" + execution_arn[-3:], state)


# ------------------------------------------------------------------------------- workflow guard
def test_a_workflow_event_for_another_customers_order_is_refused_even_moving_it_forward(
    orders: OrderRepository,
    orders_table: OrdersTable,
) -> None:
    # Given Alice's order, placed by the API and not yet touched by any workflow
    orders_table.put(stored_order(OrderState.PLACED))

    # When a workflow started for Carol (a forged Validator.NewOrder naming Alice's order) reports
    # its first wait, a state further on than PLACED
    result = orders.store_task_token(token(user_id=CAROL))

    # Then the token is refused as foreign, and the order is untouched
    assert result.outcome is TokenStore.FOREIGN
    assert orders_table.get("order-1") == stored_order(OrderState.PLACED)


def test_an_end_reported_for_another_customer_is_not_recorded(
    orders: OrderRepository,
    orders_table: OrdersTable,
) -> None:
    # Given Alice's order waiting for her, in the execution that owns it
    orders_table.put(stored_order(OrderState.WAITING_FOR_CUSTOMER, executionArn=EXECUTION))

    # When an end of the same execution arrives naming Carol as the customer
    recorded = orders.end(OrderEnded("order-1", CAROL, EXECUTION, OrderState.TIMED_OUT, "timed out"))

    # Then nothing is recorded
    assert recorded is False
    assert orders_table.get("order-1")["state"] == "WAITING_FOR_CUSTOMER"  # type: ignore[index]


def test_a_transition_keeps_when_the_order_was_created(
    orders: OrderRepository,
    orders_table: OrdersTable,
) -> None:
    # Given an order placed an hour ago
    orders_table.put(stored_order(OrderState.PLACED))

    # When its workflow reaches the customer wait, and later ends
    assert orders.store_task_token(token()).outcome is TokenStore.STORED
    assert orders.end(OrderEnded("order-1", ALICE, EXECUTION, OrderState.TIMED_OUT, "customer timeout"))

    # Then createdAt (the listings' sort key and the open-order window's) is still the hour-old one
    stored = orders_table.get("order-1")
    assert stored is not None
    assert stored["createdAt"] == AN_HOUR_AGO
    assert stored["updatedAt"] > AN_HOUR_AGO


def test_the_order_number_is_recorded_with_the_barista_wait_and_not_before(
    orders: OrderRepository,
    orders_table: OrdersTable,
) -> None:
    # Given Alice's order
    orders_table.put(stored_order(OrderState.PLACED))

    # When its workflow reaches the customer wait (no number yet), then the barista wait (number 7)
    orders.store_task_token(token())
    number_while_customer_waits = orders_table.get("order-1").get("orderNumber", "none")  # type: ignore[union-attr]
    orders.store_task_token(
        TokenIssued("order-1", ALICE, EXECUTION, "tok-2", OrderState.WAITING_FOR_BARISTA, order_number=7)
    )

    # Then the order has no number until the barista wait gives it one
    assert number_while_customer_waits == "none"
    assert orders_table.get("order-1")["orderNumber"] == 7  # type: ignore[index]


# ----------------------------------------------------------------------------- placing an order
def test_the_open_order_limit_counts_orders_beyond_the_first_page_of_the_index(
    orders: OrderRepository, shop: ShopConfigStore, orders_table: OrdersTable, bus: BusCapture, aws: AwsEnv
) -> None:
    # Given Alice holds three open orders (the default limit), so large that DynamoDB's 1 MB page of
    # the ByCustomer index cannot hold them all
    for index in range(3):
        orders_table.put(
            stored_order(OrderState.WAITING_FOR_CUSTOMER, orderId=f"big-{index}", drink="x" * 350_000)
            | {"createdAt": timestamp(datetime.now(UTC) - timedelta(minutes=index + 1))}
        )

    # When she places a fourth
    # Then it is refused with her limit
    with pytest.raises(TooManyOpenOrders) as refused:
        place_order(Caller(ALICE), orders=orders, shop=shop, events=aws.events, bus_name=aws.bus_name)
    assert refused.value.limit == 3
    assert bus.events("Validator.NewOrder") == []


def test_ended_orders_do_not_count_as_open(
    orders: OrderRepository, shop: ShopConfigStore, orders_table: OrdersTable, aws: AwsEnv
) -> None:
    # Given Alice's last three orders ended, each in its own way
    for index, state in enumerate((OrderState.COMPLETED, OrderState.CANCELLED, OrderState.TIMED_OUT)):
        orders_table.put(
            stored_order(state, orderId=f"ended-{index}")
            | {"createdAt": timestamp(datetime.now(UTC) - timedelta(minutes=1))}
        )

    # When she places another order
    placed = place_order(Caller(ALICE), orders=orders, shop=shop, events=aws.events, bus_name=aws.bus_name)

    # Then it is placed: only orders that have not ended hold her limit
    assert placed["state"] == "PLACED"


@pytest.mark.parametrize(
    ("age", "counted"),
    [(timedelta(minutes=119), True), (timedelta(hours=2), True), (timedelta(minutes=121), False)],
)
def test_an_order_stuck_for_more_than_two_hours_stops_counting_as_open(
    age: timedelta,
    counted: bool,
    orders: OrderRepository,
    shop: ShopConfigStore,
    orders_table: OrdersTable,
    aws: AwsEnv,
) -> None:
    # Given Alice holds two open orders from a minute ago and one placed `age` ago that never ended
    now = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
    for index, placed in enumerate((timedelta(minutes=1), timedelta(minutes=1), age)):
        orders_table.put(
            stored_order(OrderState.WAITING_FOR_CUSTOMER, orderId=f"open-{index}")
            | {"createdAt": timestamp(now - placed)}
        )

    # When she places another
    def place() -> dict[str, Any]:
        return place_order(
            Caller(ALICE), orders=orders, shop=shop, events=aws.events, bus_name=aws.bus_name, now=lambda: now
        )

    # Then the old order holds her limit of 3 within two hours, and no longer after
    if counted:
        with pytest.raises(TooManyOpenOrders):
            place()
    else:
        assert place()["state"] == "PLACED"


class _Events:
    """An EventBridge client whose PutEvents fails the way a network does (botocore raises)."""

    def __init__(self, failure: Exception, before_failing: Any = None) -> None:
        self.failure = failure
        self.before_failing = before_failing

    def put_events(self, Entries: list[dict[str, Any]]) -> dict[str, Any]:
        if self.before_failing:
            self.before_failing(json.loads(Entries[0]["Detail"]))
        raise self.failure


@pytest.mark.parametrize(
    "failure",
    [
        EndpointConnectionError(endpoint_url="https://events.us-east-1.amazonaws.com/"),
        ReadTimeoutError(endpoint_url="https://events.us-east-1.amazonaws.com/"),
    ],
    ids=["connection", "timeout"],
)
def test_a_bus_that_cannot_be_reached_rejects_the_new_order(
    failure: Exception, orders: OrderRepository, shop: ShopConfigStore, orders_table: OrdersTable, aws: AwsEnv
) -> None:
    # Given the event bus cannot be reached (botocore raises, no response at all)
    # When Alice places an order
    with pytest.raises(OrderNotStarted) as refused:
        place_order(Caller(ALICE), orders=orders, shop=shop, events=_Events(failure), bus_name=aws.bus_name)

    # Then the order is not left PLACED: it ended REJECTED, saying why
    stored = orders_table.get(refused.value.order_id)
    assert stored is not None
    assert (stored["state"], stored["endReason"]) == ("REJECTED", f"not started: {type(failure).__name__}")


def test_when_a_workflow_got_the_order_despite_a_publish_timeout_the_order_is_placed(
    orders: OrderRepository, shop: ShopConfigStore, orders_table: OrdersTable, aws: AwsEnv
) -> None:
    # Given PutEvents delivers the event, a workflow picks the order up and stores its first token,
    # and only then does the call time out on the API's side
    def workflow_takes_it(detail: dict[str, Any]) -> None:
        orders.store_task_token(
            TokenIssued(detail["orderId"], ALICE, EXECUTION, "tok", OrderState.WAITING_FOR_CUSTOMER)
        )

    events = _Events(ReadTimeoutError(endpoint_url="https://events"), before_failing=workflow_takes_it)

    # When Alice places the order
    placed = place_order(Caller(ALICE), orders=orders, shop=shop, events=events, bus_name=aws.bus_name)

    # Then she is told it was placed (it was: asking her to try again would make a second order), and
    # the workflow's order is left as the workflow has it
    stored = orders_table.get(placed["orderId"])
    assert stored is not None
    assert stored["state"] == placed["state"] == "WAITING_FOR_CUSTOMER"
    assert "taskToken" not in placed


# ---------------------------------------------------------------------------------------- resume
class _SlowFailingSfn:
    """A Step Functions client whose SendTaskSuccess fails after the workflow has moved on."""

    def __init__(self, meanwhile: Any) -> None:
        self.meanwhile = meanwhile

    def send_task_success(self, **_: Any) -> None:
        self.meanwhile()
        raise ClientError(
            {"Error": {"Code": "ServiceUnavailable", "Message": "try later"}}, "SendTaskSuccess"
        )


def test_a_failed_resume_does_not_undo_a_state_the_workflow_reached_meanwhile(
    orders: OrderRepository,
    orders_table: OrdersTable,
) -> None:
    # Given Alice's order waits for her drink
    orders_table.put(
        stored_order(
            OrderState.WAITING_FOR_CUSTOMER,
            executionArn=EXECUTION,
            taskToken="tok",
            tokenState="WAITING_FOR_CUSTOMER",
        )
    )

    # When she submits, and while SendTaskSuccess is on its way the workflow moves the order to the
    # barista queue, and then the call reports a failure
    def workflow_moves_on() -> None:
        orders_table.set(
            "order-1", state="WAITING_FOR_BARISTA", stateRank=OrderState.WAITING_FOR_BARISTA.rank
        )

    with pytest.raises(ClientError):
        resume_order("order-1", SUBMIT_ORDER, orders=orders, sfn=_SlowFailingSfn(workflow_moves_on))

    # Then the undo leaves the newer state alone
    assert orders_table.get("order-1")["state"] == "WAITING_FOR_BARISTA"  # type: ignore[index]


# -------------------------------------------------------------------------------------- baristas
BOB = Caller("bob-sub", frozenset({"barista"}))


@pytest.mark.parametrize(
    ("state", "extra", "refusal", "message"),
    [
        (OrderState.SUBMITTED, {}, TokenNotYetStored, "not in the barista queue yet"),
        (OrderState.WAITING_FOR_CUSTOMER, {}, WrongOrderState, "not waiting for a barista"),
        (OrderState.WAITING_FOR_BARISTA, {"baristaId": "dave-sub"}, WrongOrderState, "another barista"),
        (OrderState.COMPLETING, {"baristaId": "dave-sub"}, WrongOrderState, "not waiting for a barista"),
        (OrderState.COMPLETED, {}, OrderWaitEnded, "has ended"),
    ],
)
def test_a_barista_claims_only_an_order_in_the_queue_that_nobody_else_makes(
    state: OrderState,
    extra: dict[str, Any],
    refusal: type[Exception],
    message: str,
    orders: OrderRepository,
    orders_table: OrdersTable,
    changes: ChangeFeed,
) -> None:
    # Given Alice's order in `state`
    orders_table.put(stored_order(state, **extra))

    # When Bob (a barista) claims it, or gives it back
    # Then each is refused with why: retry shortly, not this order, or over
    for act in (claim_order, release_order):
        with pytest.raises(refusal, match=message):
            act(BOB, "order-1", orders=orders, changes=changes)
    assert orders_table.get("order-1") == stored_order(state, **extra)


def test_claiming_an_order_that_does_not_exist_is_not_found(
    orders: OrderRepository, changes: ChangeFeed
) -> None:
    with pytest.raises(OrderNotFound):
        claim_order(BOB, "order-1", orders=orders, changes=changes)


class _RecordingSfn:
    """A Step Functions client that accepts every callback and remembers which were sent."""

    def __init__(self) -> None:
        self.sent: list[str] = []

    def send_task_success(self, **_: Any) -> None:
        self.sent.append("success")

    def send_task_failure(self, error: str, **_: Any) -> None:
        self.sent.append(error)


def test_once_a_barista_makes_the_order_only_a_barista_may_end_its_wait(
    orders: OrderRepository,
    orders_table: OrdersTable,
) -> None:
    # Given Alice's order waits for a barista, and Bob has started making it
    orders_table.put(
        stored_order(
            OrderState.WAITING_FOR_BARISTA,
            executionArn=EXECUTION,
            taskToken="tok",
            tokenState="WAITING_FOR_BARISTA",
            baristaId="bob-sub",
        )
    )
    sfn = _RecordingSfn()

    # When Alice cancels, Then she is refused and the workflow is not told anything
    with pytest.raises(WrongOrderState, match="already being made"):
        resume_order("order-1", CUSTOMER_CANCEL, orders=orders, sfn=sfn)
    assert sfn.sent == []

    # When Bob hands the drink over, Then the workflow is resumed
    resume_order("order-1", COMPLETE_ORDER, orders=orders, sfn=sfn)
    assert sfn.sent == ["success"]


# ------------------------------------------------------------------------------- token handlers
@pytest.mark.parametrize("code", ["TaskTimedOut", "TaskDoesNotExist", "InvalidToken"])
def test_a_duplicate_execution_whose_wait_already_closed_is_left_alone(
    code: str,
    orders: OrderRepository,
    orders_table: OrdersTable,
    changes: ChangeFeed,
) -> None:
    # Given Alice's order belongs to one execution
    orders_table.put(stored_order(OrderState.WAITING_FOR_CUSTOMER, executionArn=EXECUTION, taskToken="tok"))
    # And Step Functions answers the duplicate's SendTaskFailure with `code` (its wait is over)
    sfn = boto3.client("stepfunctions")
    stubber = Stubber(sfn)
    stubber.add_client_error(
        "send_task_failure",
        service_error_code=code,
        expected_params={
            "taskToken": "token-1-2",
            "error": "DuplicateExecution",
            "cause": "order order-1 is handled by another execution",
        },
    )

    # When a second execution of the same order reports its wait
    with stubber:
        outcome = keep_task_token(
            token(execution_arn=OTHER_EXECUTION), orders=orders, sfn=sfn, changes=changes
        )

    # Then it is reported as foreign, nothing fails, and the owner's token is kept
    stubber.assert_no_pending_responses()
    assert outcome.as_dict() == {"orderId": "order-1", "outcome": "foreign"}
    assert orders_table.get("order-1")["taskToken"] == "tok"  # type: ignore[index]


def test_a_throttled_failure_of_a_duplicate_execution_is_raised_for_a_retry(
    orders: OrderRepository,
    orders_table: OrdersTable,
    changes: ChangeFeed,
) -> None:
    # Given Alice's order belongs to one execution, and Step Functions throttles
    orders_table.put(stored_order(OrderState.WAITING_FOR_CUSTOMER, executionArn=EXECUTION, taskToken="tok"))
    sfn = boto3.client("stepfunctions")
    stubber = Stubber(sfn)
    stubber.add_client_error("send_task_failure", service_error_code="ThrottlingException")

    # When a duplicate execution reports its wait
    # Then the error reaches Lambda, which retries the event (the duplicate still holds a slot)
    with stubber, pytest.raises(ClientError, match="ThrottlingException"):
        keep_task_token(token(execution_arn=OTHER_EXECUTION), orders=orders, sfn=sfn, changes=changes)


# ------------------------------------------------------------------------------------ page tokens
def _token(key: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(key).encode()).decode().rstrip("=")


_VALID_KEY = {"orderId": {"S": "o"}, "createdAt": {"S": AN_HOUR_AGO}, "userId": {"S": ALICE}}


@pytest.mark.parametrize(
    "next_token",
    [
        _token(_VALID_KEY | {"orderId": {"S": 5}}),  # a number where DynamoDB has a string
        _token(_VALID_KEY | {"orderId": {"S": {"S": "o"}}}),  # nested
        _token(_VALID_KEY | {"createdAt": {"N": "5"}}),  # another type
        _token(_VALID_KEY | {"createdAt": {"S": AN_HOUR_AGO, "N": "5"}}),  # two types
        _token(_VALID_KEY | {"userId": {"S": CAROL}}),  # another customer's listing
        _token({k: v for k, v in _VALID_KEY.items() if k != "createdAt"}),  # a key missing
        _token(_VALID_KEY | {"state": {"S": "PLACED"}}),  # a key too many
        _token([_VALID_KEY]),  # not an object
        _token("orderId"),
        _token(_VALID_KEY) + "A" * 2048,  # too long to be one of ours
        "%%%",  # not base64
    ],
)
def test_a_crafted_page_token_is_refused_as_invalid(next_token: str, orders: OrderRepository) -> None:
    # Given a page token this listing never produced
    # When Alice lists her orders with it
    # Then the request is refused naming nextToken (a 400), never read from DynamoDB (a 500)
    with pytest.raises(InvalidRequest) as refused:
        list_orders(Caller(ALICE), orders=orders, next_token=next_token)
    assert refused.value.field == "nextToken"


def test_the_token_of_a_listing_continues_it(orders: OrderRepository, orders_table: OrdersTable) -> None:
    # Given Alice has three orders
    for index in range(3):
        orders_table.put(
            stored_order(OrderState.PLACED, orderId=f"o{index}")
            | {"createdAt": f"2026-11-29T09:0{index}:00.000Z"}
        )

    # When she reads them two at a time, following the token
    first = list_orders(Caller(ALICE), orders=orders, limit=2)
    second = list_orders(Caller(ALICE), orders=orders, limit=2, next_token=first.next_token)

    # Then the pages hold all three, newest first, and the last page says there is no more
    assert [o["orderId"] for o in first.orders + second.orders] == ["o2", "o1", "o0"]
    assert second.next_token is None


def test_a_page_token_may_be_2048_characters_long(orders: OrderRepository, orders_table: OrdersTable) -> None:
    # Given a token of exactly the longest accepted length, for a key this listing could produce
    key = _VALID_KEY | {"orderId": {"S": ""}}
    while len(_token(key)) < 2048:
        key = key | {"orderId": {"S": key["orderId"]["S"] + "o"}}
    assert len(_token(key)) == 2048

    # When Alice lists her orders with it
    page = list_orders(Caller(ALICE), orders=orders, next_token=_token(key))

    # Then it is read as a place to continue from (there is nothing after it)
    assert page.orders == []


# ------------------------------------------------------------------------------------------ limits
@pytest.mark.parametrize(("limit", "allowed"), [(0, False), (1, True), (50, True), (51, False)])
def test_a_page_holds_1_to_50_orders(limit: int, allowed: bool, orders: OrderRepository) -> None:
    def listing() -> Any:
        return list_orders(Caller(ALICE), orders=orders, limit=limit)

    if allowed:
        assert listing().orders == []
    else:
        with pytest.raises(InvalidRequest, match="between 1 and 50"):
            listing()


def test_a_page_holds_20_orders_by_default(orders: OrderRepository, orders_table: OrdersTable) -> None:
    # Given Alice has 21 orders
    for index in range(21):
        orders_table.put(
            stored_order(OrderState.PLACED, orderId=f"o{index:02}")
            | {"createdAt": f"2026-11-29T09:{index:02}:00.000Z"}
        )

    # When she lists them without a limit
    page = list_orders(Caller(ALICE), orders=orders)

    # Then she gets the newest 20, and a token for the rest
    assert len(page.orders) == 20
    assert page.next_token is not None


@pytest.mark.parametrize(
    ("changes", "allowed"),
    [
        ({"maxInFlight": 1000}, True),
        ({"maxInFlight": 1001}, False),
        ({"maxInFlight": 1}, True),
        ({"maxInFlight": 0}, False),
        ({"maxOpenOrdersPerCustomer": 20}, True),
        ({"maxOpenOrdersPerCustomer": 21}, False),
        ({"maxOpenOrdersPerCustomer": 1}, True),
        ({"maxOpenOrdersPerCustomer": 0}, False),
        ({"menu": [{"name": f"Drink {i}"} for i in range(50)]}, True),
        ({"menu": [{"name": f"Drink {i}"} for i in range(51)]}, False),
        ({"menu": [{"name": "Tea", "modifiers": [f"m{i}" for i in range(20)]}]}, True),
        ({"menu": [{"name": "Tea", "modifiers": [f"m{i}" for i in range(21)]}]}, False),
        ({"menu": [{"name": "x" * 64}]}, True),
        ({"menu": [{"name": "x" * 65}]}, False),
        ({"menu": [{"name": "Tea"}, {"name": "Tea"}]}, False),
        ({"menu": [{"name": "T"}]}, True),
        ({"menu": [{"name": ""}]}, False),
        ({"menu": []}, False),
    ],
)
def test_the_shop_config_limits(changes: dict[str, Any], allowed: bool) -> None:
    # Given a barista's PUT /config body
    # When it is read
    # Then the documented bounds hold: capacity 1-1000, open orders per customer 1-20, at most 50
    # drinks of at most 20 modifiers, names of at most 64 characters, no drink twice
    if allowed:
        assert ShopConfigUpdate.model_validate(changes).changes() == changes | (
            {"menu": [{"modifiers": [], **drink} for drink in changes["menu"]]} if "menu" in changes else {}
        )
    else:
        with pytest.raises(ValidationError):
            ShopConfigUpdate.model_validate(changes)


def test_a_fresh_shop_allows_three_open_orders_per_customer(shop: ShopConfigStore) -> None:
    # Given no shop item. Then the per-customer limit is the documented default, 3
    assert shop.get().maxOpenOrdersPerCustomer == 3


# ---------------------------------------------------------------------------------- public fields
def test_the_owner_sees_why_her_order_ended(orders_table: OrdersTable) -> None:
    # Given an order that ended with a reason
    ended = stored_order(OrderState.REJECTED, endReason="shop closed", executionArn=EXECUTION)

    # When it is shown to its owner
    # Then the reason is there, and the workflow's execution is not
    view = order_view(ended)
    assert view["endReason"] == "shop closed"
    assert "executionArn" not in view
