"""The events API Gateway (WebSocket API) sends to a route's Lambda integration, for the local server.

Field for field what API Gateway sends for $connect and $disconnect (see events/push_connect.json and
events/push_disconnect.json, which the unit tests load): the handshake's headers (single- and
multi-value), and a requestContext naming the route, the connection and the stage.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

LOCAL_STAGE = "local"
LOCAL_API_ID = "localpush"


def _request_context(
    connection_id: str, route_key: str, event_type: str, connected_at_ms: int, domain: str, source_ip: str
) -> dict[str, Any]:
    now = time.time()
    return {
        "routeKey": route_key,
        "eventType": event_type,
        "extendedRequestId": uuid.uuid4().hex[:16] + "=",
        "requestTime": datetime.now(UTC).strftime("%d/%b/%Y:%H:%M:%S +0000"),
        "messageDirection": "IN",
        "stage": LOCAL_STAGE,
        "connectedAt": connected_at_ms,
        "requestTimeEpoch": int(now * 1000),
        "identity": {"sourceIp": source_ip},
        "requestId": uuid.uuid4().hex[:16] + "=",
        "domainName": domain,
        "connectionId": connection_id,
        "apiId": LOCAL_API_ID,
    }


def connect_event(
    connection_id: str,
    headers: Iterable[tuple[str, str]],
    *,
    connected_at_ms: int,
    domain: str,
    source_ip: str = "127.0.0.1",
) -> dict[str, Any]:
    """The $connect event of a handshake with these headers."""
    single: dict[str, str] = {}
    multi: dict[str, list[str]] = {}
    for name, value in headers:
        single[name] = value
        multi.setdefault(name, []).append(value)
    return {
        "headers": single,
        "multiValueHeaders": multi,
        "requestContext": _request_context(
            connection_id, "$connect", "CONNECT", connected_at_ms, domain, source_ip
        ),
        "isBase64Encoded": False,
    }


def disconnect_event(
    connection_id: str,
    *,
    connected_at_ms: int,
    domain: str,
    status_code: int,
    reason: str,
    source_ip: str = "127.0.0.1",
) -> dict[str, Any]:
    """The $disconnect event of a connection that closed with `status_code`."""
    context = _request_context(connection_id, "$disconnect", "DISCONNECT", connected_at_ms, domain, source_ip)
    context |= {"disconnectStatusCode": status_code, "disconnectReason": reason}
    return {
        "headers": {"Host": domain, "x-api-key": "", "x-restapi": ""},
        "multiValueHeaders": {"Host": [domain], "x-api-key": [""], "x-restapi": [""]},
        "requestContext": context,
        "isBase64Encoded": False,
    }
