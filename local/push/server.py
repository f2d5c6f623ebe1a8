"""The template's WebSocket API on loopback: what API Gateway does for the push channel, and only that.

    make local                      # ws://127.0.0.1:3001 next to the HTTP API (local/cli.py)
    make watch USER=alice           # prints every message a customer's screen receives

    with LocalPush(idp, port=0) as push:                        # in tests: any free port
        engine = LocalEngine.in_process(..., function_env=push.function_env)
        push.start(engine)
        ... push.url ...

- Handshake: the template's `$connect` route's function runs (through the engine, with its template
  environment) on an API Gateway $connect event carrying the handshake's headers; unless it answers
  200 the handshake fails with its status (401 for a bad token) and nothing is kept. The answer's
  Sec-WebSocket-Protocol is selected (`serverlesspresso.v1`).
- Close: the `$disconnect` route's function runs.
- PostToConnection: API Gateway's management API (`POST /@connections/{id}`, also GET and DELETE) is
  served over HTTP on a second port; the functions' `PUSH_ENDPOINT` points there (`function_env`), so
  the fan-out's apigatewaymanagementapi client reaches the real socket. An unknown or closed
  connection answers 410 GoneException, as API Gateway does. The functions of this process answer their
  calls without HTTP (local/push/in_process.py), those in worker processes through a relay to this
  process (local/push/relay.py).
- A slow or dead client never delays the others: each connection has its own queue and sender; a
  send that takes longer than SEND_TIMEOUT_SECONDS, or a queue that fills up, closes that connection
  (its screen reconnects and re-reads), while PostToConnection itself only enqueues.
"""

from __future__ import annotations

import asyncio
import json
import re
import secrets
import socket
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol
from urllib.parse import unquote

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from local.auth import AUDIENCE, ISSUER, JwksServer, LocalIdp
from local.push.events import connect_event, disconnect_event
from local.push.in_process import InProcessRoute
from local.push.relay import PushRelay
from local.template import Template

DEFAULT_HOST = "127.0.0.1"
SUBPROTOCOL = "serverlesspresso.v1"  # = serverlesspresso.push.SUBPROTOCOL
SEND_TIMEOUT_SECONDS = 5.0
QUEUE_LIMIT = 1000  # messages waiting for one connection before it counts as too slow
HANDSHAKE_TIMEOUT_SECONDS = 60
# A close handshake the client does not answer (it stopped reading) ends by dropping the TCP connection
# after this long: closing a stalled client, or all of them at stop(), never waits websockets' 10 s.
CLOSE_TIMEOUT_SECONDS = 1.0
STOP_TIMEOUT_SECONDS = 5.0  # stop() then drops whatever is still open
HANDLER_THREADS = 4  # $connect/$disconnect invocations in flight (the engine runs one at a time anyway)
_CONNECTIONS_PATH = re.compile(r"^(?:/[^/]+)*/@connections/(?P<id>[^/?]+)$")


class Invoker(Protocol):
    """What the server needs from the engine: the template, and running one of its functions."""

    template: Template

    def invoke(self, logical_id: str, event: Any) -> Any:
        """Invoke the function synchronously, as API Gateway's Lambda proxy integration does."""


@dataclass(frozen=True)
class WebSocketRoutes:
    """The template's WebSocket API routes: the functions behind $connect / $disconnect (logical ids;
    None when absent), and what API Gateway itself answers on mock routes ({route key: message})."""

    connect: str | None = None
    disconnect: str | None = None
    mock_answers: dict[str, str] = field(default_factory=dict)


def websocket_routes(template: Template) -> WebSocketRoutes:
    """Read the template's AWS::ApiGatewayV2 routes, integrations and mock integration responses."""
    functions: dict[str, str] = {}
    answers: dict[str, str] = {}
    integrations = template.resources("AWS::ApiGatewayV2::Integration")
    responses = template.resources("AWS::ApiGatewayV2::IntegrationResponse")
    for route in template.resources("AWS::ApiGatewayV2::Route").values():
        props = route.get("Properties", {})
        route_key = str(props.get("RouteKey"))
        target = json.dumps(props.get("Target", ""))
        integration = next((name for name in integrations if f"${{{name}}}" in target), None)
        if integration is None:
            continue
        integration_props = integrations[integration].get("Properties", {})
        if integration_props.get("IntegrationType") == "MOCK":
            for response in responses.values():
                response_props = response.get("Properties", {})
                if response_props.get("IntegrationId") == {"Ref": integration}:
                    answers[route_key] = str(response_props.get("ResponseTemplates", {}).get("$default", ""))
            continue
        function = re.search(r"\$\{(\w+)\.Arn\}", json.dumps(integration_props.get("IntegrationUri", "")))
        if function:
            functions[route_key] = function.group(1)
    return WebSocketRoutes(functions.get("$connect"), functions.get("$disconnect"), answers)


