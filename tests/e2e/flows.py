"""Driving and observing the application on the local engine, the way its users would.

Customers and baristas act through the domain functions the HTTP API calls (`serverlesspresso.resume`:
resume_order with SUBMIT_ORDER, COMPLETE_ORDER, CUSTOMER_CANCEL, BARISTA_CANCEL) with the engine's
clients; a new order is what `POST /orders` does: the order is written PLACED, then
`Validator.NewOrder` goes on the bus and the template's rule starts the workflow. Observations are
the order record, the shop's config item, the execution (status, the states it entered) and the
events that reached the bus.

Every wait polls until a deadline (generous: a busy CI machine is slow, the assertion is on the
outcome, never on how long it took).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from local.engine import LocalEngine
from local.provision import Route
from local.waiting import wait_until
from serverlesspresso.models import OrderState
from serverlesspresso.orders import OrderRepository, from_item, to_item
from serverlesspresso.resume import ResumeAction, resume_order
from tests.helpers import BARISTA_WAIT, CUSTOMER_WAIT, REPO_ROOT

T = TypeVar("T")

DEFAULT_TIMEOUT = 60.0
POLL_INTERVAL = 0.1
SHOP_KEY = {"configId": "shop"}
NEW_ORDER = "Validator.NewOrder"
ENDING_EVENTS = frozenset(
    {
        "OrderProcessor.orderFinished",
        "OrderProcessor.OrderTimeOut",
        "OrderProcessor.ShopUnavailable",
        "OrderProcessor.OrderCancelled",
    }
)

# The states an execution enters on each way through the workflow (README: a completed order enters 7).
ADMITTED = ["Shop open?", "Is capacity available?", CUSTOMER_WAIT]
SUBMITTED = [*ADMITTED, "Generate Order Number", BARISTA_WAIT]
COMPLETED_PATH = [*SUBMITTED, "Emit - Order finished", "Release capacity slot"]
CUSTOMER_TIMEOUT_PATH = [*ADMITTED, "Customer timedout", "Emit - Order timed out", "Release capacity slot"]
BARISTA_TIMEOUT_PATH = [*SUBMITTED, "Barista timedout", "Emit - Order timed out", "Release capacity slot"]
CANCELLED_AT_CUSTOMER_WAIT_PATH = [*ADMITTED, "Emit - Order cancelled", "Release capacity slot"]
CANCELLED_AT_BARISTA_WAIT_PATH = [*SUBMITTED, "Emit - Order cancelled", "Release capacity slot"]
REJECTED_CLOSED_PATH = [
    "Shop open?",
    "Is capacity available?",
    "Closed or full?",
    "Shop closed",
    "Emit - Shop unavailable",
]
REJECTED_FULL_PATH = [*REJECTED_CLOSED_PATH[:3], "Shop at capacity", "Emit - Shop unavailable"]


def wait_for(
    predicate: Callable[[], T | None],
    what: str,
    timeout: float = DEFAULT_TIMEOUT,
    interval: float = POLL_INTERVAL,
) -> T:
    """local.waiting.wait_until with the end-to-end tests' timeout and interval."""
    return wait_until(predicate, what, timeout, interval)


def new_order_id(prefix: str = "order") -> str:
    """A fresh order id (the API uses UUIDs; a readable prefix helps when a test fails)."""
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


