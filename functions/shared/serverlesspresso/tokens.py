"""Verifying a Cognito ID token ourselves, where no API Gateway authorizer can (WebSocket $connect).

The same checks as the HTTP API's JWT authorizer plus the token's use: signature against the user
pool's JWKS (fetched once per execution environment and cached, refreshed when a new key id shows up),
issuer, audience (the app client id), expiry, and `token_use == "id"`. Issuer, audience and JWKS URL
come from the environment, so the local identity provider (local/auth.py) is checked the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import jwt

ALGORITHMS = ("RS256",)  # what Cognito signs with
REQUIRED_CLAIMS = ("exp", "iat", "iss", "aud", "sub", "token_use")
JWKS_CACHE_SECONDS = 3600


class TokenRejected(Exception):
    """The token is missing, malformed, forged, expired, or meant for someone else."""


@dataclass(frozen=True)
class TokenVerifier:
    """Checks ID tokens of one user pool client."""

    issuer: str
    audience: str
    jwks: jwt.PyJWKClient

    @classmethod
    def for_pool(cls, issuer: str, audience: str, jwks_url: str) -> TokenVerifier:
        """A verifier whose keys come from `jwks_url` (Cognito: `<issuer>/.well-known/jwks.json`)."""
        return cls(issuer, audience, jwt.PyJWKClient(jwks_url, lifespan=JWKS_CACHE_SECONDS, timeout=5))

    def verify(self, token: str | None) -> dict[str, Any]:
        """The token's claims if every check passes; TokenRejected (with the reason) otherwise."""
        if not token:
            raise TokenRejected("no token")
        try:
            key = self.jwks.get_signing_key_from_jwt(token)
            claims: dict[str, Any] = jwt.decode(
                token,
                key.key,
                algorithms=list(ALGORITHMS),
                audience=self.audience,
                issuer=self.issuer,
                options={"require": list(REQUIRED_CLAIMS)},
            )
        except jwt.PyJWKClientConnectionError:
            raise  # the key set could not be fetched: our fault, not the caller's
        except jwt.PyJWTError as error:
            raise TokenRejected(str(error)) from None
        if claims.get("token_use") != "id":
            raise TokenRejected("not an ID token")
        return claims
