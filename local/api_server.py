"""The template's HTTP API, served locally over real HTTP in front of the local engine.

    make local                                 # the stack; the API on http://127.0.0.1:3000 (local/cli.py)
    make token USER=alice                      # a customer's bearer token (last line)
    curl -H "Authorization: Bearer $TOKEN" -X POST http://127.0.0.1:3000/orders

    with LocalApi(engine, port=0) as api:     # in tests: any free port, see `api.url`
        ...

What API Gateway (HTTP API, payload format 2.0) does, and only that: routes come from the template's
`HttpApi` function events; a route behind a JWT authorizer needs a valid bearer token (local.auth
stands in for Cognito: `make token`), otherwise 401 before the function runs; the request becomes the
v2 event the deployed API would send (routeKey, rawPath, rawQueryString, lower-cased headers, cookies,
queryStringParameters, pathParameters, requestContext with http and authorizer.jwt, body); the
function runs in-process through the engine (`LocalEngine.invoke`, with its template environment);
its result is turned back into an HTTP response (a Lambda error becomes API Gateway's 500).

Provisioning is the engine's (`LocalEngine.provision`); this module adds no resources of its own.
"""

from __future__ import annotations

import base64
import json
import re
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol
from urllib.parse import parse_qsl, unquote, urlsplit

from local.auth import LocalIdp, Unauthorized
from local.template import Template, TemplateError

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 3000
LISTEN_BACKLOG = 1024  # connections waiting to be accepted (see _Server)
LOCAL_API_ID = "localapi"
_TEXT_TYPES = re.compile(r"^(text/|application/(json|[\w.+-]*\+json|xml|x-www-form-urlencoded|javascript))")

Header = tuple[str, str]


class Invoker(Protocol):
    """What the server needs from the engine: run a function of the template with an event."""

    template: Template

    def invoke(self, logical_id: str, event: Any) -> Any:
        """Invoke the function synchronously, as API Gateway's Lambda integration does."""


class Site(Protocol):
    """Paths served beside the API (the screens, local/web): asked first, None passes to the API."""

    def handle(
        self, method: str, target: str, headers: Mapping[str, str], body: bytes
    ) -> HttpResponse | None:
        """The response for one of the site's paths, or None."""


# --------------------------------------------------------------------------------------- routes
@dataclass(frozen=True)
class Cors:
    """An HttpApi's CorsConfiguration (the parts a browser needs)."""

    allow_origins: tuple[str, ...] = ()
    allow_headers: tuple[str, ...] = ()
    allow_methods: tuple[str, ...] = ()
    expose_headers: tuple[str, ...] = ()
    max_age: int | None = None

    def origin_for(self, origin: str | None) -> str | None:
        """The Access-Control-Allow-Origin value for a request's Origin, or None."""
        if not origin:
            return None
        if "*" in self.allow_origins:
            return "*"
        return origin if origin in self.allow_origins else None


