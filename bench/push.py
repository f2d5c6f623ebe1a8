"""The push channel's speed: from the API call that changes an order to the message at a connected screen.

    .venv/bin/python bench/push.py [--clients 200] [--orders 15] [--time-scale 0.05]

The whole stack of `make local` (LocalStack: moto server, dispatcher, HTTP API, push server) on free
ports, with `--clients` WebSocket clients connected the way browsers connect (token as the second
subprotocol): 3 baristas, 2 displays and customers. One ordering customer then places orders one
after another over HTTP and drives each through the API: POST /orders (place), PUT /orders/{id}
(submit), POST .../make, POST .../complete. For each call, the latency is the time from just before
the request to the arrival of the message that shows its effect (the order's state or barista after
that call) at the ordering customer's socket and at a barista's socket. p50/p95 per action and
audience; the target is p95 <= 1 s.

What limits it is printed too: the API request itself, and the rest (the event's way to the fan-out
through the bus and the dispatcher, then PostToConnection to every allowed connection). Figures go to
bench/results/push.json. Not a test: nothing here passes or fails on a figure.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import json
import os
import statistics
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import TEMPLATE, command_line, table, write_results

BARISTAS = 3
DISPLAYS = 2
TARGET_P95_SECONDS = 1.0
ACTIONS = ("place", "submit", "make", "complete")


class Clients:
    """`count` WebSocket clients on one event loop (a thread), recording when each order message arrived."""

    def __init__(self, url: str, tokens: list[tuple[str, str]]) -> None:
        self.url = url
        self.tokens = tokens  # (name, token)
        self.arrivals: dict[str, list[tuple[float, dict[str, Any]]]] = {name: [] for name, _ in tokens}
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._run, name="bench-clients", daemon=True)

    def start(self) -> None:
        self._thread.start()
        if not self._ready.wait(120):
            raise RuntimeError("clients did not connect")

    def stop(self) -> None:
        assert self._stop is not None
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout=60)

    def _run(self) -> None:
        self._loop.run_until_complete(self._main())

    async def _main(self) -> None:
        from websockets.asyncio.client import connect
        from websockets.typing import Subprotocol

        self._stop = asyncio.Event()
        connections = []
        for name, token in self.tokens:  # one by one: $connect runs through the engine
            connection = await connect(
                self.url,
                subprotocols=[Subprotocol("serverlesspresso.v1"), Subprotocol(token)],
                open_timeout=120,  # the first $connect cold-starts (imports, JWKS) on a busy machine
            )
            connections.append((name, connection))
        readers = [asyncio.create_task(self._read(name, connection)) for name, connection in connections]
        self._ready.set()
        await self._stop.wait()
        for _, connection in connections:
            await connection.close()
        await asyncio.gather(*readers, return_exceptions=True)

    async def _read(self, name: str, connection: Any) -> None:
        async for message in connection:
            arrived = time.monotonic()
            parsed = json.loads(message)
            if parsed.get("type") == "order":
                with self._lock:
                    self.arrivals[name].append((arrived, parsed["order"]))

    def first_arrival(self, name: str, order_id: str, after: float, shows: Any, timeout: float = 30) -> float:
        """When `name` first received a message of the order, sent after `after`, that `shows` the effect."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                for arrived, order in self.arrivals[name]:
                    if arrived >= after and order["orderId"] == order_id and shows(order):
                        return arrived
            time.sleep(0.002)
        raise TimeoutError(f"{name}: no message for {order_id}")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--orders", type=int, default=15)
    parser.add_argument("--time-scale", type=float, default=0.05, help="the workflow's waits (300 s -> 15 s)")
    args = parser.parse_args()
    os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")

    from local.auth import LocalIdp
    from local.cli import LocalStack

    idp = LocalIdp(tempfile.mkdtemp(prefix="bench-push-"))
    # The handlers' log lines (JSON, as Lambda sends to CloudWatch) are not the figures: keep them out.
    quiet = contextlib.redirect_stdout(io.StringIO())
    quiet.__enter__()
    started = time.monotonic()
    stack = LocalStack.start(
        template=TEMPLATE, port=0, api_port=0, time_scale=args.time_scale, idp=idp, api_log=lambda _: None
    )
    assert stack.api is not None and stack.push_url is not None
    others = args.clients - BARISTAS - DISPLAYS - 1
    tokens = [("customer", idp.issue_token("bench-customer"))]
    tokens += [(f"barista-{n}", idp.issue_token(f"bench-barista-{n}", "barista")) for n in range(BARISTAS)]
    tokens += [(f"display-{n}", idp.issue_token(f"bench-display-{n}", "display")) for n in range(DISPLAYS)]
    tokens += [(f"other-{n}", idp.issue_token(f"bench-other-{n}")) for n in range(others)]
    clients = Clients(stack.push_url, tokens)
    connect_started = time.monotonic()
    clients.start()
    connect_seconds = time.monotonic() - connect_started
    customer_token = tokens[0][1]
    barista_token = tokens[1][1]

    def call(method: str, path: str, token: str, body: Any = None) -> dict[str, Any]:
        request = urllib.request.Request(
            f"{stack.api.url}{path}",  # type: ignore[union-attr]
            method=method,
            data=json.dumps(body).encode() if body is not None else None,
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            answer: dict[str, Any] = json.loads(response.read())
            return answer

    def call_until(method: str, path: str, token: str, body: Any = None) -> dict[str, Any]:
        # 409 + Retry-After while the workflow's token is on its way: what a screen's client does too.
        for _ in range(200):
            try:
                return call(method, path, token, body)
            except urllib.error.HTTPError as error:
                if error.code != 409:
                    raise
            time.sleep(0.05)
        raise TimeoutError(f"{method} {path} kept answering 409")

    latencies: dict[tuple[str, str], list[float]] = {
        (a, who): [] for a in ACTIONS for who in ("customer", "barista")
    }
    api_seconds: dict[str, list[float]] = {action: [] for action in ACTIONS}
    try:
        for number in range(args.orders + 1):  # the first one warms the functions up (cold starts)
            steps = [
                ("place", "POST", "/orders", customer_token, None),
                ("submit", "PUT", "/orders/{id}", customer_token, {"drink": "Latte", "modifiers": []}),
                ("make", "POST", "/orders/{id}/make", barista_token, None),
                ("complete", "POST", "/orders/{id}/complete", barista_token, None),
            ]
            order_id = ""
            for action, method, route, token, body in steps:
                if action == "submit":
                    clients.first_arrival(
                        "customer", order_id, 0, lambda o: o["state"] == "WAITING_FOR_CUSTOMER"
                    )
                if action == "make":
                    clients.first_arrival(
                        "customer", order_id, 0, lambda o: o["state"] == "WAITING_FOR_BARISTA"
                    )
                before = time.monotonic()
                answer = call_until(method, route.format(id=order_id), token, body)
                api_took = time.monotonic() - before
                order_id = order_id or answer["orderId"]
                # The call's effect is shown by any message of that order at least as new as its answer.
                version = answer["version"]
                for who, name in (("customer", "customer"), ("barista", "barista-0")):
                    arrived = clients.first_arrival(
                        name, order_id, before, lambda o, v=version: o["version"] >= v
                    )
                    if number:
                        latencies[(action, who)].append(arrived - before)
                if number:
                    api_seconds[action].append(api_took)
            clients.first_arrival("customer", order_id, 0, lambda o: o["state"] == "COMPLETED")
    finally:
        clients.stop()
        stack.close()
        quiet.__exit__(None, None, None)

    def percentile(values: list[float], q: float) -> float:
        ordered = sorted(values)
        return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]

    rows = []
    figures: dict[str, Any] = {}
    for action in ACTIONS:
        for who in ("customer", "barista"):
            values = latencies[(action, who)]
            p50, p95 = statistics.median(values), percentile(values, 0.95)
            api = statistics.median(api_seconds[action])
            rows.append(
                (
                    f"{action} -> {who}",
                    len(values),
                    f"{p50 * 1000:.0f}",
                    f"{p95 * 1000:.0f}",
                    f"{max(values) * 1000:.0f}",
                    f"{api * 1000:.0f}",
                    f"{(p50 - api) * 1000:.0f}",
                )
            )
            figures[f"{action}/{who}"] = {
                "n": len(values),
                "p50_ms": round(p50 * 1000),
                "p95_ms": round(p95 * 1000),
                "max_ms": round(max(values) * 1000),
                "api_p50_ms": round(api * 1000),
            }
    everything = [v for values in latencies.values() for v in values]
    overall_p50, overall_p95 = statistics.median(everything), percentile(everything, 0.95)
    print(
        f"Push latency, API call -> message at the socket ({args.clients} clients connected: "
        f"{BARISTAS} baristas, {DISPLAYS} displays, {args.clients - BARISTAS - DISPLAYS} customers; "
        f"{args.orders} orders one after another, after a warm-up order)"
    )
    print(
        table(["action -> screen", "n", "p50 ms", "p95 ms", "max ms", "API p50 ms", "after API p50 ms"], rows)
    )
    verdict = "meets" if overall_p95 <= TARGET_P95_SECONDS else "misses"
    print(
        f"All: p50 {overall_p50 * 1000:.0f} ms, p95 {overall_p95 * 1000:.0f} ms: {verdict} the p95 <= "
        f"{TARGET_P95_SECONDS * 1000:.0f} ms target"
    )
    print(
        f"Setup: stack {connect_started - started:.1f} s, {args.clients} connections {connect_seconds:.1f} s"
    )
    print(
        "What it is made of: the API request (HTTP API function, DynamoDB, SendTask*, PutEvents), then "
        "'after API': the bus (moto) -> the fan-out rule's queue -> the dispatcher -> PushFanOutFunction "
        "(GetItem, 3 index queries) -> one PostToConnection per allowed connection (16 at a time) -> socket."
    )
    path = write_results(
        "push",
        command_line(),
        {
            "clients": args.clients,
            "audience": {
                "baristas": BARISTAS,
                "displays": DISPLAYS,
                "customers": args.clients - BARISTAS - DISPLAYS,
            },
            "orders": args.orders,
            "target_p95_ms": round(TARGET_P95_SECONDS * 1000),
            "overall": {"p50_ms": round(overall_p50 * 1000), "p95_ms": round(overall_p95 * 1000)},
            "latency": figures,
        },
    )
    print(f"Wrote {path}")


if __name__ == "__main__":
    main()