@dataclass(frozen=True)
class ManagementAnswer:
    """A management API answer: status, headers (the error type, as API Gateway names it) and body."""

    status: HTTPStatus
    headers: dict[str, str]
    body: bytes

    @classmethod
    def of(cls, status: HTTPStatus, body: dict[str, Any] | None = None, error: str = "") -> ManagementAnswer:
        """A rest-json answer; `error` goes in x-amzn-ErrorType, where botocore reads the exception name."""
        headers = {"Content-Type": "application/json"} | ({"x-amzn-ErrorType": error} if error else {})
        return cls(status, headers, json.dumps(body).encode() if body is not None else b"")


@dataclass
class _Client:
    connection: ServerConnection
    connected_at_ms: int
    queue: asyncio.Queue[bytes] = field(default_factory=lambda: asyncio.Queue(QUEUE_LIMIT))
    closing: asyncio.Future[None] | None = None  # closing it for being too slow


class LocalPush:
    """The WebSocket endpoint and the management API; sockets are bound at construction."""

    def __init__(
        self,
        idp: LocalIdp,
        *,
        host: str = DEFAULT_HOST,
        port: int = 0,
        log_line: Callable[[str], None] | None = None,
    ) -> None:
        self.host = host
        self._jwks = JwksServer(idp, host)
        self._log_line = log_line
        # Bound now, so the URLs are known before the engine provisions its functions' environment.
        self._socket = socket.create_server((host, port), reuse_port=False)
        self.port = self._socket.getsockname()[1]
        self._management = ThreadingHTTPServer((host, 0), _management_handler(self))
        self._management.daemon_threads = True
        self._clients: dict[str, _Client] = {}
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: Server | None = None
        self._threads: list[threading.Thread] = []
        self._pool = ThreadPoolExecutor(HANDLER_THREADS, thread_name_prefix="local-push-handler")
        self._invoker: Invoker | None = None
        self._routes = WebSocketRoutes()
        # This process's functions (the engine's) post without HTTP; see local/push/in_process.py.
        self.in_process = InProcessRoute(self)
        # ...and the functions in worker processes through a relay (local/push/relay.py).
        self.relay = PushRelay(self)
        self.delivered = 0  # messages written to a socket (bench/push.py reads it)
        self._stopping = False

    # --------------------------------------------------------------------------- addresses
    @property
    def url(self) -> str:
        """The screens' pushUrl: ws://HOST:PORT."""
        return f"ws://{self.host}:{self.port}"

    @property
    def management_url(self) -> str:
        """API Gateway's management API for this endpoint (PostToConnection)."""
        host, port = self._management.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def function_env(self) -> dict[str, str]:
        """What the push functions need locally: this endpoint and the local identity provider."""
        return {
            "PUSH_ENDPOINT": self.management_url,
            "JWKS_URL": self._jwks.url,
            "TOKEN_ISSUER": ISSUER,
            "TOKEN_AUDIENCE": AUDIENCE,
        }

    @property
    def connection_ids(self) -> list[str]:
        """Connections open right now."""
        with self._lock:
            return list(self._clients)

    def connection_id_of(self, client_address: Any) -> str | None:
        """The connection id of the open connection whose client has this (host, port), if any."""
        with self._lock:
            clients = list(self._clients.items())
        return next((cid for cid, c in clients if c.connection.remote_address == client_address), None)

    # --------------------------------------------------------------------------- lifecycle
    def start(self, invoker: Invoker) -> None:
        """Serve the template's WebSocket routes through `invoker` (the engine)."""
        self._invoker = invoker
        self._routes = websocket_routes(invoker.template)
        ready = threading.Event()
        loop_thread = threading.Thread(target=self._run_loop, args=(ready,), name="local-push", daemon=True)
        loop_thread.start()
        management_thread = threading.Thread(
            target=self._management.serve_forever, name="local-push-management", daemon=True
        )
        management_thread.start()
        self._threads = [loop_thread, management_thread]
        self._jwks.start()
        self.in_process.install()
        self.relay.start()
        if not ready.wait(10):
            raise RuntimeError("the local push server did not start")

    def stop(self) -> None:
        """Close every connection, then both servers; bounded (about STOP_TIMEOUT_SECONDS at most).

        The `$disconnect` function does not run for the connections closed here: the stack is going
        down, and 200 invocations through the engine (one at a time) took longer than the rest of it.
        """
        self._stopping = True
        self.in_process.uninstall()
        self.relay.stop()
        if self._loop is not None and self._server is not None:
            closing = asyncio.run_coroutine_threadsafe(self._close_server(), self._loop)
            closing.result(timeout=STOP_TIMEOUT_SECONDS + CLOSE_TIMEOUT_SECONDS + 5)
            self._loop.call_soon_threadsafe(self._loop.stop)
        if self._threads:
            self._management.shutdown()
        self._management.server_close()
        self._jwks.stop()
        for thread in self._threads:
            thread.join(timeout=10)
        self._pool.shutdown(wait=True)
        self._socket.close()

    def __enter__(self) -> LocalPush:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def log(self, line: str) -> None:
        """One activity line (connections opened and refused, closed)."""
        if self._log_line is not None:
            self._log_line(line)

    # --------------------------------------------------------------------------- websocket side
    def _run_loop(self, ready: threading.Event) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)

        async def open_server() -> None:
            self._server = await serve(
                self._serve_connection,
                sock=self._socket,
                subprotocols=[SUBPROTOCOL],  # type: ignore[list-item]
                process_request=self._handshake,
                ping_interval=30,
                # The handshake waits for $connect, which runs through the engine (one invocation at a
                # time): on a busy machine that can take longer than websockets' default 10 s.
                open_timeout=HANDSHAKE_TIMEOUT_SECONDS,
                close_timeout=CLOSE_TIMEOUT_SECONDS,
            )

        loop.run_until_complete(open_server())
        ready.set()
        loop.run_forever()
        loop.close()

    async def _close_server(self) -> None:
        assert self._server is not None
        self._server.close()  # close frames to every connection, each dropped after CLOSE_TIMEOUT_SECONDS
        try:
            await asyncio.wait_for(self._server.wait_closed(), STOP_TIMEOUT_SECONDS)
        except TimeoutError:  # a handler still busy: drop what is left rather than wait for it
            with self._lock:
                left = [client.connection for client in self._clients.values()]
            for connection in left:
                connection.transport.abort()

    async def _invoke(self, logical_id: str, event: dict[str, Any]) -> Any:
        assert self._invoker is not None
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, self._invoker.invoke, logical_id, event)

    async def _handshake(self, connection: ServerConnection, request: Request) -> Response | None:
        """API Gateway's $connect: the function decides; anything but 200 fails the handshake."""
        connection_id = secrets.token_urlsafe(12)
        connected_at = int(time.time() * 1000)
        status = HTTPStatus.OK
        if self._routes.connect is not None:
            event = connect_event(
                connection_id,
                request.headers.raw_items(),
                connected_at_ms=connected_at,
                domain=f"{self.host}:{self.port}",
                source_ip=str(connection.remote_address[0]) if connection.remote_address else "127.0.0.1",
            )
            try:
                answer = await self._invoke(self._routes.connect, event)
                status = HTTPStatus(int((answer or {}).get("statusCode", 500)))
            except Exception as error:  # a failing function is API Gateway's 500, never a crash here
                self.log(f"$connect failed: {type(error).__name__}: {error}")
                status = HTTPStatus.INTERNAL_SERVER_ERROR
        if status is not HTTPStatus.OK:
            self.log(f"refused {status.value}")
            return connection.respond(status, f"{status.phrase}\n")
        connection.push_id = connection_id  # type: ignore[attr-defined]
        with self._lock:
            self._clients[connection_id] = _Client(connection, connected_at)
        return None

    async def _serve_connection(self, connection: ServerConnection) -> None:
        connection_id: str = connection.push_id  # type: ignore[attr-defined]
        client = self._clients[connection_id]
        self.log(f"connected {connection_id}")
        sender = asyncio.create_task(self._send_queued(client))
        try:
            async for message in connection:
                # Nothing a client sends changes what it receives. A mock route (ping) is answered the
                # way API Gateway answers it; anything else only keeps the connection alive.
                answer = self._routes.mock_answers.get(_action(message))
                if answer:
                    self._enqueue(client, answer.encode())
        except ConnectionClosed:
            pass  # closed without a proper close frame: the same clean-up
        finally:
            sender.cancel()
            with self._lock:
                self._clients.pop(connection_id, None)
            code = connection.close_code or 1006
            self.log(f"closed {connection_id} ({code})")
            if self._routes.disconnect is not None and not self._stopping:
                event = disconnect_event(
                    connection_id,
                    connected_at_ms=client.connected_at_ms,
                    domain=f"{self.host}:{self.port}",
                    status_code=code,
                    reason=connection.close_reason or "",
                )
                try:
                    await self._invoke(self._routes.disconnect, event)
                except Exception as error:
                    self.log(f"$disconnect failed: {type(error).__name__}: {error}")

    async def _send_queued(self, client: _Client) -> None:
        while True:
            data = await client.queue.get()
            try:
                await asyncio.wait_for(client.connection.send(data.decode()), SEND_TIMEOUT_SECONDS)
            except TimeoutError:
                await client.connection.close(1008, "too slow")
                return
            except Exception:  # closed meanwhile: the connection's handler cleans up
                return
            self.delivered += 1

    def _enqueue(self, client: _Client, data: bytes) -> None:
        try:
            client.queue.put_nowait(data)
        except asyncio.QueueFull:
            client.closing = asyncio.ensure_future(client.connection.close(1008, "too slow"))

    # --------------------------------------------------------------------------- management side
    def post(self, connection_id: str, data: bytes) -> bool:
        """PostToConnection: queue the message for the connection; False if it is gone."""
        with self._lock:
            client = self._clients.get(connection_id)
        if client is None or self._loop is None:
            return False
        self._loop.call_soon_threadsafe(self._enqueue, client, data)
        return True

    def describe(self, connection_id: str) -> dict[str, Any] | None:
        """GetConnection."""
        with self._lock:
            client = self._clients.get(connection_id)
        if client is None:
            return None
        connected = datetime.fromtimestamp(client.connected_at_ms / 1000, UTC).isoformat()
        return {"connectedAt": connected, "identity": {"sourceIp": "127.0.0.1"}, "lastActiveAt": connected}

    def close_connection(self, connection_id: str) -> bool:
        """DeleteConnection."""
        with self._lock:
            client = self._clients.get(connection_id)
        if client is None or self._loop is None:
            return False
        asyncio.run_coroutine_threadsafe(client.connection.close(1000, "closed by the server"), self._loop)
        return True

    def manage(self, method: str, path: str, data: bytes = b"") -> ManagementAnswer:
        """One management API request (PostToConnection, GetConnection, DeleteConnection), answered as
        API Gateway answers it: 410 GoneException for a connection that is not open."""
        found = _CONNECTIONS_PATH.match(path.split("?", 1)[0])
        if found is None:
            return ManagementAnswer.of(HTTPStatus.NOT_FOUND, {"message": "not found"}, "NotFoundException")
        connection_id = unquote(found.group("id"))
        if method not in ("POST", "GET", "DELETE"):
            return ManagementAnswer.of(HTTPStatus.METHOD_NOT_ALLOWED, {"message": method}, "BadRequest")
        if method == "POST" and self.post(connection_id, data):
            return ManagementAnswer.of(HTTPStatus.OK)
        if method == "GET" and (described := self.describe(connection_id)) is not None:
            return ManagementAnswer.of(HTTPStatus.OK, described)
        if method == "DELETE" and self.close_connection(connection_id):
            return ManagementAnswer.of(HTTPStatus.NO_CONTENT)
        return ManagementAnswer.of(HTTPStatus.GONE, {"message": "connection is gone"}, "GoneException")


def _action(message: str | bytes) -> str:
    """The route key of a client message: its `action` (RouteSelectionExpression $request.body.action)."""
    try:
        body = json.loads(message)
    except ValueError:
        return "$default"
    action = body.get("action") if isinstance(body, dict) else None
    return str(action) if isinstance(action, str) else "$default"


def _management_handler(push: LocalPush) -> type[BaseHTTPRequestHandler]:
    class ManagementHandler(BaseHTTPRequestHandler):
        """API Gateway's management API over HTTP (rest-json), answered by `LocalPush.manage`."""

        protocol_version = "HTTP/1.1"

        def _serve(self, method: str) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            answer = push.manage(method, self.path, self.rfile.read(length) if length else b"")
            self.send_response(answer.status.value)
            for name, value in answer.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(answer.body)))
            self.end_headers()
            self.wfile.write(answer.body)

        def do_POST(self) -> None:
            self._serve("POST")

        def do_GET(self) -> None:
            self._serve("GET")

        def do_DELETE(self) -> None:
            self._serve("DELETE")

        def log_message(self, format: str, *args: Any) -> None:
            pass  # one line per message would drown the console; `delivered` counts them

    return ManagementHandler
