"""The push channel's functions with their sample events (events/push_*.json, order_changed.json,
barista_queue.json, shop_changed.json), against moto: the template's connections and orders tables,
the local identity provider's keys served over HTTP as Cognito serves a pool's JWKS, and moto's
API Gateway management API recording what PostToConnection sent to each connection."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from moto.apigatewaymanagementapi.models import apigatewaymanagementapi_backends
from moto.core import DEFAULT_ACCOUNT_ID

from local.auth import AUDIENCE, ISSUER, JwksServer, LocalIdp
from serverlesspresso.orders import from_item, to_item
from tests.helpers import LambdaContext, load_event, load_handler, setting
from tests.unit.conftest import AwsEnv, OrdersTable

PUSH_ENDPOINT = "https://abcdef1234.execute-api.us-east-1.amazonaws.com/dev"
ORDER_ID = "7c3f1b2e-5d4a-4e8b-9f0a-1b2c3d4e5f60"  # the order of the sample events
CUSTOMER = "3f8e2d1c-0b9a-4c7d-8e6f-5a4b3c2d1e0f"  # its customer (events/barista_queue.json userId)


@pytest.fixture(scope="module")
def idp(tmp_path_factory: pytest.TempPathFactory) -> LocalIdp:
    return LocalIdp(tmp_path_factory.mktemp("idp"))


@pytest.fixture
def push_env(aws: AwsEnv, idp: LocalIdp, monkeypatch: pytest.MonkeyPatch) -> Iterator[AwsEnv]:
    """The push functions' environment (template.yaml), the JWKS served like Cognito's."""
    with JwksServer(idp) as jwks:
        monkeypatch.setenv("CONNECTIONS_TABLE_NAME", aws.tables["ConnectionsTable"])
        monkeypatch.setenv("TOKEN_ISSUER", ISSUER)
        monkeypatch.setenv("TOKEN_AUDIENCE", AUDIENCE)
        monkeypatch.setenv("JWKS_URL", jwks.url)
        monkeypatch.setenv("PUSH_ENDPOINT", PUSH_ENDPOINT)
        yield aws


def _connections(aws: AwsEnv) -> dict[str, dict[str, Any]]:
    items = aws.dynamodb.scan(TableName=aws.tables["ConnectionsTable"])["Items"]
    return {item["connectionId"]["S"]: from_item(item) for item in items}


def _connect_event(protocols: str) -> dict[str, Any]:
    event = load_event("push_connect")
    setting(protocols, "headers", "Sec-WebSocket-Protocol")(event)
    setting([protocols], "multiValueHeaders", "Sec-WebSocket-Protocol")(event)
    return event


def _connect(protocols: str) -> dict[str, Any]:
    answer: dict[str, Any] = load_handler("push_connect").lambda_handler(
        _connect_event(protocols), LambdaContext()
    )
    return answer


# ------------------------------------------------------------------------------------------ $connect
@pytest.mark.parametrize(
    ("role", "audience"), [("customer", "customer"), ("barista", "barista"), ("display", "display")]
)
def test_a_valid_token_is_admitted_with_the_protocol_and_the_audience_of_its_groups(
    push_env: AwsEnv, idp: LocalIdp, role: str, audience: str
) -> None:
    # Given the sample $connect with a token offered as the second subprotocol
    token = idp.issue_token("alice", role)

    # When $connect runs
    answer = _connect(f"serverlesspresso.v1, {token}")

    # Then the handshake goes on with serverlesspresso.v1, and the connection is stored for 2 hours
    assert answer == {"statusCode": 200, "headers": {"Sec-WebSocket-Protocol": "serverlesspresso.v1"}}
    stored = _connections(push_env)["CpJq6dBuIAMCJTQ="]
    assert stored["audience"] == audience
    assert stored.get("customerSub") == (idp.verify(token)["sub"] if role == "customer" else None)
    assert abs(stored["expiresAt"] - (time.time() + 7200)) < 300


@pytest.mark.parametrize(
    "kind", ["missing", "garbage", "expired", "wrong audience", "access token", "other key"]
)
def test_a_bad_token_is_refused_with_401_and_nothing_is_stored(
    push_env: AwsEnv, idp: LocalIdp, tmp_path: Any, kind: str
) -> None:
    token = {
        "missing": "",
        "garbage": ", not.a.jwt",
        "expired": ", " + idp.issue_token("alice", lifetime_seconds=-60),
        "wrong audience": ", " + idp.issue_token("alice", audience="another-client"),
        "access token": ", " + idp.issue_token("alice", token_use="access"),
        "other key": ", " + LocalIdp(tmp_path).issue_token("alice", "barista"),
    }[kind]

    assert _connect(f"serverlesspresso.v1{token}") == {"statusCode": 401}
    assert _connections(push_env) == {}


def test_a_client_without_the_protocol_is_refused_with_400(push_env: AwsEnv, idp: LocalIdp) -> None:
    assert _connect(idp.issue_token("alice")) == {"statusCode": 400}
    assert _connections(push_env) == {}


# --------------------------------------------------------------------------------------- $disconnect
def test_disconnect_forgets_the_connection(push_env: AwsEnv, idp: LocalIdp) -> None:
    # Given a stored connection (the sample events' connection id)
    _connect(f"serverlesspresso.v1, {idp.issue_token('alice')}")
    assert "CpJq6dBuIAMCJTQ=" in _connections(push_env)

    # When its $disconnect runs, Then it is gone
    answer = load_handler("push_disconnect").lambda_handler(load_event("push_disconnect"), LambdaContext())
    assert answer == {"statusCode": 200}
    assert _connections(push_env) == {}


# ------------------------------------------------------------------------------------------- fan-out
def _sent(connection_id: str) -> list[dict[str, Any]]:
    """What moto's management API received for the connection (messages are concatenated JSON)."""
    data = apigatewaymanagementapi_backends[DEFAULT_ACCOUNT_ID]["us-east-1"].connections[connection_id].data
    decoder, text, messages, at = json.JSONDecoder(), data.decode(), [], 0
    while at < len(text):
        message, at = decoder.raw_decode(text, at)
        messages.append(message)
    return messages


