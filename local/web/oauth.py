"""The local identity provider's OAuth 2.0 endpoints, shaped like Cognito's managed login.

    GET  /oauth2/authorize   a small form: name and role (customer, barista, display); or, with
                             `login_hint=<ticket>` from `make link`, no form: the ticket signs in once
    POST /oauth2/authorize   the form's answer: redirects to redirect_uri with ?code=&state=
    POST /oauth2/token       grant_type=authorization_code with the PKCE code_verifier: the tokens
    GET  /logout             redirects to logout_uri

The screens run one sign-in path, the authorization code flow with PKCE (S256), against these or
Cognito's. Codes live 60 s in memory, are single use and bound to the client, redirect URI and code
challenge; a redirect URI must be on the host the request came to (this server's own pages).
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import secrets
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode, urlsplit

from local.api_server import HttpResponse
from local.auth import AUDIENCE, ROLES, TOKEN_LIFETIME_SECONDS, LocalIdp, Unauthorized

AUTHORIZE_PATH = "/oauth2/authorize"
TOKEN_PATH = "/oauth2/token"
LOGOUT_PATH = "/logout"
CODE_LIFETIME_SECONDS = 60


@dataclass(frozen=True)
class _Grant:
    user: str
    role: str
    client_id: str
    redirect_uri: str
    code_challenge: str
    expires: float


class OAuthError(Exception):
    """A request the endpoints refuse; `error` is the OAuth 2.0 error code."""

    def __init__(self, error: str, description: str) -> None:
        super().__init__(description)
        self.error = error
        self.description = description


class LocalAuthorizationServer:
    """Issues authorization codes for the local IdP's tokens (see the module docstring)."""

    def __init__(self, idp: LocalIdp) -> None:
        self.idp = idp
        self._grants: dict[str, _Grant] = {}
        self._redeemed_tickets: set[str] = set()
        self._lock = threading.Lock()

    def handle(
        self, method: str, path: str, query: str, headers: Mapping[str, str], body: bytes
    ) -> HttpResponse | None:
        """The response for an OAuth path, or None when the path is not one of these endpoints."""
        if path not in (AUTHORIZE_PATH, TOKEN_PATH, LOGOUT_PATH):
            return None
        host = headers.get("host", "")
        try:
            if path == AUTHORIZE_PATH and method == "GET":
                return self._authorize_page(dict(parse_qsl(query)), host)
            if path == AUTHORIZE_PATH and method == "POST":
                return self._authorize_answer(_form(body), host)
            if path == TOKEN_PATH and method == "POST":
                return self._token(_form(body))
            if path == LOGOUT_PATH and method == "GET":
                target = dict(parse_qsl(query)).get("logout_uri", "/")
                return _redirect(target if _same_host(target, host) else "/")
        except OAuthError as refused:
            return _json(400, {"error": refused.error, "error_description": refused.description})
        return _json(405, {"error": "invalid_request", "error_description": f"{method} not allowed"})

    # ------------------------------------------------------------------------------- authorize
    def _authorize_page(self, params: dict[str, str], host: str) -> HttpResponse:
        self._check_request(params, host)
        ticket = params.get("login_hint")
        if ticket:
            claims = self._redeem_ticket(ticket)
            return self._grant(params, str(claims["cognito:username"]), str(claims["role"]))
        return HttpResponse(
            200,
            [("Content-Type", "text/html; charset=utf-8"), ("Cache-Control", "no-store")],
            _form_page(params).encode(),
        )

    def _authorize_answer(self, form: dict[str, str], host: str) -> HttpResponse:
        self._check_request(form, host)
        user = " ".join(form.get("username", "").split())
        role = form.get("role", "customer")
        if not user or len(user) > 32:
            return HttpResponse(
                400,
                [("Content-Type", "text/html; charset=utf-8")],
                _form_page(form, error="Type a name of 1 to 32 characters.").encode(),
            )
        if role not in ROLES:
            raise OAuthError("invalid_request", f"role must be one of {', '.join(ROLES)}")
        return self._grant(form, user, role)

    def _check_request(self, params: Mapping[str, str], host: str) -> None:
        if params.get("response_type") != "code":
            raise OAuthError("unsupported_response_type", "only response_type=code")
        if params.get("client_id") != AUDIENCE:
            raise OAuthError("invalid_client", "unknown client_id")
        if not _same_host(params.get("redirect_uri", ""), host):
            raise OAuthError("invalid_request", "redirect_uri must be a page of this server")
        if params.get("code_challenge_method") != "S256" or not params.get("code_challenge"):
            raise OAuthError("invalid_request", "PKCE is required: code_challenge with S256")

    def _redeem_ticket(self, ticket: str) -> dict[str, object]:
        try:
            claims = self.idp.verify_login_ticket(ticket)
        except Unauthorized as invalid:
            raise OAuthError("access_denied", f"the sign-in link is not valid ({invalid})") from None
        with self._lock:
            if claims["jti"] in self._redeemed_tickets:
                raise OAuthError("access_denied", "the sign-in link was used already; run make link again")
            self._redeemed_tickets.add(str(claims["jti"]))
        return claims

    def _grant(self, params: Mapping[str, str], user: str, role: str) -> HttpResponse:
        code = secrets.token_urlsafe(24)
        with self._lock:
            now = time.time()
            self._grants = {key: grant for key, grant in self._grants.items() if grant.expires > now}
            self._grants[code] = _Grant(
                user, role, params["client_id"], params["redirect_uri"], params["code_challenge"],
                now + CODE_LIFETIME_SECONDS,
            )  # fmt: skip
        answer = {"code": code} | ({"state": params["state"]} if params.get("state") else {})
        separator = "&" if "?" in params["redirect_uri"] else "?"
        return _redirect(f"{params['redirect_uri']}{separator}{urlencode(answer)}")

    # ----------------------------------------------------------------------------------- token
    def _token(self, form: dict[str, str]) -> HttpResponse:
        if form.get("grant_type") != "authorization_code":
            raise OAuthError("unsupported_grant_type", "only authorization_code")
        with self._lock:
            grant = self._grants.pop(form.get("code", ""), None)  # single use, even when refused below
        if grant is None or grant.expires < time.time():
            raise OAuthError("invalid_grant", "unknown, used or expired code")
        if form.get("client_id") != grant.client_id or form.get("redirect_uri") != grant.redirect_uri:
            raise OAuthError("invalid_grant", "client_id or redirect_uri differ from the authorize request")
        verifier = form.get("code_verifier", "")
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")
        if not verifier or not secrets.compare_digest(challenge, grant.code_challenge):
            raise OAuthError("invalid_grant", "code_verifier does not match the code_challenge")
        token = self.idp.issue_token(grant.user, grant.role)
        return _json(
            200,
            {
                "id_token": token,
                "access_token": token,
                "token_type": "Bearer",
                "expires_in": TOKEN_LIFETIME_SECONDS,
            },
        )


