"""The HTTP API end to end: real HTTP requests to the local API server (local/api_server.py) in front of
the local engine, with bearer tokens from the local identity provider (what `make token` prints).

Nothing is stubbed: the emulated JWT authorizer checks each token, OrderApiFunction runs with its
template environment, Validator.NewOrder goes through the template's rule to a real execution, and
the workflow's events reach the real handlers through the engine's dispatcher.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from local.api_server import LocalApi
from local.auth import LocalIdp, user_sub
from local.engine import LocalEngine

pytestmark = pytest.mark.e2e

# Heartbeats 300 s -> 15 s and 900 s -> 45 s: room for HTTP round trips on a busy machine.
TIME_SCALE = 0.05
CALLBACK_EVENTS = {"OrderProcessor.WorkflowStarted", "OrderProcessor.WaitingCompletion"}
BARISTA_ROUTES = [
    ("POST", "/orders/{id}/make", None),
    ("POST", "/orders/{id}/unmake", None),
    ("POST", "/orders/{id}/complete", None),
    ("POST", "/orders/{id}/cancel", {"reason": "not allowed"}),
]


@dataclass
class Reply:
    """One HTTP response."""

    status: int
    headers: dict[str, str]
    text: str

    @property
    def json(self) -> Any:
        """The body, parsed."""
        return json.loads(self.text) if self.text else None


@dataclass
class Client:
    """A tiny HTTP client that keeps every response it received."""

    base_url: str
    replies: list[Reply] = field(default_factory=list)

    def call(self, method: str, path: str, token: str | None = None, body: Any = None) -> Reply:
        """Send one request; HTTP errors are replies too."""
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.base_url + path, data=data, method=method)
        if token is not None:
            request.add_header("Authorization", f"Bearer {token}")
        if data is not None:
            request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                reply = Reply(
                    response.status,
                    {k.lower(): v for k, v in response.headers.items()},
                    response.read().decode(),
                )
        except urllib.error.HTTPError as error:
            reply = Reply(error.code, {k.lower(): v for k, v in error.headers.items()}, error.read().decode())
        self.replies.append(reply)
        return reply

    def until(
        self, send: Callable[[], Reply], done: Callable[[Reply], bool], what: str, timeout: float = 30
    ) -> Reply:
        """Repeat a request until `done` (honouring Retry-After on 409s), or fail after `timeout`."""
        deadline = time.monotonic() + timeout
        while True:
            reply = send()
            if done(reply):
                return reply
            if time.monotonic() > deadline:
                raise AssertionError(f"no {what} after {timeout} s; last reply {reply.status} {reply.text}")
            time.sleep(min(float(reply.headers.get("retry-after", "0.1")), 1.0) / 5)


@dataclass
class Stack:
    """The engine, the API server in front of it, an HTTP client and tokens for three people."""

    engine: LocalEngine
    client: Client
    alice: str  # customer
    carol: str  # another customer
    bob: str  # barista


@pytest.fixture
def stack(make_engine: Callable[..., AbstractContextManager[LocalEngine]], tmp_path: Path) -> Iterator[Stack]:
    """The application from template.yaml on an in-process engine, its API on a free port."""
    idp = LocalIdp(tmp_path / "jwt")
    with make_engine(time_scale=TIME_SCALE) as engine, LocalApi(engine, port=0, idp=idp) as api:
        yield Stack(
            engine=engine,
            client=Client(api.url),
            alice=idp.issue_token("alice"),
            carol=idp.issue_token("carol"),
            bob=idp.issue_token("bob", "barista"),
        )


def _assert_no_task_token_left_the_service(stack: Stack) -> None:
    """No HTTP response and no event other than the workflow's callback events holds a task token."""
    stack.engine.dispatcher.collect_events()
    tokens = {
        event["detail"]["TaskToken"]
        for event in stack.engine.events_seen
        if event["detail-type"] in CALLBACK_EVENTS
    }
    published = [event for event in stack.engine.events_seen if event["detail-type"] not in CALLBACK_EVENTS]
    for token in tokens:
        for reply in stack.client.replies:
            assert token[:24] not in reply.text + json.dumps(reply.headers)
        for event in published:
            assert token[:24] not in json.dumps(event)


def _placed(stack: Stack, token: str) -> str:
    reply = stack.client.call("POST", "/orders", token)
    assert reply.status == 202, reply.text
    order_id: str = reply.json["orderId"]
    return order_id


def _waiting_for_customer(stack: Stack, token: str) -> str:
    order_id = _placed(stack, token)
    stack.client.until(
        lambda: stack.client.call("GET", f"/orders/{order_id}", token),
        lambda reply: reply.json["state"] == "WAITING_FOR_CUSTOMER",
        "customer wait",
    )
    return order_id


