"""POST /orders and GET /orders/{orderId}: starting an order, the open-order limit, who may read it."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from serverlesspresso.identity import Caller
from serverlesspresso.models import OrderState
from serverlesspresso.ordering import OrderNotStarted, place_order
from serverlesspresso.orders import OrderRepository, timestamp
from serverlesspresso.shop import ShopConfigStore
from tests.unit.api.conftest import ALICE, BOB, CAROL, PUBLIC_FIELDS, Api, Flow
from tests.unit.conftest import AwsEnv, BusCapture, OrdersTable

# The documented default of maxOpenOrdersPerCustomer, pinned here: a test that read the code's constant
# could not fail when the default changed.
DEFAULT_OPEN_ORDER_LIMIT = 3


# ------------------------------------------------------------------------------------ POST /orders
def test_a_customer_places_an_order_and_the_workflow_is_asked_to_start_it(
    api: Api, orders_table: OrdersTable, bus: BusCapture
) -> None:
    # Given a signed-in customer
    # When she places an order
    response = api.place(ALICE)

    # Then the API accepts it with a new order id and where to find it
    assert response.status == 202
    order_id = response.body["orderId"]
    assert uuid.UUID(order_id).version == 4
    assert response.headers["location"] == f"/orders/{order_id}"
    assert response.body["state"] == "PLACED"
    # And the order is stored as hers, PLACED
    stored = orders_table.get(order_id)
    assert stored is not None
    assert (stored["userId"], stored["state"], stored["stateRank"]) == (
        ALICE.sub,
        "PLACED",
        OrderState.PLACED.rank,
    )
    assert [entry["state"] for entry in stored["timeline"]] == ["PLACED"]
    # And it carries the name the barista calls out, from her token's claims
    assert stored["customerName"] == response.body["customerName"] == "alice"
    # And exactly one Validator.NewOrder for her order was published, with nothing else in it
    new_orders = bus.events("Validator.NewOrder")
    assert [event["detail"] for event in new_orders] == [{"orderId": order_id, "userId": ALICE.sub}]
    assert new_orders[0]["source"] == "awsserverlessda.serverlesspresso"


def test_the_order_owner_is_the_caller_from_the_claims_never_the_body(
    api: Api, orders_table: OrdersTable, bus: BusCapture
) -> None:
    # Given a request whose body claims to be someone else
    response = api.request("api_place_order", ALICE, body={"userId": CAROL.sub})

    # Then the order is the caller's
    assert response.status == 202
    assert orders_table.get(response.body["orderId"])["userId"] == ALICE.sub  # type: ignore[index]
    assert bus.events("Validator.NewOrder")[0]["detail"]["userId"] == ALICE.sub


def test_placing_an_order_without_an_identity_is_401_and_writes_nothing(
    api: Api, orders_table: OrdersTable, bus: BusCapture
) -> None:
    # Given a request without authorizer claims
    response = api.place(None)

    # Then it is refused as unauthenticated, and nothing was stored or published
    assert response.status == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert orders_table.all() == []
    assert bus.events() == []


def test_claims_without_a_subject_are_no_identity(api: Api, orders_table: OrdersTable) -> None:
    response = api.place(ALICE.renamed("nobody", ""))

    assert response.status == 401
    assert orders_table.all() == []


def test_a_customer_may_hold_the_default_number_of_open_orders_and_no_more(
    api: Api, orders_table: OrdersTable, bus: BusCapture
) -> None:
    # Given a customer who already holds the default maximum of open orders (3, as the README says)
    for _ in range(DEFAULT_OPEN_ORDER_LIMIT):
        assert api.place(ALICE).status == 202

    # When she places one more
    response = api.place(ALICE)

    # Then it is refused with the limit, and no order or event was added
    assert response.status == 409
    assert response.body["maxOpenOrdersPerCustomer"] == DEFAULT_OPEN_ORDER_LIMIT
    assert len(orders_table.all()) == DEFAULT_OPEN_ORDER_LIMIT
    assert len(bus.events("Validator.NewOrder")) == DEFAULT_OPEN_ORDER_LIMIT
    # And another customer is not affected
    assert api.place(CAROL).status == 202


def test_the_open_order_limit_comes_from_the_shop_config(api: Api, orders_table: OrdersTable) -> None:
    # Given a barista lowered the limit to one
    assert api.put_config(BOB, maxOpenOrdersPerCustomer=1).status == 200

    # When a customer places two orders
    first, second = api.place(ALICE), api.place(ALICE)

    # Then only the first is accepted
    assert (first.status, second.status) == (202, 409)
    assert second.body["maxOpenOrdersPerCustomer"] == 1


def test_ended_and_stale_orders_do_not_count_towards_the_limit(api: Api, orders_table: OrdersTable) -> None:
    # Given a limit of one, a completed order and a non-ended order placed long ago (stuck)
    assert api.put_config(BOB, maxOpenOrdersPerCustomer=1).status == 200
    done = api.place(ALICE).body["orderId"]
    orders_table.set(done, state="COMPLETED", stateRank=OrderState.COMPLETED.rank)
    long_ago = timestamp(datetime.now(UTC) - timedelta(hours=3))
    orders_table.put(
        {"orderId": "stuck-1", "userId": ALICE.sub, "state": "PLACED", "stateRank": 5, "createdAt": long_ago}
    )

    # When she places an order
    response = api.place(ALICE)

    # Then it is accepted: neither counts as open
    assert response.status == 202


def test_when_the_order_cannot_be_published_it_is_rejected_and_the_answer_is_503(
    api: Api, orders_table: OrdersTable, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the bus cannot be reached (a bus that does not exist)
    monkeypatch.setenv("EVENT_BUS_NAME", "no-such-bus")

    # When a customer places an order
    response = api.place(ALICE)

    # Then the answer says it could not be started, and the order is not left half-written
    assert response.status == 503
    assert response.body["message"]
    stored = orders_table.get(response.body["orderId"])
    assert stored is not None
    assert stored["state"] == "REJECTED"
    assert stored["endReason"].startswith("not started")
    assert [entry["state"] for entry in stored["timeline"]] == ["PLACED", "REJECTED"]


class _RefusingEvents:
    """An EventBridge client whose PutEvents reports a failed entry (moto never does)."""

    def put_events(self, Entries: list[dict[str, Any]]) -> dict[str, Any]:
        return {
            "FailedEntryCount": 1,
            "Entries": [{"ErrorCode": "InternalFailure", "ErrorMessage": "try later"}],
        }


def test_a_failed_entry_also_rejects_the_order(aws: AwsEnv, orders_table: OrdersTable) -> None:
    # Given EventBridge accepts the call but fails the entry
    orders = OrderRepository(aws.tables["OrdersTable"], aws.dynamodb)
    shop = ShopConfigStore(aws.tables["ConfigTable"], aws.dynamodb, 20, default_require_admission=False)

    # When an order is placed
    with pytest.raises(OrderNotStarted) as refused:
        place_order(
            Caller(ALICE.sub), orders=orders, shop=shop, events=_RefusingEvents(), bus_name=aws.bus_name
        )

    # Then the order it wrote is REJECTED
    assert orders_table.get(refused.value.order_id)["state"] == "REJECTED"  # type: ignore[index]


# ------------------------------------------------------------------------------ GET /orders/{id}
def test_the_owner_reads_her_order_with_the_public_fields_only(flow: Flow, api: Api) -> None:
    # Given an order waiting for a barista (task token, token state and execution stored on it)
    order_id = flow.waiting_for_barista(ALICE)

    # When its owner reads it
    response = api.get(order_id, ALICE)

    # Then she sees its public fields, and none of the workflow's internals
    assert response.status == 200
    assert set(response.body) <= set(PUBLIC_FIELDS)
    assert response.body["orderId"] == order_id
    assert response.body["state"] == "WAITING_FOR_BARISTA"
    assert isinstance(response.body["orderNumber"], int)
    assert (response.body["drink"], response.body["modifiers"]) == ("Latte", ["Oat milk"])
    assert [entry["state"] for entry in response.body["timeline"]] == [
        "PLACED",
        "WAITING_FOR_CUSTOMER",
        "SUBMITTED",
        "WAITING_FOR_BARISTA",
    ]


def test_a_barista_reads_any_order(api: Api) -> None:
    order_id = api.place(ALICE).body["orderId"]

    response = api.get(order_id, BOB)

    assert (response.status, response.body["orderId"]) == (200, order_id)


def test_another_customer_may_not_read_the_order(api: Api) -> None:
    order_id = api.place(ALICE).body["orderId"]

    response = api.get(order_id, CAROL)

    assert response.status == 403
    assert "orderId" not in response.body


def test_reading_an_unknown_order_is_404(api: Api) -> None:
    assert api.get(str(uuid.uuid4()), ALICE).status == 404


def test_reading_an_order_without_an_identity_is_401(api: Api) -> None:
    order_id = api.place(ALICE).body["orderId"]

    assert api.get(order_id, None).status == 401


def test_a_malformed_order_id_is_400_naming_the_field(api: Api) -> None:
    response = api.get("not an id!", ALICE)

    assert response.status == 400
    assert response.body["errors"][0]["field"] == "orderId"
