"""The demo's JSON client of the local HTTP API (local/demo.py) as one user, for scripts that set a
scene (`make screenshots`) and tests that prepare one before the screens act."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from local.auth import LocalIdp
from local.demo import ApiClient
from local.waiting import wait_until


@dataclass
class ApiCaller:
    """The API at `url` with one user's bearer token."""

    url: str
    token: str

    @classmethod
    def signed_in(cls, url: str, user: str, role: str = "customer", idp: LocalIdp | None = None) -> ApiCaller:
        """A caller with a fresh local token for `user` in `role`."""
        return cls(url, (idp or LocalIdp()).issue_token(user, role))

    def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        """(status, JSON body); never raises for an HTTP error status."""
        reply = ApiClient(self.url).call(method, path, self.token, body)
        return reply.status, reply.body

    def order_waiting_for_barista(self, drink: str, modifiers: list[str] | None = None) -> dict[str, Any]:
        """Place an order, choose `drink` (retrying while the workflow stores its token), and wait until
        it is in the barista queue. Returns the order as then."""
        status, order = self.call("POST", "/orders", {})
        if status != 202:
            raise RuntimeError(f"POST /orders answered {status}: {order}")
        path = f"/orders/{order['orderId']}"
        choice = {"drink": drink, "modifiers": modifiers or []}
        wait_until(lambda: self.call("PUT", path, choice)[0] == 200, "submitted order")
        queued: dict[str, Any] = wait_until(
            lambda: (found := self.call("GET", path)[1])["state"] == "WAITING_FOR_BARISTA" and found,
            "order in the barista queue",
        )
        return queued
