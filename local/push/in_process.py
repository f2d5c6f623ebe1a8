"""The management API answered in-process, for the functions that the engine runs in this process.

The push fan-out posts every message to every allowed connection (PostToConnection): with 200 screens
connected, each shop change (an order waits for its customer, or ends) is 200 calls. Over HTTP to
`LocalPush`'s management port each call cost ~2.4 ms of this process's CPU (botocore's signing and
user agent, urllib3, a thread-per-connection server, GIL hand-offs), and the fan-out holds the
engine's one-invocation-at-a-time lock (local/lambdas.py) throughout: the workflow's handlers and the
next fan-out (the next order's place, the submit) waited ~1 s behind each broadcast (bench/push.py).

So, as moto's in-process mock does for AWS endpoints, a `before-call` hook on boto3's default session
(the one `boto3.client(...)` uses, hence the functions' clients) answers calls addressed to the
management URL from `LocalPush.manage` directly, after botocore validated and serialized the request
and before it signs and sends it; the answer is parsed by botocore's rest-json parser, so a closed
connection raises GoneException as over HTTP. ~0.5 ms per call. Calls to any other URL, from other
processes (the API's workers) or from clients of another session still go over HTTP.
"""

from __future__ import annotations

from collections.abc import Iterator
from io import BytesIO
from typing import TYPE_CHECKING, Any, Protocol

import boto3
from botocore.awsrequest import AWSResponse
from botocore.model import OperationModel
from botocore.parsers import create_parser

if TYPE_CHECKING:
    from local.push.server import ManagementAnswer

EVENT = "before-call.apigatewaymanagementapi"


class Managed(Protocol):
    """What the route needs from the push server."""

    @property
    def management_url(self) -> str:
        """The management API's base URL (http://HOST:PORT)."""

    def manage(self, method: str, path: str, data: bytes = b"") -> ManagementAnswer:
        """Answer one management API request."""


class _RawBody(BytesIO):
    """The raw body botocore streams an AWSResponse's content from."""

    def stream(self, **_: Any) -> Iterator[bytes]:
        """Yield the whole body once."""
        yield self.read()


class InProcessRoute:
    """Answers this process's management API calls to `push` without HTTP while installed."""

    def __init__(self, push: Managed) -> None:
        self._push = push
        self._prefix = push.management_url.rstrip("/") + "/"
        self._session: Any = None
        self._parser = create_parser("rest-json")  # the management API's protocol
        self.answered = 0  # requests answered in-process (tests check the route is taken)

    def install(self) -> None:
        """Hook boto3's default session (created now if there is none yet). Idempotent."""
        if self._session is None:
            self._session = boto3._get_default_session()
            self._session.events.register_first(EVENT, self, unique_id=self._unique_id)

    def uninstall(self) -> None:
        """Remove the hook: calls go over HTTP again."""
        if self._session is not None:
            self._session.events.unregister(EVENT, unique_id=self._unique_id)
            self._session = None

    @property
    def _unique_id(self) -> str:
        return f"local-push-in-process-{self._prefix}"

    def __call__(
        self, model: OperationModel, params: dict[str, Any], **_: Any
    ) -> tuple[AWSResponse, dict[str, Any]] | None:
        """botocore's before-call: the (HTTP response, parsed response) for a request to the management
        URL, None (make the request) for any other."""
        url = str(params.get("url") or "")
        if not url.startswith(self._prefix):
            return None
        body = params.get("body")
        data = body if isinstance(body, bytes) else str(body or "").encode()
        answer = self._push.manage(str(params["method"]), "/" + url[len(self._prefix) :], data)
        self.answered += 1
        http = AWSResponse(url, answer.status.value, answer.headers, _RawBody(answer.body))
        # Parsed as botocore parses an HTTP answer (its headers case-insensitive): a 410 raises GoneException.
        response = {"status_code": http.status_code, "headers": http.headers, "body": answer.body}
        parsed: dict[str, Any] = self._parser.parse(response, model.output_shape)
        return http, parsed
