"""`make demo`: a rush at the coffee bar, through the real HTTP API and the real workflow, time-scaled.

    python -m local.demo [--customers 30] [--time-scale 0.02] [--seed 7]

It starts the same stack as `make local` (patched moto server, dispatcher, HTTP API) on free ports:
one code path for both, and in-process moto measured no faster (the time goes into moto's ASL
interpreter and the handlers, not into HTTP). Then it plays a rush against the API only, as the
apps would:

- a barista lowers the shop's capacity (PUT /config maxInFlight) so the rush hits it;
- customers arrive (a first wave at once, the rest spread out), read the menu, POST /orders and, once
  the workflow waits for them, act out their persona: most choose a drink (PUT), some never do (the
  customer wait times out), some cancel (DELETE) before or after choosing;
- baristas poll their queue (GET /orders?state=WAITING_FOR_BARISTA), claim the oldest order (make),
  brew, and complete it; now and then one is out of an ingredient (cancel) or forgets a claimed
  order (the barista wait times out). Orders that find the shop full end REJECTED; later ones get in.

All waits are in shop seconds multiplied by the time scale: the default 0.02 turns the customer's
300 s of patience into 6 s and the barista's 900 s into 18 s. (At 0.01 the local stack's own latency
in the first wave, one to four seconds from POST /orders to the stored task token on a two-core
machine, is as long as the customer's 3 s and willing customers time out: the demo would show the
machine, not the shop.)

When every order has ended it prints a per-order timeline and a summary, then checks what really
happened, from the orders table and the executions (not from what the demo meant to do): every
order the API accepted exists and ended in exactly one terminal state, its one execution succeeded
along the matching path, no event went to a dead-letter queue, every capacity slot was released,
the API answered no 5xx. Exit code 0 when all of that holds, 1 otherwise.

The handlers' and the API's log lines go to a log file (default .local/demo.log), not the screen.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import statistics
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import Enum
from pathlib import Path
from typing import Any, TextIO

REPO_ROOT = Path(__file__).resolve().parent.parent
# The demo reads the orders table with the domain's own model (states, ranks, item format): the shared
# layer's package, importable as on Lambda (/opt/python) and in the tests (pyproject's pythonpath).
if str(REPO_ROOT / "functions" / "shared") not in sys.path:
    sys.path.append(str(REPO_ROOT / "functions" / "shared"))

from local.auth import LocalIdp  # noqa: E402
from local.cli import DEFAULT_API_WORKERS, DEFAULT_TEMPLATE, LocalStack, positive_number  # noqa: E402
from local.timescale import scale_seconds  # noqa: E402
from serverlesspresso.models import OrderState  # noqa: E402
from serverlesspresso.orders import from_item  # noqa: E402

DEFAULT_CUSTOMERS = 30
DEFAULT_TIME_SCALE = 0.02
DEFAULT_SEED = 7
DEFAULT_LOG = REPO_ROOT / ".local" / "demo.log"

# The workflow's waits (template: HeartbeatSeconds of the two callback states), in shop seconds.
CUSTOMER_PATIENCE = 300
BARISTA_PATIENCE = 900

# Shop-time behaviour (seconds). Customers choose within CHOOSE; baristas brew within BREW.
RUSH_SHARE = 0.4  # the first wave: this share of the customers arrives within RUSH_WINDOW
RUSH_WINDOW = 30
ARRIVAL_GAP = 60  # the others arrive after it, one every ~ARRIVAL_GAP on average
CHOOSE = (20, 100)
CANCEL_AFTER = (20, 100)  # a cancelling customer gives up this long after the order was taken
CHANGE_MIND_AFTER = (5, 30)  # ... or this long after choosing
BREW = (40, 90)
QUEUE_POLL = 20  # a barista screen refreshes this often...
# ... but never more often than this in real seconds: every request runs a handler, and handlers run
# one at a time (local/lambdas.py), so faster polling only slows down everything else. Customers do
# not poll: they act when they are ready and retry when the API answers 409 with Retry-After.
MIN_POLL_SECONDS = 0.5
MAX_UNAVAILABLE_RETRIES = 5  # 503 + Retry-After answers a client asks again before giving up
FORGET_RATE = 0.08  # a barista claims an order and never finishes it
OUT_OF_STOCK_RATE = 0.05  # a barista cancels: out of an ingredient

# Which "Emit - ..." state an execution must have passed for each way an order ends.
ENDING_STATE = {
    OrderState.COMPLETED: "Emit - Order finished",
    OrderState.CANCELLED: "Emit - Order cancelled",
    OrderState.TIMED_OUT: "Emit - Order timed out",
    OrderState.REJECTED: "Emit - Shop unavailable",
}
TIMELINE_COLUMNS = (
    ("placed", (OrderState.PLACED,)),
    ("cust-wait", (OrderState.WAITING_FOR_CUSTOMER,)),
    ("submitted", (OrderState.SUBMITTED,)),
    ("bar-wait", (OrderState.WAITING_FOR_BARISTA,)),
    ("resumed", (OrderState.COMPLETING, OrderState.CANCELLING)),
)
# fmt: off
NAMES = (
    "Ana", "Ben", "Chloe", "Dev", "Eli", "Fatima", "Gus", "Hana", "Ivan", "Jade",
    "Kofi", "Lena", "Milo", "Nia", "Omar", "Priya", "Quinn", "Rosa", "Sam", "Tariq",
    "Uma", "Vik", "Wen", "Xavi", "Yara", "Zoe", "Arjun", "Bea", "Cyril", "Dana",
    "Emeka", "Freya", "Goran", "Hugo", "Isla", "Jonas", "Kira", "Luca", "Maya", "Noor",
)
# fmt: on


class Persona(Enum):
    """What a customer means to do once the workflow waits for them."""

    REGULAR = "orders"
    WALKS_AWAY = "never submits"
    CANCELS = "cancels"
    CHANGES_MIND = "submits, cancels"


@dataclass(frozen=True)
class Customer:
    """One customer of the rush."""

    name: str
    user: str  # the identity the token is issued for
    persona: Persona
    arrival: float  # shop seconds after the doors open


def plan_customers(count: int, rng: random.Random) -> list[Customer]:
    """Personas (each kind present from 4 customers on) and arrival times: a rush, then a stream."""
    unusual = {Persona.WALKS_AWAY: 0.12, Persona.CANCELS: 0.08, Persona.CHANGES_MIND: 0.08}
    personas = [
        p for p, share in unusual.items() for _ in range(max(1, round(share * count)) if count >= 4 else 0)
    ]
    personas += [Persona.REGULAR] * (count - len(personas))
    rng.shuffle(personas)
    rush = math.ceil(RUSH_SHARE * count)
    arrivals = sorted(rng.uniform(0, RUSH_WINDOW) for _ in range(rush))
    stream_end = 2 * RUSH_WINDOW + ARRIVAL_GAP * (count - rush)
    arrivals += sorted(rng.uniform(2 * RUSH_WINDOW, stream_end) for _ in range(count - rush))
    return [
        Customer(
            name=NAMES[i % len(NAMES)] + (f" {i // len(NAMES) + 1}" if i >= len(NAMES) else ""),
            user=f"customer-{i + 1:03d}",
            persona=personas[i],
            arrival=arrivals[i],
        )
        for i in range(count)
    ]


@dataclass(frozen=True)
class DemoSettings:
    """The knobs of a run; the staffing and the shop's capacity follow from the number of customers."""

    customers: int = DEFAULT_CUSTOMERS
    time_scale: float = DEFAULT_TIME_SCALE
    seed: int = DEFAULT_SEED

    @property
    def baristas(self) -> int:
        """One barista per ten customers, at least one."""
        return max(1, self.customers // 10)

    @property
    def capacity(self) -> int:
        """maxInFlight for the rush: a third of the customers (at least 3), so the first wave finds the
        shop full while the stream after it mostly gets in."""
        return max(3, math.ceil(self.customers / 3))

    def describe(self) -> str:
        """One line for the top of the output."""
        waits = (
            f"customer wait {scale_seconds(CUSTOMER_PATIENCE, self.time_scale)} s, "
            f"barista wait {scale_seconds(BARISTA_PATIENCE, self.time_scale)} s"
        )
        return (
            f"Serverlesspresso demo: {self.customers} customers, {self.baristas} barista(s), capacity "
            f"{self.capacity}, time scale {self.time_scale:g} ({waits}), seed {self.seed}"
        )


# ------------------------------------------------------------------------------------------- HTTP
@dataclass
class Reply:
    """One API response."""

    status: int
    body: Any
    retry_after: float | None = None  # the Retry-After header: "not yet, ask again then"


@dataclass
class ApiClient:
    """A small JSON client for the local API that counts every status it gets and keeps 5xx answers.

    A 503 with Retry-After ("not now, nothing was done") is asked again after that long, as an app
    would, up to MAX_UNAVAILABLE_RETRIES times; such answers are counted, not kept as server errors.
    """

    base_url: str
    statuses: Counter[int] = field(default_factory=Counter)
    server_errors: list[str] = field(default_factory=list)
    retried_unavailable: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def call(self, method: str, path: str, token: str, body: Any = None) -> Reply:
        """Send one request (again after a 503 with Retry-After); HTTP errors are replies too."""
        for _ in range(MAX_UNAVAILABLE_RETRIES):
            reply = self._send(method, path, token, body)
            if reply.status != 503 or reply.retry_after is None:
                break
            with self._lock:
                self.retried_unavailable += 1
            time.sleep(reply.retry_after)
        else:
            reply = self._send(method, path, token, body)
        if reply.status >= 500:
            with self._lock:
                self.server_errors.append(f"{method} {path} -> {reply.status} {str(reply.body)[:200]}")
        return reply

    def _send(self, method: str, path: str, token: str, body: Any) -> Reply:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.base_url + path, data=data, method=method)
        request.add_header("Authorization", f"Bearer {token}")
        if data is not None:
            request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                status, text, headers = response.status, response.read().decode(), response.headers
        except urllib.error.HTTPError as error:
            status, text, headers = error.code, error.read().decode(), error.headers
        with self._lock:
            self.statuses[status] += 1
        retry_after = headers.get("Retry-After")
        return Reply(status, json.loads(text) if text else None, float(retry_after) if retry_after else None)


