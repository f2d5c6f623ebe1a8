"""Cost per order, by the way an order ends, priced with public us-east-1 on-demand prices.

    .venv/bin/python bench/cost.py [--runs 3] [--time-scale 0.004]

Each path runs one order at a time on the local engine (in-process moto, the workflow executing, the
event handlers invoked by the dispatcher), driven through the HTTP API's handler the way the customer
and barista apps call it. For each order it counts:

- state transitions: the *StateEntered events of the order's execution history;
- Lambda invocations: the dispatcher's deliveries to functions (its `delivered` log) plus one per API
  request (the API is a function too), and each function's warm duration for the GB-s charge;
- DynamoDB request units, by operation, counted with botocore `before-call`/`after-call` hooks on the
  clients of the handlers, of the API and of moto's ASL interpreter. On-demand charges per request
  unit: a write is ceil(KB) WRUs of the larger of the item before and after (a refused conditional
  write still costs its WRUs), plus the writes it causes in each global secondary index (by the
  size of the attributes the index projects: 1 per entry put, updated or deleted, 2 when the index key
  changes, none when no projected attribute changes); a GetItem is ceil(size / 4 KB) RRUs, halved when
  eventually consistent; a Query, ceil(ScannedCount x the largest order item seen / 4 KB), halved
  (indexes are eventually consistent; an upper bound, as index entries are smaller than items). Sizes
  follow DynamoDB's rules on the items as stored, with the task token counted at the length of a real
  one (moto's are shorter);
- EventBridge events: PutEvents entries (the workflow's and the functions');
- API requests: the HTTP API calls each path needs (customer place / submit / cancel, barista make /
  complete / cancel), each sent once, after the order is ready for it. Polling (GET) is not counted.
- the push channel (WebSocket API) at an audience of 1 customer (the order's own) + 3 baristas +
  2 displays, whose connections are stored before the orders run: messages are the fan-out's
  PostToConnection calls (each well under the 32 KB metering unit, so one message each; the fan-out's
  Lambda invocations and DynamoDB reads are counted with the other functions'); connection minutes are
  modelled: the customer's screen is connected CUSTOMER_MINUTES per order, the 5 staff screens all
  day, shared by ORDERS_PER_HOUR orders; the customer's $connect and $disconnect (one each per order,
  PutItem / DeleteItem with their index entries) are modelled the same way.

SendTaskSuccess/Failure and StartExecution by the rule are not billed by Step Functions Standard;
CloudWatch Logs, metrics and X-Ray are left out (they depend on retention and sampling, not on the path).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import math
import sys
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (
    ROOT,
    TEMPLATE,
    api_client,
    api_function,
    command_line,
    median,
    table,
    write_results,
)

# Public us-east-1 on-demand prices, in USD. As of 2024-11 (DynamoDB's on-demand price cut of
# 1 Nov 2024 included); taken from the pages named in "sources", not re-checked from this machine
# (it has no network). Verify before relying on them.
PRICES: dict[str, Any] = {
    "as_of": "2024-11 (verify before relying)",
    "region": "us-east-1",
    "step_functions_standard_per_state_transition": 0.025 / 1_000,
    "lambda_per_request": 0.20 / 1_000_000,
    "lambda_per_gb_second_arm64": 0.0000133334,
    "dynamodb_on_demand_per_write_request_unit": 0.625 / 1_000_000,
    "dynamodb_on_demand_per_read_request_unit": 0.125 / 1_000_000,
    "eventbridge_per_custom_event": 1.00 / 1_000_000,
    "http_api_per_request": 1.00 / 1_000_000,
    # WebSocket APIs: messages (sent and received) metered in 32 KB units, and connection minutes.
    "websocket_per_message": 1.00 / 1_000_000,
    "websocket_per_connection_minute": 0.25 / 1_000_000,
    "sources": [
        "AWS Step Functions Pricing (aws.amazon.com/step-functions/pricing)",
        "AWS Lambda Pricing (aws.amazon.com/lambda/pricing)",
        "Amazon DynamoDB Pricing for On-Demand Capacity (aws.amazon.com/dynamodb/pricing/on-demand)",
        "Amazon EventBridge Pricing (aws.amazon.com/eventbridge/pricing)",
        "Amazon API Gateway Pricing (aws.amazon.com/api-gateway/pricing)",
    ],
}

# The push channel's audience (README "Push channel") and how long its screens stay connected.
PUSH_AUDIENCE = {"customer": 1, "barista": 3, "display": 2}
CUSTOMER_MINUTES = 10  # the customer's screen, from placing the order until the drink is handed over
ORDERS_PER_HOUR = 60  # a busy bar: the staff screens' connection minutes are shared by this many orders
STAFF_SCREENS = PUSH_AUDIENCE["barista"] + PUSH_AUDIENCE["display"]
PUSH_CONNECTION_MINUTES = CUSTOMER_MINUTES + STAFF_SCREENS * 60 / ORDERS_PER_HOUR
# The customer's $connect (PutItem: table + ByAudience + ByCustomer entries) and $disconnect (their deletes).
PUSH_CONNECT_INVOCATIONS = 2
PUSH_CONNECT_WRU = 3 + 3
PUSH_CONNECT_SECONDS = 0.03  # warm $connect / $disconnect on AWS, 256 MB (not measured here)

# The original Serverlesspresso, for comparison: 9 transitions in its order processor and 7 + 6 + 6 in
# its order-manager workflow (submit, make, complete), 3 Lambda invocations besides real-time publishing.
REFERENCE = {"transitions": 9 + 7 + 6 + 6, "lambda_invocations": 3}
TARGET_TRANSITIONS = 8

# A real task token is ~1 KB of base64 (events/workflow_started.json holds one of that shape); moto's
# are shorter, so a stored token is counted at this length when item sizes are computed.
REAL_TOKEN_CHARS = len(
    json.loads((ROOT / "events" / "workflow_started.json").read_text(encoding="utf-8"))["detail"]["TaskToken"]
)
TOKEN_ATTRIBUTE = "taskToken"

WRITES = {"PutItem", "UpdateItem", "DeleteItem"}
READS = {"GetItem", "Query", "Scan"}


# ------------------------------------------------------------------------------------- item sizes
def attribute_size(value: Mapping[str, Any]) -> int:
    """Bytes of one DynamoDB attribute value (low-level JSON), by DynamoDB's item size rules."""
    (kind, inner), *_ = value.items()
    if kind == "S":
        return len(str(inner).encode())
    if kind == "N":
        digits = str(inner).lstrip("-").replace(".", "").strip("0") or "0"
        return math.ceil(len(digits) / 2) + 1
    if kind == "B":
        return len(inner)
    if kind in ("BOOL", "NULL"):
        return 1
    if kind in ("SS", "NS", "BS"):
        return sum(attribute_size({kind[0]: element}) for element in inner)
    if kind == "L":
        return 3 + sum(1 + attribute_size(element) for element in inner)
    if kind == "M":
        return 3 + sum(1 + len(name.encode()) + attribute_size(element) for name, element in inner.items())
    raise ValueError(f"unknown attribute type {kind}")


