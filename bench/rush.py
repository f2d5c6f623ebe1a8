"""Rush hour on `make local`: a burst of customers while orders already in flight keep moving.

    .venv/bin/python bench/rush.py [--customers 60] [--clients 200] [--in-flight 20] [--time-scale 1]
                                   [--api-workers 4] [--profile]

The stack is `make local` itself (`python -m local.cli`, a subprocess on free ports, its activity log
read and discarded), used over HTTP and the push channel as the screens use it:

1. Every customer's phone holds a push connection (WebSocket, token as the second subprotocol, as
   web/app/live.js connects), and so do a barista board and a display. A screen follows its order by
   the messages pushed to it, as the screens do when push is up; only after FALLBACK_SECONDS without a
   message for its order does it read the order once with GET (counted: "fallback reads").
2. `--in-flight` customers each move orders through their whole life (place, submit the drink, a
   barista makes and completes it) for the whole run.
3. The rush: `--customers` new customers POST /orders in the same instant (a barrier releases them),
   each on its own connection; each then takes its order to COMPLETED like the others.
4. `--clients` clients connect at once and each sends one GET /config: all must be answered, no
   connection refused or reset.

Printed: p50/p95/max of POST /orders in the rush, of the order-to-screen push latency (from sending
POST /orders to the arrival at the customer's socket of the order's first message at least as new as
the answer) and of the 200 simultaneous requests, errors (non-2xx or connection errors), how far the
orders in flight moved during the rush (steps taken, longest pause of one order), the stack's CPU (its
process tree, from /proc) per completed order, and the load average before and after (the machine is
shared: figures mean little without it). `--profile` samples the stack with py-spy during the rush
and prints where its CPU went (by process: moto server, function workers, the stack's own).

The workflow waits as on AWS by default (time scale 1: the customer has 300 s to submit the drink, the
barista 900 s): with shorter waits (0.2 gave the customer 60 s), an order the saturated stack served
late had its wait end before its customer could act (410 InvalidToken), a loss the bench made itself.

Figures go to bench/results/rush.json. Nothing here passes or fails on a figure.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import http.client
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import ROOT, command_line, table, write_results

TARGET_P95_SECONDS = 2.0
RETRY_SECONDS = 1.0  # a 409 (the workflow's token is not there yet) is retried after this
FALLBACK_SECONDS = 10.0  # no message for the order this long: read it once with GET (counted)
ORDER_TIMEOUT = 240.0  # seconds one order may take before it counts as an error
READY_TIMEOUT = 120.0
TERMINAL = {"COMPLETED", "CANCELLED", "TIMED_OUT", "REJECTED", "FAILED"}


# ------------------------------------------------------------------------------------- the stack
@dataclass
class Stack:
    """`python -m local.cli` in a subprocess, and the CPU its process tree has used."""

    process: subprocess.Popen[bytes]
    log: Path
    api_port: int = 0  # the ports from the banner, once it is ready
    push_url: str = ""

    @classmethod
    @contextlib.contextmanager
    def running(cls, time_scale: float, log_dir: Path, api_workers: int) -> Iterator[Stack]:
        """Start the stack, wait for its Ready line, stop it (SIGTERM) at the end.

        Port 0: each server binds a free port itself and the banner says which (a port picked here could
        be taken before the stack binds it).
        """
        log = log_dir / "local.log"
        command = [
            sys.executable, "-m", "local.cli",
            "--port", "0", "--api-port", "0", "--push-port", "0",
            "--time-scale", str(time_scale), "--api-workers", str(api_workers),
        ]  # fmt: skip
        with log.open("wb") as sink:
            process = subprocess.Popen(command, cwd=ROOT, stdout=sink, stderr=subprocess.STDOUT)
        stack = cls(process, log)
        try:
            stack._wait_ready()
            yield stack
        finally:
            process.terminate()
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"make local exited: {self.log.read_text(errors='replace')[-2000:]}")
            output = self.log.read_text(errors="replace")
            if "Ready in" in output:
                api = re.search(r"^HTTP API\s+http://[^:\s]+:(\d+)", output, re.MULTILINE)
                push = re.search(r"^Push \(WebSocket\)\s+(ws://\S+)", output, re.MULTILINE)
                if api is None or push is None:
                    raise RuntimeError(f"no HTTP API or push URL in make local's banner: {output[-2000:]}")
                self.api_port, self.push_url = int(api.group(1)), push.group(1)
                return
            time.sleep(0.2)
        raise TimeoutError("make local did not print its Ready line")

    def cpu_seconds(self) -> float:
        """User + system CPU of the stack's process and its descendants so far (Linux /proc)."""
        ticks = os.sysconf("SC_CLK_TCK")
        total = 0.0
        for pid in _descendants(self.process.pid):
            with contextlib.suppress(OSError):
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                total += (int(fields[11]) + int(fields[12])) / ticks  # utime, stime
        return total


