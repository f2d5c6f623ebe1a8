"""GET /config (anyone signed in) and PUT /config (baristas): menu, open/closed, capacity, limits."""

from __future__ import annotations

from typing import Any

import pytest

from serverlesspresso.orders import from_item, to_item
from serverlesspresso.shop import (
    DEFAULT_MENU,
    DEFAULT_ORDERS_PER_ADMISSION_CODE,
    SHOP_CONFIG_ID,
)
from tests.unit.api.conftest import ALICE, BOB, Api
from tests.unit.conftest import AwsEnv

CONFIG_FIELDS = {
    "isOpen",
    "maxInFlight",
    "ordersInFlight",
    "maxOpenOrdersPerCustomer",
    "menu",
    "requireAdmission",
    "ordersPerAdmissionCode",
}


def _shop_item(aws: AwsEnv) -> dict[str, Any]:
    item = aws.dynamodb.get_item(
        TableName=aws.tables["ConfigTable"], Key=to_item({"configId": SHOP_CONFIG_ID}), ConsistentRead=True
    )["Item"]
    return from_item(item)


def _store_shop_item(aws: AwsEnv, **values: Any) -> None:
    aws.dynamodb.put_item(
        TableName=aws.tables["ConfigTable"], Item=to_item({"configId": SHOP_CONFIG_ID, **values})
    )


def test_a_fresh_shop_shows_the_defaults(aws: AwsEnv, api: Api) -> None:
    # Given no shop item at all
    # When a customer reads the config
    response = api.get_config(ALICE)

    # Then the shop is open with the workflow's default capacity, the default menu and limit
    default_capacity = int(aws.template.parameter("DefaultMaxInFlight"))
    assert response.status == 200
    assert response.body == {
        "isOpen": True,
        "maxInFlight": default_capacity,
        "ordersInFlight": 0,
        "maxOpenOrdersPerCustomer": 3,  # the documented default, pinned (not read from the code)
        "menu": [dict(drink) for drink in DEFAULT_MENU],
        "requireAdmission": False,  # the tests' environment has no REQUIRE_ADMISSION
        "ordersPerAdmissionCode": DEFAULT_ORDERS_PER_ADMISSION_CODE,
    }


def test_the_config_shows_how_many_slots_are_taken_never_which(aws: AwsEnv, api: Api) -> None:
    # Given the workflow holds three capacity slots
    _store_shop_item(aws, isOpen=True, maxInFlight=5, inFlight={"exec-a", "exec-b", "exec-c"})

    # When anyone signed in reads the config
    response = api.get_config(ALICE)

    # Then it shows the count, and no slot names
    assert (response.status, response.body["ordersInFlight"], response.body["maxInFlight"]) == (200, 3, 5)
    assert set(response.body) == CONFIG_FIELDS
    assert "exec-a" not in str(response.raw)


def test_a_barista_changes_only_the_fields_given_and_never_the_slots(aws: AwsEnv, api: Api) -> None:
    # Given a shop with taken slots and a custom menu
    menu = [{"name": "Espresso", "modifiers": []}]
    _store_shop_item(aws, isOpen=True, maxInFlight=5, inFlight={"exec-a", "exec-b"}, menu=menu)

    # When a barista closes the shop
    response = api.put_config(BOB, isOpen=False)

    # Then only isOpen changed: the slots, capacity and menu are as they were
    assert response.status == 200
    assert response.body["isOpen"] is False
    item = _shop_item(aws)
    assert item["isOpen"] is False
    assert item["inFlight"] == {"exec-a", "exec-b"}
    assert (item["maxInFlight"], item["menu"]) == (5, menu)
    assert "maxOpenOrdersPerCustomer" not in item


def test_a_barista_sets_menu_capacity_and_limit_together(aws: AwsEnv, api: Api) -> None:
    menu = [{"name": "Cortado", "modifiers": ["Oat milk"]}, {"name": "Espresso", "modifiers": []}]

    response = api.put_config(BOB, menu=menu, maxInFlight=8, maxOpenOrdersPerCustomer=2)

    assert response.status == 200
    assert (
        response.body["menu"],
        response.body["maxInFlight"],
        response.body["maxOpenOrdersPerCustomer"],
    ) == (
        menu,
        8,
        2,
    )
    assert api.get_config(ALICE).body == response.body


def test_a_customer_may_not_change_the_config(aws: AwsEnv, api: Api) -> None:
    response = api.put_config(ALICE, isOpen=False)

    assert response.status == 403
    assert api.get_config(ALICE).body["isOpen"] is True


def test_the_config_needs_an_identity(api: Api) -> None:
    assert api.get_config(None).status == 401
    assert api.put_config(None, isOpen=False).status == 401


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "body"),  # nothing to change
        ({"inFlight": ["mine"]}, "inFlight"),  # the workflow's, never writable
        ({"isOpen": None}, "body"),  # null
        ({"isOpen": "yes"}, "isOpen"),
        ({"maxInFlight": 0}, "maxInFlight"),
        ({"maxInFlight": 2.5}, "maxInFlight"),
        ({"maxOpenOrdersPerCustomer": 0}, "maxOpenOrdersPerCustomer"),
        ({"requireAdmission": "no"}, "requireAdmission"),
        ({"ordersPerAdmissionCode": 0}, "ordersPerAdmissionCode"),
        ({"menu": []}, "menu"),
        ({"menu": [{"name": "Latte"}, {"name": "Latte"}]}, "menu"),
        ({"menu": [{"name": "Latte", "modifiers": ["Oat milk", "Oat milk"]}]}, "menu.0.modifiers"),
        ({"menu": [{"name": " Latte", "modifiers": []}]}, "menu.0.name"),
        ({"menu": [{"name": "Latte", "price": 3}]}, "menu.0.price"),
    ],
)
def test_an_invalid_config_is_400_naming_the_field_and_changes_nothing(
    aws: AwsEnv, api: Api, body: dict[str, Any], field: str
) -> None:
    # Given a stored config
    _store_shop_item(aws, isOpen=True, maxInFlight=5)

    # When a barista sends an invalid change
    response = api.request("api_put_config", BOB, body=body)

    # Then it is refused naming the field, and the stored item is unchanged
    assert response.status == 400
    assert field in [problem["field"] for problem in response.body["errors"]]
    assert _shop_item(aws) == {"configId": SHOP_CONFIG_ID, "isOpen": True, "maxInFlight": 5}


def test_a_drink_without_a_name_is_400_saying_the_name_is_empty(aws: AwsEnv, api: Api) -> None:
    # Given a stored config
    _store_shop_item(aws, isOpen=True)

    # When a barista sends a menu whose drink has an empty name
    response = api.request("api_put_config", BOB, body={"menu": [{"name": ""}]})

    # Then the barista is told that name is empty (not that it has the wrong form), and nothing changes
    assert response.status == 400
    problems = {problem["field"]: problem["problem"] for problem in response.body["errors"]}
    assert problems == {"menu.0.name": "String should have at least 1 character"}
    assert _shop_item(aws) == {"configId": SHOP_CONFIG_ID, "isOpen": True}
