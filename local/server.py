"""A moto server with the local patches applied and state machine execution on.

    python -m local.server --port 5000

Then `LocalEngine.provision(endpoint_url="http://127.0.0.1:5000")`. The patches in
local/moto_patches.py must live in the server's process (that is where moto runs the ASL), which is
why a plain `moto_server` is not enough.

`MotoProcess.start()` runs it as a child process (what `make local` does): moto, its Step Functions
executions and the DynamoDB lock then have a core of their own, beside the dispatcher, the handlers and
the push channel in the stack's process.
"""

from __future__ import annotations

import argparse
import logging
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # moto is imported where it runs: a stack whose moto is a child process needs none
    from moto.moto_server.threaded_moto_server import ThreadedMotoServer


class PortInUse(RuntimeError):
    """A port the stack needs is taken by another process."""


def start_server(port: int = 0, host: str = "127.0.0.1") -> tuple[ThreadedMotoServer, str]:
    """Start a patched moto server in a thread of this process; return it and its endpoint URL.

    PortInUse if it cannot listen on the port (moto's own start() would wait for ever: its server thread
    dies of the bind error before it says it is ready).
    """
    from moto.core.config import default_user_config
    from moto.moto_server.threaded_moto_server import ThreadedMotoServer

    from local import moto_patches

    class ListeningMotoServer(ThreadedMotoServer):
        could_not_listen = False

        def _server_entry(self) -> None:
            try:
                super()._server_entry()
            except (OSError, SystemExit):  # werkzeug prints the bind error and exits its thread
                if self._server_ready_event.is_set():
                    raise
                self.could_not_listen = True
                self._server_ready_event.set()  # start() returns; PortInUse below

    moto_patches.apply()
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # not one log line per request
    server = ListeningMotoServer(ip_address=host, port=port, verbose=False)
    server.start()
    if server.could_not_listen:
        raise PortInUse(f"port {port} on {host} is in use (or cannot be listened on: see above)")
    default_user_config["stepfunctions"] = {"execute_state_machine": True}
    bound_host, bound_port = server.get_host_and_port()
    # moto's Step Functions interpreter calls the other services back at localhost:$MOTO_PORT.
    os.environ["MOTO_PORT"] = str(bound_port)
    return server, f"http://{bound_host}:{bound_port}"


READY_PREFIX = "patched moto server on "
PORT_IN_USE_PREFIX = "error: "  # then PortInUse's message; the child exits with 2
STARTUP_TIMEOUT_SECONDS = 120.0  # importing moto on a busy 2-CPU machine


class MotoProcess:
    """`python -m local.server` as a child process: `stop()` it like a ThreadedMotoServer."""

    def __init__(self, process: subprocess.Popen[str], endpoint_url: str) -> None:
        self.process = process
        self.endpoint_url = endpoint_url

    @classmethod
    def start(cls, port: int = 0, host: str = "127.0.0.1") -> MotoProcess:
        """Start the server and wait for its endpoint (port 0: any free port)."""
        command = [sys.executable, "-m", "local.server", "--host", host, "--port", str(port), "--child"]
        root = Path(__file__).resolve().parent.parent
        process = subprocess.Popen(
            command,
            cwd=root,
            stdin=subprocess.PIPE,  # closed when this process ends, however it ends: the child then stops
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            bufsize=1,
        )
        assert process.stdout is not None
        stdout = process.stdout
        # Read in a thread, so a child that hangs silently still ends at the deadline; it keeps reading
        # (warnings) after the ready line, so a full pipe never blocks the server.
        lines: queue.Queue[str] = queue.Queue()
        ready = threading.Event()

        def read_lines() -> None:
            for line in stdout:
                if not ready.is_set():  # afterwards only drained
                    lines.put(line)
            lines.put("")  # it exited

        threading.Thread(target=read_lines, name="local-moto-output", daemon=True).start()
        deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
        seen: list[str] = []
        while (remaining := deadline - time.monotonic()) > 0:
            try:
                line = lines.get(timeout=remaining)
            except queue.Empty:
                break
            if not line:
                break
            if line.startswith(READY_PREFIX):
                ready.set()
                return cls(process, line.removeprefix(READY_PREFIX).split()[0])
            if line.startswith(PORT_IN_USE_PREFIX) and "is in use" in line:
                process.wait(timeout=STARTUP_TIMEOUT_SECONDS)
                raise PortInUse(line.removeprefix(PORT_IN_USE_PREFIX).strip())
            seen.append(line)
        process.kill()
        process.wait()
        raise RuntimeError(f"the moto server did not start: {''.join(seen)[-2000:]}")

    def stop(self) -> None:
        """Stop it (SIGTERM, then SIGKILL after 10 s)."""
        if self.process.stdin is not None:
            self.process.stdin.close()
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def main() -> None:
    """Run until interrupted."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5000)
    parser.add_argument(
        "--child", action="store_true", help="run until stdin closes; ignore Ctrl-C (the parent stops it)"
    )
    args = parser.parse_args()
    try:
        server, url = start_server(args.port, args.host)
    except PortInUse as error:
        print(f"{PORT_IN_USE_PREFIX}{error}", flush=True)
        raise SystemExit(2) from None
    from local import moto_patches

    print(f"{READY_PREFIX}{url} (patches: {', '.join(moto_patches.installed())})", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    if args.child:
        # Ctrl-C reaches the whole process group: the parent still needs moto while it shuts down.
        signal.signal(signal.SIGINT, signal.SIG_IGN)

        def stop_when_stdin_closes() -> None:
            sys.stdin.read()
            stop.set()

        threading.Thread(target=stop_when_stdin_closes, daemon=True).start()
    else:
        signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
    server.stop()


if __name__ == "__main__":
    main()