def item_size(item: Mapping[str, Any] | None) -> int:
    """Bytes of an item; 0 when there is none. A stored task token counts at a real token's length."""
    if not item:
        return 0
    size = 0
    for name, value in item.items():
        length = attribute_size(value)
        if name == TOKEN_ATTRIBUTE and "S" in value:
            length = max(length, REAL_TOKEN_CHARS)
        size += len(name.encode()) + length
    return size


def write_units(size: int) -> int:
    """WRUs of a write of `size` bytes: one per KB, at least one."""
    return max(1, math.ceil(size / 1024))


def read_units(size: int, consistent: bool) -> float:
    """RRUs of a read of `size` bytes: one per 4 KB (at least one), halved when eventually consistent."""
    units = max(1, math.ceil(size / 4096))
    return float(units) if consistent else units / 2


# ------------------------------------------------------------------------------------------ metering
@dataclass
class Usage:
    """What one order used, by actor (a function, the workflow) and by item."""

    calls: Counter[tuple[str, str, str]] = field(default_factory=Counter)  # (actor, service, operation)
    rru: defaultdict[str, float] = field(default_factory=lambda: defaultdict(float))  # by actor
    wru_table: Counter[str] = field(default_factory=Counter)
    wru_index: Counter[str] = field(default_factory=Counter)
    events: Counter[str] = field(default_factory=Counter)  # PutEvents entries by actor
    invocations: Counter[str] = field(default_factory=Counter)  # by function
    durations: defaultdict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    largest_order_item: int = 0


