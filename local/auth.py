"""A local stand-in for the Cognito user pool and API Gateway's JWT authorizer.

Tokens are RS256 JWTs shaped like Cognito ID tokens (`sub`, `cognito:username`, `cognito:groups`,
`token_use`), signed with a key pair generated on first use into `.local/jwt/` (gitignored; the
private key is 0600). They are accepted only by the local API (their issuer and audience are local
values and the key exists only on this machine), and are valid for TOKEN_LIFETIME.

`authorize()` does what the HTTP API's JWT authorizer does before the integration runs: take the
bearer token from the Authorization header, check signature, issuer, audience and expiry, and hand the
claims on in the form API Gateway puts into `requestContext.authorizer.jwt` (every claim a string,
arrays rendered "[a b]").
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_KEY_DIR = REPO_ROOT / ".local" / "jwt"
PRIVATE_KEY_FILE = "private.pem"

ISSUER = "http://127.0.0.1/local-idp"  # not Cognito's issuer: a deployed API can never accept these
AUDIENCE = "serverlesspresso-local"  # stands for the user pool client id
ALGORITHM = "RS256"
TOKEN_LIFETIME_SECONDS = 7 * 24 * 3600  # a week: "at least a day" with room for a long-running stack
ROLES = ("customer", "barista", "display")
# Role -> Cognito group, = serverlesspresso.identity's BARISTA_GROUP / DISPLAY_GROUP and the template's
# BaristaGroup / DisplayGroup. A customer is in no group.
BARISTA_GROUP = "barista"  # = serverlesspresso.identity.BARISTA_GROUP and the template's BaristaGroup
DISPLAY_GROUP = "display"  # = serverlesspresso.identity.DISPLAY_GROUP and the template's DisplayGroup
ROLE_GROUPS = {"barista": BARISTA_GROUP, "display": DISPLAY_GROUP}
JWKS_PATH = "/.well-known/jwks.json"  # where Cognito serves a pool's keys, under its issuer
LOGIN_TICKET_USE = "login-ticket"  # a `make link` ticket: signs in once at /oauth2/authorize, no API access
LOGIN_TICKET_LIFETIME_SECONDS = 600
_SUB_NAMESPACE = uuid.UUID("8f6c1c52-4d0e-4a8e-9a57-2f3c6b1d0e11")


class Unauthorized(Exception):
    """The request would not pass API Gateway's JWT authorizer (missing, malformed or invalid token)."""


@dataclass(frozen=True)
class Identity:
    """What the authorizer passes on: claims (as API Gateway renders them) and scopes."""

    claims: dict[str, str]
    scopes: list[str] | None


