"""local/api_server.py without sockets: routes from the template, the emulated JWT authorizer, the
request -> API Gateway v2 event translation and the result -> HTTP response translation.

A recording stand-in replaces the engine's `invoke`, so these tests see exactly the event a function
would get; the real function behind the real server is exercised in tests/e2e/test_api_http.py.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from local.api_server import LocalApi, api_definition, build_event, response_from_result
from local.auth import LocalIdp, user_sub
from local.template import Template
from tests.helpers import event_names, load_event
from tests.template_tables import TEMPLATE_PATH

API_FUNCTION = "OrderApiFunction"


class RecordingEngine:
    """Stands in for LocalEngine: the template, and an invoke that records events and answers `result`."""

    def __init__(self, result: Any = None, error: Exception | None = None) -> None:
        self.template = Template.load(TEMPLATE_PATH)
        self.result = result if result is not None else {"statusCode": 200, "body": "{}"}
        self.error = error
        self.invocations: list[tuple[str, dict[str, Any]]] = []

    def invoke(self, logical_id: str, event: Any) -> Any:
        self.invocations.append((logical_id, event))
        if self.error:
            raise self.error
        return self.result


@pytest.fixture
def idp(tmp_path: Path) -> LocalIdp:
    return LocalIdp(tmp_path / "jwt")


def _api(idp: LocalIdp, **engine_options: Any) -> tuple[LocalApi, RecordingEngine]:
    engine = RecordingEngine(**engine_options)
    return LocalApi(engine, idp=idp), engine


def _shape(node: Any) -> Any:
    """Keys (recursively) of a JSON document, values dropped: what two events must share."""
    if isinstance(node, dict):
        return {key: _shape(value) for key, value in node.items() if key not in ("claims",)}
    return type(node).__name__


# ------------------------------------------------------------------------------------------ routes
def test_every_route_of_the_template_has_a_sample_event_and_none_is_missing() -> None:
    # Given the template's HttpApi routes and the API sample events
    routes = api_definition(Template.load(TEMPLATE_PATH)).routes
    samples = {load_event(name)["routeKey"] for name in event_names() if name.startswith("api_")}

    # Then each route has a sample, every route is behind the authorizer and runs the API function
    assert {route.route_key for route in routes} == samples
    assert all(route.authorized and route.function == API_FUNCTION for route in routes)


def test_literal_paths_win_over_path_variables() -> None:
    definition = api_definition(Template.load(TEMPLATE_PATH))

    found = definition.find("GET", "/orders")
    assert found is not None and found[0].path == "/orders" and found[1] == {}
    found = definition.find("POST", "/orders/o-1/make")
    assert found is not None and found[0].route_key == "POST /orders/{orderId}/make"
    assert definition.find("POST", "/orders/o-1") is None
    assert definition.find("GET", "/orders/o-1/extra/segment") is None


# ------------------------------------------------------------------------------------- authorizer
@pytest.mark.parametrize("authorization", [None, "Bearer nope", "Bearer " + "e30.e30.e30"])
def test_without_a_valid_token_the_answer_is_401_and_the_function_never_runs(
    idp: LocalIdp, authorization: str | None
) -> None:
    api, engine = _api(idp)
    headers = [("Authorization", authorization)] if authorization else []

    response = api.handle("POST", "/orders", headers, b"")

    assert response.status == 401
    assert json.loads(response.body) == {"message": "Unauthorized"}
    assert engine.invocations == []


def test_a_token_signed_by_another_key_is_401(idp: LocalIdp, tmp_path: Path) -> None:
    api, engine = _api(idp)
    foreign = LocalIdp(tmp_path / "elsewhere").issue_token("mallory", "barista")

    response = api.handle("PUT", "/config", [("Authorization", f"Bearer {foreign}")], b"{}")

    assert (response.status, engine.invocations) == (401, [])


def test_unknown_routes_are_404_from_the_gateway(idp: LocalIdp) -> None:
    api, engine = _api(idp)
    token = idp.issue_token("alice")

    for method, path in [("GET", "/nope"), ("PATCH", "/orders"), ("POST", "/orders/o-1")]:
        response = api.handle(method, path, [("Authorization", f"Bearer {token}")], b"")
        assert (response.status, json.loads(response.body)) == (404, {"message": "Not Found"})
    assert engine.invocations == []


# ------------------------------------------------------------------------------------------ events
def test_a_request_becomes_the_v2_event_the_deployed_api_sends(idp: LocalIdp) -> None:
    # Given a barista's request with a path parameter, a query, a JSON body and a cookie
    api, engine = _api(idp)
    token = idp.issue_token("bob", "barista")
    headers = [
        ("Host", "127.0.0.1:3000"),
        ("Authorization", f"Bearer {token}"),
        ("Content-Type", "application/json"),
        ("X-Custom", "a"),
        ("x-custom", "b"),
        ("Cookie", "theme=dark; lang=en"),
        ("User-Agent", "pytest"),
    ]

    # When it goes through the local API
    api.handle("PUT", "/orders/o%3A1?limit=5&tag=x&tag=y", headers, b'{"drink": "Latte"}', "10.0.0.7")

    # Then the function got the event API Gateway would build
    [(function, event)] = engine.invocations
    assert function == API_FUNCTION
    assert (event["version"], event["routeKey"]) == ("2.0", "PUT /orders/{orderId}")
    assert (event["rawPath"], event["rawQueryString"]) == ("/orders/o%3A1", "limit=5&tag=x&tag=y")
    assert event["pathParameters"] == {"orderId": "o:1"}
    assert event["queryStringParameters"] == {"limit": "5", "tag": "x,y"}
    assert event["headers"]["x-custom"] == "a,b"
    assert all(name == name.lower() for name in event["headers"])
    assert "cookie" not in event["headers"]
    assert event["cookies"] == ["theme=dark", "lang=en"]
    assert (event["body"], event["isBase64Encoded"]) == ('{"drink": "Latte"}', False)
    context = event["requestContext"]
    assert (context["http"]["method"], context["http"]["path"], context["http"]["sourceIp"]) == (
        "PUT",
        "/orders/o:1",
        "10.0.0.7",
    )
    assert context["routeKey"] == event["routeKey"]
    assert context["authorizer"]["jwt"]["claims"]["sub"] == user_sub("bob")
    assert context["authorizer"]["jwt"]["claims"]["cognito:groups"] == "[barista]"


def test_the_local_event_has_the_shape_of_the_sample_events(idp: LocalIdp) -> None:
    # Given the sample event of a route (recorded from the deployed API's format)
    sample = load_event("api_submit_order")
    api, engine = _api(idp)
    headers = [(name, value) for name, value in sample["headers"].items() if name != "authorization"]
    headers.append(("authorization", f"Bearer {idp.issue_token('alice')}"))

    # When the same request goes through the local API
    api.handle("PUT", sample["rawPath"], headers, sample["body"].encode())

    # Then the event has the same structure, field for field
    [(_, event)] = engine.invocations
    assert _shape(event) == _shape(sample)


def test_a_binary_body_is_base64_encoded() -> None:
    route = api_definition(Template.load(TEMPLATE_PATH)).routes[0]

    event = build_event(
        route,
        {},
        method=route.method,
        target=route.path,
        headers=[("Content-Type", "application/octet-stream")],
        body=b"\xff\x00",
        claims=None,
        scopes=None,
    )

    assert (event["isBase64Encoded"], base64.b64decode(event["body"])) == (True, b"\xff\x00")
    assert "authorizer" not in event["requestContext"]


# --------------------------------------------------------------------------------------- responses
def test_the_functions_response_is_sent_back_as_is() -> None:
    response = response_from_result(
        {
            "statusCode": 409,
            "headers": {"Retry-After": "1", "Content-Type": "application/json"},
            "cookies": ["a=b"],
            "body": '{"message": "later"}',
            "isBase64Encoded": False,
        }
    )

    assert response.status == 409
    assert ("Retry-After", "1") in response.headers
    assert ("Set-Cookie", "a=b") in response.headers
    assert response.body == b'{"message": "later"}'


def test_a_base64_body_is_decoded_and_a_plain_result_becomes_200_json() -> None:
    assert response_from_result({"statusCode": 200, "body": "aGk=", "isBase64Encoded": True}).body == b"hi"
    plain = response_from_result({"orders": []})
    assert (plain.status, json.loads(plain.body)) == (200, {"orders": []})


def test_a_function_error_is_api_gateways_500(idp: LocalIdp) -> None:
    api, _ = _api(idp, error=RuntimeError("boom"))

    response = api.handle("GET", "/config", [("Authorization", f"Bearer {idp.issue_token('alice')}")], b"")

    assert (response.status, json.loads(response.body)) == (500, {"message": "Internal Server Error"})


def test_cors_preflight_is_answered_from_the_templates_cors_configuration(idp: LocalIdp) -> None:
    api, engine = _api(idp)
    cors = api.definition.cors
    assert cors is not None

    response = api.handle(
        "OPTIONS",
        "/orders",
        [("Origin", "http://localhost:5173"), ("Access-Control-Request-Method", "POST")],
        b"",
    )

    headers = dict(response.headers)
    assert response.status == 204
    assert headers["Access-Control-Allow-Origin"] == cors.origin_for("http://localhost:5173")
    assert "POST" in headers["Access-Control-Allow-Methods"]
    assert "authorization" in headers["Access-Control-Allow-Headers"]
    assert engine.invocations == []
