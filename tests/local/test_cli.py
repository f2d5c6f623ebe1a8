"""`make local` (local/cli.py) beyond the end-to-end walkthrough: a taken port, and handler log lines."""

from __future__ import annotations

import json
import os
import socket
import time
import urllib.request
from pathlib import Path

import pytest
from moto.core.config import default_user_config

from local.auth import LocalIdp
from local.cli import LocalStack, PortInUse, _banner, compact_log_line
from tests.e2e.screens import Screen


@pytest.mark.parametrize("taken", ["port", "api_port", "push_port"])
def test_a_taken_port_is_refused_at_once_instead_of_hanging(taken: str) -> None:
    # Given another process listening on the port the stack wants
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        ports = {"port": 0, "api_port": 0, "push_port": 0, taken: listener.getsockname()[1]}

        # When the stack starts, Then it refuses with the port's number (moto's server thread would
        # otherwise wait for ever on a port it cannot bind)
        started = time.monotonic()
        with pytest.raises(PortInUse, match=str(ports[taken])):
            LocalStack.start(**ports)
        assert time.monotonic() - started < 5


def test_the_stack_serves_the_push_channel_next_to_the_api_and_says_where(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # (the moto server sets process-wide moto config and MOTO_PORT: restored after the test, so that
    # later tests in this process see what they set up themselves)
    monkeypatch.setitem(
        default_user_config, "stepfunctions", dict(default_user_config.get("stepfunctions", {}))
    )
    monkeypatch.setenv("MOTO_PORT", os.environ.get("MOTO_PORT", "5000"))
    # Given `make local`'s stack on free ports, and a barista screen connected to the URL it shows
    idp = LocalIdp(tmp_path)
    with LocalStack.start(port=0, api_port=0, idp=idp, api_log=lambda _: None) as stack:
        assert stack.push_url is not None and stack.push_url.startswith("ws://127.0.0.1:")
        assert any(
            line.startswith("Push (WebSocket)") and stack.push_url in line for line in _banner(stack, 1)
        )
        screen = Screen(stack.push_url, idp.issue_token("bob", "barista"), "barista")
        try:
            # When a customer places an order over HTTP
            assert stack.api is not None
            request = urllib.request.Request(
                f"{stack.api.url}/orders",
                method="POST",
                headers={"Authorization": f"Bearer {idp.issue_token('alice')}"},
            )
            with urllib.request.urlopen(request, timeout=30) as response:
                order_id = json.loads(response.read())["orderId"]

            # Then the screen follows it (placed, then waiting: the customer's wait lasts 300 s here),
            # through the moto server's engine and the real socket
            screen.wait_for_order(order_id, "WAITING_FOR_CUSTOMER")
            states = [
                m["order"]["state"] for m in screen.received("order") if m["order"]["orderId"] == order_id
            ]
            assert states[0] == "PLACED"
        finally:
            screen.close()


def test_a_handler_log_line_is_shown_compactly_and_other_output_as_it_is() -> None:
    # Given a Powertools log line as OrderEndedFunction writes it, and a line that is not JSON
    record = {
        "level": "INFO",
        "location": "record_order_end:92",
        "message": "order ended",
        "timestamp": "2026-11-29 15:06:36,854+0000",
        "service": "serverlesspresso",
        "cold_start": False,
        "function_name": "serverlesspresso-OrderEndedFunction",
        "function_arn": "arn:aws:lambda:us-east-1:123456789012:function:serverlesspresso-OrderEndedFunction",
        "function_request_id": "6b95416e-1382-4789-9423-99906e81dad2",
        "correlation_id": "order-1",
        "state": "COMPLETED",
        "reason": "completed",
    }

    # When they are shown on the console, Then the log line keeps what says something, the rest stays
    assert compact_log_line(json.dumps(record)) == (
        "OrderEndedFunction INFO order ended [order-1] state=COMPLETED reason=completed"
    )
    assert compact_log_line("plain text from a handler") == "plain text from a handler"
    assert compact_log_line('{"_aws": {"CloudWatchMetrics": []}}') == '{"_aws": {"CloudWatchMetrics": []}}'