def _same_host(url: str, host: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme in ("http", "https") and bool(host) and parts.netloc == host


def _form(body: bytes) -> dict[str, str]:
    return dict(parse_qsl(body.decode("utf-8", errors="replace"), keep_blank_values=True))


def _redirect(location: str) -> HttpResponse:
    return HttpResponse(302, [("Location", location), ("Cache-Control", "no-store")], b"")


def _json(status: int, body: Mapping[str, object]) -> HttpResponse:
    return HttpResponse(
        status,
        [("Content-Type", "application/json"), ("Cache-Control", "no-store")],
        json.dumps(body).encode(),
    )


_CARRIED = (
    "response_type",
    "client_id",
    "redirect_uri",
    "state",
    "code_challenge",
    "code_challenge_method",
    "scope",
)


def _form_page(params: Mapping[str, str], error: str = "") -> str:
    hidden = "\n".join(
        f'<input type="hidden" name="{name}" value="{html.escape(params[name])}">'
        for name in _CARRIED
        if name in params
    )
    roles = "\n".join(
        f'<label class="choice"><input type="radio" name="role" value="{role}"'
        f"{' checked' if role == params.get('role', 'customer') else ''}> {role.capitalize()}</label>"
        for role in ROLES
    )
    alert = f'<p role="alert" class="error">{html.escape(error)}</p>' if error else ""
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Sign in · Serverlesspresso (local)</title>
<link rel="stylesheet" href="/app/styles.css">
</head>
<body class="signin">
<main class="card narrow">
<h1>Sign in</h1>
<p class="hint">The local stand-in for the coffee bar's sign-in page: no password on this machine.</p>
{alert}
<form method="post" action="{AUTHORIZE_PATH}">
{hidden}
<label for="username">Your name</label>
<input id="username" name="username" autocomplete="nickname" required maxlength="32"
       value="{html.escape(params.get("username", ""))}">
<fieldset><legend>I am</legend>
{roles}
</fieldset>
<button type="submit" class="primary">Sign in</button>
</form>
</main>
</body>
</html>
"""
