"""The push channel's domain: who may connect, and what each connection is sent when something changes.

Contract with the screens: README "Push channel" (push contract v1). A client opens
`new WebSocket(url, ["serverlesspresso.v1", idToken])`; `connect` verifies the token and files the
connection under the audience its groups give (barista, display, customer); `push_change` sends each
changed order to the staff feeds and to its own customer's connections only, and the shop to everyone.

Messages are built from a fresh, strongly consistent read, never from the event: an order message is
always the order's latest public view with its `version`, so a redelivered or late event sends at most
a message the client already has (same or lower version) and ignores.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol

from botocore.exceptions import BotoCoreError, ClientError

from serverlesspresso.connections import STAFF_AUDIENCES, Audience, ConnectionStore, audience_of
from serverlesspresso.identity import GROUPS_CLAIM, parse_groups
from serverlesspresso.models import (
    BaristaQueueEvent,
    OrderChangedEvent,
    OrderState,
    PushTriggerEnvelope,
)
from serverlesspresso.observability import logger
from serverlesspresso.ordering import order_view
from serverlesspresso.orders import OrderRepository
from serverlesspresso.shop import ShopConfigStore
from serverlesspresso.tokens import TokenRejected, TokenVerifier
from serverlesspresso.tracking import Outcome

SUBPROTOCOL = "serverlesspresso.v1"
SHOP_TOPIC = "shop"
# PostToConnection calls in flight at once: one slow call (a congested connection) holds one worker,
# never the whole fan-out.
SEND_WORKERS = 16


# ------------------------------------------------------------------------------------------ connect
@dataclass(frozen=True)
class ConnectAnswer:
    """What $connect answers: 200 with the selected subprotocol, or a refusal status and its reason."""

    status: int
    reason: str
    subprotocol: str | None = None


def offered_token(protocols: Sequence[str]) -> str | None:
    """The ID token a client offers as the subprotocol value after `serverlesspresso.v1`."""
    if SUBPROTOCOL not in protocols:
        return None
    others = [protocol for protocol in protocols if protocol != SUBPROTOCOL]
    return others[0] if others else None


def parse_protocols(header: str | None) -> list[str]:
    """The values of a Sec-WebSocket-Protocol header (comma separated)."""
    return [value.strip() for value in (header or "").split(",") if value.strip()]


def connect(
    connection_id: str, protocols: Sequence[str], *, verifier: TokenVerifier, connections: ConnectionStore
) -> ConnectAnswer:
    """Admit a connection whose ID token checks out, under the audience of the token's groups only."""
    if SUBPROTOCOL not in protocols:
        return ConnectAnswer(400, f"offer the subprotocol {SUBPROTOCOL}")
    try:
        claims = verifier.verify(offered_token(protocols))
    except TokenRejected as rejected:
        return ConnectAnswer(401, str(rejected))
    audience = audience_of(parse_groups(claims.get(GROUPS_CLAIM)))
    connections.add(connection_id, audience, str(claims["sub"]))
    return ConnectAnswer(200, f"connected to the {audience.value} feed", SUBPROTOCOL)


def disconnect(connection_id: str, *, connections: ConnectionStore) -> None:
    """Forget a closed connection."""
    connections.remove(connection_id)


# ----------------------------------------------------------------------------------------- messages
def order_message(order: Mapping[str, Any]) -> dict[str, Any]:
    """`{"type": "order", "order": <public view with version>}`: never a token, execution or user id."""
    view = order_view(order)
    view.setdefault("version", 0)  # an order written before versions existed
    return {"type": "order", "order": view}


def shop_message(shop: ShopConfigStore, released_slot: str | None = None) -> dict[str, Any]:
    """`{"type": "shop", "shop": <GET /config fields, capacityLeft, version>}`.

    The version is the time of the (strongly consistent) read in milliseconds: the shop item has no
    counter of its own (the workflow writes its capacity slots), and a later read is never older.
    """
    config = shop.get(released_slot=released_slot)
    view = config.model_dump() | {
        "capacityLeft": max(0, config.maxInFlight - config.ordersInFlight),
        "version": time.time_ns() // 1_000_000,
    }
    return {"type": "shop", "shop": view}


# ------------------------------------------------------------------------------------------ fan-out
class Poster(Protocol):
    """Sends one message to one connection (PostToConnection)."""

    def post(self, connection_id: str, data: bytes) -> bool:
        """True when sent; False when the connection is gone. Other failures raise."""


