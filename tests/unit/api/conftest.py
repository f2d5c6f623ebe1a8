"""Fixtures for the HTTP API's in-process tests: the handler invoked with the sample API Gateway events
(events/api_*.json) as a given user, and a driver that moves real orders through the real workflow.

The API function runs exactly as Lambda runs it (module loaded by path, Powertools decorators on), in
the moto account of the `aws` fixture; the workflow is the template's ASL executing in moto, and its
events are handed to the real token-keeping handlers, so a test's order is in the state it claims.
"""

from __future__ import annotations

import base64
import copy
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import pytest

from tests.helpers import LambdaContext, load_event, load_handler
from tests.unit.conftest import BARISTA_WAIT, CUSTOMER_WAIT, AwsEnv, BusCapture, Handler, Workflow

SAMPLE_ORDER_ID = "7c3f1b2e-5d4a-4e8b-9f0a-1b2c3d4e5f60"
# The fields an order may show, written out here: a test that read the code's own list could not fail
# when a private field was added to it.
PUBLIC_FIELDS = (
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
    "customerName",  # the name the barista calls out (never the sub)
    "version",  # increases with every write: the push channel's messages carry it too
)
_KEEP_SAMPLE_BODY = object()


@dataclass(frozen=True)
class User:
    """Someone calling the API: the claims API Gateway's JWT authorizer would pass for them."""

    name: str
    claims: dict[str, str]

    @property
    def sub(self) -> str:
        """The Cognito subject, which the API uses as userId / baristaId."""
        return self.claims["sub"]

    def renamed(self, name: str, sub: str) -> User:
        """Another user with the same kind of token (same groups)."""
        return User(name, {**self.claims, "sub": sub, "cognito:username": name})


def _claims_of(sample: str) -> dict[str, str]:
    claims: dict[str, str] = load_event(sample)["requestContext"]["authorizer"]["jwt"]["claims"]
    return claims


ALICE = User("alice", _claims_of("api_place_order"))  # customer (the samples' customer)
BOB = User("bob", _claims_of("api_make_order"))  # barista (the samples' barista)
CAROL = ALICE.renamed("carol", "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d")  # another customer
DAVE = BOB.renamed("dave", "5e6f7a8b-9c0d-4e1f-8a2b-3c4d5e6f7a8b")  # another barista


@dataclass
class ApiResponse:
    """What API Gateway would send back for one invocation."""

    status: int
    headers: dict[str, str]
    body: Any
    raw: dict[str, Any]


@dataclass
class Api:
    """Invokes OrderApiFunction's handler with the sample events, adapted to one request."""

    module: Any
    responses: list[ApiResponse] = field(default_factory=list)

    def request(
        self,
        sample: str,
        user: User | None,
        *,
        order_id: str | None = None,
        body: Any = _KEEP_SAMPLE_BODY,
        raw_body: str | bytes | None = None,
        query: dict[str, str] | None = None,
        content_type: str | None = None,
    ) -> ApiResponse:
        """Send events/<sample>.json as `user` (None: no authorizer claims at all).

        `raw_body` as bytes goes base64 encoded, as API Gateway passes a body that is not text.
        """
        event = copy.deepcopy(load_event(sample))
        if user is None:
            event["requestContext"].pop("authorizer", None)
            event["headers"].pop("authorization", None)
        else:
            event["requestContext"]["authorizer"]["jwt"]["claims"] = dict(user.claims)
        if order_id is not None:
            event["pathParameters"] = {"orderId": order_id}
            path = event["routeKey"].split(" ", 1)[1].replace("{orderId}", order_id)
            event["rawPath"] = event["requestContext"]["http"]["path"] = path
        if query is not None:
            event["rawQueryString"] = urlencode(query)
            if query:
                event["queryStringParameters"] = dict(query)
            else:
                event.pop("queryStringParameters", None)
        if isinstance(raw_body, bytes):
            event["body"] = base64.b64encode(raw_body).decode()
            event["isBase64Encoded"] = True
        elif raw_body is not None:
            event["body"] = raw_body
        elif body is None:
            event.pop("body", None)
        elif body is not _KEEP_SAMPLE_BODY:
            event["body"] = json.dumps(body)
        if content_type is not None:
            event["headers"]["content-type"] = content_type
        raw = self.module.lambda_handler(event, LambdaContext(function_name="OrderApiFunction"))
        text = raw.get("body") or ""
        response = ApiResponse(
            status=raw["statusCode"],
            headers={name.lower(): value for name, value in (raw.get("headers") or {}).items()},
            body=json.loads(text) if text else None,
            raw=raw,
        )
        self.responses.append(response)
        return response

    # One method per route, for readable tests.
    def place(self, user: User | None) -> ApiResponse:
        """POST /orders."""
        return self.request("api_place_order", user)

    def get(self, order_id: str, user: User | None) -> ApiResponse:
        """GET /orders/{orderId}."""
        return self.request("api_get_order", user, order_id=order_id)

    def submit(
        self, order_id: str, user: User | None, drink: str = "Latte", modifiers: list[str] | None = None
    ) -> ApiResponse:
        """PUT /orders/{orderId}."""
        body = {"drink": drink, "modifiers": ["Oat milk"] if modifiers is None else modifiers}
        return self.request("api_submit_order", user, order_id=order_id, body=body)

    def cancel_own(self, order_id: str, user: User | None) -> ApiResponse:
        """DELETE /orders/{orderId}."""
        return self.request("api_cancel_own_order", user, order_id=order_id)

    def list(self, user: User | None, **query: str) -> ApiResponse:
        """GET /orders?..."""
        return self.request("api_list_orders", user, query=query)

    def make(self, order_id: str, user: User | None) -> ApiResponse:
        """POST /orders/{orderId}/make."""
        return self.request("api_make_order", user, order_id=order_id)

    def unmake(self, order_id: str, user: User | None) -> ApiResponse:
        """POST /orders/{orderId}/unmake."""
        return self.request("api_unmake_order", user, order_id=order_id)

    def complete(self, order_id: str, user: User | None) -> ApiResponse:
        """POST /orders/{orderId}/complete."""
        return self.request("api_complete_order", user, order_id=order_id)

    def cancel(self, order_id: str, user: User | None, reason: str | None = None) -> ApiResponse:
        """POST /orders/{orderId}/cancel."""
        return self.request(
            "api_cancel_order", user, order_id=order_id, body={"reason": reason} if reason else None
        )

    def get_config(self, user: User | None) -> ApiResponse:
        """GET /config."""
        return self.request("api_get_config", user)

    def put_config(self, user: User | None, **changes: Any) -> ApiResponse:
        """PUT /config."""
        return self.request("api_put_config", user, body=changes)