@dataclass
class Shop:
    """The application on one engine, as customers, baristas and an operator see it."""

    engine: LocalEngine
    poll_interval: float = POLL_INTERVAL
    orders: OrderRepository = field(init=False)

    def __post_init__(self) -> None:
        self.orders = OrderRepository(self.engine.table_names["OrdersTable"], self.engine.clients["dynamodb"])

    # ------------------------------------------------------------------------------ customers
    def place_order(self, order_id: str | None = None, user_id: str = "customer-1") -> str:
        """What POST /orders does: write the order PLACED, then publish Validator.NewOrder."""
        order_id = order_id or new_order_id()
        self.orders.create(order_id, user_id)
        self.engine.start_order(order_id, user_id)
        return order_id

    def act(self, order_id: str, action: ResumeAction, **options: Any) -> dict[str, Any]:
        """A customer or barista resumes the order's current wait (what the API's routes call)."""
        return resume_order(
            order_id, action, orders=self.orders, sfn=self.engine.clients["stepfunctions"], **options
        )

    def act_when(
        self, order_id: str, state: OrderState, action: ResumeAction, **options: Any
    ) -> dict[str, Any]:
        """Wait until the order is in `state` (its token is stored), then act on it."""
        self.wait_for_order(order_id, state)
        return self.act(order_id, action, **options)

    # ------------------------------------------------------------------------------- operator
    def configure(self, **values: Any) -> None:
        """Set fields of the shop's config item (what a barista's PUT /config does)."""
        names = {f"#f{i}": name for i, name in enumerate(values)}
        self.engine.clients["dynamodb"].update_item(
            TableName=self.engine.table_names["ConfigTable"],
            Key=to_item(SHOP_KEY),
            UpdateExpression="SET " + ", ".join(f"#f{i} = :v{i}" for i in range(len(values))),
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=to_item({f":v{i}": value for i, value in enumerate(values.values())}),
        )

    def shop_config(self) -> dict[str, Any]:
        """The shop's config item, as plain values."""
        item = self.engine.clients["dynamodb"].get_item(
            TableName=self.engine.table_names["ConfigTable"], Key=to_item(SHOP_KEY), ConsistentRead=True
        )["Item"]
        return from_item(item)

    def in_flight(self) -> set[str]:
        """The capacity slots taken now (execution names); an absent attribute is an empty set."""
        return set(self.shop_config().get("inFlight", set()))

    # --------------------------------------------------------------------------------- orders
    def order(self, order_id: str) -> dict[str, Any]:
        """The order record as stored (strongly consistent read); AssertionError if there is none."""
        found = self.orders.get(order_id)
        assert found is not None, f"order {order_id} does not exist"
        return found

    def wait_for_order(
        self, order_id: str, *states: OrderState, timeout: float = DEFAULT_TIMEOUT
    ) -> dict[str, Any]:
        """Wait until the order is in one of `states`; return the record."""
        wanted = {state.value for state in states}

        def reached() -> dict[str, Any] | None:
            order = self.orders.get(order_id)
            return order if order and order.get("state") in wanted else None

        return wait_for(reached, f"order {order_id} in {sorted(wanted)}", timeout, self.poll_interval)

    def wait_for_end(self, order_id: str, timeout: float = DEFAULT_TIMEOUT) -> dict[str, Any]:
        """Wait until the order is in a terminal state; return the record."""
        return self.wait_for_order(order_id, *(s for s in OrderState if s.is_terminal), timeout=timeout)

    # ----------------------------------------------------------------------------- executions
    def executions(self, order_id: str) -> list[str]:
        """ARNs of the executions started for the order, oldest first."""
        return [e["executionArn"] for e in reversed(self.engine.executions_for_order(order_id))]

    def execution(self, order_id: str, timeout: float = DEFAULT_TIMEOUT) -> str:
        """The order's only execution (waits until it exists; AssertionError if there are several)."""
        arns = wait_for(lambda: self.executions(order_id), f"execution of {order_id}", timeout)
        assert len(arns) == 1, f"order {order_id} has {len(arns)} executions"
        return arns[0]

    def finished(self, execution_arn: str, timeout: float = DEFAULT_TIMEOUT) -> dict[str, Any]:
        """Wait until the execution is no longer RUNNING; return DescribeExecution."""
        sfn = self.engine.clients["stepfunctions"]

        def ended() -> dict[str, Any] | None:
            described: dict[str, Any] = sfn.describe_execution(executionArn=execution_arn)
            return described if described["status"] != "RUNNING" else None

        return wait_for(ended, f"end of {execution_arn}", timeout, self.poll_interval)

    def path(self, execution_arn: str) -> list[str]:
        """The states the execution entered, in order."""
        return self.engine.state_path(execution_arn)

    def running(self) -> list[str]:
        """ARNs of the executions still running."""
        return [e["executionArn"] for e in self.engine.executions("RUNNING")]

    # --------------------------------------------------------------------------------- events
    def events(self, order_id: str | None = None, *detail_types: str) -> list[dict[str, Any]]:
        """Events that reached the bus so far (oldest first), for one order and of some types if given."""
        self.engine.dispatcher.collect_events()
        return [
            event
            for event in self.engine.events_seen
            if (order_id is None or event.get("detail", {}).get("orderId") == order_id)
            and (not detail_types or event.get("detail-type") in detail_types)
        ]

    def wait_for_event(self, order_id: str, detail_type: str, count: int = 1) -> list[dict[str, Any]]:
        """Wait until `count` events of the type reached the bus for the order; return them all."""
        return wait_for(
            lambda: found if len(found := self.events(order_id, detail_type)) >= count else None,
            f"{count} x {detail_type} for {order_id}",
        )

    def detail_types(self, order_id: str) -> list[str]:
        """The detail-types of the order's events, in arrival order."""
        return [event["detail-type"] for event in self.events(order_id)]

    def ending_event(self, order_id: str) -> dict[str, Any]:
        """The one event that ended the order's workflow (AssertionError unless there is exactly one)."""
        endings = self.events(order_id, *ENDING_EVENTS)
        assert len(endings) == 1, [event["detail-type"] for event in endings]
        return endings[0]

    def redeliver(self, event: Mapping[str, Any]) -> None:
        """EventBridge delivering `event` once more to every target of the rules it matched."""
        sqs = self.engine.clients["sqs"]
        for route in self.routes_that_received(event):
            sqs.send_message(QueueUrl=route.queue_url, MessageBody=json.dumps(event))

    def routes_that_received(self, event: Mapping[str, Any]) -> list[Route]:
        """The rule targets the dispatcher delivered this event to, or is delivering it to (by event id).

        Attempts begun count, not only those ended: a test that saw a handler's effect (an order
        moved) may look here before the dispatcher recorded that attempt's outcome.
        """
        started = self.engine.dispatcher.started
        targets = {(rule, target) for rule, target, event_id in started if event_id == event["id"]}
        return [
            route for route in self.engine.provisioned.routes if (route.rule_name, route.target) in targets
        ]

    def handlers_of(self, event: Mapping[str, Any]) -> list[str]:
        """Logical ids of the functions the event was delivered to."""
        return [route.target for route in self.routes_that_received(event) if route.target_kind == "function"]

    def invoke_again(self, event: Mapping[str, Any]) -> list[dict[str, str]]:
        """Invoke every function the event was delivered to once more with it; return their results."""
        handlers = self.handlers_of(event)
        assert handlers, f"{event['detail-type']} {event['id']} reached no function"
        return [self.engine.invoke(logical_id, dict(event)) for logical_id in handlers]

    # ---------------------------------------------------------------------------------- health
    def problems(self) -> list[str]:
        """Dead letters and dispatcher failures: there should be none."""
        dead = [f"dead letter: {d.rule} -> {d.target}: {d.error}" for d in self.engine.dead_letters]
        return dead + [f"dispatcher: {error}" for error in self.engine.dispatcher.errors]