def _descendants(root: int) -> list[int]:
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                parents[int(entry.name)] = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
    found, frontier = [root], [root]
    while frontier:
        children = [pid for pid, parent in parents.items() if parent in frontier]
        found += children
        frontier = children
    return found


# ------------------------------------------------------------------------------------------ clients
@dataclass
class Reply:
    """One HTTP exchange: status (0 on a connection error), parsed body, seconds, error text."""

    status: int
    body: Any
    seconds: float
    error: str | None = None


class Client:
    """One user of the API; every request on a new connection, as a burst of phones would open them."""

    def __init__(self, port: int, token: str) -> None:
        self.port = port
        self.token = token

    def call(self, method: str, path: str, body: Any = None) -> Reply:
        """Send one request; a refused or reset connection is a Reply with status 0, not an exception."""
        started = time.monotonic()
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
        headers = {"Authorization": f"Bearer {self.token}"}
        payload = None
        if body is not None:
            payload = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        try:
            connection.request(method, path, body=payload, headers=headers)
            response = connection.getresponse()
            raw = response.read()
            parsed = json.loads(raw) if raw else None
            return Reply(response.status, parsed, time.monotonic() - started)
        except (OSError, http.client.HTTPException) as error:
            return Reply(0, None, time.monotonic() - started, f"{type(error).__name__}: {error}")
        finally:
            connection.close()