# ---------------------------------------------------------------------------------------- the rush
@dataclass
class Placement:
    """An order the API accepted (202), and who placed it."""

    order_id: str
    customer: Customer
    drink: str
    placed_at: float  # monotonic


@dataclass
class Rush:
    """Shared state of one demo run: the plan, the clients, what the actors did."""

    settings: DemoSettings
    api: ApiClient
    idp: LocalIdp
    placements: dict[str, Placement] = field(default_factory=dict)
    refused: list[str] = field(default_factory=list)  # customers whose order the API did not accept
    actor_errors: list[str] = field(default_factory=list)
    notes: Counter[str] = field(default_factory=Counter)  # e.g. "cancel too late"
    stop_baristas: threading.Event = field(default_factory=threading.Event)
    started: float = field(default_factory=time.monotonic)
    # Under injected faults (make chaos) an order can stay unready until the operator mends it (its
    # ending event was dead-lettered): a customer then gives up, noted, instead of failing the run.
    orders_may_stick: bool = False
    stack: LocalStack | None = None  # what the rush plays against (rush_stack)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def real(self, shop_seconds: float) -> float:
        """Shop seconds to real seconds."""
        return shop_seconds * self.settings.time_scale

    def sleep(self, shop_seconds: float) -> None:
        """Wait `shop_seconds` of shop time."""
        time.sleep(self.real(shop_seconds))

    def place(self, placement: Placement) -> None:
        """Record an order the API accepted."""
        with self._lock:
            self.placements[placement.order_id] = placement

    def refuse(self, text: str) -> None:
        """Record an order the API did not accept (the run fails)."""
        with self._lock:
            self.refused.append(text)

    def note(self, what: str) -> None:
        """Count a noteworthy thing that happened (shown in the summary)."""
        with self._lock:
            self.notes[what] += 1

    def run_actor(self, name: str, body: Callable[[], None]) -> None:
        """Run one actor's script; a crash is recorded (and fails the demo), never silent."""
        try:
            body()
        except Exception as error:
            with self._lock:
                self.actor_errors.append(f"{name}: {type(error).__name__}: {error}")