def test_a_customer_orders_and_a_barista_makes_and_completes_it_over_http(stack: Stack) -> None:
    client = stack.client

    # Given the shop's menu, read by a signed-in customer
    menu = client.call("GET", "/config", stack.alice)
    assert menu.status == 200
    latte = next(drink for drink in menu.json["menu"] if drink["name"] == "Latte")

    # When Alice places an order
    order_id = _placed(stack, stack.alice)

    # And submits her drink as soon as the workflow waits for it (409 + Retry-After until then)
    choice = {"drink": "Latte", "modifiers": latte["modifiers"][:1]}
    submitted = client.until(
        lambda: client.call("PUT", f"/orders/{order_id}", stack.alice, choice),
        lambda reply: reply.status != 409,
        "accepted submit",
    )
    assert (submitted.status, submitted.json["state"]) == (200, "SUBMITTED")

    # And Bob finds it in the barista queue, starts making it and completes it
    queue = client.until(
        lambda: client.call("GET", "/orders?state=WAITING_FOR_BARISTA", stack.bob),
        lambda reply: order_id in [order["orderId"] for order in reply.json["orders"]],
        "order in the barista queue",
    )
    [queued] = [order for order in queue.json["orders"] if order["orderId"] == order_id]
    assert isinstance(queued["orderNumber"], int)
    made = client.call("POST", f"/orders/{order_id}/make", stack.bob)
    assert (made.status, made.json["baristaId"]) == (200, user_sub("bob"))
    completed = client.call("POST", f"/orders/{order_id}/complete", stack.bob)
    assert (completed.status, completed.json["state"]) == (200, "COMPLETING")

    # Then Alice sees her order COMPLETED, with its whole history
    final = client.until(
        lambda: client.call("GET", f"/orders/{order_id}", stack.alice),
        lambda reply: reply.json["state"] == "COMPLETED",
        "completed order",
    )
    assert [entry["state"] for entry in final.json["timeline"]] == [
        "PLACED",
        "WAITING_FOR_CUSTOMER",
        "SUBMITTED",
        "WAITING_FOR_BARISTA",
        "COMPLETING",
        "COMPLETED",
    ]
    assert (final.json["drink"], final.json["orderNumber"]) == ("Latte", queued["orderNumber"])
    # And the one workflow execution for the order succeeded through "Emit - Order finished"
    [execution] = stack.engine.executions_for_order(order_id)
    described = stack.engine.wait_for_execution(execution["executionArn"])
    assert described["status"] == "SUCCEEDED"
    assert "Emit - Order finished" in stack.engine.state_path(execution["executionArn"])
    # And she finds it among her orders
    mine = client.call("GET", "/orders", stack.alice)
    assert [order["orderId"] for order in mine.json["orders"]] == [order_id]
    _assert_no_task_token_left_the_service(stack)


def test_a_customer_cannot_act_on_another_customers_order(stack: Stack) -> None:
    client = stack.client
    # Given Alice's order, waiting for her drink (its task token stored)
    order_id = _waiting_for_customer(stack, stack.alice)

    # When Carol reads, submits to and cancels it
    replies = [
        client.call("GET", f"/orders/{order_id}", stack.carol),
        client.call("PUT", f"/orders/{order_id}", stack.carol, {"drink": "Mocha", "modifiers": []}),
        client.call("DELETE", f"/orders/{order_id}", stack.carol),
    ]

    # Then each is forbidden, and Alice's order is as it was, its workflow still waiting
    assert [reply.status for reply in replies] == [403, 403, 403]
    mine = client.call("GET", f"/orders/{order_id}", stack.alice)
    assert mine.json["state"] == "WAITING_FOR_CUSTOMER"
    assert "drink" not in mine.json
    [execution] = stack.engine.executions_for_order(order_id)
    sfn = stack.engine.clients["stepfunctions"]
    assert sfn.describe_execution(executionArn=execution["executionArn"])["status"] == "RUNNING"
    _assert_no_task_token_left_the_service(stack)


def test_a_customer_cannot_call_barista_routes(stack: Stack) -> None:
    client = stack.client
    # Given Alice's order, waiting for her drink
    order_id = _waiting_for_customer(stack, stack.alice)

    # When Alice calls every barista route on it, and tries to close the shop
    replies = [
        client.call(method, path.format(id=order_id), stack.alice, body)
        for method, path, body in BARISTA_ROUTES
    ]
    replies.append(client.call("PUT", "/config", stack.alice, {"isOpen": False}))

    # Then every call is forbidden and nothing changed
    assert [reply.status for reply in replies] == [403] * (len(BARISTA_ROUTES) + 1)
    assert client.call("GET", "/config", stack.alice).json["isOpen"] is True
    order = client.call("GET", f"/orders/{order_id}", stack.alice).json
    assert order["state"] == "WAITING_FOR_CUSTOMER"
    assert "baristaId" not in order
    _assert_no_task_token_left_the_service(stack)


def test_no_token_at_all_is_401_before_the_function_runs(stack: Stack) -> None:
    client = stack.client
    order_id = _placed(stack, stack.alice)
    stack.engine.wait_for(lambda: stack.engine.executions_for_order(order_id), what="the order's execution")

    # When someone calls every route without a token, or with a forged one
    routes = [
        ("POST", "/orders", None),
        ("GET", "/orders", None),
        ("GET", f"/orders/{order_id}", None),
        ("PUT", f"/orders/{order_id}", {"drink": "Latte", "modifiers": []}),
        ("DELETE", f"/orders/{order_id}", None),
        ("GET", "/config", None),
        ("PUT", "/config", {"isOpen": False}),
    ] + [(method, path.format(id=order_id), body) for method, path, body in BARISTA_ROUTES]
    anonymous = [client.call(method, path, None, body) for method, path, body in routes]
    forged = client.call("POST", "/orders", "eyJhbGciOiJub25lIn0.eyJzdWIiOiJtYWxsb3J5In0.")

    # Then the authorizer refuses each with 401, and no second order or execution appeared
    assert [reply.status for reply in anonymous] == [401] * len(routes)
    assert all(reply.json == {"message": "Unauthorized"} for reply in anonymous)
    assert forged.status == 401
    listed = client.call("GET", "/orders", stack.alice).json["orders"]
    assert [order["orderId"] for order in listed] == [order_id]
    assert len(stack.engine.executions()) == 1
    _assert_no_task_token_left_the_service(stack)
