"""A rush at the coffee bar: 50 orders in flight at once, every way an order can end, side by side.

One thread per order plays its customer and the barista who serves it. The 50 customers arrive within
five seconds, and no order ends before all 50 have asked for a slot: the shop takes 40 at a time, so
exactly 10 are turned away for capacity. Every customer has a plan by arrival (PLAN_BY_ARRIVAL): the
first 8 are left by their barista (barista timeout), the next 22 complete or are cancelled by their
customer or barista, the last 20 never answer (customer timeout) - of these, the 10 that ask last are
turned away (which ones exactly is up to the race; each order's expected end follows from whether it
got in).

Why that way round: a slot freed before the last order asked would let a 41st order in.
Customers who answer do so at once, but completing and cancelling wait until every order has asked
(meanwhile the order waits for its barista). A timeout frees its slot a heartbeat after its wait
began, so the timeouts go to the waits that begin first (the barista's, the long one) and last (the
customer's, the short one). That order also ends the test soonest.

The duration is printed (`-s`) and kept as the test's `duration_s` property: measured, never asserted.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import UTC

import pytest

from local.engine import LocalEngine
from serverlesspresso.models import OrderState
from serverlesspresso.resume import BARISTA_CANCEL, COMPLETE_ORDER, CUSTOMER_CANCEL, SUBMIT_ORDER
from tests.e2e.flows import (
    BARISTA_TIMEOUT_PATH,
    CANCELLED_AT_BARISTA_WAIT_PATH,
    COMPLETED_PATH,
    CUSTOMER_TIMEOUT_PATH,
    ENDING_EVENTS,
    REJECTED_FULL_PATH,
    Shop,
    terminal_entries,
    wait_for,
)

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

ORDERS = 50
MAX_IN_FLIGHT = 40
# What each customer does, by order of arrival (see the module docstring).
PLAN_BY_ARRIVAL = (
    ["barista timeout"] * 8
    + [("complete", "customer cancel", "barista cancel")[n % 3] for n in range(22)]
    + ["customer timeout"] * (ORDERS - 30)
)
# Moto needs a while for 50 orders: it parses the ASL for every execution (~0.2 s of CPU each), so
# admitting them all takes ~15 s here, and an event may reach its handler seconds after it was put.
# Every order change also runs the push fan-out (to the three screens tests/e2e/conftest.py connects),
# one more handler in the engine's one-at-a-time queue: admitting them all takes longer still.
# Heartbeats 300 s -> 24 s and 900 s -> 72 s keep every deadline above that with room to spare: a
# token is stored well inside the customer wait, no timeout frees a slot before the last order asked
# for one, and the orders that complete or are cancelled still wait for their barista when everyone
# has asked.
RUSH_TIME_SCALE = 0.08
POLL_INTERVAL = 0.5  # 50 threads polling: leave moto (and the GIL) to the workflow
# Customers arrive this far apart (all 50 within 5 s): 50 executions starting at the same instant
# starve the dispatcher thread of the GIL, and events reach handlers later still.
ARRIVAL_INTERVAL = 0.1


@dataclass(frozen=True)
class Outcome:
    """How an order ends: state, endReason, the states its execution enters, whether it gets a number."""

    state: str
    reason: str
    path: list[str]
    numbered: bool


PLANS: dict[str, Outcome] = {
    "complete": Outcome("COMPLETED", "completed", COMPLETED_PATH, True),
    "barista timeout": Outcome("TIMED_OUT", "Barista timedout", BARISTA_TIMEOUT_PATH, True),
    # before a barista starts (cancelling while the workflow waits for the customer: test_scenarios.py)
    "customer cancel": Outcome("CANCELLED", "CustomerCancelled", CANCELLED_AT_BARISTA_WAIT_PATH, True),
    "barista cancel": Outcome("CANCELLED", "BaristaCancelled", CANCELLED_AT_BARISTA_WAIT_PATH, True),
    "customer timeout": Outcome("TIMED_OUT", "Customer timedout", CUSTOMER_TIMEOUT_PATH, False),
    "turned away": Outcome("REJECTED", "shop capacity", REJECTED_FULL_PATH, False),
}
ANSWERING = frozenset(PLAN_BY_ARRIVAL) - {"customer timeout"}
ENDING_ACTIONS = {
    "complete": COMPLETE_ORDER,
    "customer cancel": CUSTOMER_CANCEL,
    "barista cancel": BARISTA_CANCEL,
}


@dataclass
class Rush:
    """What the 50 threads share: the shop, the barrier, and what became of each order."""

    shop: Shop
    everyone_asked: threading.Barrier = field(default_factory=lambda: threading.Barrier(ORDERS, timeout=120))
    admitted: dict[str, bool] = field(default_factory=dict)

    def play(self, order_id: str, plan: str, arrival: float) -> None:
        """One customer and the barista who serves them, in their own thread; they arrive at `arrival`."""
        shop = self.shop
        try:
            time.sleep(max(0.0, arrival - time.monotonic()))
            shop.place_order(order_id, user_id=f"customer-{order_id}")
            asked = shop.wait_for_order(order_id, OrderState.WAITING_FOR_CUSTOMER, OrderState.REJECTED)
            self.admitted[order_id] = admitted = asked["state"] == "WAITING_FOR_CUSTOMER"
            if admitted and plan in ANSWERING:
                shop.act(order_id, SUBMIT_ORDER)
            self.everyone_asked.wait()
        except BaseException:
            self.everyone_asked.abort()  # the others must not wait for this one
            raise
        if admitted and plan in ENDING_ACTIONS:
            shop.act_when(order_id, OrderState.WAITING_FOR_BARISTA, ENDING_ACTIONS[plan])
        shop.wait_for_end(order_id, timeout=120)


def test_fifty_orders_in_flight_at_once_each_end_once_and_leak_nothing(
    make_engine: Callable[..., AbstractContextManager[LocalEngine]],
    record_property: Callable[[str, object], None],
) -> None:
    with make_engine(time_scale=RUSH_TIME_SCALE) as engine:
        shop = Shop(engine, poll_interval=POLL_INTERVAL)
        # Given a shop that makes 40 orders at a time, and 50 customers with a plan each
        shop.configure(maxInFlight=MAX_IN_FLIGHT)
        plans = {f"rush-{n:02d}": plan for n, plan in enumerate(PLAN_BY_ARRIVAL)}
        order_ids = list(plans)
        rush = Rush(shop)
        started = time.monotonic()

        # When they all order at once, and those admitted follow their plan
        with ThreadPoolExecutor(max_workers=ORDERS) as pool:
            futures = [
                pool.submit(rush.play, oid, plan, started + n * ARRIVAL_INTERVAL)
                for n, (oid, plan) in enumerate(plans.items())
            ]
        # A thread that failed broke the barrier for the others: show its own error first
        failures = sorted(
            (error for future in futures if (error := future.exception()) is not None),
            key=lambda error: isinstance(error, threading.BrokenBarrierError),
        )
        if failures:
            raise failures[0]
        wait_for(lambda: not shop.running(), "every execution ended", timeout=120)
        duration = time.monotonic() - started
        record_property("duration_s", round(duration, 1))
        print(f"\n{ORDERS} orders in flight at once: {duration:.1f} s")

        # Then exactly the orders beyond capacity were turned away, and every way of ending occurred
        assert Counter(rush.admitted.values()) == {True: MAX_IN_FLIGHT, False: ORDERS - MAX_IN_FLIGHT}
        expected = {oid: PLANS[plan if rush.admitted[oid] else "turned away"] for oid, plan in plans.items()}
        assert {outcome.reason for outcome in expected.values()} == {
            outcome.reason for outcome in PLANS.values()
        }
        # And every order ended in the one terminal state its plan leads to, once
        orders = {order_id: shop.order(order_id) for order_id in order_ids}
        assert {oid: (o["state"], o["endReason"]) for oid, o in orders.items()} == {
            oid: (outcome.state, outcome.reason) for oid, outcome in expected.items()
        }
        assert {oid: terminal_entries(o) for oid, o in orders.items()} == {
            oid: [outcome.state] for oid, outcome in expected.items()
        }
        assert {oid: len(shop.events(oid, *ENDING_EVENTS)) for oid in order_ids} == dict.fromkeys(
            order_ids, 1
        )
        # And each went through the states of its way, in its own single execution, which succeeded
        executions = {oid: shop.executions(oid) for oid in order_ids}
        assert {oid: len(arns) for oid, arns in executions.items()} == dict.fromkeys(order_ids, 1)
        assert {oid: shop.path(arns[0]) for oid, arns in executions.items()} == {
            oid: outcome.path for oid, outcome in expected.items()
        }
        assert {e["status"] for e in engine.executions()} == {"SUCCEEDED"}
        # And order numbers were given only to submitted orders, each a different one (per day: the
        # counter restarts daily)
        day = {e["executionArn"]: e["startDate"].astimezone(UTC).date() for e in engine.executions()}
        numbered = {
            oid: (day[executions[oid][0]], o["orderNumber"])
            for oid, o in orders.items()
            if "orderNumber" in o
        }
        assert set(numbered) == {oid for oid, outcome in expected.items() if outcome.numbered}
        assert len(set(numbered.values())) == len(numbered)
        # And no capacity slot is left taken, nothing was dead-lettered
        assert shop.in_flight() == set()
        assert shop.problems() == []