@pytest.fixture
def audience(push_env: AwsEnv, orders_table: OrdersTable) -> AwsEnv:
    """The sample order (with its private fields) and four connections: its customer, another, staff."""
    orders_table.put(
        {
            "orderId": ORDER_ID,
            "userId": CUSTOMER,
            "state": "WAITING_FOR_BARISTA",
            "stateRank": 30,
            "orderNumber": 42,
            "version": 4,
            "executionArn": "arn:aws:states:us-east-1:123456789012:execution:m:x",
            "taskToken": "secret-token",
            "tokenState": "WAITING_FOR_BARISTA",
        }
    )
    for connection_id, audience_name, sub in (
        ("own", "customer", CUSTOMER),
        ("other", "customer", "someone-else"),
        ("barista", "barista", None),
        ("display", "display", None),
    ):
        item = {"connectionId": connection_id, "audience": audience_name, "expiresAt": int(time.time()) + 60}
        if sub:
            item["customerSub"] = sub
        push_env.dynamodb.put_item(TableName=push_env.tables["ConnectionsTable"], Item=to_item(item))
    return push_env


@pytest.mark.parametrize("sample", ["order_changed", "barista_queue"])
def test_an_order_change_reaches_its_customer_and_staff_with_public_fields_only(
    audience: AwsEnv, sample: str
) -> None:
    # When the fan-out runs on the sample event
    outcome = load_handler("push_fan_out").lambda_handler(load_event(sample), LambdaContext())

    # Then the order's customer, the barista and the display get it, with its version; the other customer
    # nothing about it
    assert outcome == {"orderId": ORDER_ID, "outcome": "sent"}
    for connection_id in ("own", "barista", "display"):
        [message] = [m for m in _sent(connection_id) if m["type"] == "order"]
        assert message["order"]["orderId"] == ORDER_ID
        assert message["order"]["version"] == 4
        assert not {"userId", "taskToken", "tokenState", "executionArn"} & set(message["order"])
    assert [m for m in _sent("other") if m["type"] == "order"] == []


def test_a_shop_change_reaches_everyone_with_the_capacity_left(audience: AwsEnv) -> None:
    outcome = load_handler("push_fan_out").lambda_handler(load_event("shop_changed"), LambdaContext())

    assert outcome == {"orderId": "shop", "outcome": "sent"}
    for connection_id in ("own", "other", "barista", "display"):
        [message] = _sent(connection_id)
        assert message["type"] == "shop"
        assert (
            message["shop"]["capacityLeft"]
            == message["shop"]["maxInFlight"] - message["shop"]["ordersInFlight"]
        )