class Meter:
    """botocore hooks on the default boto3 session: every client the handlers, the API and moto's ASL
    interpreter create from it reports its calls here. The engine's own clients come from another
    session and are never counted (they stand in for AWS itself: polling, history, StartExecution).
    """

    WORKFLOW = "workflow"

    def __init__(self, reader: Any, orders_table: str) -> None:
        self._reader = reader  # an uncounted client, to look at items before and after each write
        self._orders_table = orders_table
        self._local = threading.local()
        self._lock = threading.Lock()
        self._indexes: dict[str, list[IndexDefinition]] = {}
        self.usage = Usage()

    def install(self, session: Any) -> None:
        """Register the hooks on a boto3 session (before its clients are created)."""
        session.events.register("before-parameter-build", self._remember)
        session.events.register("before-call", self._before)
        session.events.register("after-call", self._after)

    @contextlib.contextmanager
    def acting_as(self, actor: str) -> Iterator[None]:
        """Attribute this thread's calls to `actor` (a function's logical id) for the duration."""
        previous = getattr(self._local, "actor", None)
        self._local.actor = actor
        try:
            yield
        finally:
            self._local.actor = previous

    def reset(self) -> Usage:
        """Start counting a new order; return what was counted since the last reset."""
        with self._lock:
            usage, self.usage = self.usage, Usage()
        return usage

    # -------------------------------------------------------------------------------- hooks
    def _actor(self, request_signer: Any) -> str | None:
        # moto's ASL interpreter signs with its own dummy key "ak" (moto/.../asl/utils/boto_client.py).
        credentials = getattr(request_signer, "_credentials", None)
        if getattr(credentials, "access_key", None) == "ak":
            return self.WORKFLOW
        actor: str | None = getattr(self._local, "actor", None)
        return actor

    def _remember(self, params: dict[str, Any], context: dict[str, Any], **kwargs: Any) -> None:
        # before-parameter-build sees the API parameters; before-call only the serialized request.
        context["bench_params"] = {k: params[k] for k in ("TableName", "Key") if k in params}
        context["bench_consistent"] = bool(params.get("ConsistentRead"))
        context["bench_entries"] = len(params.get("Entries", []))

    def _before(self, model: Any, context: dict[str, Any], **kwargs: Any) -> None:
        actor = self._actor(kwargs.get("request_signer"))
        context["bench_actor"] = actor
        if actor is None:
            return
        service, operation = model.service_model.service_name, model.name
        with self._lock:
            self.usage.calls[(actor, service, operation)] += 1
            if service == "events" and operation == "PutEvents":
                self.usage.events[actor] += context.get("bench_entries", 0)
        if service == "dynamodb" and operation in WRITES:
            context["bench_before"] = self._item(context.get("bench_params") or {})

    def _after(self, model: Any, parsed: dict[str, Any], context: dict[str, Any], **kwargs: Any) -> None:
        actor = context.get("bench_actor")
        service, operation = model.service_model.service_name, model.name
        if actor is None or service != "dynamodb":
            return
        params = context.get("bench_params") or {}
        if operation in WRITES:
            self._count_write(actor, context, parsed)
        elif operation == "GetItem":
            size = item_size(parsed.get("Item"))
            self._note_order(params, size)
            with self._lock:
                self.usage.rru[actor] += read_units(size, bool(context.get("bench_consistent")))
        elif operation in ("Query", "Scan"):
            scanned = int(parsed.get("ScannedCount", parsed.get("Count", 0)))
            size = scanned * max(self.usage.largest_order_item, 1)
            with self._lock:
                self.usage.rru[actor] += read_units(size, bool(context.get("bench_consistent")))

    def _count_write(self, actor: str, context: dict[str, Any], parsed: dict[str, Any]) -> None:
        before_key = context.get("bench_before")
        if before_key is None:
            return
        table, key, old = before_key
        new = self._reader.get_item(TableName=table, Key=key, ConsistentRead=True).get("Item")
        refused = "Error" in parsed
        old_size, new_size = item_size(old), item_size(new)
        if table == self._orders_table:
            self.usage.largest_order_item = max(self.usage.largest_order_item, old_size, new_size)
        index_units = 0 if refused else self._index_units(table, old, new)
        with self._lock:
            self.usage.wru_table[actor] += write_units(old_size if refused else max(old_size, new_size))
            self.usage.wru_index[actor] += index_units

    def _item(self, params: Mapping[str, Any]) -> tuple[str, Any, Any] | None:
        if "TableName" not in params or "Key" not in params:
            return None
        table, key = params["TableName"], params["Key"]
        return table, key, self._reader.get_item(TableName=table, Key=key, ConsistentRead=True).get("Item")

    def _note_order(self, params: Mapping[str, Any], size: int) -> None:
        if params.get("TableName") == self._orders_table:
            self.usage.largest_order_item = max(self.usage.largest_order_item, size)

    def _index_units(self, table: str, old: Any, new: Any) -> int:
        """WRUs the write costs in the table's global secondary indexes, by their projections.

        An item is in an index when it has the index's key attributes. An entry is written when the
        item enters or leaves the index, when its index key changes (delete + put), or when a projected
        attribute changes; a write that changes only attributes the index does not project costs it
        nothing. An entry's size is that of the attributes it projects.
        """
        units = 0
        for index in self._index_definitions(table):
            names = index.key_names
            in_old = bool(old) and all(name in old for name in names)
            in_new = bool(new) and all(name in new for name in names)
            old_entry, new_entry = index.entry(old), index.entry(new)
            if in_old and in_new:
                if any(old[name] != new[name] for name in names):  # key moved: delete + put
                    units += write_units(item_size(old_entry)) + write_units(item_size(new_entry))
                elif old_entry != new_entry:
                    units += write_units(max(item_size(old_entry), item_size(new_entry)))
            elif in_new:
                units += write_units(item_size(new_entry))
            elif in_old:
                units += write_units(item_size(old_entry))
        return units

    def _index_definitions(self, table: str) -> list[IndexDefinition]:
        if table not in self._indexes:
            description = self._reader.describe_table(TableName=table)["Table"]
            table_keys = tuple(part["AttributeName"] for part in description["KeySchema"])
            self._indexes[table] = [
                IndexDefinition.from_description(index, table_keys)
                for index in description.get("GlobalSecondaryIndexes", [])
            ]
        return self._indexes[table]