def customer_script(rush: Rush, customer: Customer, rng: random.Random) -> None:
    """Arrive, read the menu, order, then act out the persona: choose a drink, cancel, or walk away."""
    token = rush.idp.issue_token(customer.user)
    time.sleep(max(0.0, rush.started + rush.real(customer.arrival) - time.monotonic()))
    menu = rush.api.call("GET", "/config", token).body["menu"]
    drink = rng.choice(menu)
    modifiers = rng.sample(drink["modifiers"], k=min(len(drink["modifiers"]), rng.choice((0, 0, 1, 1, 2))))
    placed = rush.api.call("POST", "/orders", token)
    if placed.status != 202:
        rush.refuse(f"{customer.name}: POST /orders -> {placed.status} {placed.body}")
        return
    order_id = placed.body["orderId"]
    rush.place(Placement(order_id, customer, " + ".join([drink["name"], *modifiers]), time.monotonic()))
    if customer.persona is Persona.WALKS_AWAY:
        return  # the workflow waits for the drink in vain: the customer wait times out
    if customer.persona is Persona.CANCELS:
        rush.sleep(rng.uniform(*CANCEL_AFTER))
        _act(rush, customer, order_id, "DELETE", token, "cancelled")
        return
    rush.sleep(rng.uniform(*CHOOSE))
    choice = {"drink": drink["name"], "modifiers": modifiers}
    if (
        _act(rush, customer, order_id, "PUT", token, "chose", choice)
        and customer.persona is Persona.CHANGES_MIND
    ):
        rush.sleep(rng.uniform(*CHANGE_MIND_AFTER))
        _act(rush, customer, order_id, "DELETE", token, "cancelled")


