"""Bodies no route can read (not UTF-8, not JSON, too large, not JSON's media type), on every route, and
authorization before validation: a caller who may not use a route learns nothing from its body checks."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pytest

from serverlesspresso.request_body import MAX_BODY_BYTES, MAX_CONFIG_BODY_BYTES
from tests.unit.api.conftest import ALICE, BOB, CAROL, Api, User
from tests.unit.conftest import AwsEnv

UNKNOWN_ORDER_ID = "0f0f0f0f-0000-4000-8000-000000000000"


@dataclass(frozen=True)
class Route:
    """One route of OrderApiFunction, sent as its sample event (events/<sample>.json)."""

    sample: str
    allowed: User  # may use the route (on the order, if it takes one: Alice's)
    refused: User | None  # may not; None: anyone signed in may, so only a missing identity is refused
    on_order: bool = False
    owner_only: bool = False  # who may act is decided by the order (404 for one that does not exist)
    body_limit: int = MAX_BODY_BYTES

    @property
    def refused_status(self) -> int:
        """403 for a signed-in caller without the right; 401 with no identity at all."""
        return 401 if self.refused is None else 403

    def __str__(self) -> str:
        return self.sample


ROUTES = [
    Route("api_place_order", ALICE, None),
    Route("api_get_order", ALICE, CAROL, on_order=True, owner_only=True),
    Route("api_submit_order", ALICE, CAROL, on_order=True, owner_only=True),
    Route("api_cancel_own_order", ALICE, CAROL, on_order=True, owner_only=True),
    Route("api_list_orders", ALICE, None),
    Route("api_make_order", BOB, ALICE, on_order=True),
    Route("api_unmake_order", BOB, ALICE, on_order=True),
    Route("api_complete_order", BOB, ALICE, on_order=True),
    Route("api_cancel_order", BOB, ALICE, on_order=True),
    Route("api_get_config", ALICE, None),
    Route("api_put_config", BOB, ALICE, body_limit=MAX_CONFIG_BODY_BYTES),
]


@dataclass(frozen=True)
class HostileBody:
    """A body no route can read, and the status it must get once the caller is allowed."""

    raw_body: str | bytes
    content_type: str
    status: int


def hostile_bodies(route: Route) -> dict[str, HostileBody]:
    """Each kind of unreadable body, sized for the route's limit."""
    too_large = json.dumps({"pad": "x" * route.body_limit})
    return {
        "not UTF-8": HostileBody(b'{"drink": "Latte\xff\xfe"}', "application/json", 400),
        "not JSON": HostileBody('{"drink": "Latte", "modifiers": [', "application/json", 400),
        "too large": HostileBody(too_large, "application/json", 413),
        "wrong content type": HostileBody('{"drink": "Latte"}', "text/plain", 415),
        "other charset": HostileBody('{"drink": "Latte"}', "application/json; charset=latin-1", 415),
    }


def _everything_stored(aws: AwsEnv) -> list[Any]:
    return [
        sorted(aws.dynamodb.scan(TableName=aws.tables[table])["Items"], key=json.dumps)
        for table in ("OrdersTable", "ConfigTable")
    ]


def _send_each(api: Api, route: Route, user: User | None, order_id: str) -> dict[str, tuple[int, Any]]:
    """Each kind of unreadable body sent to the route as `user`: {kind: (status, response body)}."""
    answers = {}
    for kind, body in hostile_bodies(route).items():
        response = api.request(
            route.sample,
            user,
            order_id=order_id if route.on_order else None,
            raw_body=body.raw_body,
            content_type=body.content_type,
        )
        answers[kind] = (response.status, response.body)
    return answers


@pytest.mark.parametrize("route", ROUTES, ids=str)
def test_an_unreadable_body_is_a_4xx_with_a_reason_and_changes_nothing(
    aws: AwsEnv, api: Api, route: Route
) -> None:
    # Given an order of Alice's, and everything stored
    order_id = api.place(ALICE).body["orderId"]
    before = _everything_stored(aws)

    # When someone allowed to use the route sends each kind of unreadable body
    answers = _send_each(api, route, route.allowed, order_id)

    # Then each is refused by the function with its status and a reason about the body
    assert {kind: status for kind, (status, _) in answers.items()} == {
        kind: body.status for kind, body in hostile_bodies(route).items()
    }
    for _, answer in answers.values():
        assert answer["message"]
        assert answer["errors"][0]["field"] == "body", answer
    # And nothing was written
    assert _everything_stored(aws) == before


@pytest.mark.parametrize("route", ROUTES, ids=str)
def test_a_caller_who_may_not_use_the_route_is_refused_before_the_body_is_read(
    aws: AwsEnv, api: Api, route: Route
) -> None:
    # Given an order of Alice's
    order_id = api.place(ALICE).body["orderId"]
    before = _everything_stored(aws)

    # When someone who may not use the route sends it each kind of unreadable body
    answers = {kind: status for kind, (status, _) in _send_each(api, route, route.refused, order_id).items()}

    # Then each is refused for who they are (403, or 401 without an identity), never for the body
    assert answers == dict.fromkeys(hostile_bodies(route), route.refused_status)
    assert _everything_stored(aws) == before


@pytest.mark.parametrize("route", [route for route in ROUTES if route.owner_only], ids=str)
def test_an_order_that_does_not_exist_is_404_before_the_body_is_read(api: Api, route: Route) -> None:
    # When a customer sends an unreadable body about an order that does not exist
    answers = _send_each(api, route, CAROL, UNKNOWN_ORDER_ID)

    # Then it is 404, as it would be with a good body
    assert {status for status, _ in answers.values()} == {404}


def test_a_route_that_takes_no_body_ignores_a_json_one(aws: AwsEnv, api: Api) -> None:
    # When a customer places an order with an empty JSON object as its body (as some clients send)
    response = api.request("api_place_order", ALICE, raw_body="{}", content_type="application/json")

    # Then the body is ignored
    assert response.status == 202


def test_the_largest_valid_bodies_fit_under_the_limits(api: Api) -> None:
    # Given the largest menu the config accepts: 50 drinks of 20 modifiers, every name 64 characters
    def name(prefix: str, number: int) -> str:
        return f"{prefix}{number:02d}".ljust(64, "e")

    modifiers = [name("modifier", number) for number in range(20)]
    menu = [{"name": name("drink", number), "modifiers": modifiers} for number in range(50)]
    largest_config = {"isOpen": True, "maxInFlight": 1000, "maxOpenOrdersPerCustomer": 20, "menu": menu}
    assert MAX_BODY_BYTES < len(json.dumps(largest_config)) < MAX_CONFIG_BODY_BYTES

    # When a barista stores it, and a customer submits the largest drink choice it allows
    stored = api.request("api_put_config", BOB, body=largest_config)
    order_id = api.place(ALICE).body["orderId"]
    submitted = api.request(
        "api_submit_order", ALICE, order_id=order_id, body={"drink": menu[0]["name"], "modifiers": modifiers}
    )

    # Then both bodies are read: the config is stored, and the choice reaches the workflow's wait
    # (409: the order's workflow has not stored its token yet, which is checked after the menu)
    assert stored.status == 200, stored.body
    assert submitted.status == 409, submitted.body
