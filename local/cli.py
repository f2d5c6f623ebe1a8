"""`make local`: the whole application on loopback, in the foreground, with no AWS account.

    python -m local.cli [--port 4566] [--api-port 3000] [--time-scale 1]

It runs a patched moto server (local/server.py, in a child process of its own) with the application
provisioned from template.yaml (local/engine.py), the event dispatcher (rules -> handlers /
StartExecution), the HTTP API (local/api_server.py) and the push channel (local/push); the functions
run in worker processes (local/workers). `--api-workers 0` keeps all of it in this one process.

It prints the endpoints, the state machine's ARN and a line
`Ready in X.XXs`, then logs, one short line each, every event delivery, every state an execution
enters, every API request and every line a handler logs, until Ctrl-C (SIGINT) or SIGTERM stops it
cleanly (exit 0).

The default time scale is 1: the workflow waits as long as on AWS (300 s for the customer, 900 s for
the barista), so the workshop's walkthrough can be done by hand with the AWS CLI.
"""

from __future__ import annotations

import time

# Before the heavy imports (boto3, moto): "Ready in" counts everything after the interpreter started.
_STARTED = time.monotonic()

import argparse  # noqa: E402  (after the clock on purpose)
import copy  # noqa: E402
import functools  # noqa: E402
import io  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import signal  # noqa: E402
import socket  # noqa: E402
import sys  # noqa: E402
import threading  # noqa: E402
from collections.abc import Callable  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from datetime import datetime  # noqa: E402
from pathlib import Path  # noqa: E402
from types import FrameType  # noqa: E402
from typing import TYPE_CHECKING, Any, TextIO  # noqa: E402

from local.api_server import DEFAULT_PORT as DEFAULT_API_PORT  # noqa: E402  (no boto3/moto: cheap)
from local.api_server import LocalApi, api_definition  # noqa: E402
from local.auth import LocalIdp  # noqa: E402
from local.server import PortInUse  # noqa: E402  (moto is imported where it runs: cheap)
from local.web.site import WebSite  # noqa: E402

if TYPE_CHECKING:
    from moto.moto_server.threaded_moto_server import ThreadedMotoServer

    from local.engine import LocalEngine
    from local.push.server import LocalPush
    from local.server import MotoProcess
    from local.workers import FunctionWorkers

DEFAULT_HOST = "127.0.0.1"
DEFAULT_MOTO_PORT = 4566  # the port AWS-emulator users expect (`--endpoint-url http://127.0.0.1:4566`)
DEFAULT_TEMPLATE = Path(__file__).resolve().parent.parent / "template.yaml"
REGION = "us-east-1"
READY_PREFIX = "Ready in "  # the line scripts and tests wait for
DEFAULT_API_WORKERS = 4  # processes serving API requests side by side (local/workers)
# Worker processes per function that the rules deliver events to, when the API has workers: event
# deliveries then run side by side, on both cores, beside moto's process.
HANDLER_WORKERS = 2


