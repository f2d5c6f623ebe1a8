"""The local identity provider and JWT authorizer (local/auth.py) and `make token` (local/token_cli.py)."""

from __future__ import annotations

import stat
import time
from pathlib import Path

import jwt
import pytest

from local import token_cli
from local.auth import AUDIENCE, ISSUER, LocalIdp, Unauthorized, user_sub


@pytest.fixture
def idp(tmp_path: Path) -> LocalIdp:
    return LocalIdp(tmp_path / "jwt")


def test_the_key_is_created_once_private_to_the_user_and_reused(tmp_path: Path) -> None:
    # Given no key yet
    key_dir = tmp_path / "jwt"

    # When two identity providers start on the same directory
    first, second = LocalIdp(key_dir), LocalIdp(key_dir)

    # Then one key was written, readable by its owner only, and both use it
    key_file = key_dir / "private.pem"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert first.key_id == second.key_id
    assert second.verify(first.issue_token("alice"))["sub"] == user_sub("alice")


def test_a_customer_token_is_a_cognito_like_id_token_valid_for_at_least_a_day(idp: LocalIdp) -> None:
    # When a customer's token is issued
    claims = idp.verify(idp.issue_token("alice"))

    # Then it names her by a stable subject, has no groups, and lasts more than 24 hours
    assert claims["sub"] == user_sub("alice") != user_sub("bob")
    assert claims["cognito:username"] == "alice"
    assert (claims["iss"], claims["aud"], claims["token_use"]) == (ISSUER, AUDIENCE, "id")
    assert "cognito:groups" not in claims
    assert claims["exp"] - time.time() > 24 * 3600


def test_a_barista_token_carries_the_barista_group(idp: LocalIdp) -> None:
    assert idp.verify(idp.issue_token("bob", "barista"))["cognito:groups"] == ["barista"]


def test_unknown_roles_are_refused(idp: LocalIdp) -> None:
    with pytest.raises(ValueError):
        idp.issue_token("eve", "admin")


def test_the_authorizer_passes_claims_the_way_api_gateway_renders_them(idp: LocalIdp) -> None:
    # Given a barista's bearer token
    headers = {"Authorization": f"Bearer {idp.issue_token('bob', 'barista')}"}

    # When the emulated authorizer checks the request
    identity = idp.authorize(headers)

    # Then every claim is a string, the group array is "[barista]", and there are no scopes
    assert identity.claims["sub"] == user_sub("bob")
    assert identity.claims["cognito:groups"] == "[barista]"
    assert all(isinstance(value, str) for value in identity.claims.values())
    assert identity.claims["exp"].isdigit()
    assert identity.scopes is None


def _forged(claims_change: dict[str, object], idp: LocalIdp, key: object | None = None) -> str:
    claims = {**idp.verify(idp.issue_token("mallory")), **claims_change}
    signing_key = key if key is not None else idp._private_key
    return jwt.encode(claims, signing_key, algorithm="RS256", headers={"kid": idp.key_id})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "Bearer",
        "Bearer not-a-jwt",
        "Basic dXNlcjpwYXNz",
    ],
)
def test_requests_without_a_valid_token_are_unauthorized(idp: LocalIdp, header: str | None) -> None:
    headers = {} if header is None else {"authorization": header}

    with pytest.raises(Unauthorized):
        idp.authorize(headers)


def test_expired_foreign_and_misaddressed_tokens_are_unauthorized(idp: LocalIdp, tmp_path: Path) -> None:
    # Given tokens that are expired, for another audience, from another issuer, and signed by another key
    other_key = LocalIdp(tmp_path / "other")._private_key
    tokens = [
        _forged({"exp": int(time.time()) - 10}, idp),
        _forged({"aud": "someone-else"}, idp),
        _forged({"iss": "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_real"}, idp),
        _forged({}, idp, key=other_key),
    ]

    # Then none of them passes the authorizer
    for token in tokens:
        with pytest.raises(Unauthorized):
            idp.authorize({"authorization": f"Bearer {token}"})


def test_make_token_prints_the_token_on_the_last_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # When `make token USER=bob ROLE=barista` runs
    assert token_cli.main(["bob", "--role", "barista", "--key-dir", str(tmp_path / "jwt")]) == 0

    # Then its last line is a barista token the local API accepts
    last_line = capsys.readouterr().out.strip().splitlines()[-1]
    identity = LocalIdp(tmp_path / "jwt").authorize({"authorization": f"Bearer {last_line}"})
    assert identity.claims["cognito:groups"] == "[barista]"
    assert identity.claims["sub"] == user_sub("bob")
