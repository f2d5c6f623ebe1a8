"""The management API for functions that run in worker processes (local/workers), without HTTP.

`make local` runs the rules' targets, the push fan-out among them, in worker processes, while the
push server and its sockets live in the stack's process. Over HTTP to the management port each
PostToConnection cost ~2.4 ms of CPU (botocore's signing, urllib3, a thread-per-connection server in
the stack's process, whose GIL the API, the dispatcher and the sockets share), and a fan-out is one
call per connected screen.

So a worker answers its management API calls through the same botocore before-call hook as the
stack's own process (local/push/in_process.py), and the hook's `manage` is relayed to the stack's
`LocalPush.manage` over a Unix socket (multiprocessing.connection, authenticated with a key only the
stack's workers are given): one pickled tuple each way, no HTTP, no signing. One connection per
worker thread (the fan-out posts from several threads at once), each served by a thread here.
"""

from __future__ import annotations

import contextlib
import secrets
import socket
import threading
from dataclasses import dataclass
from multiprocessing import AuthenticationError
from multiprocessing.connection import Client, Connection, Listener
from typing import TYPE_CHECKING

from local.push.in_process import InProcessRoute, Managed

# A relayed call is a dictionary lookup and a queue put in the stack's process: 30 s without an answer
# means the stack is gone or stuck, and the worker's function fails (as an HTTP call would time out)
# instead of waiting for ever.
ANSWER_TIMEOUT_SECONDS = 30.0

if TYPE_CHECKING:
    from local.push.server import ManagementAnswer


@dataclass(frozen=True)
class RelayAddress:
    """Where a worker reaches the relay (picklable: it is handed to the worker processes)."""

    address: str
    authkey: bytes
    management_url: str


def install_in_worker(relay: RelayAddress) -> InProcessRoute:
    """In a worker process: route this process's management API calls through the relay (a
    FunctionWorkers `setup`)."""
    route = InProcessRoute(RelayedPush(relay))
    route.install()
    return route


class RelayedPush:
    """`Managed` in a worker: each `manage` call answered by the stack's push server through the relay."""

    def __init__(self, relay: RelayAddress) -> None:
        self._relay = relay
        self._local = threading.local()  # one connection per thread: calls from threads run side by side

    @property
    def management_url(self) -> str:
        """The push server's management URL (the functions' PUSH_ENDPOINT)."""
        return self._relay.management_url

    def manage(self, method: str, path: str, data: bytes = b"") -> ManagementAnswer:
        """Send the request to the stack's process; its answer."""
        connection: Connection | None = getattr(self._local, "connection", None)
        if connection is None:
            connection = Client(self._relay.address, family="AF_UNIX", authkey=self._relay.authkey)
            self._local.connection = connection
        connection.send((method, path, data))
        if not connection.poll(ANSWER_TIMEOUT_SECONDS):
            # The answer may still come: this connection can no longer tell whose it is.
            self._local.connection = None
            connection.close()
            raise TimeoutError(f"no answer from the push relay in {ANSWER_TIMEOUT_SECONDS:.0f} s")
        answer: ManagementAnswer = connection.recv()
        return answer


class PushRelay:
    """In the stack's process: serves the workers' relayed calls with `push.manage`."""

    def __init__(self, push: Managed) -> None:
        self._push = push
        self._authkey = secrets.token_bytes(32)
        # Bound now: a worker may connect before start(), and then waits in the backlog.
        self._listener = Listener(family="AF_UNIX", authkey=self._authkey, backlog=64)
        self._connections: list[Connection] = []
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stopping = False
        self.relayed = 0  # calls answered for the workers (tests check the route is taken)

    @property
    def address(self) -> RelayAddress:
        """What a worker needs to connect."""
        return RelayAddress(str(self._listener.address), self._authkey, self._push.management_url)

    def start(self) -> None:
        """Accept connections in a background thread."""
        self._thread = threading.Thread(target=self._accept, name="local-push-relay", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop accepting and close every connection (a worker's next call then fails)."""
        self._stopping = True
        if self._thread is not None:
            # Wake a waiting accept() up (closing the listener alone does not) with a bare connection: it
            # fails the handshake and the thread sees it is stopping. Not with Client(): its handshake
            # needs the accept thread, which may already have ended (it checks `_stopping` right after
            # accepting a worker's connection), and then waits for ever; a bare connect never does.
            with contextlib.suppress(OSError), socket.socket(socket.AF_UNIX) as wake_up:
                wake_up.settimeout(5)
                wake_up.connect(self.address.address)
            self._thread.join(timeout=5)
            self._thread = None
        self._listener.close()
        with self._lock:
            connections, self._connections = self._connections, []
        for connection in connections:
            connection.close()

    def _accept(self) -> None:
        while not self._stopping:
            try:
                connection = self._listener.accept()
            except (OSError, EOFError, AuthenticationError):  # closed, or not one of the stack's workers
                if self._stopping:
                    return
                continue
            if self._stopping:
                connection.close()
                return
            with self._lock:
                self._connections.append(connection)
            threading.Thread(
                target=self._serve, args=(connection,), name="local-push-relay-connection", daemon=True
            ).start()

    def _serve(self, connection: Connection) -> None:
        try:
            while True:
                method, path, data = connection.recv()
                answer = self._push.manage(method, path, data)
                with self._lock:  # one serving thread per worker connection
                    self.relayed += 1  # before the answer: the worker's caller may look right after it
                connection.send(answer)
        except (EOFError, OSError):  # the worker ended, or stop() closed it
            pass
        finally:
            with self._lock:
                if connection in self._connections:
                    self._connections.remove(connection)
            connection.close()