@dataclass(frozen=True)
class ApiRoute:
    """One `METHOD /path` route of an HttpApi and the function behind it."""

    method: str  # upper case, or ANY
    path: str  # as in the template: /orders/{orderId}, /files/{proxy+}
    function: str  # logical id
    authorized: bool  # behind the API's JWT authorizer
    _pattern: re.Pattern[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        regex = ""
        for segment in self.path.strip("/").split("/") if self.path != "/" else []:
            greedy = re.fullmatch(r"\{(\w+)\+\}", segment)
            single = re.fullmatch(r"\{(\w+)\}", segment)
            if greedy:
                regex += rf"/(?P<{greedy.group(1)}>.+)"
            elif single:
                regex += rf"/(?P<{single.group(1)}>[^/]+)"
            else:
                regex += "/" + re.escape(segment)
        object.__setattr__(self, "_pattern", re.compile(f"^{regex or '/'}$"))

    @property
    def route_key(self) -> str:
        """API Gateway's routeKey, e.g. `GET /orders/{orderId}`."""
        return f"{self.method} {self.path}"

    @property
    def specificity(self) -> tuple[int, int, int]:
        """Sort key, most specific first: fewer greedy and path variables, more segments."""
        segments = self.path.strip("/").split("/")
        greedy = sum(segment.endswith("+}") for segment in segments)
        variables = sum(segment.startswith("{") for segment in segments)
        return (greedy, variables, -len(segments))

    def match(self, method: str, path: str) -> dict[str, str] | None:
        """The path parameters if this route serves the request, else None."""
        if self.method not in (method, "ANY"):
            return None
        found = self._pattern.match(path)
        return {name: unquote(value) for name, value in found.groupdict().items()} if found else None


@dataclass(frozen=True)
class ApiDefinition:
    """Every route of the template's HttpApi(s), most specific first, and the CORS configuration."""

    routes: tuple[ApiRoute, ...]
    cors: Cors | None

    def find(self, method: str, path: str) -> tuple[ApiRoute, dict[str, str]] | None:
        """The route serving `method path`, with its path parameters."""
        for route in self.routes:
            parameters = route.match(method, path)
            if parameters is not None:
                return route, parameters
        return None


def api_definition(template: Template) -> ApiDefinition:
    """Read the HttpApi routes, authorizers and CORS from the template (SAM semantics)."""
    apis = template.resources("AWS::Serverless::HttpApi")
    routes: list[ApiRoute] = []
    cors: Cors | None = None
    for logical_id in template.resources("AWS::Serverless::Function"):
        for name, event in template.properties(logical_id).get("Events", {}).items():
            if event.get("Type") != "HttpApi":
                continue
            props = event.get("Properties", {})
            if "Path" not in props or "Method" not in props:
                raise TemplateError(f"{logical_id}.{name}: give the HttpApi event a Method and a Path")
            api_ref = props.get("ApiId")
            api_id = api_ref.get("Ref") if isinstance(api_ref, dict) else None
            if api_ref is not None and api_id not in apis:
                raise TemplateError(
                    f"{logical_id}.{name}: ApiId must be a !Ref to an HttpApi of the template"
                )
            api_props = (
                template.properties(api_id) if api_id else template.body.get("Globals", {}).get("HttpApi", {})
            )
            auth = api_props.get("Auth", {})
            _require_jwt_authorizers(auth, f"{logical_id}.{name}")
            authorizer = props.get("Auth", {}).get("Authorizer", auth.get("DefaultAuthorizer"))
            routes.append(
                ApiRoute(
                    method=str(props["Method"]).upper().replace("X-AMAZON-APIGATEWAY-ANY-METHOD", "ANY"),
                    path=str(props["Path"]),
                    function=logical_id,
                    authorized=bool(authorizer) and authorizer != "NONE",
                )
            )
            cors = cors or _cors(template.resolve(api_props.get("CorsConfiguration")))
    routes.sort(key=lambda route: route.specificity)
    return ApiDefinition(tuple(routes), cors)


def _require_jwt_authorizers(auth: Mapping[str, Any], where: str) -> None:
    for name, authorizer in auth.get("Authorizers", {}).items():
        if "JwtConfiguration" not in authorizer:
            raise TemplateError(
                f"{where}: authorizer {name} is not a JWT authorizer; only JWT is emulated locally"
            )


def _cors(config: Any) -> Cors | None:
    if not config:
        return None
    if config is True:
        return Cors(allow_origins=("*",), allow_headers=("*",), allow_methods=("*",))

    def strings(key: str) -> tuple[str, ...]:
        return tuple(str(value) for value in config.get(key, []))

    max_age = config.get("MaxAge")
    return Cors(
        strings("AllowOrigins"),
        strings("AllowHeaders"),
        strings("AllowMethods"),
        strings("ExposeHeaders"),
        int(max_age) if max_age is not None else None,
    )


# ----------------------------------------------------------------------------------- translation
def build_event(
    route: ApiRoute,
    path_parameters: Mapping[str, str],
    *,
    method: str,
    target: str,
    headers: Iterable[Header],
    body: bytes,
    claims: Mapping[str, str] | None,
    scopes: list[str] | None,
    source_ip: str = "127.0.0.1",
    host: str = DEFAULT_HOST,
) -> dict[str, Any]:
    """The API Gateway HTTP API payload-format-2.0 event for one request."""
    parts = urlsplit(target)
    raw_path = parts.path or "/"
    joined: dict[str, str] = {}
    cookies: list[str] = []
    for name, value in headers:
        lowered = name.lower()
        if lowered == "cookie":  # format 2.0 moves cookies out of the headers
            cookies += [cookie.strip() for cookie in value.split(";") if cookie.strip()]
            continue
        joined[lowered] = f"{joined[lowered]},{value}" if lowered in joined else value
    query: dict[str, str] = {}
    for name, value in parse_qsl(parts.query, keep_blank_values=True):
        query[name] = f"{query[name]},{value}" if name in query else value
    now = datetime.now(UTC)
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": route.route_key,
        "rawPath": raw_path,
        "rawQueryString": parts.query,
        "headers": joined,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": LOCAL_API_ID,
            "domainName": joined.get("host", host),
            "domainPrefix": joined.get("host", host).split(".")[0].split(":")[0],
            "http": {
                "method": method,
                "path": unquote(raw_path),
                "protocol": "HTTP/1.1",
                "sourceIp": source_ip,
                "userAgent": joined.get("user-agent", ""),
            },
            "requestId": base64.b32encode(uuid.uuid4().bytes[:10]).decode().rstrip("=").lower(),
            "routeKey": route.route_key,
            "stage": "$default",
            "time": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "timeEpoch": int(now.timestamp() * 1000),
        },
        "isBase64Encoded": False,
    }
    if cookies:
        event["cookies"] = cookies
    if query:
        event["queryStringParameters"] = query
    if path_parameters:
        event["pathParameters"] = dict(path_parameters)
    if claims is not None:
        event["requestContext"]["authorizer"] = {"jwt": {"claims": dict(claims), "scopes": scopes}}
    if body:
        content_type = joined.get("content-type", "")
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            text = None
        if text is not None and (not content_type or _TEXT_TYPES.match(content_type.lower())):
            event["body"] = text
        else:
            event["body"] = base64.b64encode(body).decode()
            event["isBase64Encoded"] = True
    return event


