"""The smoke test's scenarios against one fresh local stack, in a process of their own:
`python -m tests.ops.smoke_scenarios` prints, as its last line, one JSON object with, per scenario, the
exit code, every line the smoke test said and what the scenario found afterwards.

A process of its own because the local stack's moto server is this process's moto: in a pytest worker
it would share (and, stopping, reset) the state of every other in-process stack or mock_aws there.
"""

from __future__ import annotations

import dataclasses
import json
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from websockets.sync.server import ServerConnection, serve
from websockets.typing import Subprotocol

from local.auth import LocalIdp
from local.push.server import SUBPROTOCOL
from ops.smoke import Api, LocalUsers, SmokeTarget, local_smoke_target, smoke

Scenario = Callable[[SmokeTarget], dict[str, Any]]


@contextmanager
def silent_push_server() -> Iterator[str]:
    """A WebSocket server that accepts the screens' subprotocol and never sends anything; its URL."""

    def stay_silent(connection: ServerConnection) -> None:
        connection.wait_closed()

    server = serve(stay_silent, "127.0.0.1", 0, subprotocols=[Subprotocol(SUBPROTOCOL)])
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"ws://127.0.0.1:{server.socket.getsockname()[1]}"
    finally:
        server.shutdown()
        thread.join(timeout=10)


def run(target: SmokeTarget) -> dict[str, Any]:
    """The smoke test against `target`: its exit code and what it said."""
    said: list[str] = []
    return {"code": smoke(target, said.append), "said": said}


def closed_shop_requiring_admission(target: SmokeTarget) -> dict[str, Any]:
    """The shop closed and requiring the display's admission code (as on AWS by default)."""
    manager = target.users.create("barista")
    api = Api(target.api_url)
    api.expect("PUT", "/config", manager, {"isOpen": False, "requireAdmission": True})
    try:
        result = run(target)
        result["shop_after"] = api.expect("GET", "/config", manager)
    finally:
        api.expect("PUT", "/config", manager, {"isOpen": True, "requireAdmission": False})
        target.users.delete_all()
    return result


def tokens_the_api_refuses(target: SmokeTarget) -> dict[str, Any]:
    """Users whose tokens are signed with another key than the stack's."""
    strangers = LocalUsers(LocalIdp(tempfile.mkdtemp(prefix="smoke-strangers-")).issue_token)
    result = run(dataclasses.replace(target, users=strangers))
    result["users_left"] = strangers.created
    return result


def push_that_never_delivers(target: SmokeTarget) -> dict[str, Any]:
    """A push endpoint that accepts the customer and never sends a message."""
    with silent_push_server() as url:
        return run(dataclasses.replace(target, push_url=url, wait_seconds=10))


def an_alarm_in_alarm(target: SmokeTarget) -> dict[str, Any]:
    """One of 17 alarms in ALARM."""
    return run(dataclasses.replace(target, alarms_in_alarm=lambda: (17, ["OrderApiErrorsAlarm"])))


SCENARIOS: dict[str, Scenario] = {
    "closed_shop_requiring_admission": closed_shop_requiring_admission,
    "tokens_the_api_refuses": tokens_the_api_refuses,
    "push_that_never_delivers": push_that_never_delivers,
    "an_alarm_in_alarm": an_alarm_in_alarm,
}


def main() -> int:
    """Run every scenario against one local stack; print the results as one JSON line."""
    out = sys.stdout  # the local stack silences sys.stdout while it runs
    with local_smoke_target() as target:
        results = {name: scenario(target) for name, scenario in SCENARIOS.items()}
    print(json.dumps(results), file=out, flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