@dataclass(frozen=True)
class IndexDefinition:
    """A global secondary index: its key attributes and what it projects (None: every attribute)."""

    key_names: tuple[str, ...]
    projected: frozenset[str] | None

    @classmethod
    def from_description(cls, index: Mapping[str, Any], table_keys: tuple[str, ...]) -> IndexDefinition:
        """From DescribeTable's GlobalSecondaryIndexes entry; the table's key is always projected."""
        key_names = tuple(part["AttributeName"] for part in index["KeySchema"])
        projection = index.get("Projection", {})
        kind = projection.get("ProjectionType", "ALL")
        if kind == "ALL":
            return cls(key_names, None)
        included = projection.get("NonKeyAttributes", []) if kind == "INCLUDE" else []
        return cls(key_names, frozenset((*key_names, *table_keys, *included)))

    def entry(self, item: Any) -> Any:
        """The index entry for a stored item (its projected attributes)."""
        if not item or self.projected is None:
            return item
        return {name: value for name, value in item.items() if name in self.projected}


class MeteredFunction:
    """Wraps a LocalFunction: its calls are attributed to it; invocations and durations are counted."""

    def __init__(self, function: Any, logical_id: str, meter: Meter) -> None:
        self._function = function
        self._logical_id = logical_id
        self._meter = meter
        self._warm = False
        self.spec = function.spec

    def invoke(self, event: Any) -> Any:
        """Invoke the wrapped function with its calls attributed to it."""
        started = time.perf_counter()
        try:
            with self._meter.acting_as(self._logical_id):
                return self._function.invoke(event)
        finally:
            elapsed = time.perf_counter() - started
            usage = self._meter.usage
            usage.invocations[self._logical_id] += 1
            if self._warm:  # the first invocation is a cold start: bench/cold_start.py measures those
                usage.durations[self._logical_id].append(elapsed)
            self._warm = True

    def unload(self) -> None:
        """As LocalFunction.unload (the engine calls it on close)."""
        self._function.unload()


# --------------------------------------------------------------------------------------------- paths
class ExecutionFailed(Exception):
    """The order's execution failed (the local engine's fault, not the path's): the order is re-run."""


ATTEMPTS = 3  # runs of one path's order before a failing execution fails the bench


@dataclass
class Stack:
    """The local engine with metered functions and the API driver."""

    engine: Any
    meter: Meter
    api: Any
    api_id: str  # the API function's logical id
    customer: Any  # tests/unit/api/conftest.py User
    barista: Any

    def order(self, order_id: str) -> dict[str, Any]:
        """The order item as stored (read with the engine's uncounted client)."""
        from serverlesspresso.orders import from_item

        item = (
            self.engine.clients["dynamodb"]
            .get_item(
                TableName=self.engine.table_names["OrdersTable"],
                Key={"orderId": {"S": order_id}},
                ConsistentRead=True,
            )
            .get("Item")
        )
        return from_item(item) if item else {}

    def wait_state(self, order_id: str, *states: str, timeout: float = 60) -> str:
        """Wait until the order is in one of `states` (moved there by the handlers); return it.

        ExecutionFailed at once if the order's execution failed instead.
        """

        def reached() -> str | None:
            state = self.order(order_id).get("state")
            if state in states:
                return str(state)
            for execution in self.engine.executions_for_order(order_id):
                if execution["status"] == "FAILED":
                    history = self.engine.history(execution["executionArn"])
                    causes = [e["taskFailedEventDetails"] for e in history if e["type"] == "TaskFailed"]
                    raise ExecutionFailed(f"order {order_id}: execution failed after {causes}")
            return None

        found: str = self.engine.wait_for(reached, timeout, f"order {order_id} in {states}")
        return found

    def expect(self, response: Any, status: int) -> Any:
        """The API answered with `status` (a bench driving a broken API would count nonsense)."""
        if response.status != status:
            raise RuntimeError(f"API answered {response.status}, expected {status}: {response.body}")
        return response.body

    def place(self) -> str:
        """POST /orders as a new customer (so no open-order limit applies); returns the order id."""
        self.customer = self.customer.renamed(f"customer-{uuid.uuid4().hex[:8]}", str(uuid.uuid4()))
        order_id: str = self.expect(self.api.place(self.customer), 202)["orderId"]
        return order_id

    def submit(self, order_id: str) -> None:
        """PUT /orders/{id} once the customer's wait is stored."""
        self.wait_state(order_id, "WAITING_FOR_CUSTOMER")
        self.expect(self.api.submit(order_id, self.customer), 200)

    def make(self, order_id: str) -> None:
        """POST /orders/{id}/make once the order is in the barista queue."""
        self.wait_state(order_id, "WAITING_FOR_BARISTA")
        self.expect(self.api.make(order_id, self.barista), 200)


