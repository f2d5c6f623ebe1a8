"""The local push server itself (local/push): its management API in-process and over HTTP, a client that
stops reading, and a bounded stop. The functions behind $connect / $disconnect are stand-ins here (the
real ones run in tests/e2e/test_push.py): these tests are about the server, not the handlers.
"""

from __future__ import annotations

import base64
import contextlib
import json
import multiprocessing
import os
import socket
import threading
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from multiprocessing.connection import Client
from pathlib import Path
from typing import Any

import boto3
import pytest
from websockets.protocol import State

from local.auth import LocalIdp
from local.push import relay as push_relay
from local.push import server as push_server
from local.push.relay import PushRelay, RelayedPush, install_in_worker
from local.push.server import SUBPROTOCOL, LocalPush, websocket_routes
from local.template import Template
from local.waiting import wait_until
from tests.e2e.screens import Screen
from tests.template_tables import TEMPLATE_PATH

TEMPLATE = Template.load(TEMPLATE_PATH)
ROUTES = websocket_routes(TEMPLATE)


class StandInFunctions:
    """$connect admits every client; $disconnect is counted, or hangs until released."""

    template = TEMPLATE

    def __init__(self, disconnect_hangs: bool = False) -> None:
        self.disconnects = 0
        self.release = threading.Event()
        if not disconnect_hangs:
            self.release.set()

    def invoke(self, logical_id: str, event: Any) -> Any:
        if logical_id == ROUTES.disconnect:
            self.release.wait()
            self.disconnects += 1
        return {"statusCode": 200}


@pytest.fixture
def functions() -> StandInFunctions:
    return StandInFunctions()


@pytest.fixture
def push(tmp_path: Path, functions: StandInFunctions) -> Iterator[LocalPush]:
    server = LocalPush(LocalIdp(tmp_path / "jwt"))
    server.start(functions)
    try:
        yield server
    finally:
        functions.release.set()
        server.stop()


def _management_client(push: LocalPush) -> Any:
    return _management_client_for(push.management_url)