@pytest.fixture
def api(aws: AwsEnv) -> Api:
    """OrderApiFunction's handler, in the moto account of `aws` (a fresh module: a cold start)."""
    return Api(load_handler("api"))


@dataclass
class Flow:
    """Moves orders through their life for real: the API, the workflow in moto, the handlers."""

    api: Api
    workflow: Workflow
    bus: BusCapture
    workflow_started: Handler
    waiting_completion: Handler
    order_ended: Handler
    executions: dict[str, str] = field(default_factory=dict)  # orderId -> execution ARN

    def placed(self, user: User = ALICE) -> str:
        """POST /orders; the order is PLACED and its Validator.NewOrder is on the bus."""
        response = self.api.place(user)
        assert response.status == 202, response.body
        order_id: str = response.body["orderId"]
        return order_id

    def waiting_for_customer(self, user: User = ALICE, heartbeats: dict[str, int] | None = None) -> str:
        """A placed order whose workflow waits for the drink, its token stored (WAITING_FOR_CUSTOMER)."""
        order_id = self.placed(user)
        new_order = next(
            event for event in self.bus.events("Validator.NewOrder") if event["detail"]["orderId"] == order_id
        )
        execution_arn = self.workflow.start_with(new_order, heartbeats=heartbeats)
        self.executions[order_id] = execution_arn
        self.workflow.wait_for_callback(execution_arn, CUSTOMER_WAIT)
        assert self.workflow_started(self.bus.wait_for("OrderProcessor.WorkflowStarted", execution_arn)) == {
            "orderId": order_id,
            "outcome": "stored",
        }
        return order_id

    def waiting_for_barista(self, user: User = ALICE, heartbeats: dict[str, int] | None = None) -> str:
        """The customer submitted a drink; the workflow waits for a barista (WAITING_FOR_BARISTA)."""
        order_id = self.waiting_for_customer(user, heartbeats)
        response = self.api.submit(order_id, user)
        assert response.status == 200, response.body
        execution_arn = self.executions[order_id]
        self.workflow.wait_for_callback(execution_arn, BARISTA_WAIT)
        event = self.bus.wait_for("OrderProcessor.WaitingCompletion", execution_arn)
        assert self.waiting_completion(event)["outcome"] == "stored"
        return order_id

    def ended(self, order_id: str, detail_type: str) -> dict[str, Any]:
        """Wait for the execution to emit its ending event and record it with OrderEndedFunction."""
        event = self.bus.wait_for(detail_type, self.executions[order_id])
        self.order_ended(event)
        return event

    def task_tokens(self) -> set[str]:
        """Every task token the workflow has issued so far (from its callback events)."""
        return {
            event["detail"]["TaskToken"]
            for detail_type in ("OrderProcessor.WorkflowStarted", "OrderProcessor.WaitingCompletion")
            for event in self.bus.events(detail_type)
        }


@pytest.fixture
def flow(
    api: Api,
    workflow: Workflow,
    bus: BusCapture,
    workflow_started: Handler,
    waiting_completion: Handler,
    order_ended: Handler,
) -> Iterator[Flow]:
    """Drive orders through the real workflow (see Flow)."""
    yield Flow(api, workflow, bus, workflow_started, waiting_completion, order_ended)