Path_ = Callable[[Stack], tuple[str, int]]  # drives one order; returns (order id, API requests sent)


def completed(stack: Stack) -> tuple[str, int]:
    """Place, submit, make, complete."""
    order_id = stack.place()
    stack.submit(order_id)
    stack.make(order_id)
    stack.expect(stack.api.complete(order_id, stack.barista), 200)
    return order_id, 4


def customer_timeout(stack: Stack) -> tuple[str, int]:
    """Place, then the customer never submits."""
    return stack.place(), 1


def barista_timeout(stack: Stack) -> tuple[str, int]:
    """Place, submit, then no barista ever completes it."""
    order_id = stack.place()
    stack.submit(order_id)
    return order_id, 2


def customer_cancel(stack: Stack) -> tuple[str, int]:
    """Place, submit, then the customer cancels while it waits in the barista queue."""
    order_id = stack.place()
    stack.submit(order_id)
    stack.wait_state(order_id, "WAITING_FOR_BARISTA")
    stack.expect(stack.api.cancel_own(order_id, stack.customer), 200)
    return order_id, 3


def barista_cancel(stack: Stack) -> tuple[str, int]:
    """Place, submit, make, then the barista cancels (out of milk)."""
    order_id = stack.place()
    stack.submit(order_id)
    stack.make(order_id)
    stack.expect(stack.api.cancel(order_id, stack.barista, reason="out of milk"), 200)
    return order_id, 4


def rejected(stack: Stack) -> tuple[str, int]:
    """Place while the shop is closed (the barista closed it beforehand, not counted)."""
    return stack.place(), 1


PATHS: dict[str, tuple[Path_, str]] = {
    "completed": (completed, "COMPLETED"),
    "customer timeout": (customer_timeout, "TIMED_OUT"),
    "barista timeout": (barista_timeout, "TIMED_OUT"),
    "customer cancel": (customer_cancel, "CANCELLED"),
    "barista cancel": (barista_cancel, "CANCELLED"),
    "rejected (closed)": (rejected, "REJECTED"),
}


# -------------------------------------------------------------------------------------------- running
def run_order(stack: Stack, name: str) -> dict[str, Any]:
    """Run one order along a path; return its counts."""
    drive, final_state = PATHS[name]
    engine = stack.engine
    closing = name.startswith("rejected")
    if closing:
        stack.expect(stack.api.put_config(stack.barista, isOpen=False), 200)
    try:
        quiesce(engine)
        stack.meter.reset()
        delivered_before = len(engine.delivered)
        order_id, api_requests = drive(stack)
        stack.wait_state(order_id, final_state)
        execution = engine.executions_for_order(order_id)[0]["executionArn"]
        engine.wait_for_execution(execution, timeout=120)
        quiesce(engine)
        usage = stack.meter.reset()
    finally:
        if closing:
            stack.expect(stack.api.put_config(stack.barista, isOpen=True), 200)
    history = engine.history(execution)
    deliveries = [d for d in engine.delivered[delivered_before:] if d.target in engine.functions]
    return summarize_order(usage, history, deliveries, stack.api_id, api_requests)


def quiesce(engine: Any, quiet: float = 0.5, timeout: float = 30) -> None:
    """Wait until the dispatcher has delivered nothing for `quiet` seconds (the last order is done)."""
    deadline = time.monotonic() + timeout
    seen, since = len(engine.delivered), time.monotonic()
    while time.monotonic() - since < quiet:
        if time.monotonic() > deadline:
            raise TimeoutError("the dispatcher kept delivering")
        time.sleep(0.05)
        if len(engine.delivered) != seen:
            seen, since = len(engine.delivered), time.monotonic()