@dataclass
class HttpResponse:
    """What goes back over the wire."""

    status: int
    headers: list[Header]
    body: bytes


def response_from_result(result: Any) -> HttpResponse:
    """Turn a function's result into the HTTP response, as payload format 2.0 defines it.

    A dict with statusCode is taken as is; anything else is JSON with status 200 (API Gateway's
    inference for format 2.0).
    """
    if isinstance(result, dict) and "statusCode" in result:
        headers = [(str(name), str(value)) for name, value in (result.get("headers") or {}).items()]
        for name, values in (result.get("multiValueHeaders") or {}).items():
            headers += [(str(name), str(value)) for value in values]
        headers += [("Set-Cookie", str(cookie)) for cookie in result.get("cookies") or []]
        raw = result.get("body")
        if raw is None:
            body = b""
        elif result.get("isBase64Encoded"):
            body = base64.b64decode(str(raw))
        else:
            body = str(raw).encode()
        return HttpResponse(int(result["statusCode"]), headers, body)
    text = result if isinstance(result, str) else json.dumps(result)
    return HttpResponse(200, [("Content-Type", "application/json")], text.encode())


def _message(status: int, message: str, *extra: Header) -> HttpResponse:
    # API Gateway's own error bodies.
    return HttpResponse(
        status, [("Content-Type", "application/json"), *extra], json.dumps({"message": message}).encode()
    )