def _act(
    rush: Rush, customer: Customer, order_id: str, method: str, token: str, what: str, body: Any = None
) -> bool:
    """One customer action on the order; True if the API took it.

    409 with Retry-After means the workflow is not waiting for us yet: ask again after that long. 410
    means the wait is over: the order was rejected (shop full), or the customer was too slow. A 409
    without Retry-After: a barista already makes it (too late to cancel).
    """
    path = f"/orders/{order_id}"
    # An order that is still not ready long after the customer wait would have ended is stuck: a bug.
    give_up = time.monotonic() + 2 * rush.real(CUSTOMER_PATIENCE) + 30
    while (reply := rush.api.call(method, path, token, body)).status == 409 and reply.retry_after:
        if time.monotonic() > give_up and rush.orders_may_stick:
            rush.note(f"customer gave up ({what}): order left unready by a fault")
            return False
        if time.monotonic() > give_up:
            raise RuntimeError(f"{customer.name}: {method} {path} still 409 after the customer wait")
        time.sleep(reply.retry_after)
    if reply.status == 200:
        return True
    if reply.status == 410:
        state = rush.api.call("GET", path, token).body["state"]
        if state == OrderState.REJECTED:
            return False  # the shop was full: nothing to do but leave
    if reply.status in (409, 410):
        rush.note(f"customer {what} too late")
        return False
    raise RuntimeError(f"{customer.name}: {method} {path} -> {reply.status} {reply.body}")


def barista_script(rush: Rush, name: str, rng: random.Random) -> None:
    """Poll the queue; claim the oldest unclaimed order, brew, complete (or cancel, or forget it)."""
    token = rush.idp.issue_token(name, "barista")
    refused: set[str] = set()  # claims that failed: another barista was faster, or the order moved on
    while not rush.stop_baristas.is_set():
        queue = rush.api.call("GET", "/orders?state=WAITING_FOR_BARISTA&limit=50", token).body["orders"]
        waiting = sorted(
            (o for o in queue if not o.get("baristaId") and o["orderId"] not in refused),
            key=lambda o: o["createdAt"],
        )
        if not waiting:
            rush.stop_baristas.wait(max(MIN_POLL_SECONDS, rush.real(QUEUE_POLL)))
            continue
        order_id = waiting[0]["orderId"]
        if rush.api.call("POST", f"/orders/{order_id}/make", token).status != 200:
            refused.add(order_id)
            continue
        fate = rng.random()
        if fate < FORGET_RATE:
            rush.note("barista forgot a claimed order")
            continue
        rush.sleep(rng.uniform(*BREW))
        if fate < FORGET_RATE + OUT_OF_STOCK_RATE:
            reply = rush.api.call("POST", f"/orders/{order_id}/cancel", token, {"reason": "out of oat milk"})
        else:
            reply = rush.api.call("POST", f"/orders/{order_id}/complete", token)
        if reply.status != 200:
            rush.note("barista finished too late")


# ----------------------------------------------------------------------------------------- observing
@dataclass
class Observed:
    """What really happened, read from the stack after the rush (not from the demo's intentions)."""

    placements: dict[str, Placement]
    orders: dict[str, dict[str, Any]]  # the orders table, by orderId
    executions: dict[str, list[tuple[str, list[str]]]]  # orderId -> [(status, states entered)]
    running_executions: list[str]
    in_flight: list[str]  # capacity slots still taken
    dead_letters: list[str]
    dispatcher_errors: list[str]
    refused: list[str]
    server_errors: list[str]
    actor_errors: list[str]


def scan_orders(stack: LocalStack) -> dict[str, dict[str, Any]]:
    """Every item of the orders table, by orderId (a strongly consistent scan)."""
    dynamodb = stack.engine.clients["dynamodb"]
    items: dict[str, dict[str, Any]] = {}
    for page in dynamodb.get_paginator("scan").paginate(
        TableName=stack.engine.table_names["OrdersTable"], ConsistentRead=True
    ):
        for item in page["Items"]:
            order = from_item(item)
            items[order["orderId"]] = order
    return items