class PushFeed:
    """The push connections of every screen in the run, on one event loop (a thread of this process).

    Records each order message with its arrival time; a screen waits on it for its order's next state.
    """

    def __init__(self, url: str) -> None:
        self.url = url
        self.messages: dict[str, list[tuple[float, dict[str, Any]]]] = {}  # orderId -> (arrived, order)
        self.connect_errors: list[str] = []
        self._changed = threading.Condition()
        self._loop = asyncio.new_event_loop()
        self.connections: list[Any] = []
        self._thread = threading.Thread(target=self._loop.run_forever, name="bench-push", daemon=True)
        self._thread.start()

    def connect(self, tokens: list[str]) -> None:
        """Open one connection per token, all at once; a refused handshake is recorded, not raised."""
        future = asyncio.run_coroutine_threadsafe(self._connect_all(tokens), self._loop)
        future.result(timeout=READY_TIMEOUT * 2)

    async def _connect_all(self, tokens: list[str]) -> None:
        await asyncio.gather(*(self._connect(token) for token in tokens))

    async def _connect(self, token: str) -> None:
        from websockets.asyncio.client import connect
        from websockets.typing import Subprotocol

        try:
            connection = await connect(
                self.url,
                subprotocols=[Subprotocol("serverlesspresso.v1"), Subprotocol(token)],
                open_timeout=120,
            )
        except Exception as error:
            self.connect_errors.append(f"{type(error).__name__}: {error}"[:200])
            return
        self.connections.append(connection)
        self._loop.create_task(self._read(connection))

    async def _read(self, connection: Any) -> None:
        with contextlib.suppress(Exception):
            async for message in connection:
                arrived = time.monotonic()
                parsed = json.loads(message)
                if parsed.get("type") == "order":
                    order = parsed["order"]
                    with self._changed:
                        self.messages.setdefault(str(order["orderId"]), []).append((arrived, order))
                        self._changed.notify_all()

    def first(self, order_id: str, after: float, shows: Any, timeout: float) -> tuple[float, Any] | None:
        """The first message of the order that arrived after `after` and `shows` (arrival, order), or None
        after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for arrived, order in self.messages.get(order_id, []):
                    if arrived >= after and shows(order):
                        return arrived, order
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self._changed.wait(left)

    def close(self) -> None:
        """Close every connection and stop the loop."""

        async def close_all() -> None:
            await asyncio.gather(*(c.close() for c in self.connections), return_exceptions=True)

        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(close_all(), self._loop).result(timeout=30)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=30)


@dataclass
class OrderLife:
    """One order taken through its life over HTTP, followed on the push channel, with when each step
    happened."""

    customer: Client
    barista: Client
    feed: PushFeed
    steps: list[tuple[float, str]] = field(default_factory=list)
    placed: Reply | None = None
    pushed_seconds: float | None = None  # POST /orders sent -> its first message at the customer's socket
    fallback_reads: int = 0
    error: str | None = None

    def run(self, barrier: threading.Barrier | None = None) -> None:
        """Place the order (after the barrier, if any) and take it to COMPLETED; errors are recorded."""
        try:
            if barrier is not None:
                barrier.wait()
            sent = time.monotonic()
            self.placed = self.customer.call("POST", "/orders")
            if self.placed.status != 202:
                raise RuntimeError(
                    f"POST /orders: {self.placed.status} {self.placed.error or self.placed.body}"
                )
            self._step("PLACED")
            order_id, version = str(self.placed.body["orderId"]), self.placed.body["version"]
            first = self.feed.first(order_id, sent, lambda o: o["version"] >= version, ORDER_TIMEOUT)
            if first is not None:
                self.pushed_seconds = first[0] - sent
            order = f"/orders/{order_id}"
            self._until(order, "WAITING_FOR_CUSTOMER")
            self._act(self.customer, "PUT", order, {"drink": "Latte", "modifiers": ["Oat milk"]})
            self._until(order, "WAITING_FOR_BARISTA")
            self._act(self.barista, "POST", f"{order}/make")
            self._act(self.barista, "POST", f"{order}/complete")
            self._until(order, "COMPLETED")
        except Exception as error:
            self.error = str(error)[:300]

    def _step(self, name: str) -> None:
        self.steps.append((time.monotonic(), name))

    def _act(self, client: Client, method: str, path: str, body: Any = None) -> None:
        deadline = time.monotonic() + ORDER_TIMEOUT
        while True:
            reply = client.call(method, path, body)
            if 200 <= reply.status < 300:
                self._step(f"{method} {path.rsplit('/', 1)[-1]}")
                return
            if reply.status != 409 or time.monotonic() > deadline:  # 409: not ready yet, retry
                raise RuntimeError(f"{method} {path}: {reply.status} {reply.error or reply.body}")
            time.sleep(RETRY_SECONDS)

    def _until(self, path: str, state: str) -> None:
        """Wait for the order's state on the push channel; after FALLBACK_SECONDS of silence, read it."""
        order_id = path.rsplit("/", 1)[-1]
        deadline = time.monotonic() + ORDER_TIMEOUT
        while time.monotonic() < deadline:
            pushed = self.feed.first(
                order_id, 0, lambda o: o["state"] in (state, *TERMINAL), FALLBACK_SECONDS
            )
            if pushed is not None:
                current = pushed[1]["state"]
            else:
                self.fallback_reads += 1
                reply = self.customer.call("GET", path)
                current = reply.body.get("state") if reply.status == 200 and reply.body else None
            if current == state:
                self._step(state)
                return
            if current in TERMINAL:
                raise RuntimeError(f"{path} ended {current} waiting for {state}")
        raise TimeoutError(f"{path}: no {state} after {ORDER_TIMEOUT} s")


def token(user: str, role: str = "customer") -> str:
    """A token the stack accepts (the same signing key as `make token`)."""
    from local.auth import LocalIdp

    return LocalIdp().issue_token(user, role)


