"""The coffee bar's three screens (web/), served by the local API server beside the HTTP API.

    /                      the order app (web/index.html)
    /barista               the barista board (web/barista.html)
    /display               the display (web/display.html)
    /app/<file>            their modules, styles and vendored library (web/app/)
    /runtime-config.json   where the API, the push channel and the sign-in are: made from the running
                           stack for each request (the Host the browser used), never typed by a person
    /oauth2/..., /logout   the local sign-in (local/web/oauth.py)

None of these paths is an API route (tests/local/test_web_site.py checks it against the template), so
the pages and `GET /config` or `/orders` never collide.
"""

from __future__ import annotations

import json
import mimetypes
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from local.api_server import HttpResponse
from local.auth import AUDIENCE, LocalIdp
from local.timescale import scale_seconds
from local.web.oauth import AUTHORIZE_PATH, LOGOUT_PATH, TOKEN_PATH, LocalAuthorizationServer

WEB_ROOT = Path(__file__).resolve().parent.parent.parent / "web"
ASSETS_PREFIX = "/app/"
RUNTIME_CONFIG_PATH = "/runtime-config.json"
PAGES = {"/": "index.html", "/barista": "barista.html", "/display": "display.html"}
SITE_PATHS = (*PAGES, ASSETS_PREFIX, RUNTIME_CONFIG_PATH, AUTHORIZE_PATH, TOKEN_PATH, LOGOUT_PATH)

# The workflow's two waits (statemachine ASL HeartbeatSeconds), which the screens count down / colour by.
CUSTOMER_WAIT_SECONDS = 300
BARISTA_WAIT_SECONDS = 900
READY_LANE_SECONDS = 60  # a completed order stays on the board and the display this long
_TYPES = {".js": "text/javascript", ".mjs": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml"}


@dataclass
class WebSite:
    """Answers the screens' paths; the API server asks it first and routes everything else."""

    idp: LocalIdp
    time_scale: float = 1.0
    push_url: str | None = None  # the push channel's ws:// URL when the stack serves one
    root: Path = WEB_ROOT
    oauth: LocalAuthorizationServer = field(init=False)

    def __post_init__(self) -> None:
        self.oauth = LocalAuthorizationServer(self.idp)

    def handle(
        self, method: str, target: str, headers: Mapping[str, str], body: bytes
    ) -> HttpResponse | None:
        """The response for one of the site's paths, or None for the API to route."""
        parts = urlsplit(target)
        path = parts.path or "/"
        answered = self.oauth.handle(method, path, parts.query, headers, body)
        if answered is not None:
            return answered
        if method not in ("GET", "HEAD"):
            return None
        if path == RUNTIME_CONFIG_PATH:
            return _respond(200, "application/json", json.dumps(self.runtime_config(headers.get("host", ""))))
        if path in PAGES:
            return self._file(self.root / PAGES[path])
        if path.startswith(ASSETS_PREFIX):
            assets = (self.root / "app").resolve()
            wanted = (assets / path[len(ASSETS_PREFIX) :]).resolve()
            if not wanted.is_relative_to(assets):  # no ../ out of the assets
                return _respond(404, "text/plain", "Not Found")
            return self._file(wanted)
        return None

    def runtime_config(self, host: str) -> dict[str, Any]:
        """What the screens need to know about this stack, for a browser that reached it at `host`."""
        origin = f"http://{host}"
        return {
            "apiUrl": origin,
            "pushUrl": self.push_url,
            "auth": {
                "authorizeUrl": origin + AUTHORIZE_PATH,
                "tokenUrl": origin + TOKEN_PATH,
                "logoutUrl": origin + LOGOUT_PATH,
                "clientId": AUDIENCE,
                "scope": "openid profile",
            },
            "waits": {
                "customerSeconds": scale_seconds(CUSTOMER_WAIT_SECONDS, self.time_scale),
                "baristaSeconds": scale_seconds(BARISTA_WAIT_SECONDS, self.time_scale),
            },
            "readyLaneSeconds": READY_LANE_SECONDS,
            "local": True,
        }

    def _file(self, path: Path) -> HttpResponse:
        if not path.is_file():
            return _respond(404, "text/plain", "Not Found")
        return HttpResponse(
            200,
            [
                ("Content-Type", content_type(path)),
                ("Cache-Control", "no-cache"),
                ("X-Content-Type-Options", "nosniff"),
            ],
            path.read_bytes(),
        )


def content_type(path: Path) -> str:
    """The Content-Type a screen's file is served with (here and on CloudFront: ops/publish.py)."""
    kind = _TYPES.get(path.suffix) or mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    if kind.startswith("text/") or kind.endswith("json"):
        kind += "; charset=utf-8"
    return kind


def _respond(status: int, content_type: str, text: str) -> HttpResponse:
    return HttpResponse(
        status,
        [("Content-Type", f"{content_type}; charset=utf-8"), ("Cache-Control", "no-store")],
        text.encode(),
    )
