"""`make smoke` (ops/smoke.py): `make smoke LOCAL=1` against a fresh local stack, and the failures it
must report (an API error, a push message that never comes, an alarm in ALARM), each against a local
stack in a process of its own (moto's state is per process: an in-process stack here would share it
with every other in-process stack or mock_aws of this pytest worker). The deployed stack's parts
(Cognito users, the stack's alarms) are tested against moto in test_smoke_aws.py."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest

from tests.template_tables import ROOT

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


@pytest.fixture(scope="module")
def scenarios() -> dict[str, Any]:
    """Each scenario of tests/ops/smoke_scenarios.py run against one fresh local stack (in a process of
    its own: moto's state is per process); per scenario, the exit code and what the smoke test said."""
    completed = run_module("tests.ops.smoke_scenarios")
    assert completed.returncode == 0, completed.stdout + completed.stderr
    results: dict[str, Any] = json.loads(completed.stdout.splitlines()[-1])
    return results


def run_module(module: str, *arguments: str) -> subprocess.CompletedProcess[str]:
    """`python -m module arguments` from the repository's root, its output collected."""
    return subprocess.run(
        [sys.executable, "-m", module, *arguments],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def test_make_smoke_local_passes_against_a_fresh_local_stack() -> None:
    # When `make smoke LOCAL=1` runs
    completed = run_module("ops.smoke", "--local")

    # Then each step said what it did, the push client heard the order complete, and it passed
    lines = completed.stdout.splitlines()
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert completed.stderr == ""
    steps = [
        "starting a fresh local stack on free ports",
        "local stack ready in ",
        "smoke test of a fresh local stack",
        "users: customer smoke-customer-",
        "shop: open, orders need no admission code",
        "push: customer connected to ws://127.0.0.1:",
        "order ",  # placed
        "order ",  # submitted
        "order ",  # made and completed
        "order ",  # COMPLETED
        "push: the customer heard ",
        "order ",  # cancelled
        "alarms: 0 checked, none in ALARM",
        "users: deleted smoke-customer-",
        "smoke test PASSED in ",
    ]
    assert len(lines) == len(steps), completed.stdout
    assert [line[: len(step)] for line, step in zip(lines, steps, strict=True)] == steps
    assert lines[9].endswith(": COMPLETED")
    assert lines[10].endswith("-> COMPLETED")
    assert lines[11].endswith("cancelled by the customer: CANCELLED")


def test_a_closed_shop_that_requires_admission_is_opened_for_the_test_and_closed_again(
    scenarios: dict[str, Any],
) -> None:
    # Given the shop closed and requiring the display's admission code (as on AWS by default),
    # When the smoke test ran
    result = scenarios["closed_shop_requiring_admission"]

    # Then it opened the shop, ordered with an admission code, passed, and closed the shop again
    said = result["said"]
    assert result["code"] == 0, "\n".join(said)
    assert "shop: was closed, opened for the smoke test (closed again at the end)" in said
    assert "shop: open, orders need an admission code (GET /admission)" in said
    assert "shop: closed again" in said
    assert result["shop_after"]["isOpen"] is False


def test_an_api_error_fails_the_smoke_test_and_its_users_are_still_deleted(scenarios: dict[str, Any]) -> None:
    # Given users whose tokens the stack's API does not accept (another signing key),
    # When the smoke test ran with them
    result = scenarios["tokens_the_api_refuses"]

    # Then it failed on the API's answer, and deleted both users anyway
    said = result["said"]
    assert result["code"] == 1
    assert said[-1].startswith("smoke test FAILED after ")
    assert said[-1].endswith("GET /config answered 401: {'message': 'Unauthorized'}")
    assert said[-2].startswith("users: deleted smoke-customer-")
    assert result["users_left"] == []


def test_a_push_message_that_never_arrives_fails_the_smoke_test(scenarios: dict[str, Any]) -> None:
    # Given a push endpoint that accepts the customer and never sends a message,
    # When the smoke test ran
    result = scenarios["push_that_never_delivers"]

    # Then the order completed over HTTP, but the smoke test failed: the customer never heard it
    said = result["said"]
    assert result["code"] == 1
    assert any(line.endswith(": COMPLETED") for line in said)
    assert said[-1].startswith("smoke test FAILED after ")
    assert "push channel: no COMPLETED message for order " in said[-1]
    assert said[-1].endswith("within 10 s (heard: nothing)")
    assert said[-2].startswith("users: deleted smoke-customer-")


def test_an_alarm_in_alarm_fails_the_smoke_test(scenarios: dict[str, Any]) -> None:
    result = scenarios["an_alarm_in_alarm"]

    assert result["code"] == 1
    assert result["said"][-1].endswith("alarms in ALARM: OrderApiErrorsAlarm")