# ------------------------------------------------------------------------------------------ figures
def percentile(values: list[float], share: float) -> float:
    """Nearest-rank percentile (0 for no values)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(share * len(ordered)) - 1))]


def latency_row(name: str, replies: list[Reply], expected: int) -> list[Any]:
    """A table row: count, p50/p95/max seconds, errors (any other status, or a connection error)."""
    errors = sum(1 for reply in replies if reply.status != expected)
    return seconds_row(name, [reply.seconds for reply in replies], errors)


def seconds_row(name: str, seconds: list[float], errors: int) -> list[Any]:
    """A table row: count, p50/p95/max of the seconds, errors."""
    return [
        name,
        len(seconds),
        f"{percentile(seconds, 0.5):.2f}",
        f"{percentile(seconds, 0.95):.2f}",
        f"{max(seconds, default=0):.2f}",
        errors,
    ]


def _errors(replies: list[Reply], expected: int) -> dict[str, int]:
    return dict(
        Counter(reply.error or f"HTTP {reply.status}" for reply in replies if reply.status != expected)
    )


def _profile(pid: int, seconds: float, out: Path) -> subprocess.Popen[bytes]:
    spy = Path(sys.executable).with_name("py-spy")
    command = [str(spy), "record", "--pid", str(pid), "--subprocesses", "--duration", str(int(seconds) + 1)]
    command += ["--format", "raw", "--full-filenames", "--output", str(out), "--nonblocking"]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


@dataclass
class Profile:
    """Shares of py-spy's samples: by process, by the work each process was doing, by innermost function."""

    by_process: list[tuple[str, float]]
    by_work: list[tuple[str, float]]
    by_function: list[tuple[str, float]]


# The moto server's packages that route and serialize any request, not one service's work.
MOTO_COMMON = {"core", "utilities", "moto_server", "moto_api", "backends", "settings"}


def profile_summary(raw: Path, top: int = 12) -> Profile:
    """py-spy's collapsed stacks -> the shares of samples by process, by work and by innermost function.

    py-spy samples only threads that are running (not idle), so the shares say where CPU went. "Work" is
    the outermost frame that says what a sample was for: a moto service (its backend and the ASL
    interpreter run in the server's threads), a function's handler, a part of the local engine.
    """
    by_process: Counter[str] = Counter()
    by_work: Counter[str] = Counter()
    by_function: Counter[str] = Counter()
    for line in raw.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        # `process PID:"command line"` of the stack, then of each child down to the sampled one, then
        # that process's frames (outermost first)
        frames = stack.split(";")
        processes = [frame for frame in frames if frame.startswith("process ")]
        own_frames = [frame.strip() for frame in frames[len(processes) :]]
        sampled = processes[-1] if processes else ""
        if "local.server" in sampled:
            kind = "moto server"
        elif "multiprocessing" in sampled or "spawn_main" in sampled:
            kind = "function workers"
        else:
            kind = "stack (dispatcher, API, push)"
        short_kind = kind.split(maxsplit=1)[0]
        by_process[kind] += int(count)
        by_work[f"{short_kind}: {_work_of(kind, own_frames)}"] += int(count)
        innermost = _short(own_frames[-1]) if own_frames else "(native code)"
        by_function[f"{short_kind}: {innermost}"] += int(count)
    total = sum(by_process.values()) or 1
    return Profile(
        [(name, samples / total) for name, samples in by_process.most_common()],
        [(name, samples / total) for name, samples in by_work.most_common(top)],
        [(name, samples / total) for name, samples in by_function.most_common(top)],
    )


def _work_of(kind: str, frames: list[str]) -> str:
    paths = [frame[frame.rfind("(") + 1 : frame.rfind(":")] for frame in frames]
    if kind == "moto server":
        for path in paths:
            if "/moto/" in path:
                package = path.split("/moto/", 1)[1].split("/", 1)[0]
                if package not in MOTO_COMMON and not package.endswith(".py"):
                    return package
        if any("/moto/" in path for path in paths):
            return "request routing and serialization"
        return "HTTP serving" if any("serv" in path for path in paths) else "other"
    for path in paths:
        if "/functions/" in path and path.endswith("/app.py"):
            return path.split("/functions/", 1)[1].split("/", 1)[0]
    for path in paths:
        if path.startswith(f"{ROOT.as_posix()}/local/"):
            return f"local/{path.split('/local/', 1)[1]}"
    if kind == "function workers":
        return "waiting for and passing invocations"
    return "other"


def _short(frame: str) -> str:
    # `function (/full/path/file.py:line)` -> `function (file.py:line)`
    name, _, where = frame.partition(" (")
    return f"{name} ({where.rsplit('/', 1)[-1]}" if where else name


