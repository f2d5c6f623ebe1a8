"""`make local` (local/cli.py) beyond the end-to-end walkthrough: a taken port, handler log lines, and a
crowd connecting at once."""

from __future__ import annotations

import http.client
import json
import multiprocessing
import os
import socket
import threading
import time
import urllib.request
from pathlib import Path

import pytest
from moto.core.config import default_user_config

from local.auth import LocalIdp
from local.cli import LocalStack, PortInUse, _banner, compact_log_line
from tests.e2e.screens import Screen

CROWD = 64  # clients connecting in the same instant: far more than the standard library's backlog of 5


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

            # Then the screen follows it to waiting for its customer (the wait lasts 300 s here), through
            # the moto server's engine and the real socket. Each message carries the order as re-read
            # when it is sent, so the PLACED change may already show the waiting order: every message
            # shows one of the two states, and the screen never heard of any other.
            screen.wait_for_order(order_id, "WAITING_FOR_CUSTOMER")
            states = {
                m["order"]["state"] for m in screen.received("order") if m["order"]["orderId"] == order_id
            }
            assert "WAITING_FOR_CUSTOMER" in states
            assert states <= {"PLACED", "WAITING_FOR_CUSTOMER"}
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


def _call(port: int, method: str, path: str, token: str) -> int | str:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    try:
        connection.request(method, path, headers={"Authorization": f"Bearer {token}"})
        response = connection.getresponse()
        response.read()
        return response.status
    except OSError as error:  # a refused or reset connection is an outcome here, not a crash
        return type(error).__name__
    finally:
        connection.close()


def test_a_crowd_connecting_at_once_is_all_answered_by_the_api_workers(tmp_path: Path) -> None:
    # Given the stack, its API served by two worker processes
    idp = LocalIdp(tmp_path / "jwt")
    with LocalStack.start(port=0, api_port=0, idp=idp, api_workers=2) as stack:
        assert stack.api is not None and stack.api_workers is not None
        port = stack.api.port
        tokens = [idp.issue_token(f"customer-{number}") for number in range(CROWD)]
        barrier = threading.Barrier(CROWD)
        statuses: list[int | str] = []

        def one_client(token: str) -> None:
            barrier.wait()
            statuses.append(_call(port, "GET", "/config", token))

        # When a crowd connects in the same instant, and then one of them places an order
        clients = [threading.Thread(target=one_client, args=(token,)) for token in tokens]
        for client in clients:
            client.start()
        for client in clients:
            client.join()
        placed = _call(port, "POST", "/orders", tokens[0])

        # Then everyone is answered (no connection refused or reset), and the order a worker placed is in
        # the stack's moto server, where the workflow's rule picks it up
        assert statuses == [200] * CROWD
        assert placed == 202
        orders = stack.engine.clients["dynamodb"].scan(TableName=stack.engine.table_names["OrdersTable"])
        assert [item["userId"]["S"] for item in orders["Items"]] == [idp.verify(tokens[0])["sub"]]
        workers = multiprocessing.active_children()
        assert workers

    # And closing the stack stops its workers
    assert not any(worker.is_alive() for worker in workers)