def shop_slots(stack: LocalStack) -> list[str]:
    """The capacity slots taken right now (the shop item's inFlight set)."""
    item = stack.engine.clients["dynamodb"].get_item(
        TableName=stack.engine.table_names["ConfigTable"],
        Key={"configId": {"S": "shop"}},
        ConsistentRead=True,
    )
    return sorted(item.get("Item", {}).get("inFlight", {}).get("SS", []))


def observe(stack: LocalStack, rush: Rush) -> Observed:
    """Read the orders table, the executions, the dispatcher's records and the shop's slots."""
    engine = stack.engine
    executions: dict[str, list[tuple[str, list[str]]]] = {}
    for order_id in rush.placements:
        executions[order_id] = [
            (execution["status"], engine.state_path(execution["executionArn"]))
            for execution in engine.executions_for_order(order_id)
        ]
    return Observed(
        placements=dict(rush.placements),
        orders=scan_orders(stack),
        executions=executions,
        running_executions=[e["name"] for e in engine.executions("RUNNING")],
        in_flight=shop_slots(stack),
        dead_letters=[f"{d.rule} -> {d.target}: {d.error}" for d in engine.dead_letters],
        dispatcher_errors=list(engine.dispatcher.errors),
        refused=list(rush.refused),
        server_errors=list(rush.api.server_errors),
        actor_errors=list(rush.actor_errors),
    )


def verify(observed: Observed, customers: int) -> list[str]:
    """Every way the run went wrong; empty when each order ended in exactly one terminal state."""
    problems = [f"order refused: {text}" for text in observed.refused]
    problems += [f"API 5xx: {text}" for text in observed.server_errors]
    problems += [f"actor crashed: {text}" for text in observed.actor_errors]
    problems += [f"dead letter: {text}" for text in observed.dead_letters]
    problems += [f"dispatcher error: {text}" for text in observed.dispatcher_errors]
    if len(observed.placements) + len(observed.refused) != customers:
        problems.append(f"{customers} customers but {len(observed.placements)} orders placed")
    for order_id in sorted(observed.orders.keys() - observed.placements.keys()):
        problems.append(f"order {order_id} is in the table but no customer placed it")
    for order_id in observed.placements:
        problems += [f"order {order_id}: {p}" for p in _order_problems(observed, order_id)]
    if observed.running_executions:
        problems.append(f"executions still running: {', '.join(observed.running_executions)}")
    if observed.in_flight:
        problems.append(f"capacity slots never released: {', '.join(observed.in_flight)}")
    return problems


def _order_problems(observed: Observed, order_id: str) -> list[str]:
    order = observed.orders.get(order_id)
    if order is None:
        return ["lost: not in the orders table"]
    timeline = [OrderState(entry["state"]) for entry in order.get("timeline", [])]
    terminal = [state for state in timeline if state.is_terminal]
    state = OrderState(order["state"])
    problems = []
    if not state.is_terminal:
        problems.append(f"never ended (state {state.value})")
    if len(terminal) != 1 or timeline[-1:] != terminal:
        problems.append(f"timeline {[s.value for s in timeline]} does not end in exactly one terminal state")
    executions = observed.executions.get(order_id, [])
    if len(executions) != 1:
        return [*problems, f"{len(executions)} executions instead of 1"]
    status, path = executions[0]
    if status != "SUCCEEDED":
        problems.append(f"execution {status} after {path[-1:]}")
    elif state.is_terminal and ENDING_STATE[state] not in path:
        problems.append(f"ended {state.value} but its execution went {path}")
    return problems


# ------------------------------------------------------------------------------------------ display
def _at(entry: Mapping[str, Any]) -> datetime:
    return datetime.fromisoformat(str(entry["at"]).replace("Z", "+00:00"))


def _first_times(order: Mapping[str, Any]) -> dict[OrderState, datetime]:
    times: dict[OrderState, datetime] = {}
    for entry in order.get("timeline", []):
        times.setdefault(OrderState(entry["state"]), _at(entry))
    return times


def _outcome(order: Mapping[str, Any]) -> str:
    reason = str(order.get("endReason", ""))
    detail = {
        "Customer timedout": "customer",
        "Barista timedout": "barista",
        "CustomerCancelled": "customer",
        "BaristaCancelled": "barista",
        "shop capacity": "shop full",
        "shop closed": "shop closed",
    }.get(reason, reason if reason != "completed" else "")
    return f"{order['state']} ({detail})" if detail else str(order["state"])


