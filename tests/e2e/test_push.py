"""The push channel end to end: real WebSocket clients on the local push server, the template's
$connect / $disconnect / fan-out functions running on the local engine (tests/e2e/conftest.py).

Who may connect (token checks), who receives what (a customer their own orders only, staff every
order, everyone the shop), a gone connection is forgotten, and a screen that missed messages while
disconnected ends with the right state after it re-reads over HTTP.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect
from websockets.typing import Subprotocol

from local.auth import LocalIdp
from local.engine import LocalEngine
from local.push.server import SUBPROTOCOL
from serverlesspresso.models import OrderState
from serverlesspresso.ordering import order_view
from serverlesspresso.orders import to_item
from serverlesspresso.resume import COMPLETE_ORDER, CUSTOMER_CANCEL, SUBMIT_ORDER
from tests.e2e.flows import Shop, wait_for
from tests.e2e.screens import Screen

HOOK_SCREENS = 3  # the barista, display and customer screens tests/e2e/conftest.py connects


def _idp(engine: LocalEngine) -> LocalIdp:
    idp: LocalIdp = engine.idp  # type: ignore[attr-defined]
    return idp


def _url(engine: LocalEngine) -> str:
    url: str = engine.push.url  # type: ignore[attr-defined]
    return url


def _screen(engine: LocalEngine, user: str, role: str = "customer") -> Screen:
    return Screen(_url(engine), _idp(engine).issue_token(user, role, sub=user), user)


def _connections(engine: LocalEngine) -> list[dict[str, Any]]:
    table = engine.table_names["ConnectionsTable"]
    items = engine.clients["dynamodb"].scan(TableName=table, ConsistentRead=True)["Items"]
    return [{key: next(iter(value.values())) for key, value in item.items()} for item in items]


def _forged(token: str) -> str:
    # The same header and signature, another subject: the signature no longer matches the claims.
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["sub"] = "someone-else"
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=")
    return f"{header}.{forged}.{signature}"


# ------------------------------------------------------------------------------------------ connect
def _refused_status(url: str, protocols: list[str]) -> int:
    with pytest.raises(InvalidStatus) as refused:
        connect(url, subprotocols=[Subprotocol(p) for p in protocols], open_timeout=30, legacy=True).close()
    return int(refused.value.response.status_code)


@pytest.mark.parametrize(
    "kind", ["missing", "forged", "expired", "wrong audience", "access token", "other key"]
)
def test_a_bad_token_is_refused_at_connect_and_no_connection_is_stored(
    engine: LocalEngine, kind: str
) -> None:
    # Given a token that must not open the feed
    idp = _idp(engine)
    tokens = {
        "missing": None,
        "forged": _forged(idp.issue_token("mallory", "barista")),
        "expired": idp.issue_token("mallory", lifetime_seconds=-60),
        "wrong audience": idp.issue_token("mallory", audience="another-app-client"),
        "access token": idp.issue_token("mallory", token_use="access"),
        "other key": LocalIdp(idp.key_dir / "other").issue_token("mallory", "barista"),
    }
    token = tokens[kind]
    protocols = [SUBPROTOCOL] if token is None else [SUBPROTOCOL, token]

    # When a client offers it, Then the handshake fails with 401 and only the fixture's screens are stored
    assert _refused_status(_url(engine), protocols) == 401
    assert len(_connections(engine)) == HOOK_SCREENS


def test_a_client_that_does_not_speak_the_protocol_is_refused(engine: LocalEngine) -> None:
    token = _idp(engine).issue_token("alice")
    assert _refused_status(_url(engine), [token]) == 400
    assert len(_connections(engine)) == HOOK_SCREENS


def test_a_valid_token_selects_the_protocol_and_files_the_connection_under_its_groups(
    engine: LocalEngine,
) -> None:
    # Given a customer and a display screen
    alice = _screen(engine, "alice")
    display = _screen(engine, "big-screen", "display")
    try:
        # Then both speak serverlesspresso.v1, and each connection is stored with the audience of its
        # token's groups: a customer's with their sub, a staff one without any
        assert alice.connection.subprotocol == SUBPROTOCOL
        stored = _connections(engine)
        assert {(c["audience"], c.get("customerSub")) for c in stored} >= {
            ("customer", "alice"),
            ("display", None),
        }
        assert all(int(c["expiresAt"]) > 0 for c in stored)  # the 2-hour TTL
    finally:
        alice.close()
        display.close()
    # And closing runs $disconnect, which forgets them
    wait_for(lambda: len(_connections(engine)) == HOOK_SCREENS, "the closed connections forgotten")


# -------------------------------------------------------------------------------------- who gets what
def test_each_customer_receives_only_their_own_orders_and_staff_receive_every_order(
    patient_shop: Shop,
) -> None:
    # Given two customers and a barista watching
    shop, engine = patient_shop, patient_shop.engine
    alice, bob, barista = _screen(engine, "alice"), _screen(engine, "bob"), _screen(engine, "bo", "barista")
    try:
        # When each customer orders, bob cancels and alice's order is completed
        alices = shop.place_order(user_id="alice")
        bobs = shop.place_order(user_id="bob")
        shop.act_when(bobs, OrderState.WAITING_FOR_CUSTOMER, CUSTOMER_CANCEL)
        shop.act_when(alices, OrderState.WAITING_FOR_CUSTOMER, SUBMIT_ORDER)
        shop.act_when(alices, OrderState.WAITING_FOR_BARISTA, COMPLETE_ORDER)

        # Then each customer's screen follows their own order to its end, the barista's both
        alice.wait_for_order(alices, "COMPLETED")
        bob.wait_for_order(bobs, "CANCELLED")
        barista.wait_for_order(alices, "COMPLETED")
        barista.wait_for_order(bobs, "CANCELLED")
        # And no customer ever heard of the other's order
        assert alice.order_ids() == {alices}
        assert bob.order_ids() == {bobs}
        # And versions only grow along each screen's messages of one order
        versions = [m["order"]["version"] for m in alice.received("order")]
        assert versions == sorted(versions)
        assert alice.latest_orders()[alices] == order_view(shop.order(alices))
        # And everyone heard the shop's capacity change, with what is left
        for screen in (alice, bob, barista):
            wait_for(screen.received, f"{screen.name}: a message")  # (the shop's came with the orders')
            assert screen.received("shop"), screen.name
            assert {"isOpen", "menu", "capacityLeft", "version"} <= set(screen.received("shop")[-1]["shop"])
    finally:
        for screen in (alice, bob, barista):
            screen.close()


def test_a_customer_cannot_join_the_barista_feed(engine: LocalEngine, shop: Shop) -> None:
    # Given a customer who asks, over the socket, for the barista feed
    mallory = _screen(engine, "mallory")
    try:
        mallory.connection.send(json.dumps({"action": "subscribe", "audience": "barista"}))
        mallory.connection.send(json.dumps({"action": "ping"}))

        # When another customer's order changes
        others = shop.place_order(user_id="alice")
        shop.wait_for_order(others, OrderState.WAITING_FOR_CUSTOMER)
        engine.dispatcher.drain()

        # Then she hears about the shop, never about that order; her connection is a customer's
        wait_for(lambda: mallory.received("shop"), "the shop message")
        wait_for(lambda: mallory.received("pong"), "the answer to her ping")  # (the mock route's)
        assert mallory.order_ids() == set()
        assert [c["audience"] for c in _connections(engine) if c.get("customerSub") == "mallory"] == [
            "customer"
        ]
    finally:
        mallory.close()


def test_a_gone_connection_is_removed_by_the_fan_out(engine: LocalEngine, shop: Shop) -> None:
    # Given a stored barista connection whose client vanished without a $disconnect
    table = engine.table_names["ConnectionsTable"]
    engine.clients["dynamodb"].put_item(
        TableName=table, Item=to_item({"connectionId": "vanished", "audience": "barista", "expiresAt": 1})
    )

    # When an order changes, Then PostToConnection answers Gone and the fan-out forgets the connection
    shop.place_order(user_id="alice")
    wait_for(
        lambda: all(c["connectionId"] != "vanished" for c in _connections(engine)),
        "the gone connection removed",
    )
    assert len(_connections(engine)) == HOOK_SCREENS


# ------------------------------------------------------------------------------------ reconnecting
def test_a_screen_that_missed_messages_ends_right_after_reconnecting_and_re_reading(
    patient_shop: Shop,
) -> None:
    shop, engine = patient_shop, patient_shop.engine
    # Given alice's screen, which sees her order wait for her, then loses its connection
    order_id = shop.place_order(user_id="alice")
    first = _screen(engine, "alice")
    shop.wait_for_order(order_id, OrderState.WAITING_FOR_CUSTOMER)
    first.close()

    # When the order is submitted and completed while nobody is connected
    shop.act_when(order_id, OrderState.WAITING_FOR_CUSTOMER, SUBMIT_ORDER)
    shop.act_when(order_id, OrderState.WAITING_FOR_BARISTA, COMPLETE_ORDER)
    shop.wait_for_end(order_id)

    # And the screen reconnects, then re-reads the order over HTTP (what GET /orders/{id} returns)
    second = _screen(engine, "alice")
    try:
        reread = order_view(shop.order(order_id))
        # And an old change is delivered again (a redelivery): its message carries the same version
        engine.put_event("OrderManager.OrderChanged", {"orderId": order_id, "state": "SUBMITTED"})
        second.wait_for_order(order_id, "COMPLETED")

        # Then the screen's view is the final state, which no message older than the re-read replaced
        latest = second.latest_orders(base=[reread])[order_id]
        assert latest == reread
        assert latest["state"] == "COMPLETED"
        assert all(m["order"]["version"] <= reread["version"] for m in second.received("order"))
    finally:
        second.close()
