"""The screens' site beside the local API (local/web): pages, runtime configuration, the local sign-in
(authorization code + PKCE, one-time `make link` tickets), and no path shared with an API route."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest

from local.api_server import api_definition
from local.auth import AUDIENCE, LocalIdp, Unauthorized
from local.template import Template
from local.web.link import link
from local.web.site import PAGES, SITE_PATHS, WebSite
from tests.template_tables import TEMPLATE_PATH

HOST = "127.0.0.1:3999"
HEADERS = {"host": HOST}
PAGE = f"http://{HOST}/barista"


@pytest.fixture
def idp(tmp_path: Path) -> LocalIdp:
    return LocalIdp(tmp_path / "jwt")


@pytest.fixture
def site(idp: LocalIdp) -> WebSite:
    return WebSite(idp, time_scale=0.1, push_url="ws://127.0.0.1:4000")


def _pkce() -> tuple[str, str]:
    verifier = "v" * 50
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")
    return verifier, challenge


def _authorize(site: WebSite, challenge: str, **extra: str) -> tuple[int, dict[str, str]]:
    params = {
        "response_type": "code",
        "client_id": AUDIENCE,
        "redirect_uri": PAGE,
        "state": "s1",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        **extra,
    }
    response = site.handle("POST", "/oauth2/authorize", HEADERS, urlencode(params).encode())
    assert response is not None
    location = dict(response.headers).get("Location", "")
    return response.status, {key: values[0] for key, values in parse_qs(urlsplit(location).query).items()}


def _token(site: WebSite, code: str, verifier: str) -> tuple[int, dict[str, str]]:
    form = {
        "grant_type": "authorization_code",
        "client_id": AUDIENCE,
        "code": code,
        "redirect_uri": PAGE,
        "code_verifier": verifier,
    }
    response = site.handle("POST", "/oauth2/token", HEADERS, urlencode(form).encode())
    assert response is not None
    return response.status, json.loads(response.body)


def test_the_code_flow_with_pkce_signs_in_with_the_name_and_role_chosen(site: WebSite, idp: LocalIdp) -> None:
    # Given the sign-in form's answer (name and role) for a PKCE challenge
    verifier, challenge = _pkce()
    status, answer = _authorize(site, challenge, username="  Bob  ", role="barista")

    # When the page exchanges the code with its verifier
    exchanged, tokens = _token(site, answer["code"], verifier)

    # Then it gets an ID token for that user and role, and the state came back unchanged
    assert (status, answer["state"], exchanged) == (302, "s1", 200)
    claims = idp.verify(tokens["id_token"])
    assert (claims["cognito:username"], claims["cognito:groups"]) == ("Bob", ["barista"])


def test_a_wrong_verifier_or_a_second_exchange_gets_no_token(site: WebSite) -> None:
    verifier, challenge = _pkce()
    _, answer = _authorize(site, challenge, username="ana", role="customer")

    assert _token(site, answer["code"], "not-the-verifier")[0] == 400
    assert _token(site, answer["code"], verifier)[0] == 400  # refused codes are spent too


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"client_id": "someone-else"}, "invalid_client"),
        ({"redirect_uri": "http://evil.example/"}, "invalid_request"),
        ({"code_challenge_method": "plain"}, "invalid_request"),
        ({"response_type": "token"}, "unsupported_response_type"),
    ],
)
def test_the_authorize_endpoint_refuses_what_cognito_would(
    site: WebSite, change: dict[str, str], error: str
) -> None:
    _, challenge = _pkce()
    params = {
        "response_type": "code",
        "client_id": AUDIENCE,
        "redirect_uri": PAGE,
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        **change,
    }
    response = site.handle("GET", f"/oauth2/authorize?{urlencode(params)}", HEADERS, b"")
    assert response is not None
    assert (response.status, json.loads(response.body)["error"]) == (400, error)


def test_a_make_link_ticket_signs_in_once_and_is_no_api_token(site: WebSite, idp: LocalIdp) -> None:
    # Given the URL `make link` prints for the display
    url = link("display", "bar-screen", port=3999, idp=idp)
    ticket = parse_qs(urlsplit(url).query)["login"][0]
    verifier, challenge = _pkce()
    query = urlencode(
        {
            "response_type": "code",
            "client_id": AUDIENCE,
            "redirect_uri": PAGE,
            "code_challenge": challenge,
            "code_challenge_method": "S256",
            "login_hint": ticket,
        }
    )

    # When the page's sign-in carries it to the authorize endpoint, twice
    first = site.handle("GET", f"/oauth2/authorize?{query}", HEADERS, b"")
    second = site.handle("GET", f"/oauth2/authorize?{query}", HEADERS, b"")

    # Then the first signs in as the display without a form, the second is refused
    assert first is not None and second is not None
    assert urlsplit(url).path == "/display"
    code = parse_qs(urlsplit(dict(first.headers)["Location"]).query)["code"][0]
    tokens = _token(site, code, verifier)[1]
    assert idp.verify(tokens["id_token"])["cognito:groups"] == ["display"]
    assert (second.status, "used already" in json.loads(second.body)["error_description"]) == (400, True)
    with pytest.raises(Unauthorized):
        idp.authorize({"Authorization": f"Bearer {ticket}"})


def test_the_runtime_configuration_comes_from_the_stack_and_the_host_used(site: WebSite) -> None:
    response = site.handle("GET", "/runtime-config.json", {"host": "localhost:3999"}, b"")

    assert response is not None and response.status == 200
    config = json.loads(response.body)
    assert config["apiUrl"] == "http://localhost:3999"
    assert config["pushUrl"] == "ws://127.0.0.1:4000"
    assert config["auth"]["authorizeUrl"] == "http://localhost:3999/oauth2/authorize"
    assert config["waits"] == {"customerSeconds": 30, "baristaSeconds": 90}


def test_pages_and_assets_are_served_and_nothing_outside_them(site: WebSite) -> None:
    for path in PAGES:
        page = site.handle("GET", path, HEADERS, b"")
        assert page is not None and page.status == 200 and b"<!doctype html>" in page.body
    script = site.handle("GET", "/app/order.js", HEADERS, b"")
    assert script is not None and dict(script.headers)["Content-Type"].startswith("text/javascript")
    escape = site.handle("GET", "/app/../../local/auth.py", HEADERS, b"")
    assert escape is not None and escape.status == 404
    assert site.handle("GET", "/orders", HEADERS, b"") is None  # the API's


def test_no_site_path_is_an_api_route() -> None:
    routes = api_definition(Template.load(TEMPLATE_PATH)).routes
    for path in SITE_PATHS:
        assert not any(
            route.match(method, path) is not None for route in routes for method in ("GET", "POST")
        )
    assert not any(route.path.startswith("/app/") for route in routes)
