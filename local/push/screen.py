"""Screens connected to the push channel: real WebSocket clients that record every message (the tests'
screens, and `make chaos`'s).

A `Screen` connects the way the browser does (subprotocols `serverlesspresso.v1` and the ID token) and
keeps every message it receives; `latest_orders()` applies them the way the screens must (per orderId,
the highest version wins), optionally on top of what an HTTP re-read returned.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable, Mapping
from typing import Any

from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect
from websockets.typing import Subprotocol

from local.push.server import SUBPROTOCOL
from local.waiting import wait_until

WAIT_SECONDS = 60.0


class Screen:
    """One connected client; messages are recorded by a reader thread until close()."""

    def __init__(self, url: str, token: str, name: str = "screen") -> None:
        self.name = name
        self.connection: ClientConnection = connect(
            url,
            subprotocols=[Subprotocol(SUBPROTOCOL), Subprotocol(token)],
            open_timeout=30,
            legacy=True,  # a connection kept by the screen, closed by close()
        )
        self.messages: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._reader = threading.Thread(target=self._read, name=f"screen-{name}", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        try:
            for message in self.connection:
                with self._lock:
                    self.messages.append(json.loads(message))
        except ConnectionClosed:
            pass

    def received(self, kind: str | None = None) -> list[dict[str, Any]]:
        """A copy of the messages so far (of one type: "order" or "shop")."""
        with self._lock:
            return [dict(m) for m in self.messages if kind is None or m.get("type") == kind]

    def order_ids(self) -> set[str]:
        """Every order this screen heard about."""
        return {message["order"]["orderId"] for message in self.received("order")}

    def latest_orders(self, base: Iterable[Mapping[str, Any]] = ()) -> dict[str, dict[str, Any]]:
        """orderId -> the newest view: `base` (an HTTP re-read) then every message, highest version wins."""
        latest: dict[str, dict[str, Any]] = {}
        for view in [*base, *(message["order"] for message in self.received("order"))]:
            known = latest.get(view["orderId"])
            if known is None or view.get("version", 0) > known.get("version", 0):
                latest[view["orderId"]] = dict(view)
        return latest

    def wait_for_order(self, order_id: str, state: str, timeout: float = WAIT_SECONDS) -> dict[str, Any]:
        """Wait until the screen's newest view of the order is in `state`."""
        return wait_until(
            lambda: (view := self.latest_orders().get(order_id)) and view["state"] == state and view,
            f"{self.name}: order {order_id} {state}",
            timeout,
            0.05,
        )

    def close(self) -> None:
        """Close the connection (the server runs $disconnect) and stop reading."""
        self.connection.close()
        self._reader.join(timeout=10)