# ----------------------------------------------------------------------------------------- server
class LocalApi:
    """Serves the template's HttpApi over HTTP, invoking functions through the engine."""

    def __init__(
        self,
        engine: Invoker,
        *,
        host: str = DEFAULT_HOST,
        port: int = DEFAULT_PORT,
        idp: LocalIdp | None = None,
        access_log: Callable[[str], None] | None = None,
        site: Site | None = None,
    ) -> None:
        """`access_log` receives one line per request (default: stderr); `idp` checks the tokens;
        `site` serves the screens' paths (local/web) before the API's routes are looked up."""
        self.engine = engine
        self.definition = api_definition(engine.template)
        if not self.definition.routes:
            raise TemplateError("the template declares no HttpApi routes")
        self.idp = idp or LocalIdp()
        self.host = host
        self.port = port
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._access_log = access_log
        self._log_lock = threading.Lock()
        self.site = site
        self.in_flight = 0  # requests being answered now (the dispatcher yields to a burst of them)
        self._in_flight_lock = threading.Lock()

    # ------------------------------------------------------------------------------ the core
    def handle(
        self, method: str, target: str, headers: Iterable[Header], body: bytes, source_ip: str = "127.0.0.1"
    ) -> HttpResponse:
        """Answer one request as API Gateway would (no sockets: unit-testable)."""
        header_list = list(headers)
        lowered = {name.lower(): value for name, value in header_list}
        path = urlsplit(target).path or "/"
        cors = self.definition.cors
        if (
            method == "OPTIONS"
            and cors
            and "origin" in lowered
            and "access-control-request-method" in lowered
        ):
            return self._preflight(cors, lowered)
        if self.site is not None:
            served = self.site.handle(method, target, lowered, body)
            if served is not None:
                return served
        found = self.definition.find(method, path)
        if found is None:
            return self._with_cors(_message(404, "Not Found"), lowered)
        route, parameters = found
        claims: dict[str, str] | None = None
        scopes: list[str] | None = None
        if route.authorized:
            try:
                identity = self.idp.authorize(lowered)
            except Unauthorized:
                return self._with_cors(_message(401, "Unauthorized", ("WWW-Authenticate", "Bearer")), lowered)
            claims, scopes = identity.claims, identity.scopes
        event = build_event(
            route,
            parameters,
            method=method,
            target=target,
            headers=header_list,
            body=body,
            claims=claims,
            scopes=scopes,
            source_ip=source_ip,
            host=f"{self.host}:{self.port}",
        )
        try:
            result = self.engine.invoke(route.function, event)
        except Exception:  # a Lambda error: API Gateway answers 500 and the function's log has the trace
            traceback.print_exc(file=sys.stderr)
            return self._with_cors(_message(500, "Internal Server Error"), lowered)
        return self._with_cors(response_from_result(result), lowered)

    def _preflight(self, cors: Cors, headers: Mapping[str, str]) -> HttpResponse:
        allowed_origin = cors.origin_for(headers.get("origin"))
        if allowed_origin is None:
            return HttpResponse(204, [], b"")
        response = [("Access-Control-Allow-Origin", allowed_origin)]
        if cors.allow_methods:
            response.append(("Access-Control-Allow-Methods", ",".join(cors.allow_methods)))
        if cors.allow_headers:
            response.append(("Access-Control-Allow-Headers", ",".join(cors.allow_headers)))
        if cors.max_age is not None:
            response.append(("Access-Control-Max-Age", str(cors.max_age)))
        return HttpResponse(204, response, b"")

    def _with_cors(self, response: HttpResponse, headers: Mapping[str, str]) -> HttpResponse:
        cors = self.definition.cors
        origin = cors.origin_for(headers.get("origin")) if cors else None
        if cors and origin:
            response.headers.append(("Access-Control-Allow-Origin", origin))
            if cors.expose_headers:
                response.headers.append(("Access-Control-Expose-Headers", ",".join(cors.expose_headers)))
        return response

    # --------------------------------------------------------------------------- the socket
    @property
    def url(self) -> str:
        """Base URL, e.g. http://127.0.0.1:3000 (the bound port when started with port 0)."""
        return f"http://{self.host}:{self.port}"

    def start(self) -> LocalApi:
        """Listen in a background thread (port 0 picks a free port; see `url`)."""
        if self._server is not None:
            return self
        self._server = _Server((self.host, self.port), _handler_class(self))
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(target=self._server.serve_forever, name="local-api", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop listening and wait for the server thread."""
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._server = None
        self._thread = None

    def __enter__(self) -> LocalApi:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def log(self, line: str) -> None:
        """One access-log line (to `access_log`, or stderr)."""
        if self._access_log is not None:
            self._access_log(line)
            return
        with self._log_lock:
            print(line, file=sys.stderr, flush=True)


class _Server(ThreadingHTTPServer):
    # The standard library listens with a backlog of 5: a burst of clients connecting at once (a queue
    # of phones at opening time) gets connection resets. The kernel caps it at net.core.somaxconn.
    request_queue_size = LISTEN_BACKLOG
    daemon_threads = True


def _handler_class(api: LocalApi) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "serverlesspresso-local-api"

        def _serve(self) -> None:
            started = time.monotonic()
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length > 0 else b""
            with api._in_flight_lock:
                api.in_flight += 1
            try:
                response = api.handle(
                    self.command, self.path, self.headers.items(), body, self.client_address[0]
                )
            finally:
                with api._in_flight_lock:
                    api.in_flight -= 1
            self.send_response(response.status)
            names = {name.lower() for name, _ in response.headers}
            for name, value in response.headers:
                self.send_header(name, value)
            if "content-length" not in names:
                self.send_header("Content-Length", str(len(response.body)))
            self.end_headers()
            # Logged before the body goes out, so the line belongs to the request that caused it.
            elapsed = (time.monotonic() - started) * 1000
            api.log(f"{self.command} {self.path} -> {response.status} ({elapsed:.0f} ms)")
            if self.command != "HEAD":
                self.wfile.write(response.body)

        do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_HEAD = _serve

        def log_message(self, format: str, *args: Any) -> None:
            pass  # _serve logs one line per request instead

    return Handler