def slot(execution_arn: str) -> str:
    """The capacity slot an execution takes: its name (the last part of its ARN)."""
    return execution_arn.rsplit(":", 1)[1]


def terminal_entries(order: Mapping[str, Any]) -> list[str]:
    """The terminal states in the order's timeline (exactly one for an order that ended once)."""
    return [entry["state"] for entry in order.get("timeline", []) if OrderState(entry["state"]).is_terminal]


def without_volatile(order: Mapping[str, Any], also: Iterable[str] = ()) -> dict[str, Any]:
    """The record without ids, timestamps and numbers that differ from one order to the next."""
    volatile = {"orderId", "userId", "executionArn", "createdAt", "updatedAt", "orderNumber", *also}
    kept = {key: value for key, value in order.items() if key not in volatile}
    kept["timeline"] = [entry["state"] for entry in order.get("timeline", [])]
    return kept


def run_make_module(module: str, *args: str, log_file: Path, timeout: float) -> str:
    """Run `python -m module args --log-file log_file` from the repository root, as its make target
    does; assert it exits 0 (else show what it printed) and return its standard output."""
    completed = subprocess.run(
        [sys.executable, "-m", module, *args, "--log-file", str(log_file)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert completed.returncode == 0, f"{completed.stdout}\n{completed.stderr}"
    return completed.stdout


def summary_line(pattern: re.Pattern[str], output: str) -> dict[str, str]:
    """The named groups of the first line of `output` that `pattern` matches; asserts there is one."""
    found = pattern.search(output)
    assert found, output
    return found.groupdict()
