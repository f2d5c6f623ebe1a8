"""The moto server of the local stack on a port that another process holds: a clear error, never a hang.

A port checked free can be taken before the server binds it (any outgoing connection on the machine may
get it as its ephemeral port). moto's own ThreadedMotoServer.start() then waits for ever; `make test`
saw it once in about 20 runs, as a `make local` that printed nothing and a moto child left running.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from local.server import MotoProcess, PortInUse, start_server


@pytest.fixture
def taken_port() -> Iterator[int]:
    """A port another socket listens on for the test's length."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        yield holder.getsockname()[1]


def test_a_moto_server_on_a_taken_port_fails_at_once_saying_so(taken_port: int) -> None:
    # Given a port another socket listens on
    outcome: list[BaseException | object] = []

    def start() -> None:
        try:
            outcome.append(start_server(taken_port, "127.0.0.1"))
        except BaseException as error:  # reported below, whatever it is
            outcome.append(error)

    # When a moto server is started on it in this process
    starter = threading.Thread(target=start, daemon=True)
    starter.start()
    starter.join(timeout=30)

    # Then the start ends, with the port in the error
    assert not starter.is_alive(), "start_server waited for a port it could not bind"
    assert len(outcome) == 1 and isinstance(outcome[0], PortInUse), outcome
    assert f"port {taken_port} on 127.0.0.1 is in use" in str(outcome[0])


def test_the_moto_child_process_on_a_taken_port_ends_with_port_in_use(taken_port: int) -> None:
    # Given a port another socket listens on
    started = time.monotonic()

    # When `make local`'s moto child is started on it, Then the start fails saying so, long before its
    # startup deadline, and the child has ended
    with pytest.raises(PortInUse, match=f"port {taken_port} on 127.0.0.1 is in use"):
        MotoProcess.start(taken_port, "127.0.0.1")
    assert time.monotonic() - started < 60
    assert not _moto_children_on(taken_port)


def _moto_children_on(port: int) -> list[str]:
    """The command lines of running `local.server` processes given `port`."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            arguments = cmdline.read_bytes().decode(errors="replace").split("\0")
        except OSError:  # it ended meanwhile
            continue
        if "local.server" in arguments and str(port) in arguments:
            found.append(" ".join(arguments))
    return found
