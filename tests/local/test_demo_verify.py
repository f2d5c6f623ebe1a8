"""The demo's own correctness check (local/demo.py `verify`): it must notice every way a run goes wrong.

`make demo` exits 0 only when `verify` finds nothing, so each test breaks one fact of an otherwise
consistent observation (what the orders table, the executions and the dispatcher showed) and expects
the problem to be named.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from local.demo import Customer, Observed, Persona, Placement, verify

FINISHED_PATH = [
    "Shop open?",
    "Is capacity available?",
    "Emit - Workflow Started TT",
    "Generate Order Number",
    "Emit - Awaiting Completion TT",
    "Emit - Order finished",
    "Release capacity slot",
]
REJECTED_PATH = ["Shop open?", "Is capacity available?", "Closed or full?", "Shop at capacity",
                 "Emit - Shop unavailable"]  # fmt: skip


def order(order_id: str, *states: str, **fields: Any) -> dict[str, Any]:
    """An orders-table item (as the demo reads it) that went through `states`, one second apart."""
    timeline = [{"state": state, "at": f"2026-11-29T10:00:{i:02d}.000Z"} for i, state in enumerate(states)]
    return {"orderId": order_id, "state": states[-1], "timeline": timeline, **fields}


def consistent() -> Observed:
    """Two customers: one order completed, one rejected (shop full), everything in order."""
    customers = [
        Customer("Ana", "customer-001", Persona.REGULAR, 0.0),
        Customer("Ben", "customer-002", Persona.REGULAR, 1.0),
    ]
    return Observed(
        placements={
            "o1": Placement("o1", customers[0], "Latte", 0.0),
            "o2": Placement("o2", customers[1], "Mocha", 1.0),
        },
        orders={
            "o1": order(
                "o1",
                "PLACED",
                "WAITING_FOR_CUSTOMER",
                "SUBMITTED",
                "WAITING_FOR_BARISTA",
                "COMPLETING",
                "COMPLETED",
                endReason="completed",
            ),
            "o2": order("o2", "PLACED", "REJECTED", endReason="shop capacity"),
        },
        executions={"o1": [("SUCCEEDED", FINISHED_PATH)], "o2": [("SUCCEEDED", REJECTED_PATH)]},
        running_executions=[],
        in_flight=[],
        dead_letters=[],
        dispatcher_errors=[],
        refused=[],
        server_errors=[],
        actor_errors=[],
    )


def test_a_consistent_run_has_no_problems() -> None:
    assert verify(consistent(), customers=2) == []


Breakage = Callable[[Observed], object]  # the result (e.g. of dict.pop) is ignored


def _set(name: str, value: Any) -> Breakage:
    return lambda observed: setattr(observed, name, value)


BREAKAGES: dict[str, tuple[Breakage, str]] = {
    "order missing from the table": (lambda o: o.orders.pop("o1"), "order o1: lost"),
    "order never ended": (
        lambda o: o.orders.update(o1=order("o1", "PLACED", "WAITING_FOR_CUSTOMER")),
        "order o1: never ended (state WAITING_FOR_CUSTOMER)",
    ),
    "two terminal states": (
        lambda o: o.orders.update(o2=order("o2", "PLACED", "REJECTED", "TIMED_OUT")),
        "order o2: timeline ['PLACED', 'REJECTED', 'TIMED_OUT'] does not end in exactly one",
    ),
    "a state after the terminal one": (
        lambda o: o.orders.update(o2={**order("o2", "PLACED", "REJECTED", "PLACED"), "state": "REJECTED"}),
        "order o2: timeline ['PLACED', 'REJECTED', 'PLACED'] does not end in exactly one",
    ),
    "two executions for one order": (
        lambda o: o.executions["o1"].append(("SUCCEEDED", FINISHED_PATH)),
        "order o1: 2 executions instead of 1",
    ),
    "no execution": (lambda o: o.executions.update(o2=[]), "order o2: 0 executions instead of 1"),
    "failed execution": (
        lambda o: o.executions.update(o1=[("FAILED", [*FINISHED_PATH[:3], "Order failed"])]),
        "order o1: execution FAILED",
    ),
    "execution ended another way than the order": (
        lambda o: o.executions.update(o1=[("SUCCEEDED", REJECTED_PATH)]),
        "order o1: ended COMPLETED but its execution went",
    ),
    "an order nobody placed": (
        lambda o: o.orders.update(o9=order("o9", "PLACED", "REJECTED")),
        "order o9 is in the table but no customer placed it",
    ),
    "a customer without an order": (lambda o: o.placements.pop("o2"), "2 customers but 1 orders placed"),
    "an order the API refused": (_set("refused", ["Ben: POST /orders -> 503"]), "order refused: Ben"),
    "a dead letter": (_set("dead_letters", ["rule -> OrderEndedFunction: boom"]), "dead letter: rule"),
    "a dispatcher error": (_set("dispatcher_errors", ["ConnectionError()"]), "dispatcher error"),
    "a server error": (_set("server_errors", ["GET /orders -> 500"]), "API 5xx: GET /orders -> 500"),
    "an actor crash": (_set("actor_errors", ["barista-1: KeyError"]), "actor crashed: barista-1"),
    "an execution still running": (
        _set("running_executions", ["o1-abc"]),
        "executions still running: o1-abc",
    ),
    "a capacity slot never released": (
        _set("in_flight", ["o1-abc"]),
        "capacity slots never released: o1-abc",
    ),
}


@pytest.mark.parametrize("breakage", BREAKAGES, ids=list(BREAKAGES))
def test_each_way_a_run_goes_wrong_is_reported(breakage: str) -> None:
    # Given a consistent observation with one fact broken
    observed = consistent()
    mutate, expected = BREAKAGES[breakage]
    mutate(observed)

    # When the demo verifies it, Then the problem is named
    problems = verify(observed, customers=2)
    assert any(expected in problem for problem in problems), problems