class ManagementApiPoster:
    """PostToConnection through API Gateway's management API (a `apigatewaymanagementapi` client)."""

    def __init__(self, client: Any) -> None:
        self.client = client

    def post(self, connection_id: str, data: bytes) -> bool:
        """PostToConnection; GoneException means the client has disconnected."""
        try:
            self.client.post_to_connection(ConnectionId=connection_id, Data=data)
        except self.client.exceptions.GoneException:
            return False
        return True


@dataclass(frozen=True)
class Change:
    """An OrderManager event the fan-out acts on: an order changed (to `state`), or the shop did."""

    order_id: str | None = None
    state: OrderState | None = None


@dataclass(frozen=True)
class Delivery:
    """How one message's sends went."""

    sent: int = 0
    gone: int = 0
    failed: int = 0

    def __add__(self, other: Delivery) -> Delivery:
        return Delivery(self.sent + other.sent, self.gone + other.gone, self.failed + other.failed)


def push_change(
    change: Change,
    *,
    orders: OrderRepository,
    shop: ShopConfigStore,
    connections: ConnectionStore,
    poster: Poster,
) -> Outcome:
    """Send what changed to the connections allowed to see it.

    An order goes to every barista and display connection and to its own customer's connections. The
    shop goes to everyone, on a config change and whenever an order takes a capacity slot (it waits
    for its customer: the slot was taken just before) or gives one back (it ended: the workflow frees
    the slot right after it announces the end, so the ended execution's slot is left out of the count).
    """
    if change.order_id is None:
        delivery = broadcast(shop_message(shop), tuple(Audience), connections=connections, poster=poster)
        return _outcome(SHOP_TOPIC, delivery)
    order = orders.get(change.order_id)
    if order is None:
        logger.warning("changed order not found")
        return Outcome(change.order_id, "unknown-order")
    recipients = [
        connection for audience in STAFF_AUDIENCES for connection in connections.of_audience(audience)
    ]
    recipients += connections.of_customer(str(order["userId"]))
    delivery = send(order_message(order), recipients, connections=connections, poster=poster)
    if change.state is OrderState.WAITING_FOR_CUSTOMER or (change.state and change.state.is_terminal):
        released = _slot_of(order) if change.state.is_terminal else None
        message = shop_message(shop, released_slot=released)
        delivery += broadcast(message, tuple(Audience), connections=connections, poster=poster)
    return _outcome(change.order_id, delivery)


def broadcast(
    message: Mapping[str, Any], audiences: Iterable[Audience], *, connections: ConnectionStore, poster: Poster
) -> Delivery:
    """Send one message to every connection of the audiences."""
    recipients = [connection for audience in audiences for connection in connections.of_audience(audience)]
    return send(message, recipients, connections=connections, poster=poster)


def send(
    message: Mapping[str, Any], recipients: Iterable[str], *, connections: ConnectionStore, poster: Poster
) -> Delivery:
    """Post `message` to each recipient concurrently; a gone connection is forgotten, a failure counted.

    One connection's failure never stops the others; the failed sends are logged (without the message)
    and reported in the outcome (metric PushSends, dimension outcome=failed, alarmed).
    """
    data = json.dumps(message, separators=(",", ":")).encode()
    unique = list(dict.fromkeys(recipients))
    if not unique:
        return Delivery()

    def post_one(connection_id: str) -> Delivery:
        try:
            if poster.post(connection_id, data):
                return Delivery(sent=1)
        except (ClientError, BotoCoreError) as error:
            logger.warning("push failed", extra={"connection": connection_id, "error": type(error).__name__})
            return Delivery(failed=1)
        connections.remove(connection_id)
        return Delivery(gone=1)

    with ThreadPoolExecutor(max_workers=min(SEND_WORKERS, len(unique))) as pool:
        results = list(pool.map(post_one, unique))
    return sum(results, Delivery())


def _slot_of(order: Mapping[str, Any]) -> str | None:
    # The workflow's capacity slot is its execution's name, the last part of the execution ARN.
    arn = order.get("executionArn")
    return str(arn).rsplit(":", 1)[-1] if arn else None


def _outcome(subject: str, delivery: Delivery) -> Outcome:
    if delivery.failed:
        return Outcome(subject, "failed")
    return Outcome(subject, "gone" if delivery.gone else "sent")


def change_from(event: Any) -> Change:
    """Map an OrderManager.OrderChanged / WaitingCompletion / ShopChanged event to the Change it announces."""
    parsed = PushTriggerEnvelope.model_validate({"event": event}).event
    if isinstance(parsed, OrderChangedEvent):
        return Change(parsed.detail.orderId, parsed.detail.state)
    if isinstance(parsed, BaristaQueueEvent):
        return Change(parsed.detail.orderId, OrderState.WAITING_FOR_BARISTA)
    return Change()
