"""Admission codes (the display's QR code): GET /admission, and POST /orders when the shop requires one.

Also the display's role: it reads the queue and the code, and changes nothing.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from serverlesspresso.admission import WINDOW_SECONDS, AdmissionDesk
from serverlesspresso.identity import display_name
from tests.unit.api.conftest import ALICE, BOB, CAROL, Api, User, _claims_of
from tests.unit.conftest import AwsEnv, OrdersTable

DISPLAY = User("bar-screen", _claims_of("api_get_admission"))


def _require_admission(api: Api, orders_per_code: int = 10) -> None:
    response = api.put_config(BOB, requireAdmission=True, ordersPerAdmissionCode=orders_per_code)
    assert response.status == 200, response.body


def _place(api: Api, user: User, code: str | None) -> Any:
    body = {"admissionCode": code} if code is not None else None
    return api.request("api_place_order", user, body=body, content_type="application/json")


def _desk(aws: AwsEnv) -> AdmissionDesk:
    return AdmissionDesk(aws.tables["ConfigTable"], aws.dynamodb)


def test_the_display_reads_the_current_code_and_a_customer_orders_with_it(
    aws: AwsEnv, api: Api, orders_table: OrdersTable
) -> None:
    # Given a shop that requires admission, three orders per code
    _require_admission(api, orders_per_code=3)

    # When the display reads the code and a customer orders with it
    shown = api.request("api_get_admission", DISPLAY)
    placed = _place(api, ALICE, shown.body["code"])

    # Then the order is accepted and the code has one place fewer
    assert shown.status == 200
    assert (shown.body["ordersLeft"], shown.body["ordersPerCode"]) == (3, 3)
    assert shown.body["expiresAt"] > shown.body["startsAt"]
    assert placed.status == 202, placed.body
    assert orders_table.get(placed.body["orderId"]) is not None
    window = int(shown.body["code"].split("-")[0])
    assert _desk(aws)._used(window) == 1  # read by window: the display may have rotated meanwhile


def test_a_used_up_code_is_refused_with_a_clear_message(api: Api, orders_table: OrdersTable) -> None:
    # Given a code that admits one order, already used
    _require_admission(api, orders_per_code=1)
    code = api.request("api_get_admission", DISPLAY).body["code"]
    assert _place(api, ALICE, code).status == 202

    # When another customer orders with it
    refused = _place(api, CAROL, code)

    # Then it is refused, saying why, and no order was written for her
    assert refused.status == 403
    assert refused.body["reason"] == "used_up"
    assert "used up" in refused.body["message"]
    assert api.list(CAROL).body["orders"] == []


def _tampered(code: str) -> str:
    """The code with its last character changed (to another one: "A" could be the character it had)."""
    return code[:-1] + ("B" if code.endswith("A") else "A")


@pytest.mark.parametrize(
    ("make_code", "reason", "words"),
    [
        (lambda desk: None, "missing", "scan the QR code"),
        (lambda desk: _tampered(desk.code_for(desk._window(datetime.now(UTC)))), "forged", "not valid"),
        (lambda desk: "12345-ABCDEFGHIJKLMNOP", "forged", "not valid"),
        (lambda desk: "<script>", "forged", "not valid"),
        (
            lambda desk: desk.code_for(
                desk._window(datetime.now(UTC) - timedelta(seconds=3 * WINDOW_SECONDS))
            ),
            "expired",
            "expired",
        ),
    ],
    ids=["missing", "tampered", "guessed", "garbage", "expired"],
)
def test_a_missing_forged_or_expired_code_is_refused(
    aws: AwsEnv, api: Api, make_code: Any, reason: str, words: str
) -> None:
    # Given a shop that requires admission
    _require_admission(api)

    # When a customer orders with a bad code (or none)
    refused = _place(api, ALICE, make_code(_desk(aws)))

    # Then it is 403 with the reason and words a person understands, and nothing is written
    assert refused.status == 403
    assert (refused.body["reason"], words in refused.body["message"]) == (reason, True)
    assert api.list(ALICE).body["orders"] == []


def test_the_previous_windows_code_is_still_accepted(aws: AwsEnv, api: Api) -> None:
    # Given a code shown just before the display rotated to the next one
    _require_admission(api)
    desk = _desk(aws)
    previous = desk.code_for(desk._window(datetime.now(UTC)) - 1)

    # When a customer orders with it, then she gets in
    assert _place(api, ALICE, previous).status == 202


def test_without_admission_required_no_code_is_needed(api: Api) -> None:
    assert api.get_config(ALICE).body["requireAdmission"] is False
    assert _place(api, ALICE, None).status == 202


def test_customers_may_not_read_the_code(api: Api) -> None:
    assert api.request("api_get_admission", ALICE).status == 403
    assert api.request("api_get_admission", None).status == 401


def test_the_display_reads_the_queue_but_changes_nothing(api: Api) -> None:
    # Given an order
    order_id = api.place(ALICE).body["orderId"]

    # When the display lists the queue, tries to claim the order and to close the shop
    listed = api.list(DISPLAY, state="PLACED")
    claimed = api.make(order_id, DISPLAY)
    closed = api.put_config(DISPLAY, isOpen=False)

    # Then it sees the order with the customer's name, and may do nothing else
    assert [(order["orderId"], order["customerName"]) for order in listed.body["orders"]] == [
        (order_id, "alice")
    ]
    assert (claimed.status, closed.status) == (403, 403)


@pytest.mark.parametrize(
    ("claims", "expected"),
    [
        ({"name": "Ana Lima", "cognito:username": "ana"}, "Ana Lima"),
        ({"given_name": "  Ana ", "cognito:username": "ana"}, "Ana"),
        ({"cognito:username": "the-sub"}, None),  # e-mail sign-in: the username is the generated id
        ({"name": "x" * 100}, "x" * 32),
        ({}, None),
    ],
)
def test_the_display_name_comes_from_name_like_claims_never_the_subject(
    claims: dict[str, str], expected: str | None
) -> None:
    assert display_name(claims, "the-sub") == expected