def timeline_table(observed: Observed, opened: datetime) -> list[str]:
    """One row per order, in the order they were placed: each state's time in seconds since opening."""
    header = f"{'#':>3} {'no.':>4} {'customer':<9} {'persona':<16} {'drink':<28}"
    header += "".join(f" {name:>9}" for name, _ in TIMELINE_COLUMNS) + f" {'ended':>7}  outcome"
    rows = [header, "-" * len(header)]
    terminal = tuple(state for state in OrderState if state.is_terminal)
    placements = sorted(observed.placements.values(), key=lambda p: p.placed_at)
    for index, placement in enumerate(placements, 1):
        order = observed.orders.get(placement.order_id, {"state": "LOST", "timeline": []})
        times = _first_times(order)
        row = f"{index:>3} {order.get('orderNumber', '-')!s:>4} {placement.customer.name:<9} "
        drink = placement.drink if len(placement.drink) <= 28 else placement.drink[:27] + "…"
        row += f"{placement.customer.persona.value:<16} {drink:<28}"
        row += "".join(f" {_since(opened, times, states):>9}" for _, states in TIMELINE_COLUMNS)
        rows.append(row + f" {_since(opened, times, terminal):>7}  {_outcome(order)}")
    return rows


def _since(opened: datetime, times: Mapping[OrderState, datetime], states: tuple[OrderState, ...]) -> str:
    """Seconds from opening to the first of `states` the order entered, or "-"."""
    moment = min((times[state] for state in states if state in times), default=None)
    return f"{(moment - opened).total_seconds():.2f}" if moment else "-"


def _quantile(values: list[float], share: float) -> float:
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[round(share * 100) - 1]


def _shop_duration(seconds: float) -> str:
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest:02d} s" if minutes else f"{rest} s"


def summary_lines(observed: Observed, rush: Rush) -> list[str]:
    """Counts per outcome, median and p95 from order to completion, and what the actors ran into."""
    ended = Counter(
        order["state"] for order in observed.orders.values() if order["orderId"] in rush.placements
    )
    timed_out = Counter(
        str(order.get("endReason")) for order in observed.orders.values() if order["state"] == "TIMED_OUT"
    )
    lines = [
        f"Orders {len(observed.placements)}: completed {ended['COMPLETED']}, cancelled {ended['CANCELLED']}, "
        f"timed out {ended['TIMED_OUT']} (customer {timed_out['Customer timedout']}, barista "
        f"{timed_out['Barista timedout']}), rejected {ended['REJECTED']}"
    ]
    durations = [
        (times[OrderState.COMPLETED] - times[OrderState.PLACED]).total_seconds()
        for order in observed.orders.values()
        if OrderState.COMPLETED in (times := _first_times(order)) and OrderState.PLACED in times
    ]
    if durations:
        median, p95 = statistics.median(durations), _quantile(durations, 0.95)
        scale = rush.settings.time_scale
        lines.append(
            f"Order to completion: median {median:.2f} s, p95 {p95:.2f} s "
            f"(shop time {_shop_duration(median / scale)}, {_shop_duration(p95 / scale)})"
        )
    if rush.notes:
        lines.append("Along the way: " + ", ".join(f"{what} x{n}" for what, n in sorted(rush.notes.items())))
    statuses = ", ".join(f"{status} x{n}" for status, n in sorted(rush.api.statuses.items()))
    lines.append(f"HTTP requests {sum(rush.api.statuses.values())}: {statuses}")
    return lines


class Progress:
    """The live progress line: order states from the orders table, taken capacity slots."""

    def __init__(self, stack: LocalStack, rush: Rush, out: TextIO) -> None:
        self.stack, self.rush, self.out = stack, rush, out
        self._interactive = out.isatty()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="demo-progress", daemon=True)
        self.errors: list[str] = []

    def line(self) -> str:
        """The current state of the shop, one line."""
        counts = Counter(order["state"] for order in scan_orders(self.stack).values())
        active = (
            f"waiting {counts['WAITING_FOR_CUSTOMER'] + counts['PLACED']} "
            f"submitted {counts['SUBMITTED']} queued {counts['WAITING_FOR_BARISTA']} "
            f"finishing {counts['COMPLETING'] + counts['CANCELLING']}"
        )
        ended = (
            f"completed {counts['COMPLETED']} cancelled {counts['CANCELLED']} "
            f"timed out {counts['TIMED_OUT']} rejected {counts['REJECTED']}"
        )
        elapsed = time.monotonic() - self.rush.started
        placed = len(self.rush.placements)
        settings = self.rush.settings
        slots = f"slots {len(shop_slots(self.stack))}/{settings.capacity}"
        return f"{elapsed:6.1f}s  placed {placed}/{settings.customers} | {active} | {ended} | {slots}"

    def start(self) -> None:
        """Refresh in the background until stop()."""
        self._thread.start()

    def stop(self) -> None:
        """Print the last state and end the line."""
        self._stop.set()
        self._thread.join(timeout=10)
        self._show(final=True)

    def _run(self) -> None:
        # A terminal gets one line rewritten in place; a log (CI, tests) a new line now and then.
        interval = 0.5 if self._interactive else 2.0
        while not self._stop.wait(interval):
            self._show(final=False)

    def _show(self, final: bool) -> None:
        try:
            text = self.line()
        except Exception as error:  # a failed scan must not end the demo; it is reported at the end
            self.errors.append(f"{type(error).__name__}: {error}")
            return
        if self._interactive:
            self.out.write("\r" + text + ("\n" if final else ""))
        else:
            self.out.write(text + "\n")
        self.out.flush()