def _management_client_for(management_url: str) -> Any:
    # As the fan-out makes it: boto3's default session, the push server's management URL.
    return boto3.client(
        "apigatewaymanagementapi",
        endpoint_url=management_url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def _stalled_client(push: LocalPush) -> socket.socket:
    """A client that completes the handshake and then never reads: its receive buffer fills up."""
    raw = socket.socket()
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    raw.connect((push.host, push.port))
    key = base64.b64encode(os.urandom(16)).decode()
    raw.sendall(
        (
            f"GET / HTTP/1.1\r\nHost: {push.host}:{push.port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
            f"Sec-WebSocket-Protocol: {SUBPROTOCOL}, a-token\r\n\r\n"
        ).encode()
    )
    answer = b""
    while b"\r\n\r\n" not in answer:
        answer += raw.recv(1)  # byte by byte: nothing past the handshake is read
    assert answer.startswith(b"HTTP/1.1 101"), answer
    return raw


def _new_connection(push: LocalPush, before: set[str]) -> str:
    return wait_until(lambda: next(iter(set(push.connection_ids) - before), None), "the new connection")


# ----------------------------------------------------------------------------- management API
def test_this_process_posts_without_http_with_the_answers_of_the_http_api(push: LocalPush) -> None:
    # Given a connected screen, and the management API client the fan-out makes
    screen = Screen(push.url, "a-token", "screen")
    connection_id = _new_connection(push, set())
    client = _management_client(push)
    try:
        # When it posts, reads the connection, and posts to a connection that is not open
        client.post_to_connection(ConnectionId=connection_id, Data=b'{"n": 1}')
        described = client.get_connection(ConnectionId=connection_id)
        with pytest.raises(client.exceptions.GoneException):
            client.post_to_connection(ConnectionId="not-open", Data=b'{"n": 0}')
        answered_in_process = push.in_process.answered

        # And the same calls go over HTTP once the in-process route is removed
        push.in_process.uninstall()
        over_http = _management_client(push)
        over_http.post_to_connection(ConnectionId=connection_id, Data=b'{"n": 2}')
        with pytest.raises(over_http.exceptions.GoneException):
            over_http.post_to_connection(ConnectionId="not-open", Data=b'{"n": 0}')

        # Then the first three were answered in this process, the others over HTTP, alike
        assert answered_in_process == 3
        assert push.in_process.answered == 3
        assert described["Identity"]["SourceIp"] == "127.0.0.1"
        wait_until(lambda: len(screen.received()) == 2, "both messages")
        assert screen.received() == [{"n": 1}, {"n": 2}]
    finally:
        screen.close()


def _post_from_a_worker(management_url: str, connection_id: str) -> str:
    """In a worker process: post to the connection, then to one that is not open; the second's error."""
    client = _management_client_for(management_url)
    client.post_to_connection(ConnectionId=connection_id, Data=b'{"from": "worker"}')
    try:
        client.post_to_connection(ConnectionId="not-open", Data=b"{}")
    except client.exceptions.GoneException as error:
        return str(error.response["Error"]["Code"])
    return "no error"


def test_a_worker_process_posts_through_the_relay_with_the_answers_of_the_http_api(push: LocalPush) -> None:
    # Given a connected screen, and a worker process set up as the stack sets up its function workers
    screen = Screen(push.url, "a-token", "screen")
    connection_id = _new_connection(push, set())
    worker = ProcessPoolExecutor(
        1,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=install_in_worker,
        initargs=(push.relay.address,),
    )
    try:
        # When the worker posts to it, and to a connection that is not open
        error = worker.submit(_post_from_a_worker, push.management_url, connection_id).result(60)

        # Then both calls were relayed to this process, answered as over HTTP, and the screen got its message
        assert error == "GoneException"
        assert push.relay.relayed == 2
        assert push.in_process.answered == 0
        wait_until(screen.received, "the message")
        assert screen.received() == [{"from": "worker"}]
    finally:
        worker.shutdown()
        screen.close()


class StuckPush:
    """A stack's push server that never answers (stuck, or stopping) until released."""

    management_url = "http://127.0.0.1:1"

    def __init__(self) -> None:
        self.release = threading.Event()

    def manage(self, method: str, path: str, data: bytes = b"") -> Any:
        self.release.wait(timeout=30)
        return (410, b"")


def test_a_relayed_call_the_stack_never_answers_fails_in_time_and_the_next_call_is_served(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given a worker's relay to a stack whose push server is stuck
    monkeypatch.setattr(push_relay, "ANSWER_TIMEOUT_SECONDS", 0.5)
    stuck = StuckPush()
    relay = PushRelay(stuck)
    relay.start()
    worker_side = RelayedPush(relay.address)
    try:
        # When the worker's function posts through it
        with pytest.raises(TimeoutError, match="no answer from the push relay"):
            worker_side.manage("POST", "/@connections/a")

        # Then it fails instead of waiting for ever; and once the stack answers again, so does the relay
        stuck.release.set()
        assert worker_side.manage("POST", "/@connections/a") == (410, b"")
    finally:
        stuck.release.set()
        relay.stop()


def test_stopping_the_relay_returns_even_when_its_accept_thread_has_already_ended() -> None:
    # Given a relay whose accept thread saw the stop flag right after accepting a worker's connection and
    # ended before stop() woke it (the race that hung two CI workers in LocalStack.close for 80 minutes)
    relay = PushRelay(StuckPush())
    relay.start()
    relay._stopping = True
    with contextlib.suppress(EOFError, OSError):
        Client(relay.address.address, family="AF_UNIX", authkey=relay.address.authkey).close()
    accept_thread = relay._thread
    assert accept_thread is not None
    wait_until(lambda: not accept_thread.is_alive(), "the end of the accept thread")

    # When the stack stops it
    stopping = threading.Thread(target=relay.stop, daemon=True)
    stopping.start()
    stopping.join(timeout=10)

    # Then stop() returns instead of waiting for ever for a handshake nobody answers
    assert not stopping.is_alive()


# ----------------------------------------------------------------------- a client that stops reading
@pytest.fixture
def reading_and_stalled(push: LocalPush) -> Iterator[tuple[Screen, str, str]]:
    """A screen that reads, and a client that stopped reading: (the screen, its connection, the other's)."""
    screen = Screen(push.url, "a-token", "reading")
    reading = _new_connection(push, set())
    stalled_socket = _stalled_client(push)
    try:
        yield screen, reading, _new_connection(push, {reading})
    finally:
        screen.close()
        stalled_socket.close()


FILLER = json.dumps({"filler": "x" * 64_000}).encode()  # 200 of them: far more than socket buffers hold


def test_a_client_that_stops_reading_never_delays_the_others_and_is_closed(
    push: LocalPush, reading_and_stalled: tuple[Screen, str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a screen that reads, and a client that stopped reading (a short bound on a stuck send)
    monkeypatch.setattr(push_server, "SEND_TIMEOUT_SECONDS", 0.5)
    screen, reading, stalled = reading_and_stalled

    # When messages are posted to both, far more than the stalled client's buffers hold
    for number in range(200):
        push.post(stalled, FILLER)
        push.post(reading, json.dumps({"n": number}).encode())

    # Then the reading screen receives every message, in order
    wait_until(lambda: len(screen.received()) == 200, "every message at the reading screen", 60)
    assert [message["n"] for message in screen.received()] == list(range(200))
    # And the stalled client is closed for not keeping up: gone for PostToConnection, the other not
    wait_until(lambda: stalled not in push.connection_ids, "the stalled client closed", 60)
    assert not push.post(stalled, FILLER)
    assert push.post(reading, b'{"n": 200}')


@pytest.fixture
def small_queues(monkeypatch: pytest.MonkeyPatch) -> None:
    """At most 20 messages queued per connection (for connections made after it)."""
    monkeypatch.setattr(push_server, "QUEUE_LIMIT", 20)


def test_a_client_whose_queue_overflows_is_closed_and_the_others_keep_theirs(
    push: LocalPush, small_queues: None, reading_and_stalled: tuple[Screen, str, str]
) -> None:
    # Given at most 20 messages queued per connection, a screen that reads and a client that does not
    screen, reading, stalled = reading_and_stalled

    # When the stalled client is sent more than its buffers and its queue hold
    for _ in range(200):
        push.post(stalled, FILLER)

    # Then it is closed (gone), and the reading screen still gets what is posted to it
    wait_until(lambda: stalled not in push.connection_ids, "the overflowing client closed", 60)
    assert push.post(reading, b'{"n": 1}')
    wait_until(screen.received, "the reading screen's message")
    assert screen.received() == [{"n": 1}]


# ------------------------------------------------------------------------------------- stopping
def test_stop_closes_every_connection_without_waiting_for_disconnect_or_stalled_clients(
    tmp_path: Path,
) -> None:
    # Given a server whose $disconnect would hang, with reading screens and a client that stopped reading
    functions = StandInFunctions(disconnect_hangs=True)
    push = LocalPush(LocalIdp(tmp_path / "jwt"))
    push.start(functions)
    screens = [Screen(push.url, "a-token", f"screen-{n}") for n in range(20)]
    stalled_socket = _stalled_client(push)
    wait_until(lambda: len(push.connection_ids) == 21, "every connection")
    try:
        # When the server stops
        push.stop()

        # Then it returned with every connection closed, and no $disconnect ran
        assert push.connection_ids == []
        wait_until(lambda: all(s.connection.state is State.CLOSED for s in screens), "every screen closed")
        assert functions.disconnects == 0
    finally:
        functions.release.set()
        stalled_socket.close()