class LocalIdp:
    """The local signing key: issues tokens and verifies them."""

    def __init__(self, key_dir: str | Path = DEFAULT_KEY_DIR) -> None:
        self.key_dir = Path(key_dir)
        self._private_key = _load_or_create_key(self.key_dir)
        public_pem = self._private_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        self.key_id = hashlib.sha256(public_pem).hexdigest()[:16]
        self._public_key = self._private_key.public_key()

    def jwks(self) -> dict[str, Any]:
        """The public key as a JWKS document (what Cognito serves at .well-known/jwks.json)."""
        jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self._public_key))
        return {"keys": [{**jwk, "kid": self.key_id, "alg": ALGORITHM, "use": "sig"}]}

    def issue_token(
        self,
        user: str,
        role: str = "customer",
        *,
        lifetime_seconds: int = TOKEN_LIFETIME_SECONDS,
        audience: str = AUDIENCE,
        token_use: str = "id",
        sub: str | None = None,
    ) -> str:
        """A Cognito-ID-token-like JWT for `user` (stable sub per name); barista, display add their group.

        `lifetime_seconds`, `audience` and `token_use` let tests make the tokens a server must refuse;
        `sub` replaces the name-derived subject (tests whose customers are plain ids).
        """
        if role not in ROLES:
            raise ValueError(f"role must be one of {ROLES}, not {role!r}")
        if not user or not user.strip():
            raise ValueError("user must not be empty")
        now = int(time.time())
        claims: dict[str, Any] = {
            "sub": sub or user_sub(user),
            "cognito:username": user,
            "token_use": token_use,
            "iss": ISSUER,
            "aud": audience,
            "auth_time": now,
            "iat": now,
            "exp": now + lifetime_seconds,
        }
        if role in ROLE_GROUPS:
            claims["cognito:groups"] = [ROLE_GROUPS[role]]
        return jwt.encode(claims, self._private_key, algorithm=ALGORITHM, headers={"kid": self.key_id})

    def issue_login_ticket(self, user: str, role: str) -> str:
        """A short-lived, single-use sign-in for `user` (`make link`): the local authorize endpoint
        redeems it once instead of showing its form. Never accepted as an API token (token_use)."""
        if role not in ROLES:
            raise ValueError(f"role must be one of {ROLES}, not {role!r}")
        if not user or not user.strip():
            raise ValueError("user must not be empty")
        now = int(time.time())
        claims = {
            "sub": user_sub(user),
            "cognito:username": user,
            "role": role,
            "token_use": LOGIN_TICKET_USE,
            "jti": str(uuid.uuid4()),
            "iss": ISSUER,
            "aud": AUDIENCE,
            "iat": now,
            "exp": now + LOGIN_TICKET_LIFETIME_SECONDS,
        }
        return jwt.encode(claims, self._private_key, algorithm=ALGORITHM, headers={"kid": self.key_id})

    def verify(self, token: str) -> dict[str, Any]:
        """The token's claims if signature, issuer, audience and expiry check out; else Unauthorized."""
        try:
            header = jwt.get_unverified_header(token)
            if header.get("kid") != self.key_id:
                raise Unauthorized("unknown signing key")
            claims: dict[str, Any] = jwt.decode(
                token,
                self._public_key,
                algorithms=[ALGORITHM],
                audience=AUDIENCE,
                issuer=ISSUER,
                options={"require": ["exp", "iat", "iss", "sub"]},
            )
        except jwt.PyJWTError as error:
            raise Unauthorized(str(error)) from None
        return claims

    def verify_login_ticket(self, ticket: str) -> dict[str, Any]:
        """The claims of a valid login ticket (user, role, jti); Unauthorized otherwise. Single use is
        the authorize endpoint's business (it remembers the jti)."""
        claims = self.verify(ticket)
        if claims.get("token_use") != LOGIN_TICKET_USE or claims.get("role") not in ROLES:
            raise Unauthorized("not a login ticket")
        return claims

    def authorize(self, headers: Mapping[str, str]) -> Identity:
        """Emulate the JWT authorizer on a request's headers (names case-insensitive)."""
        lowered = {name.lower(): value for name, value in headers.items()}
        value = lowered.get("authorization", "").strip()
        if not value:
            raise Unauthorized("no Authorization header")
        scheme, _, token = value.partition(" ")
        token = token.strip() if scheme.lower() == "bearer" else value  # API Gateway takes either form
        claims = self.verify(token)
        if claims.get("token_use") == LOGIN_TICKET_USE:
            raise Unauthorized("a login ticket is not an API token")
        scope = claims.get("scope")
        return Identity(
            claims={name: authorizer_claim_value(v) for name, v in claims.items()},
            scopes=scope.split() if isinstance(scope, str) else None,
        )


class JwksServer:
    """Serves the local key set over HTTP at /.well-known/jwks.json, as Cognito does for a user pool.

    The push channel's $connect fetches keys from its JWKS_URL exactly as on AWS (PyJWT fetches
    http(s) URLs only), so locally that URL points here.
    """

    def __init__(self, idp: LocalIdp, host: str = "127.0.0.1", port: int = 0) -> None:
        body = json.dumps(idp.jwks()).encode()

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                found = self.path.split("?", 1)[0] == JWKS_PATH
                self.send_response(200 if found else 404)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body) if found else 0))
                self.end_headers()
                if found:
                    self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer((host, port), Handler)
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """The JWKS URL (http://HOST:PORT/.well-known/jwks.json)."""
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}{JWKS_PATH}"

    def start(self) -> JwksServer:
        """Serve in a background thread."""
        self._thread = threading.Thread(target=self._server.serve_forever, name="local-jwks", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and free the port."""
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(timeout=10)
            self._thread = None
        self._server.server_close()

    def __enter__(self) -> JwksServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def user_sub(user: str) -> str:
    """A stable, Cognito-like (UUID) subject for a local user name."""
    return str(uuid.uuid5(_SUB_NAMESPACE, user))


def authorizer_claim_value(value: Any) -> str:
    """A claim as API Gateway's JWT authorizer hands it to Lambda: arrays as "[a b]", the rest as text."""
    if isinstance(value, list):
        return "[" + " ".join(str(item) for item in value) + "]"
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


def _load_or_create_key(key_dir: Path) -> rsa.RSAPrivateKey:
    path = key_dir / PRIVATE_KEY_FILE
    if not path.exists():
        key_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        try:
            # O_EXCL: when two processes race (a server starting while `make token` runs), one key wins
            # and the other process reads it, so every token verifies against the same key.
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass
        else:
            with os.fdopen(descriptor, "wb") as file:
                file.write(pem)
    for _ in range(50):  # the winner of a race may still be writing
        data = path.read_bytes()
        if data.strip().endswith(b"-----END PRIVATE KEY-----"):
            break
        time.sleep(0.02)
    loaded = serialization.load_pem_private_key(data, password=None)
    if not isinstance(loaded, rsa.RSAPrivateKey):
        raise ValueError(f"{path} does not hold an RSA private key")
    return loaded