def summarize_order(
    usage: Usage, history: list[dict[str, Any]], deliveries: list[Any], api_id: str, api_requests: int
) -> dict[str, Any]:
    """The counts of one order, checked against the engine's own records."""
    delivered = Counter(d.target for d in deliveries)
    invoked = {name: n for name, n in usage.invocations.items() if name != api_id}
    if invoked != dict(delivered):
        raise RuntimeError(
            f"metered invocations {invoked} differ from the dispatcher's deliveries {delivered}"
        )
    if usage.invocations.get(api_id, 0) != api_requests:
        raise RuntimeError(f"{usage.invocations.get(api_id)} API invocations for {api_requests} requests")
    workflow_tasks = Counter(
        e["taskScheduledEventDetails"]["resource"] for e in history if e["type"] == "TaskScheduled"
    )
    metered_workflow = sum(n for (actor, _, _), n in usage.calls.items() if actor == Meter.WORKFLOW)
    if metered_workflow != sum(workflow_tasks.values()):
        raise RuntimeError(
            f"the workflow's calls were not all metered: {usage.calls} vs history {workflow_tasks}"
        )
    invocations = dict(usage.invocations)
    calls = usage.calls.items()
    return {
        "state_transitions": sum(1 for e in history if e["type"].endswith("StateEntered")),
        "states": [e["stateEnteredEventDetails"]["name"] for e in history if "stateEnteredEventDetails" in e],
        "lambda_invocations": invocations,
        "calls": {f"{actor}:{service}:{operation}": n for (actor, service, operation), n in sorted(calls)},
        "rru": sum(usage.rru.values()),
        "wru_table": sum(usage.wru_table.values()),
        "wru_index": sum(usage.wru_index.values()),
        "events": sum(usage.events.values()),
        "api_requests": api_requests,
        "push_messages": sum(n for (_, _, operation), n in calls if operation == "PostToConnection"),
        "push_connection_minutes": PUSH_CONNECTION_MINUTES,
        "durations_s": {name: times for name, times in usage.durations.items()},
        "largest_order_item_bytes": usage.largest_order_item,
    }  # fmt: skip


# ------------------------------------------------------------------------------------------- pricing
def price(
    order: Mapping[str, Any], memory_mb: Mapping[str, int], duration_s: Mapping[str, float]
) -> dict[str, float]:
    """USD per order, by service."""
    invocations: Mapping[str, int] = order["lambda_invocations"]
    gb_seconds = sum(
        n * memory_mb[name] / 1024 * math.ceil(duration_s.get(name, 0) * 1000) / 1000  # billed per ms
        for name, n in invocations.items()
    )
    return {
        "step_functions": order["state_transitions"] * PRICES["step_functions_standard_per_state_transition"],
        "lambda": sum(invocations.values()) * PRICES["lambda_per_request"]
        + gb_seconds * PRICES["lambda_per_gb_second_arm64"],
        "dynamodb": (order["wru_table"] + order["wru_index"])
        * PRICES["dynamodb_on_demand_per_write_request_unit"]
        + order["rru"] * PRICES["dynamodb_on_demand_per_read_request_unit"],
        "eventbridge": order["events"] * PRICES["eventbridge_per_custom_event"],
        "api_gateway": order["api_requests"] * PRICES["http_api_per_request"],
        "push": order["push_messages"] * PRICES["websocket_per_message"]
        + order["push_connection_minutes"] * PRICES["websocket_per_connection_minute"]
        + PUSH_CONNECT_INVOCATIONS
        * (PRICES["lambda_per_request"] + 0.25 * PUSH_CONNECT_SECONDS * PRICES["lambda_per_gb_second_arm64"])
        + PUSH_CONNECT_WRU * PRICES["dynamodb_on_demand_per_write_request_unit"],
    }


