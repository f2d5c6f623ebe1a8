"""`make smoke` (ops/smoke.py): `make smoke LOCAL=1` against a fresh local stack, and the failures it
must report (an API error, a push message that never comes, an alarm in ALARM). The deployed stack's
parts (Cognito users, the stack's alarms) are tested against moto in test_smoke_aws.py: moto's state
is per process, and a mock_aws ending would reset the local stack's."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from websockets.sync.server import Server, ServerConnection, serve
from websockets.typing import Subprotocol

from local.auth import LocalIdp
from local.push.server import SUBPROTOCOL
from ops.smoke import (
    Api,
    LocalUsers,
    SmokeTarget,
    local_smoke_target,
    smoke,
)
from tests.template_tables import ROOT

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


@pytest.fixture(scope="module")
def local_target() -> Iterator[SmokeTarget]:
    """A fresh local stack, shared by the failure scenarios below (each makes its own users)."""
    with local_smoke_target() as target:
        yield target


@pytest.fixture
def silent_push_server() -> Iterator[str]:
    """A WebSocket server that accepts the screens' subprotocol and never sends anything; its URL."""

    def stay_silent(connection: ServerConnection) -> None:
        connection.wait_closed()

    server: Server = serve(stay_silent, "127.0.0.1", 0, subprotocols=[Subprotocol(SUBPROTOCOL)])
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"ws://127.0.0.1:{server.socket.getsockname()[1]}"
    finally:
        server.shutdown()
        thread.join(timeout=10)


def test_make_smoke_local_passes_against_a_fresh_local_stack() -> None:
    # When `make smoke LOCAL=1` runs (its own process: moto's state is per process, and the failure
    # scenarios below share another local stack in this one)
    completed = subprocess.run(
        [sys.executable, "-m", "ops.smoke", "--local"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )

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
    local_target: SmokeTarget,
) -> None:
    # Given the shop closed and requiring the display's admission code (as on AWS by default)
    manager = local_target.users.create("barista")
    api = Api(local_target.api_url)
    api.expect("PUT", "/config", manager, {"isOpen": False, "requireAdmission": True})
    said: list[str] = []

    try:
        # When the smoke test runs
        code = smoke(local_target, said.append)

        # Then it opened the shop, ordered with an admission code, passed, and closed the shop again
        assert code == 0, "\n".join(said)
        assert "shop: was closed, opened for the smoke test (closed again at the end)" in said
        assert "shop: open, orders need an admission code (GET /admission)" in said
        assert "shop: closed again" in said
        assert api.expect("GET", "/config", manager)["isOpen"] is False
    finally:
        api.expect("PUT", "/config", manager, {"isOpen": True, "requireAdmission": False})


def test_an_api_error_fails_the_smoke_test_and_its_users_are_still_deleted(
    local_target: SmokeTarget, tmp_path: Path
) -> None:
    # Given users whose tokens the stack's API does not accept (another signing key)
    strangers = LocalUsers(LocalIdp(tmp_path / "other-key").issue_token)
    said: list[str] = []

    # When the smoke test runs with them
    code = smoke(dataclasses.replace(local_target, users=strangers), said.append)

    # Then it fails on the API's answer, and deletes both users anyway
    assert code == 1
    assert said[-1].startswith("smoke test FAILED after ")
    assert said[-1].endswith("GET /config answered 401: {'message': 'Unauthorized'}")
    assert said[-2].startswith("users: deleted smoke-customer-")
    assert strangers.created == []


def test_a_push_message_that_never_arrives_fails_the_smoke_test(
    local_target: SmokeTarget, silent_push_server: str
) -> None:
    # Given a push endpoint that accepts the customer and never sends a message
    silent = dataclasses.replace(local_target, push_url=silent_push_server, wait_seconds=10)
    said: list[str] = []

    # When the smoke test runs
    code = smoke(silent, said.append)

    # Then the order completed over HTTP, but the smoke test fails: the customer never heard it
    assert code == 1
    assert any(line.endswith(": COMPLETED") for line in said)
    assert said[-1].startswith("smoke test FAILED after ")
    assert "push channel: no COMPLETED message for order " in said[-1]
    assert said[-1].endswith("within 10 s (heard: nothing)")
    assert said[-2].startswith("users: deleted smoke-customer-")


def test_an_alarm_in_alarm_fails_the_smoke_test(local_target: SmokeTarget) -> None:
    alarming = dataclasses.replace(local_target, alarms_in_alarm=lambda: (17, ["OrderApiErrorsAlarm"]))
    said: list[str] = []

    code = smoke(alarming, said.append)

    assert code == 1
    assert said[-1].endswith("alarms in ALARM: OrderApiErrorsAlarm")