@dataclass
class LocalStack:
    """A running stack: patched moto server, provisioned engine with its dispatcher, the HTTP API and
    the push channel (WebSocket)."""

    endpoint_url: str
    engine: LocalEngine
    api: LocalApi | None
    moto: ThreadedMotoServer | MotoProcess
    api_workers: FunctionWorkers | None = None
    push: LocalPush | None = None
    handler_workers: FunctionWorkers | None = None
    # moto's process-wide Step Functions config before this stack's server turned ASL execution on
    # (restored at close)
    sfn_config_before: dict[str, Any] = field(default_factory=dict)

    @property
    def push_url(self) -> str | None:
        """The screens' pushUrl (ws://HOST:PORT), or None when the template declares no WebSocket API."""
        return self.push.url if self.push is not None else None

    @classmethod
    def start(
        cls,
        *,
        template: str | Path = DEFAULT_TEMPLATE,
        host: str = DEFAULT_HOST,
        port: int = DEFAULT_MOTO_PORT,
        api_port: int = DEFAULT_API_PORT,
        push_port: int | None = None,
        time_scale: float = 1.0,
        api_log: Callable[[str], None] | None = None,
        push_log: Callable[[str], None] | None = None,
        idp: LocalIdp | None = None,
        api_workers: int = DEFAULT_API_WORKERS,
        moto_process: bool | None = None,
        handler_workers: int | None = None,
    ) -> LocalStack:
        """Start everything (port 0: any free port); the API only if the template declares HttpApi routes,
        the push channel only if it declares WebSocket routes.

        `push_port` defaults to the API's port + 1 (any free port when the API's is 0).
        `api_log` receives the API's access-log lines (default: the API server's own, on stderr);
        `push_log` the push server's connection lines (default: none);
        `idp` signs and checks the tokens (default: the key in .local/jwt that `make token` uses);
        `api_workers` processes run the API's functions side by side (local/workers); 0: in this process,
        one invocation at a time;
        `handler_workers` processes each function the rules deliver events to (default: HANDLER_WORKERS
        when `api_workers` > 0, else 0: in this process, where a test's call recorder sees their calls);
        `moto_process`: moto runs in a child process of its own (local/server.py, MotoProcess), so it has
        a core to itself (default: when `api_workers` > 0; with 0 everything stays in this process,
        where the engine's fault injection reaches the workflow's calls too).
        """
        from local.engine import LocalEngine
        from local.push.relay import install_in_worker
        from local.push.server import LocalPush, websocket_routes
        from local.server import MotoProcess, start_server
        from local.template import Template
        from local.workers import FunctionWorkers

        if push_port is None:
            push_port = api_port + 1 if api_port else 0
        wants_push = websocket_routes(Template.load(template)).connect is not None
        # Refuse a taken port before anything starts (one taken later still ends the start: PortInUse).
        for needed in (port, api_port, push_port if wants_push else 0):
            _require_free_port(host, needed)
        idp = idp or LocalIdp()
        push = LocalPush(idp, host=host, port=push_port, log_line=push_log) if wants_push else None
        sfn_config_before: dict[str, Any] = {}
        moto: ThreadedMotoServer | MotoProcess
        if api_workers > 0 if moto_process is None else moto_process:
            moto = MotoProcess.start(port, host)
            endpoint_url = moto.endpoint_url
        else:
            from moto.core.config import default_user_config

            sfn_config_before = copy.deepcopy(dict(default_user_config.get("stepfunctions", {})))
            moto, endpoint_url = start_server(port, host)
        engine: LocalEngine | None = None
        workers: FunctionWorkers | None = None
        handlers: FunctionWorkers | None = None
        try:
            engine = LocalEngine.provision(
                template,
                time_scale=time_scale,
                endpoint_url=endpoint_url,
                function_env=push.function_env if push is not None else None,
            )
            # Functions in worker processes reach the push server here without HTTP (local/push/relay.py).
            worker_setup = None if push is None else functools.partial(install_in_worker, push.relay.address)
            routes = api_definition(engine.template).routes
            api_functions = {route.function for route in routes}
            if handler_workers is None:
                handler_workers = HANDLER_WORKERS if api_workers > 0 else 0
            if handler_workers > 0:
                # The rules' targets; the push routes' functions stay here (a handshake waits for them).
                targets = {r.target for r in engine.provisioned.routes if r.target_kind == "function"}
                handlers = FunctionWorkers(engine, targets, workers=handler_workers, setup=worker_setup)
                engine.invoker = handlers.invoke
                engine.dispatcher.concurrency = handler_workers
            engine.dispatcher.start()
            api: LocalApi | None = None
            site = WebSite(idp, time_scale=time_scale)  # the screens, served beside the API
            if routes:
                if api_workers > 0:
                    workers = FunctionWorkers(engine, api_functions, workers=api_workers, setup=worker_setup)
                api = _Api(workers or engine, host=host, port=api_port, idp=idp, log_line=api_log, site=site)
                api.start()
                if workers is not None:  # a burst: more requests than workers to answer them
                    engine.dispatcher.busy = lambda api=api: api.in_flight > api_workers
                    # Except the push fan-out: held back, its screens would read their orders again
                    # instead (a request more in the burst for each).
                    engine.dispatcher.never_deferred = screen_posting_functions(engine)
            if push is not None:
                push.start(engine)
                site.push_url = push.url  # the screens' pushUrl (runtime-config.json)
            if handlers is not None:  # last: their cold starts need not hold up the stack's start
                handlers.warm()
        except BaseException:  # a half-started stack must not keep threads, processes or the port
            if push is not None:
                push.stop()
            for pool in (workers, handlers):
                if pool is not None:
                    pool.close()
            if engine is not None:
                engine.close()
            moto.stop()
            raise
        return cls(
            endpoint_url,
            engine,
            api,
            moto,
            api_workers=workers,
            push=push,
            handler_workers=handlers,
            sfn_config_before=sfn_config_before,
        )

    def close(self) -> None:
        """Stop the push channel, the API and its workers, the dispatcher and every running execution,
        then moto."""
        from local.server import MotoProcess

        try:
            if self.push is not None:
                self.push.stop()
            if self.api is not None:
                self.api.stop()
            if self.api_workers is not None:
                self.api_workers.close()
            self.engine.close()  # the dispatcher first: then no delivery is waiting on a handler worker
            if self.handler_workers is not None:
                self.handler_workers.close()
        finally:
            self.moto.stop()
            if not isinstance(self.moto, MotoProcess):
                from moto.core.config import default_user_config
                from moto.moto_api._internal import moto_api_backend

                # The server ran in this process, and moto's accounts and config are process-wide: a
                # later stack or mock_aws here would find these tables (or ASL execution on). Forget
                # them, as a fresh process would.
                moto_api_backend.reset()
                default_user_config["stepfunctions"] = copy.deepcopy(self.sfn_config_before)  # type: ignore[typeddict-item]

    def __enter__(self) -> LocalStack:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class _Api(LocalApi):
    """The API server, its access-log lines sent to `log_line` when given (a console, a log file)."""

    def __init__(self, *args: Any, log_line: Callable[[str], None] | None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._log_line = log_line

    def log(self, line: str) -> None:
        """One access-log line."""
        if self._log_line is None:
            super().log(line)
        else:
            self._log_line(line)


def screen_posting_functions(engine: LocalEngine) -> frozenset[str]:
    """The rules' target functions that post to the screens: those given the push endpoint."""
    return frozenset(
        route.target
        for route in engine.provisioned.routes
        if route.target_kind == "function"
        and "PUSH_ENDPOINT"
        in engine.template.properties(route.target).get("Environment", {}).get("Variables", {})
    )


def _require_free_port(host: str, port: int) -> None:
    if port == 0:
        return
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        # The same option the servers use, so a port in TIME_WAIT counts as free, a listener as taken.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as error:
            raise PortInUse(f"port {port} on {host} is in use ({error.strerror})") from None


# ------------------------------------------------------------------------------------- activity log
class Console:
    """Thread-safe, time-stamped output lines on the stream given (default: stdout as it is now)."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stdout
        self._lock = threading.Lock()

    def line(self, kind: str, text: str, at: datetime | None = None) -> None:
        """`HH:MM:SS.mmm [kind] text`, stamped now or at `at` (local time)."""
        stamp = (at.astimezone() if at else datetime.now()).strftime("%H:%M:%S.%f")[:-3]
        self.print(f"{stamp} [{kind}] {text}")

    def print(self, text: str) -> None:
        """One line as is."""
        with self._lock:
            print(text, file=self.stream, flush=True)


# Powertools Logger keys that say nothing new on a local console (the function name is kept, shortened).
_QUIET_LOG_KEYS = frozenset(
    {
        "level",
        "location",
        "message",
        "timestamp",
        "service",
        "cold_start",
        "function_name",
        "function_memory_size",
        "function_arn",
        "function_request_id",
        "correlation_id",
        "xray_trace_id",
        "sampling_rate",
    }
)


def compact_log_line(line: str) -> str:
    """A Powertools JSON log line as `Function LEVEL message [orderId] key=value ...`; others as they are."""
    try:
        record = json.loads(line)
    except ValueError:
        return line
    if not isinstance(record, dict) or "message" not in record or "level" not in record:
        return line
    function = str(record.get("function_name", "")).rsplit("-", 1)[-1]
    parts = [function, str(record["level"]), str(record["message"])]
    if record.get("correlation_id"):
        parts.append(f"[{record['correlation_id']}]")
    parts += [f"{key}={value}" for key, value in record.items() if key not in _QUIET_LOG_KEYS]
    return " ".join(part for part in parts if part)


class LambdaOutput(io.TextIOBase):
    """Stands in for sys.stdout while the stack runs: each line a handler prints (Powertools' JSON
    logs, as Lambda would send to CloudWatch) becomes one compact `[lambda]` console line."""

    def __init__(self, console: Console) -> None:
        super().__init__()
        self._console = console
        self._pending = ""
        self._lock = threading.Lock()

    def writable(self) -> bool:
        """Always."""
        return True

    def write(self, text: str) -> int:
        """Buffer until a newline, then print each complete line."""
        with self._lock:
            *lines, self._pending = (self._pending + text).split("\n")
        for line in lines:
            if line.strip():
                self._console.line("lambda", compact_log_line(line))
        return len(text)


@dataclass
class _Watched:
    order_id: str
    events_printed: int = 0
    done: bool = False
    read_at: float = 0.0  # when its history was last read (time.monotonic())


# Reading a history is the activity log's one large cost (~25 ms of the stack's CPU with moto's
# serializer): with 100 orders in flight, reading each one every poll took a third of the stack's CPU
# and slowed the rush it reports on. Running executions' histories are read round-robin, least
# recently read first, within this share of the log's time; the lines then lag under a burst (each
# is stamped with the time its state was entered, not when it was printed). An execution that ended
# is always read to its end at once.
HISTORY_SHARE = 0.15
LIST_PAGE = 100


@dataclass
class ActivityLog:
    """Polls the engine and prints each delivery and each state entered (one line each).

    Polling, not hooks: it reads what any client could read (the dispatcher's delivery record,
    ListExecutions and GetExecutionHistory), so it changes nothing in moto; its cost is bounded (see
    HISTORY_SHARE), not one history call per running execution per poll.
    """

    engine: LocalEngine
    console: Console
    poll_interval: float = 0.2
    _deliveries_printed: int = 0
    _errors_printed: int = 0
    _executions: dict[str, _Watched] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        """Poll in a background thread until stop()."""
        self._thread = threading.Thread(target=self._run, name="local-activity-log", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop polling (after a last poll, so nothing that happened is left unprinted)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def _run(self) -> None:
        while not self._stop.wait(self.poll_interval):
            self._poll_reporting_errors()
        self._poll_reporting_errors(last=True)  # so nothing that happened is left unprinted

    def _poll_reporting_errors(self, last: bool = False) -> None:
        try:
            self.poll(None if last else self.poll_interval * HISTORY_SHARE)
        except Exception as error:  # e.g. a request failing at shutdown: say so, keep going
            self.console.line("error", f"activity log: {type(error).__name__}: {error}")

    def poll(self, budget_seconds: float | None = None) -> None:
        """Print what happened since the previous poll; running executions' histories are read for at
        most `budget_seconds` (None: all of them)."""
        self._print_deliveries()
        self._print_states(budget_seconds)

    def _print_deliveries(self) -> None:
        dispatcher = self.engine.dispatcher
        delivered = dispatcher.delivered[self._deliveries_printed :]
        for delivery in delivered:
            outcome = delivery.outcome if delivery.error is None else f"{delivery.outcome} ({delivery.error})"
            attempt = f" attempt {delivery.attempt}" if delivery.attempt > 1 else ""
            self.console.line("event", f"{delivery.detail_type} → {delivery.target} {outcome}{attempt}")
        self._deliveries_printed += len(delivered)
        errors = dispatcher.errors[self._errors_printed :]
        for error in errors:
            self.console.line("error", f"dispatcher: {error}")
        self._errors_printed += len(errors)

    def _print_states(self, budget_seconds: float | None) -> None:
        sfn = self.engine.clients["stepfunctions"]
        arn = self.engine.state_machine_arn
        # New executions (newest first, so only the pages down to the first one already known)...
        new: list[dict[str, Any]] = []
        for page in sfn.get_paginator("list_executions").paginate(
            stateMachineArn=arn, PaginationConfig={"PageSize": LIST_PAGE}
        ):
            fresh = [e for e in page["executions"] if e["executionArn"] not in self._executions]
            new += fresh
            if len(fresh) < len(page["executions"]):
                break
        for execution in reversed(new):  # oldest first
            self._executions[execution["executionArn"]] = _Watched(order_id=execution.get("name", ""))
        # ...and which of the known ones still run: the others ended, and are read to their end now.
        running = {
            execution["executionArn"]
            for page in sfn.get_paginator("list_executions").paginate(
                stateMachineArn=arn, statusFilter="RUNNING"
            )
            for execution in page["executions"]
        }
        for execution_arn, watched in list(self._executions.items()):
            if not watched.done and execution_arn not in running:
                self._print_execution(execution_arn, watched, ended=True)
        started = time.monotonic()
        for execution_arn, watched in sorted(
            ((a, w) for a, w in self._executions.items() if not w.done), key=lambda item: item[1].read_at
        ):
            if budget_seconds is not None and time.monotonic() - started > budget_seconds:
                break
            self._print_execution(execution_arn, watched, ended=False)

    def _print_execution(self, execution_arn: str, watched: _Watched, *, ended: bool) -> None:
        # An ended execution's description is read before its history: the history is then complete.
        sfn = self.engine.clients["stepfunctions"]
        execution = sfn.describe_execution(executionArn=execution_arn) if ended else None
        history = self.engine.history(execution_arn)
        watched.read_at = time.monotonic()
        for event in history[watched.events_printed :]:
            if event["type"] == "ExecutionStarted":
                watched.order_id = _order_id(event, default=watched.order_id)
            entered = event.get("stateEnteredEventDetails")
            if entered:  # stamped with the time the state was entered, not the time of this poll
                self.console.line("state", f"{watched.order_id} {entered['name']}", at=event["timestamp"])
        watched.events_printed = len(history)
        if execution is not None and execution["status"] != "RUNNING":
            status = execution["status"]
            took = (execution["stopDate"] - execution["startDate"]).total_seconds()
            self.console.line(
                "state", f"{watched.order_id} execution {status} ({took:.1f} s)", at=execution["stopDate"]
            )
            watched.done = True


def _order_id(started_event: dict[str, Any], default: str) -> str:
    """The orderId of the execution's input (`{"detail": {"orderId": ...}}`), else `default`."""
    try:
        detail = json.loads(started_event["executionStartedEventDetails"]["input"]).get("detail", {})
    except (KeyError, ValueError, AttributeError):
        return default
    order_id = detail.get("orderId") if isinstance(detail, dict) else None
    return str(order_id) if order_id is not None else default


# --------------------------------------------------------------------------------------------- CLI
def _banner(stack: LocalStack, time_scale: float) -> list[str]:
    from local.timescale import scale_seconds

    endpoint = stack.endpoint_url
    lines = [
        f"AWS endpoint      {endpoint}  (region {REGION}, any credentials)",
        f"State machine     {stack.engine.state_machine_arn}",
        f"Event bus         {stack.engine.bus_name}",
        "Tables            " + ", ".join(sorted(stack.engine.table_names.values())),
    ]
    if stack.api is not None:
        lines.append(f"HTTP API          {stack.api.url}  (tokens: make token USER=alice | ROLE=barista)")
        lines.append(
            f"Screens           {stack.api.url}/  {stack.api.url}/barista  {stack.api.url}/display"
            "  (signed in: make -s link SCREEN=order|barista|display USER=name)"
        )
    else:
        lines.append("HTTP API          not served: template.yaml declares no HttpApi routes")
    if stack.push_url is not None:
        lines.append(f"Push (WebSocket)  {stack.push_url}  (watch: make watch USER=alice | ROLE=barista)")
    waits = f"customer {scale_seconds(300, time_scale)} s, barista {scale_seconds(900, time_scale)} s"
    lines.append(f"Time scale        {time_scale:g}  (waits: {waits})")
    lines.append(
        f"Try               aws stepfunctions list-state-machines --endpoint-url {endpoint} --region {REGION}"
    )
    return lines


def positive_number(text: str) -> float:
    """argparse type for a number that must be > 0 (time scales)."""
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError("must be > 0")
    return value


def main(argv: list[str] | None = None) -> int:
    """Run the stack until SIGINT/SIGTERM; 0 on a clean stop, 2 when it could not start."""
    parser = argparse.ArgumentParser(
        prog="make local", description="Serverlesspresso on one machine: moto + dispatcher + HTTP API."
    )
    parser.add_argument("--host", default=DEFAULT_HOST, help="interface to listen on (default: loopback)")
    parser.add_argument("--port", type=int, default=DEFAULT_MOTO_PORT, help="AWS endpoint port (moto)")
    parser.add_argument("--api-port", type=int, default=DEFAULT_API_PORT, help="HTTP API port")
    parser.add_argument("--push-port", type=int, default=None, help="WebSocket port (default: API port + 1)")
    parser.add_argument(
        "--time-scale",
        type=positive_number,
        default=1.0,
        help="multiply the workflow's waits (1: as on AWS; 0.01: 300 s -> 3 s)",
    )
    parser.add_argument(
        "--api-workers",
        type=int,
        default=DEFAULT_API_WORKERS,
        help="processes serving API requests side by side (0: one at a time, in the stack's process)",
    )
    parser.add_argument("--template", default=str(DEFAULT_TEMPLATE))
    parser.add_argument("--quiet", action="store_true", help="no activity log (events, states, requests)")
    args = parser.parse_args(argv)

    stop = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    # Handlers before the (slow) start, so an early Ctrl-C still ends in the clean shutdown below.
    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)

    # EMF metric blobs are for CloudWatch, unreadable in a console: off unless the caller set it.
    os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
    console = Console()
    saved_stdout = sys.stdout
    if not args.quiet:
        # Before the first invocation: the handlers' loggers bind to sys.stdout when they are loaded.
        sys.stdout = LambdaOutput(console)
    try:
        return _serve(args, console, stop)
    finally:
        sys.stdout = saved_stdout


def _serve(args: argparse.Namespace, console: Console, stop: threading.Event) -> int:
    try:
        stack = LocalStack.start(
            template=args.template,
            host=args.host,
            port=args.port,
            api_port=args.api_port,
            push_port=args.push_port,
            time_scale=args.time_scale,
            api_log=None if args.quiet else (lambda text: console.line("api", text)),
            api_workers=args.api_workers,
            push_log=None if args.quiet else (lambda text: console.line("push", text)),
        )
    except PortInUse as error:
        print(
            f"error: {error}; choose others, e.g. make local PORT=4567 API_PORT=3005 PUSH_PORT=3006",
            file=sys.stderr,
        )
        return 2
    activity = None if args.quiet else ActivityLog(stack.engine, console)
    try:
        for line in _banner(stack, args.time_scale):
            console.print(line)
        console.print(f"{READY_PREFIX}{time.monotonic() - _STARTED:.2f}s  (Ctrl-C to stop)")
        if activity is not None:
            activity.start()
        while not stop.wait(0.5):
            pass
        console.print("Stopping...")
    finally:
        if activity is not None:
            activity.stop()
        stack.close()
    console.print("Stopped.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