# --------------------------------------------------------------------------------------------- main
def main() -> None:
    """Run the rush once and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--customers", type=int, default=60, help="customers placing an order at once")
    parser.add_argument("--clients", type=int, default=200, help="clients connecting at once")
    parser.add_argument("--in-flight", type=int, default=20, help="orders moving before and during the rush")
    parser.add_argument(
        "--time-scale", type=float, default=1.0, help="workflow waits (1: AWS's, 300 s for the customer)"
    )
    parser.add_argument("--profile", action="store_true", help="py-spy the stack during the rush")
    parser.add_argument("--api-workers", type=int, default=4, help="make local's API worker processes")
    args = parser.parse_args()

    load_before = os.getloadavg()
    barista = Client(0, token("rush-barista", "barista"))
    regulars = [Client(0, token(f"regular-{n}")) for n in range(args.in_flight)]
    rushing = [Client(0, token(f"rush-{n}")) for n in range(args.customers)]
    screens = [token("rush-board", "barista"), token("rush-display", "display")]
    with (
        tempfile.TemporaryDirectory() as scratch,
        Stack.running(args.time_scale, Path(scratch), args.api_workers) as stack,
    ):
        for client in (barista, *regulars, *rushing):
            client.port = stack.api_port
        # Every phone and screen connects to the push channel first, all at once, as they would open.
        feed = PushFeed(stack.push_url)
        connect_started = time.monotonic()
        feed.connect(screens + [client.token for client in (*regulars, *rushing)])
        connect_seconds = time.monotonic() - connect_started
        capacity = args.customers + 2 * args.in_flight + 10
        configured = barista.call("PUT", "/config", {"isOpen": True, "maxInFlight": capacity})
        if configured.status != 200:
            raise SystemExit(f"PUT /config: {configured.status} {configured.body}")

        # 1. Orders in flight, each customer taking one order after another until the rush is over.
        rush_over = threading.Event()
        in_flight: list[OrderLife] = []

        def keep_ordering(number: int) -> None:
            while not rush_over.is_set():
                life = OrderLife(regulars[number], barista, feed)
                in_flight.append(life)
                life.run()

        movers = [
            threading.Thread(target=keep_ordering, args=(n,), daemon=True) for n in range(args.in_flight)
        ]
        for mover in movers:
            mover.start()
        time.sleep(3.0)  # let them get going

        # 2. The rush.
        cpu_before = stack.cpu_seconds()
        barrier = threading.Barrier(args.customers)
        rush = [OrderLife(customer, barista, feed) for customer in rushing]
        threads = [threading.Thread(target=life.run, args=(barrier,), daemon=True) for life in rush]
        spy_out = Path(scratch) / "rush.spy"
        spy = _profile(stack.process.pid, 20, spy_out) if args.profile else None
        rush_started = time.monotonic()
        for thread in threads:
            thread.start()
        while any(life.placed is None and life.error is None for life in rush):
            time.sleep(0.05)
        rush_answered = time.monotonic()
        for thread in threads:
            thread.join(ORDER_TIMEOUT * 4)
        rush_over.set()
        for mover in movers:
            mover.join(ORDER_TIMEOUT * 4)
        cpu_used = stack.cpu_seconds() - cpu_before
        if spy is not None:
            spy.wait()
        profile = profile_summary(spy_out) if spy is not None and spy_out.exists() else Profile([], [], [])

        # 3. Everyone at once.
        crowd_barrier = threading.Barrier(args.clients)
        crowd: list[Reply] = []

        def one_client(number: int) -> None:
            client = Client(stack.api_port, token(f"crowd-{number}"))
            crowd_barrier.wait()
            crowd.append(client.call("GET", "/config"))

        crowd_threads = [threading.Thread(target=one_client, args=(n,)) for n in range(args.clients)]
        for thread in crowd_threads:
            thread.start()
        for thread in crowd_threads:
            thread.join()
        feed.close()
    load_after = os.getloadavg()

    # Figures.
    placed = [life.placed for life in rush if life.placed is not None]
    steps_in_rush = [at for life in in_flight for at, _ in life.steps if rush_started <= at <= rush_answered]
    pauses = [
        later - earlier
        for life in in_flight
        for (earlier, _), (later, _) in zip(life.steps, life.steps[1:], strict=False)
        if earlier <= rush_answered and later >= rush_started
    ]
    completed = [life for life in rush + in_flight if life.steps and life.steps[-1][1] == "COMPLETED"]
    completed_in_window = [life for life in completed if life.steps[-1][0] >= rush_started]
    failed = [life.error for life in rush + in_flight if life.error]
    post_p95 = percentile([reply.seconds for reply in placed], 0.95)
    pushed = [life.pushed_seconds for life in rush if life.pushed_seconds is not None]
    not_pushed = sum(1 for life in rush if life.placed is not None and life.placed.status == 202) - len(
        pushed
    )
    fallback_reads = sum(life.fallback_reads for life in rush + in_flight)

    headers = ["requests", "n", "p50 s", "p95 s", "max s", "errors"]
    rows = [
        latency_row(f"POST /orders, {args.customers} customers in the same instant", placed, 202),
        seconds_row("  -> its message at the customer's socket (push)", pushed, not_pushed),
        latency_row(f"GET /config, {args.clients} clients at once", crowd, 200),
    ]
    print(
        f"Rush hour on make local (time scale {args.time_scale}; {args.in_flight} orders kept in flight; "
        f"{args.api_workers} API worker processes; {len(feed.connections)} push connections, opened at "
        f"once in {connect_seconds:.1f} s; load average {load_before[0]:.1f} before, {load_after[0]:.1f} "
        f"after, {os.cpu_count()} CPUs)"
    )
    print(table(headers, rows))
    cpu_per_order = cpu_used / len(completed_in_window) if completed_in_window else None
    print(
        f"POST /orders p95 {post_p95:.2f} s (target <= {TARGET_P95_SECONDS:.0f} s: "
        f"{'met' if post_p95 <= TARGET_P95_SECONDS else f'missed by {post_p95 - TARGET_P95_SECONDS:.2f} s'})."
    )
    print(
        f"Orders in flight during the rush ({rush_answered - rush_started:.1f} s until every POST was "
        f"answered): {len(steps_in_rush)} steps taken; longest pause of one order "
        f"{max(pauses, default=0):.1f} s; fallback reads (no message for {FALLBACK_SECONDS:.0f} s): "
        f"{fallback_reads}."
    )
    print(
        f"Stack CPU from the rush until its orders completed: {cpu_used:.1f} s for "
        f"{len(completed_in_window)} completed orders"
        + (f" = {cpu_per_order:.3f} s per order." if cpu_per_order else ".")
    )
    print(f"Orders that did not complete: {len(failed)}" + (f" (first: {failed[0]})" if failed else ""))
    print(
        f"Errors: rush {_errors(placed, 202) or 'none'}; crowd {_errors(crowd, 200) or 'none'}; "
        f"push connections refused {len(feed.connect_errors)}"
        + (f" (first: {feed.connect_errors[0]})" if feed.connect_errors else "")
    )
    if profile.by_process:
        print("\nWhere the stack's CPU went during the rush (py-spy samples of running threads)")
        print(table(["process", "share"], [(name, f"{share:.0%}") for name, share in profile.by_process]))
        print(table(["work", "share"], [(name, f"{share:.1%}") for name, share in profile.by_work]))
        print(
            table(
                ["function on top of the stack", "share"], [(n, f"{p:.1%}") for n, p in profile.by_function]
            )
        )

    path = write_results(
        "rush",
        command_line(),
        {
            "customers": args.customers,
            "clients": args.clients,
            "in_flight": args.in_flight,
            "time_scale": args.time_scale,
            "api_workers": args.api_workers,
            "post_orders_seconds": sorted(reply.seconds for reply in placed),
            "post_orders": dict(zip(headers[1:], rows[0][1:], strict=True)),
            "push_latency": dict(zip(headers[1:], rows[1][1:], strict=True)),
            "push_latency_seconds": sorted(pushed),
            "push_connections": len(feed.connections),
            "push_connect_seconds": connect_seconds,
            "push_connect_errors": feed.connect_errors,
            "fallback_reads": fallback_reads,
            "crowd": dict(zip(headers[1:], rows[2][1:], strict=True)),
            "load_average_before": load_before,
            "load_average_after": load_after,
            "target_p95_seconds": TARGET_P95_SECONDS,
            "rush_errors": _errors(placed, 202),
            "crowd_errors": _errors(crowd, 200),
            "in_flight_steps_during_rush": len(steps_in_rush),
            "longest_in_flight_pause_seconds": max(pauses, default=0),
            "stack_cpu_seconds": cpu_used,
            "completed_orders": len(completed_in_window),
            "stack_cpu_seconds_per_order": cpu_per_order,
            "orders_not_completed": failed,
            "profile_by_process": dict(profile.by_process),
            "profile_by_work": dict(profile.by_work),
            "profile_top_functions": dict(profile.by_function),
        },
    )
    print(f"\nwrote {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