def median_order(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The median of each count over the runs (they are normally equal), with the first run's details."""
    summary = dict(runs[0])
    for key in (
        "state_transitions",
        "rru",
        "wru_table",
        "wru_index",
        "events",
        "api_requests",
        "push_messages",
        "largest_order_item_bytes",
    ):
        summary[key] = median(run[key] for run in runs)
    names = {name for run in runs for name in run["lambda_invocations"]}
    summary["lambda_invocations"] = {
        name: median(run["lambda_invocations"].get(name, 0) for run in runs) for name in sorted(names)
    }
    summary["runs_differ"] = any(
        run[key] != runs[0][key]
        for run in runs
        for key in ("state_transitions", "rru", "wru_table", "wru_index")
    )
    return summary  # fmt: skip


# ---------------------------------------------------------------------------------------------- main
@dataclass
class Measured:
    """Every order's counts by path, and what pricing them needs."""

    results: dict[str, list[dict[str, Any]]]
    memory_mb: dict[str, int]  # each function's MemorySize
    api_id: str  # the API function's logical id
    rerun: list[str]  # orders whose execution failed and were run again, and why


def main() -> None:
    """Run every path, print the tables, write bench/results/cost.json."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="orders per path (the median is reported)")
    parser.add_argument(
        "--time-scale",
        type=float,
        default=0.004,
        help="heartbeats x this (0.004: 300 s -> 2 s, 900 s -> 4 s)",
    )
    args = parser.parse_args()
    with contextlib.redirect_stdout(io.StringIO()):  # the handlers log and print metrics on stdout
        measured = measure(args.runs, args.time_scale)
    report(measured, args)


def measure(runs: int, time_scale: float) -> Measured:
    """Every path `runs` times, one order at a time."""
    import boto3
    from moto import mock_aws

    from local.engine import MOCK_CONFIG, LocalEngine
    from tests.least_privilege import threads_inherit
    from tests.unit.api.conftest import ALICE, BOB

    results: dict[str, list[dict[str, Any]]] = {name: [] for name in PATHS}
    rerun: list[str] = []
    with mock_aws(config=MOCK_CONFIG), contextlib.ExitStack() as stack_exit:
        engine = LocalEngine.provision(TEMPLATE, time_scale)
        # mock_aws resets boto3's default session; the one made here is what every handler, the API
        # and moto's ASL interpreter create their clients from, so the hooks see all their calls.
        boto3.setup_default_session()
        meter = Meter(engine.clients["dynamodb"], engine.table_names["OrdersTable"])
        meter.install(boto3.DEFAULT_SESSION)
        # The push fan-out posts from a thread pool: its calls are still the function's.
        stack_exit.enter_context(threads_inherit(meter._local, "actor"))
        api = api_function(engine)
        if api is None:
            raise SystemExit("functions/api/app.py is missing: this bench drives orders through the API")
        functions: dict[str, Any] = engine.functions  # a function may be any object with invoke(event)
        functions.setdefault(api.spec.logical_id, api)  # metered (and unloaded) with the others
        for logical_id, function in list(functions.items()):
            functions[logical_id] = MeteredFunction(function, logical_id, meter)
        api_id = api.spec.logical_id
        stack = Stack(engine, meter, api_client(functions[api_id]), api_id, ALICE, BOB)
        connect_audience(engine, customer_sub=ALICE.sub)
        memory = {logical_id: function.spec.memory_mb for logical_id, function in functions.items()}
        engine.dispatcher.start()
        try:
            for run in range(runs):
                for name in PATHS:
                    results[name].append(run_with_retries(stack, name, rerun))
                print(f"  run {run + 1}/{runs} done", file=sys.stderr, flush=True)
        finally:
            engine.close()
    return Measured(results, memory, api_id, rerun)


def connect_audience(engine: Any, customer_sub: str) -> None:
    """Store the push channel's connections (PUSH_AUDIENCE) as $connect would; the customer's is ALICE's."""
    from serverlesspresso.connections import Audience, ConnectionStore

    store = ConnectionStore(engine.table_names["ConnectionsTable"], engine.clients["dynamodb"])
    for audience, count in PUSH_AUDIENCE.items():
        for number in range(count):
            store.add(f"bench-{audience}-{number}", Audience(audience), customer_sub)


def run_with_retries(stack: Stack, name: str, rerun: list[str]) -> dict[str, Any]:
    """run_order, again (up to ATTEMPTS) when the local engine failed the order's execution."""
    for attempt in range(1, ATTEMPTS + 1):
        try:
            return run_order(stack, name)
        except ExecutionFailed as failed:
            print(f"  {name}: {failed}; running it again", file=sys.stderr, flush=True)
            rerun.append(str(failed))
            if attempt == ATTEMPTS:
                raise
    raise AssertionError("unreachable")


def report(measured: Measured, args: argparse.Namespace) -> None:
    """Print the counts and the prices per 1,000 orders; write the JSON."""
    durations: dict[str, list[float]] = defaultdict(list)
    for runs in measured.results.values():
        for run in runs:
            for name, times in run["durations_s"].items():
                durations[name].extend(times)
    duration = {name: median(times) for name, times in durations.items()}
    summaries = {name: median_order(runs) for name, runs in measured.results.items()}
    prices = {name: price(summary, measured.memory_mb, duration) for name, summary in summaries.items()}
    for name, summary in summaries.items():
        summary["usd_per_1000_orders"] = sum(prices[name].values()) * 1000
        summary["usd_per_order_by_service"] = prices[name]
    reference_usd = (
        REFERENCE["transitions"] * PRICES["step_functions_standard_per_state_transition"]
        + REFERENCE["lambda_invocations"] * PRICES["lambda_per_request"]
    )

    print(f"\nCost per order by path (median of {args.runs} orders per path; local engine, moto)")
    rows = [_count_row(name, summary, measured.api_id) for name, summary in summaries.items()]
    rows.append(
        [
            "original Serverlesspresso, completed",
            REFERENCE["transitions"],
            f"{REFERENCE['lambda_invocations']} + ?",
        ]
        + ["?"] * 5
        + [f">= {reference_usd * 1000:.4f}"]
    )
    headers = ["path", "transitions", "Lambda (events + API)", "DDB RRU", "DDB WRU (table + GSI)", "events"]
    print(table([*headers, "API requests", "push messages", "$ / 1,000 orders"], rows))
    transitions = summaries["completed"]["state_transitions"]
    verdict = "met" if transitions <= TARGET_TRANSITIONS else "missed"
    print(
        f"Completed order: {transitions:g} state transitions (target <= {TARGET_TRANSITIONS}: {verdict}; "
        f"original: {REFERENCE['transitions']}); the original's row: transitions and Lambda requests only."
    )
    services = ["step_functions", "lambda", "dynamodb", "eventbridge", "api_gateway", "push"]
    print("\n$ per 1,000 orders by service")
    print(
        table(
            ["path", *services], [[n, *(f"{prices[n][s] * 1000:.4f}" for s in services)] for n in summaries]
        )
    )
    audience = " + ".join(f"{count} {name}" for name, count in PUSH_AUDIENCE.items())
    print(
        f"push: WebSocket messages to {audience} (the fan-out's PostToConnection calls), "
        f"{PUSH_CONNECTION_MINUTES:g} connection minutes per order (customer {CUSTOMER_MINUTES} min, "
        f"{STAFF_SCREENS} staff screens shared by {ORDERS_PER_HOUR} orders/h) and the customer's "
        f"$connect/$disconnect; the fan-out's invocations and reads are in lambda and dynamodb."
    )
    shown = ", ".join(f"{name} {seconds * 1000:.0f} ms" for name, seconds in sorted(duration.items()))
    print(f"Lambda GB-s: MemorySize x median warm duration here ({shown}; in-process moto, not AWS latency).")
    largest = max(summary["largest_order_item_bytes"] for summary in summaries.values())
    print(
        f"Prices: us-east-1 on-demand, as of {PRICES['as_of']}. Largest order item {largest:g} bytes "
        f"(task token counted at {REAL_TOKEN_CHARS} characters)."
    )
    if measured.rerun:
        print(f"Orders run again because the local engine failed their execution: {len(measured.rerun)}")
    path = write_results(
        "cost",
        command_line(),
        {
            "runs": args.runs,
            "time_scale": args.time_scale,
            "prices": PRICES,
            "reference_original": REFERENCE | {"usd_per_1000_orders_lower_bound": reference_usd * 1000},
            "target_transitions_completed": TARGET_TRANSITIONS,
            "push_model": {
                "audience": PUSH_AUDIENCE,
                "customer_minutes": CUSTOMER_MINUTES,
                "orders_per_hour": ORDERS_PER_HOUR,
                "connection_minutes_per_order": PUSH_CONNECTION_MINUTES,
                "connect_invocations_per_order": PUSH_CONNECT_INVOCATIONS,
                "connect_wru_per_order": PUSH_CONNECT_WRU,
            },
            "function_memory_mb": measured.memory_mb,
            "median_warm_duration_s": duration,
            "real_token_chars": REAL_TOKEN_CHARS,
            "orders_run_again": measured.rerun,
            "paths": summaries,
            "runs_detail": measured.results,
        },
    )
    print(f"\nwritten {path.relative_to(ROOT)}")


def _count_row(name: str, summary: Mapping[str, Any], api_id: str) -> list[Any]:
    lambdas = summary["lambda_invocations"]
    api_calls = lambdas.get(api_id, 0)
    return [
        name,
        f"{summary['state_transitions']:g}",
        f"{sum(lambdas.values()) - api_calls:g} + {api_calls:g}",
        f"{summary['rru']:g}",
        f"{summary['wru_table']:g} + {summary['wru_index']:g}",
        f"{summary['events']:g}",
        f"{summary['api_requests']:g}",
        f"{summary['push_messages']:g}",
        f"{summary['usd_per_1000_orders']:.4f}",
    ]


if __name__ == "__main__":
    main()
