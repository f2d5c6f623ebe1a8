"""GET /orders: a customer's own orders, a barista's queue, newest first, paginated."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from tests.unit.api.conftest import ALICE, BOB, CAROL, PUBLIC_FIELDS, Api, ApiResponse, Flow
from tests.unit.conftest import OrdersTable


def _all_pages(api: Api, user: Any, **query: str) -> tuple[list[str], list[ApiResponse]]:
    """Follow nextToken to the end; return every order id in order, and the responses."""
    ids: list[str] = []
    responses: list[ApiResponse] = []
    token: str | None = None
    while True:
        response = api.list(user, **query, **({"nextToken": token} if token else {}))
        assert response.status == 200, response.body
        responses.append(response)
        ids += [order["orderId"] for order in response.body["orders"]]
        token = response.body["nextToken"]
        if token is None:
            return ids, responses


def _orders_at(orders_table: OrdersTable, user_id: str, states: list[str]) -> list[str]:
    """Store orders of `user_id`, one a minute apart (oldest first); return their ids."""
    ids = []
    for minute, state in enumerate(states):
        order_id = f"order-{user_id[:4]}-{minute:02d}"
        orders_table.put(
            {
                "orderId": order_id,
                "userId": user_id,
                "state": state,
                "stateRank": 5,
                "createdAt": f"2026-11-29T09:{minute:02d}:00.000Z",
                "taskToken": "secret-token-that-must-not-show",
            }
        )
        ids.append(order_id)
    return ids


def test_a_customer_lists_only_her_orders_newest_first(api: Api, orders_table: OrdersTable) -> None:
    # Given orders of two customers
    hers = _orders_at(orders_table, ALICE.sub, ["PLACED", "COMPLETED", "WAITING_FOR_BARISTA"])
    _orders_at(orders_table, CAROL.sub, ["PLACED", "PLACED"])

    # When she lists her orders
    response = api.list(ALICE)

    # Then she sees hers only, newest first, without internals, and no next page
    assert response.status == 200
    assert [order["orderId"] for order in response.body["orders"]] == list(reversed(hers))
    assert response.body["nextToken"] is None
    assert all("taskToken" not in order and "userId" not in order for order in response.body["orders"])


def test_pages_follow_each_other_without_gaps_or_repeats(api: Api, orders_table: OrdersTable) -> None:
    # Given seven orders of one customer
    hers = _orders_at(orders_table, ALICE.sub, ["PLACED"] * 7)

    # When she pages through them three at a time
    ids, responses = _all_pages(api, ALICE, limit="3")

    # Then she gets every order once, newest first, in pages of at most three
    assert ids == list(reversed(hers))
    assert [len(page.body["orders"]) for page in responses][:3] == [3, 3, 1]


def test_a_customer_may_filter_her_orders_by_state(api: Api, orders_table: OrdersTable) -> None:
    hers = _orders_at(orders_table, ALICE.sub, ["PLACED", "COMPLETED", "PLACED", "COMPLETED"])

    ids, _ = _all_pages(api, ALICE, state="COMPLETED", limit="1")

    assert ids == [hers[3], hers[1]]


def test_a_barista_sees_the_queue_of_orders_waiting_for_a_barista(flow: Flow, api: Api) -> None:
    # Given two orders waiting for a barista and one still waiting for its customer
    first = flow.waiting_for_barista(ALICE)
    second = flow.waiting_for_barista(CAROL)
    flow.waiting_for_customer(ALICE)

    # When a barista lists orders
    response = api.list(BOB)

    # Then the queue holds the two ready to be made, newest first
    assert response.status == 200
    assert [order["orderId"] for order in response.body["orders"]] == [second, first]
    assert all(isinstance(order["orderNumber"], int) for order in response.body["orders"])


def test_a_barista_filters_by_state_and_pages(api: Api, orders_table: OrdersTable) -> None:
    placed = _orders_at(orders_table, ALICE.sub, ["PLACED", "PLACED", "COMPLETED"])[:2]
    placed += _orders_at(orders_table, CAROL.sub, ["PLACED"])

    ids, _ = _all_pages(api, BOB, state="PLACED", limit="1")

    assert sorted(ids) == sorted(placed)
    assert len(ids) == 3


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"limit": "0"}, "limit"),
        ({"limit": "51"}, "limit"),
        ({"limit": "many"}, "limit"),
        ({"state": "BREWING"}, "state"),
        ({"nextToken": "not-base64-json!"}, "nextToken"),
    ],
)
def test_bad_listing_parameters_are_400_naming_the_field(api: Api, query: dict[str, str], field: str) -> None:
    response = api.list(ALICE, **query)

    assert response.status == 400
    assert response.body["errors"][0]["field"] == field


def test_a_page_token_cannot_open_another_customers_orders(api: Api, orders_table: OrdersTable) -> None:
    # Given a next-page token issued to another customer
    _orders_at(orders_table, CAROL.sub, ["PLACED"] * 3)
    token = api.list(CAROL, limit="1").body["nextToken"]
    assert token

    # When she presents it (as is, and rewritten to her own partition's key names)
    as_is = api.list(ALICE, nextToken=token)
    key = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    key["state"] = key.pop("userId")
    reshaped = base64.urlsafe_b64encode(json.dumps(key).encode()).decode()
    as_queue_key = api.list(ALICE, nextToken=reshaped)

    # Then both are refused: a token only continues the listing it came from
    assert (as_is.status, as_queue_key.status) == (400, 400)


def test_listing_without_an_identity_is_401(api: Api) -> None:
    assert api.list(None).status == 401


@pytest.mark.parametrize(("user", "index"), [(ALICE, "ByCustomer"), (BOB, "ByState")])
def test_listed_orders_show_every_public_field_and_the_indexes_hold_no_token(
    api: Api, orders_table: OrdersTable, user: Any, index: str
) -> None:
    # Given an order waiting for a barista, with every public field, its execution and a task token
    order = {
        "orderId": "order-full",
        "userId": ALICE.sub,
        "state": "WAITING_FOR_BARISTA",
        "stateRank": 40,
        "orderNumber": 7,
        "drink": "Flat white",
        "modifiers": ["Oat milk"],
        "baristaId": "someone",
        "createdAt": "2026-11-29T09:00:00.000Z",
        "updatedAt": "2026-11-29T09:01:00.000Z",
        "timeline": {"PLACED": "2026-11-29T09:00:00.000Z"},
        "endReason": "none yet",
        "customerName": "Ana",
        "version": 5,
        "executionArn": "arn:aws:states:us-east-1:123456789012:execution:m:order-full",
        "taskToken": "secret-token-that-must-not-show",
        "tokenState": "WAITING_FOR_BARISTA",
    }
    orders_table.put(order)

    # When the customer (ByCustomer) or a barista (ByState) lists orders
    response = api.list(user)

    # Then the order shows every public field, read from the index
    assert response.status == 200
    listed = next(o for o in response.body["orders"] if o["orderId"] == "order-full")
    assert listed == {name: order[name] for name in PUBLIC_FIELDS}
    # And the index entry holds neither the token nor the execution
    entries = orders_table.client.query(
        TableName=orders_table.name,
        IndexName=index,
        KeyConditionExpression="#pk = :pk",
        ExpressionAttributeNames={"#pk": "userId" if index == "ByCustomer" else "state"},
        ExpressionAttributeValues={":pk": {"S": order["userId" if index == "ByCustomer" else "state"]}},
    )["Items"]
    assert entries
    assert all({"taskToken", "tokenState", "executionArn"}.isdisjoint(entry) for entry in entries)