# ------------------------------------------------------------------------------------------- running
@contextmanager
def lambda_output_to(log: TextIO) -> Iterator[None]:
    """Send what the handlers and the API server print to `log` for the duration."""
    # The handlers write their log lines (Powertools, JSON) to stdout as on Lambda, the API server
    # its access log and tracebacks to stderr: into the log file, so the screen shows the demo only.
    saved = sys.stdout, sys.stderr
    sys.stdout = sys.stderr = log
    try:
        yield
    finally:
        sys.stdout, sys.stderr = saved


def every_order_ended(stack: LocalStack, rush: Rush) -> bool:
    """Every placed order is in a terminal state and no execution runs."""
    orders = scan_orders(stack)
    ended = all(
        OrderState(orders[order_id]["state"]).is_terminal if order_id in orders else False
        for order_id in rush.placements
    )
    return ended and not stack.engine.executions("RUNNING")


Settled = Callable[[LocalStack, Rush], bool]


def wait_until_settled(
    stack: LocalStack, rush: Rush, timeout: float, settled: Settled = every_order_ended
) -> None:
    """Until `settled` (default: every placed order ended, no execution runs) or `timeout` seconds passed."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if settled(stack, rush):
            return
        time.sleep(0.2)


@contextmanager
def rush_stack(
    settings: DemoSettings,
    *,
    out: TextIO,
    log: TextIO,
    template: str | Path = DEFAULT_TEMPLATE,
    api_workers: int = DEFAULT_API_WORKERS,
) -> Iterator[Rush | None]:
    """The stack of `make local` on free ports, its output in `log`, and a rush ready to play against
    its API (None, said on `out`, if the template has no API); everything is stopped afterwards.
    `api_workers`: as LocalStack.start's (0 serves the API in this process, where the engine's fault
    switch reaches its AWS calls too)."""
    with tempfile.TemporaryDirectory(prefix="demo-jwt-") as key_dir, lambda_output_to(log):
        idp = LocalIdp(key_dir)  # a throwaway signing key: demo tokens are valid for this run only
        started = time.monotonic()
        stack = LocalStack.start(
            template=template,
            port=0,
            api_port=0,
            time_scale=settings.time_scale,
            api_log=lambda line: print(line, file=log, flush=True),
            idp=idp,
            api_workers=api_workers,
        )
        try:
            if stack.api is None:
                print("error: the template declares no HttpApi routes; the demo needs the API", file=out)
                yield None
                return
            print(
                f"Stack ready in {time.monotonic() - started:.2f}s: API {stack.api.url}", file=out, flush=True
            )
            yield Rush(settings, ApiClient(stack.api.url), idp, stack=stack)
        finally:
            stack.close()


def run_demo(
    settings: DemoSettings, *, out: TextIO, log: TextIO, template: str | Path = DEFAULT_TEMPLATE
) -> int:
    """Start the stack, play the rush and check it; 0 when every order ended in exactly one terminal state."""
    print(settings.describe(), file=out, flush=True)
    with rush_stack(settings, out=out, log=log, template=template) as rush:
        if rush is None or rush.stack is None:
            return 2
        return play(rush.stack, rush, out)


@dataclass(frozen=True)
class RushRun:
    """When the shop opened, and what went wrong with the run itself (not with the orders)."""

    opened: datetime
    errors: list[str]


def run_rush(
    stack: LocalStack, rush: Rush, out: TextIO, settled: Settled = every_order_ended
) -> RushRun | None:
    """Open the shop, run customers and baristas until `settled`; None if the shop could not be set up."""
    settings = rush.settings
    rng = random.Random(settings.seed)
    plan = plan_customers(settings.customers, rng)
    manager = rush.idp.issue_token("manager", "barista")
    configured = rush.api.call("PUT", "/config", manager, {"maxInFlight": settings.capacity})
    if configured.status != 200:
        print(f"error: PUT /config -> {configured.status} {configured.body}", file=out)
        return None
    opened = datetime.now(UTC)
    rush.started = time.monotonic()
    progress = Progress(stack, rush, out)
    progress.start()
    baristas = [
        _actor(rush, f"barista-{n}", barista_script, rush, f"barista-{n}", random.Random(settings.seed + n))
        for n in range(1, settings.baristas + 1)
    ]
    customers = [
        _actor(rush, customer.user, customer_script, rush, customer, random.Random(rng.random()))
        for customer in plan
    ]
    # The longest an order can take after its customer arrived: both waits running out, plus slack.
    patience = rush.real(CUSTOMER_PATIENCE + BARISTA_PATIENCE + max(CHOOSE) + max(BREW)) + 60
    for thread in customers:
        thread.join(
            timeout=max(0.0, rush.started + rush.real(plan[-1].arrival) + patience - time.monotonic())
        )
    # Baristas work on until every order has ended: forgotten ones end by the barista wait's timeout.
    wait_until_settled(stack, rush, timeout=patience, settled=settled)
    rush.stop_baristas.set()
    for thread in baristas:
        thread.join(timeout=30)
    progress.stop()
    errors = [f"progress: {error}" for error in progress.errors]
    errors += [f"{t.name} still running" for t in baristas + customers if t.is_alive()]
    return RushRun(opened, errors)


def play(stack: LocalStack, rush: Rush, out: TextIO) -> int:
    """Open the shop, run customers and baristas until every order ended, then report and verify."""
    run = run_rush(stack, rush, out)
    if run is None:
        return 1
    observed = observe(stack, rush)
    observed.actor_errors += run.errors
    print("", file=out)
    for row in timeline_table(observed, run.opened):
        print(row, file=out)
    print(
        "(seconds since the shop opened when the order was placed, waited for the customer, was submitted,\n"
        " waited for a barista, was resumed (completing or cancelling) and ended; no.: the order number)\n",
        file=out,
    )
    for line in summary_lines(observed, rush):
        print(line, file=out)
    ok = (
        f"OK: all {len(observed.placements)} orders ended in exactly one terminal state, each by its one "
        "execution; no dead letters; every capacity slot released"
    )
    return report_check(verify(observed, rush.settings.customers), ok, out)


def report_check(problems: list[str], ok: str, out: TextIO) -> int:
    """Print the problems found (exit code 1) or the `ok` line (exit code 0)."""
    if problems:
        print(f"\nFAILED: {len(problems)} problem(s)", file=out)
        for problem in problems:
            print(f"  - {problem}", file=out)
        return 1
    print(ok, file=out)
    return 0


def _actor(rush: Rush, name: str, script: Callable[..., None], *args: Any) -> threading.Thread:
    """Start one actor (customer or barista) in its own thread."""
    thread = threading.Thread(
        target=rush.run_actor, args=(name, lambda: script(*args)), name=name, daemon=True
    )
    thread.start()
    return thread


def main(argv: list[str] | None = None) -> int:
    """Run the demo with command-line options; see the module docstring."""
    parser = argparse.ArgumentParser(
        prog="make demo", description="A rush at the Serverlesspresso coffee bar."
    )
    parser.add_argument("--customers", type=int, default=DEFAULT_CUSTOMERS, help="how many customers come")
    parser.add_argument(
        "--time-scale", type=positive_number, default=DEFAULT_TIME_SCALE, help="shop time x this = real time"
    )
    parser.add_argument(
        "--seed", type=int, default=DEFAULT_SEED, help="random seed (personas, drinks, arrivals)"
    )
    parser.add_argument("--log-file", default=str(DEFAULT_LOG), help="where the handlers' and API's logs go")
    parser.add_argument("--template", default=str(DEFAULT_TEMPLATE))
    args = parser.parse_args(argv)
    if args.customers < 1:
        parser.error("--customers must be at least 1")
    settings = DemoSettings(args.customers, args.time_scale, args.seed)
    return run_logged(
        args.log_file, lambda log: run_demo(settings, out=sys.stdout, log=log, template=args.template)
    )


def run_logged(log_file: str, run: Callable[[TextIO], int]) -> int:
    """Run a rush with the handlers' and API's logs going to `log_file`; say how long it took.

    Returns what `run` returns (the command's exit code).
    """
    log_path = Path(log_file)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    with log_path.open("w", encoding="utf-8") as log:
        code = run(log)
    print(f"Finished in {time.monotonic() - started:.1f}s; handler and API logs: {log_path}", flush=True)
    return code


if __name__ == "__main__":
    raise SystemExit(main())
