"""The check `make chaos` ends with (local/faults/chaos.py problems_of): each way an order can be lost,
stuck or leave something behind fails it."""

from __future__ import annotations

from typing import Any

from local.demo import ApiClient, DemoSettings, Rush
from local.faults.chaos import Outcome, problems_of


class _NoIdp:
    def issue_token(self, user: str, role: str = "customer") -> str:
        return "token"


def rush() -> Rush:
    return Rush(DemoSettings(customers=2), ApiClient("http://127.0.0.1:1"), _NoIdp())  # type: ignore[arg-type]


def order(order_id: str, state: str, reason: str = "completed") -> dict[str, Any]:
    return {"orderId": order_id, "state": state, "endReason": reason}


def test_a_run_where_every_order_ended_passes() -> None:
    # Given two placed orders that ended, and one refused at placement that ended REJECTED unstarted
    outcome = Outcome(
        orders={
            "a": order("a", "COMPLETED"),
            "b": order("b", "TIMED_OUT", "Customer timedout"),
            "c": order("c", "REJECTED", "not started: PublishFailed"),
        },
        placed={"a", "b"},
    )
    # Then there is nothing to report
    assert problems_of(outcome, rush(), [], dead_left=0) == []


def test_lost_stuck_leaked_half_made_and_left_over_each_fail_the_check() -> None:
    # Given an accepted order missing from the table, one stuck, a half-made one, a slot taken, a dead
    # letter, and a push connection made gone that the fan-out did not forget
    outcome = Outcome(
        orders={"b": order("b", "SUBMITTED"), "c": order("c", "WAITING_FOR_CUSTOMER")},
        placed={"a", "b"},
        slots_left=["b-1234"],
        gone=["conn-1", "conn-2"],
        gone_still_listed=["conn-2"],
    )

    # Then each is a problem
    problems = problems_of(outcome, rush(), [], dead_left=1)
    assert "lost: order a was accepted but is not in the table" in problems
    assert "stuck: order b is SUBMITTED" in problems
    assert "stuck: order c is WAITING_FOR_CUSTOMER" in problems
    assert "half-made order c: WAITING_FOR_CUSTOMER completed" in problems
    assert "capacity slot leaked: b-1234" in problems
    assert "1 dead letter(s) left in the queues after the replay" in problems
    assert "gone push connection still listed: conn-2" in problems
