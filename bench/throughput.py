"""The local engine's throughput: completed orders per second and peak memory, N orders in flight.

    .venv/bin/python bench/throughput.py [--in-flight 10,50,200] [--runs 3] [--orders-per-worker 3]

Engine: the whole application on the local engine (in-process moto): each of N workers places an
order (Validator.NewOrder on the bus, the rule starts the workflow), and answers as customer and then
as barista through the domain's resume_order as soon as the event handlers have stored each wait's
task token; an order counts when OrderEndedFunction has recorded it COMPLETED.

Floor: the same ASL on bare moto, no rules, no handlers: each worker starts the execution itself and
answers each callback with SendTaskSuccess as soon as the token appears in the execution's history;
an order counts when its execution has succeeded.

Neither side polls: the engine side is told when a handler has finished (the functions are wrapped),
the floor side when moto appends a history event (moto's EventManager.add_event is wrapped). So the
ratio shows what routing the events and running the handlers add, not what polling costs.

Workers run closed loops (a worker starts its next order when the last one completed) for
N x orders-per-worker orders, after a short warm-up. Every (side, N, run) is a fresh subprocess, so
peak memory (ru_maxrss) is that run's own.
"""

from __future__ import annotations

import argparse
import contextlib
import faulthandler
import json
import os
import resource
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (
    ROOT,
    TEMPLATE,
    command_line,
    median,
    profiling_all_threads,
    spread,
    table,
    time_by_package,
    top_functions,
    write_results,
)

TARGET_ORDERS_PER_SECOND = 20
TARGET_IN_FLIGHT = 200
TARGET_RATIO = 2.0
WARM_UP_ORDERS = 3
MIN_ORDERS = 30
FAILED = "execution failed"
ORDER_TIMEOUT = 300.0  # seconds one order may take before the run is declared failed
CUSTOMER_WAIT = "Emit - Workflow Started TT"
BARISTA_WAIT = "Emit - Awaiting Completion TT"


# ------------------------------------------------------------------------------------------- signals
class OrderFailed(Exception):
    """The order's execution failed: the order is counted as failed, the run goes on."""


@contextlib.contextmanager
def moto_callback_race(order_id: str) -> Iterator[None]:
    """moto 5.2.5's SendTask* loop over the running executions and fail with an AttributeError on one
    that is still parsing its definition (its `exec_worker.env` is None): the callback is lost. Count
    the order as failed (the run goes on) rather than hide it.
    """
    try:
        yield
    except AttributeError as race:
        if "callback_pool_manager" not in str(race):
            raise
        raise OrderFailed(f"order {order_id}: moto lost its callback ({race})") from None


class Signals:
    """Per-order milestones, set by whichever thread reaches them and awaited by the order's worker."""

    def __init__(self) -> None:
        self._values: dict[tuple[str, str], Any] = {}
        self._changed = threading.Condition()
        self._aborted: str | None = None

    def abort(self, reason: str) -> None:
        """Make every wait, current and future, raise: one failed order ends the run at once."""
        with self._changed:
            self._aborted = reason
            self._changed.notify_all()

    def set(self, order_id: str, milestone: str, value: Any = True) -> None:
        """Record that the order reached `milestone` (with a value, e.g. a task token)."""
        with self._changed:
            self._values[(order_id, milestone)] = value
            self._changed.notify_all()

    def wait(self, order_id: str, milestone: str, timeout: float = ORDER_TIMEOUT) -> Any:
        """The milestone's value, once it is set; OrderFailed at once if the order's execution failed."""
        key, failed = (order_id, milestone), (order_id, FAILED)
        with self._changed:
            if not self._changed.wait_for(
                lambda: key in self._values or failed in self._values or self._aborted, timeout=timeout
            ):
                raise TimeoutError(f"order {order_id}: no {milestone} after {timeout} s")
            if self._aborted:
                raise RuntimeError(f"run aborted: {self._aborted}")
            if failed in self._values:
                raise OrderFailed(f"order {order_id}: {self._values[failed]}")
            return self._values.pop(key)


class FailureWatch:
    """Turns a failed execution into an immediate failure of its order's run (instead of a long wait).

    Listens to moto's history events: remembers each execution's order (from ExecutionStarted) and its
    last task failure, and on ExecutionFailed/Aborted/TimedOut signals the order as failed, with why.
    """

    def __init__(self, signals: Signals) -> None:
        self._signals = signals
        self._orders: dict[int, str] = {}
        self._last_failure: dict[int, str] = {}

    def __call__(self, history: int, kind: str, details: dict[str, Any]) -> None:
        """A history event of the execution whose event manager is `history`."""
        if kind == "ExecutionStarted":
            started = json.loads(details["executionStartedEventDetails"]["input"])
            self._orders[history] = str(started["detail"]["orderId"])
        elif kind in ("TaskFailed", "TaskTimedOut", "TaskSubmitFailed", "TaskStartFailed"):
            self._last_failure[history] = json.dumps(details, default=str)[:600]
        elif kind in ("ExecutionFailed", "ExecutionAborted", "ExecutionTimedOut") and history in self._orders:
            why = self._last_failure.get(history) or json.dumps(details, default=str)[:600]
            self._signals.set(self._orders[history], FAILED, f"{kind} after {why}")


class SignallingFunction:
    """Wraps a LocalFunction in engine.functions: after each invocation, signals the order's milestone."""

    def __init__(self, function: Any, milestone: str, signals: Signals) -> None:
        self._function = function
        self._milestone = milestone
        self._signals = signals
        self.spec = function.spec

    def invoke(self, event: Any) -> Any:
        """Run the handler, then tell the order's worker what it did."""
        result = self._function.invoke(event)
        self._signals.set(str(event["detail"]["orderId"]), self._milestone, result)
        return result

    def unload(self) -> None:
        """As LocalFunction.unload."""
        self._function.unload()


@contextlib.contextmanager
def watching_history(*listeners: Callable[[int, str, dict[str, Any]], None]) -> Iterator[None]:
    """Call listener(execution, event type, details) for every history event moto appends, in its thread.

    `execution` identifies the execution (its event manager); event type is e.g. "TaskScheduled".
    """
    from moto.stepfunctions.parser.asl.eval.event.event_manager import EventManager

    original = EventManager.add_event

    def add_event(
        self: Any, context: Any, event_type: Any, event_details: Any = None, *args: Any, **kw: Any
    ) -> int:
        event_id: int = original(self, context, event_type, event_details, *args, **kw)
        kind = str(getattr(event_type, "value", event_type))
        for listener in listeners:
            listener(id(self), kind, dict(event_details or {}))
        return event_id

    EventManager.add_event = add_event  # type: ignore[method-assign]
    try:
        yield
    finally:
        EventManager.add_event = original  # type: ignore[method-assign]


def _find(node: Any, key: str) -> Any:
    """The first value of `key` anywhere in a JSON document."""
    if isinstance(node, dict):
        if key in node:
            return node[key]
        node = list(node.values())
    if isinstance(node, list):
        for item in node:
            found = _find(item, key)
            if found is not None:
                return found
    return None


# ------------------------------------------------------------------------------------------- workers
def rss_mb() -> float:
    """Resident memory now (MB)."""
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def closed_loop(
    in_flight: int, orders: int, run_order: Callable[[str], None], signals: Signals
) -> dict[str, Any]:
    """`in_flight` workers run `orders` orders back to back; returns throughput and latencies.

    An order whose execution failed is counted (and why, in `failures`); any other error aborts the
    run at once (every other worker's wait raises), loudly.
    """
    for i in range(WARM_UP_ORDERS):  # cold starts of the handlers, first boto clients, moto caches
        run_order(f"warm-{i}")
    baseline = rss_mb()
    counter = iter(range(orders))
    lock = threading.Lock()
    latencies: list[float] = []
    failures: list[str] = []

    def worker(number: int) -> None:
        while True:
            with lock:
                index = next(counter, None)
            if index is None:
                return
            started = time.perf_counter()
            try:
                run_order(f"o{index}-w{number}")
            except OrderFailed as failed:
                with lock:
                    failures.append(str(failed))
                continue
            except Exception as error:
                signals.abort(f"o{index}-w{number}: {error}")
                raise
            with lock:
                latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=in_flight) as pool:
        for future in [pool.submit(worker, n) for n in range(in_flight)]:
            future.result()  # a failed order fails the run, loudly
    elapsed = time.perf_counter() - started
    latencies.sort()
    return {
        "orders": orders,
        "completed": len(latencies),
        "failed": len(failures),
        "failures": failures[:5],
        "elapsed_s": elapsed,
        "orders_per_s": len(latencies) / elapsed,
        "latency_median_s": median(latencies),
        "latency_p95_s": latencies[int(len(latencies) * 0.95) - 1],
        "rss_baseline_mb": baseline,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def run_engine(in_flight: int, orders: int) -> dict[str, Any]:
    """The application on the local engine: events routed, handlers run, customers answer via the domain."""
    from local.engine import LocalEngine
    from serverlesspresso.orders import OrderRepository
    from serverlesspresso.resume import COMPLETE_ORDER, SUBMIT_ORDER, resume_order

    signals = Signals()
    overrides = {"DefaultMaxInFlight": str(max(1000, 2 * in_flight))}  # capacity is not what is measured
    with (
        watching_history(FailureWatch(signals)),
        LocalEngine.in_process(TEMPLATE, parameter_overrides=overrides, start_dispatcher=False) as engine,
    ):
        milestones = {
            "WorkflowStartedFunction": "customer wait stored",
            "WaitingCompletionFunction": "barista wait stored",
            "OrderEndedFunction": "ended",
        }
        functions: dict[str, Any] = engine.functions  # a function may be any object with invoke(event)
        for logical_id, milestone in milestones.items():
            functions[logical_id] = SignallingFunction(functions[logical_id], milestone, signals)
        orders_table = OrderRepository(engine.table_names["OrdersTable"], engine.clients["dynamodb"])
        sfn = engine.clients["stepfunctions"]
        engine.dispatcher.start()

        def run_order(order_id: str) -> None:
            try:
                engine.start_order(order_id, f"customer-{order_id}")
                _expect(signals.wait(order_id, "customer wait stored"), "stored", order_id)
                with moto_callback_race(order_id):  # the customer submits
                    resume_order(order_id, SUBMIT_ORDER, orders=orders_table, sfn=sfn)
                _expect(signals.wait(order_id, "barista wait stored"), "stored", order_id)
                with moto_callback_race(order_id):  # the barista completes
                    resume_order(order_id, COMPLETE_ORDER, orders=orders_table, sfn=sfn)
                _expect(signals.wait(order_id, "ended"), "COMPLETED", order_id)
            except OrderFailed:
                raise
            except Exception:
                print(diagnose(engine, orders_table, order_id), file=sys.stderr, flush=True)
                raise

        result = closed_loop(in_flight, orders, run_order, signals)
        result["dispatcher_errors"] = list(engine.dispatcher.errors)
        result["dead_letters"] = len(engine.dead_letters)
    return result


def diagnose(engine: Any, orders_table: Any, order_id: str) -> str:
    """What the engine knows about a failed order: its item, its execution, the dispatcher's troubles."""
    lines = [f"order {order_id}: {(orders_table.get(order_id) or {}).get('state')}"]
    for execution in engine.executions_for_order(order_id):
        history = engine.history(execution["executionArn"])
        failures = [event for event in history if event["type"] in ("TaskFailed", "ExecutionFailed")]
        lines.append(f"execution {execution['name']} {execution['status']}; failures and last events:")
        lines += [f"  {json.dumps(event, default=str)[:600]}" for event in failures + history[-2:]]
    lines.append(
        f"dispatcher errors: {engine.dispatcher.errors[-3:]}; dead letters: {len(engine.dead_letters)}"
    )
    lines += [f"  {letter.target}: {letter.error[:300]}" for letter in engine.dead_letters[-3:]]
    return "\n".join(lines)


def _expect(outcome: Any, wanted: str, order_id: str) -> None:
    if not isinstance(outcome, dict) or outcome.get("outcome") != wanted:
        raise RuntimeError(f"order {order_id}: handler answered {outcome}, expected {wanted}")


def run_floor(in_flight: int, orders: int) -> dict[str, Any]:
    """The same ASL on bare moto: StartExecution, SendTaskSuccess from the history, nothing routed."""
    import boto3
    from moto import mock_aws

    from local.engine import MOCK_CONFIG
    from local.provision import provision
    from local.template import Template

    signals = Signals()

    def listen(history: int, kind: str, details: dict[str, Any]) -> None:
        if kind == "TaskScheduled":
            parameters = json.loads(details["taskScheduledEventDetails"]["parameters"])
            token, order_id = _find(parameters, "TaskToken"), _find(parameters, "orderId")
            if token and order_id:
                signals.set(str(order_id), "token", token)
        elif kind == "ExecutionSucceeded":
            output = json.loads(details["executionSucceededEventDetails"]["output"])
            signals.set(str(output["detail"]["orderId"]), "succeeded")

    with mock_aws(config=MOCK_CONFIG), watching_history(listen, FailureWatch(signals)):
        from local import moto_patches

        moto_patches.apply()  # the engine's moto fixes, so both sides run the same moto
        template = Template.load(
            TEMPLATE, parameter_overrides={"DefaultMaxInFlight": str(max(1000, 2 * in_flight))}
        )
        session = boto3.session.Session(
            aws_access_key_id="testing", aws_secret_access_key="testing", region_name=template.region
        )
        clients = {name: session.client(name) for name in ("dynamodb", "events", "stepfunctions", "sqs")}
        provisioned = provision(template, clients, time_scale=1.0)
        # Bare: the template's tables, bus and state machine, but no rule delivers anything anywhere.
        for rule in clients["events"].list_rules(EventBusName=next(iter(provisioned.bus_names.values())))[
            "Rules"
        ]:
            targets = clients["events"].list_targets_by_rule(
                Rule=rule["Name"], EventBusName=rule["EventBusName"]
            )
            ids = [target["Id"] for target in targets["Targets"]]
            if ids:
                clients["events"].remove_targets(
                    Rule=rule["Name"], EventBusName=rule["EventBusName"], Ids=ids
                )
        machine = next(iter(provisioned.state_machine_arns.values()))
        sfn = clients["stepfunctions"]

        def run_order(order_id: str) -> None:
            detail = {"orderId": order_id, "userId": f"customer-{order_id}"}
            sfn.start_execution(stateMachineArn=machine, name=order_id, input=json.dumps({"detail": detail}))
            for _ in ("customer", "barista"):
                token = signals.wait(order_id, "token")
                with moto_callback_race(order_id):
                    sfn.send_task_success(taskToken=token, output=json.dumps({"orderId": order_id}))
            signals.wait(order_id, "succeeded")

        result = closed_loop(in_flight, orders, run_order, signals)
        for page in sfn.get_paginator("list_executions").paginate(
            stateMachineArn=machine, statusFilter="RUNNING"
        ):
            for execution in page["executions"]:
                sfn.stop_execution(executionArn=execution["executionArn"])
    return result


# ---------------------------------------------------------------------------------------------- main
SIDES = {"engine": run_engine, "floor": run_floor}


def spawn(side: str, in_flight: int, orders: int) -> dict[str, Any]:
    """One run in a fresh interpreter (so its peak memory is its own); returns its figures."""
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as handle:
        out = Path(handle.name)
    try:
        command = [sys.executable, __file__, "--worker", side, "--in-flight", str(in_flight),
                   "--orders", str(orders), "--out", str(out)]  # fmt: skip
        completed = subprocess.run(
            command, check=False, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
        )
        if completed.returncode != 0:
            raise RuntimeError(f"{side} run with {in_flight} in flight failed:\n{completed.stderr[-4000:]}")
        figures: dict[str, Any] = json.loads(out.read_text(encoding="utf-8"))
        return figures
    finally:
        out.unlink(missing_ok=True)


def main() -> None:
    """Parent: every level and side, several runs each, interleaved; worker: one run (--worker)."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--in-flight", default="10,50,200", help="comma-separated levels")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--orders-per-worker", type=int, default=1, help=f"orders per run = N x this (at least {MIN_ORDERS})"
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="instead: one profiled run per side at the first level, by package",
    )
    parser.add_argument(
        "--requests",
        action="store_true",
        help="instead: AWS requests per completed order on each side at the first level, by operation",
    )
    parser.add_argument("--worker", choices=sorted(SIDES), help=argparse.SUPPRESS)
    parser.add_argument("--orders", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    levels = [int(level) for level in args.in_flight.split(",")]
    # `kill -USR1 <pid>` prints every thread's stack to stderr: what a stuck run is waiting for.
    faulthandler.register(signal.SIGUSR1, all_threads=True)

    if args.worker:
        figures = SIDES[args.worker](levels[0], args.orders)
        Path(args.out).write_text(json.dumps(figures), encoding="utf-8")
        return

    if args.profile:
        profile(levels[0], orders_for(levels[0], args))
        return
    if args.requests:
        count_requests(levels[0], orders_for(levels[0], args))
        return
    load = [os.getloadavg()[0]]
    runs: dict[tuple[str, int], list[dict[str, Any]]] = {}
    for level in levels:
        for run in range(args.runs):
            for side in SIDES:  # interleaved, so a busy moment of the machine hits both sides
                runs.setdefault((side, level), []).append(spawn(side, level, orders_for(level, args)))
            print(f"  {level} in flight: run {run + 1}/{args.runs}", file=sys.stderr, flush=True)
    load.append(os.getloadavg()[0])
    report(levels, runs, args, load)


def orders_for(level: int, args: argparse.Namespace) -> int:
    """Orders in one run: N x orders-per-worker, at least MIN_ORDERS so a run is not over in a blink."""
    return max(MIN_ORDERS, level * int(args.orders_per_worker))


def profile(level: int, orders: int) -> None:
    """Where the time goes on each side: own CPU time by package (cProfile in every thread)."""
    import contextlib
    import io

    for side, run in SIDES.items():
        with contextlib.redirect_stdout(io.StringIO()), profiling_all_threads() as profiles:
            figures = run(level, orders)
        ranked = time_by_package(profiles)
        functions = top_functions(profiles)
        print(
            f"\n{side}, {level} in flight, {orders} orders: {figures['orders_per_s']:.1f}/s (under cProfile)"
        )
        print(
            table(["package", "own s", "share"], [[n, f"{s:.1f}", f"{share:.0%}"] for n, s, share in ranked])
        )
        print("top functions by own time: " + "; ".join(f"{name} {s:.1f} s" for name, s in functions))


def count_requests(level: int, orders: int) -> None:
    """AWS requests per completed order on each side (every client in the process, moto's included)."""
    import contextlib
    import io
    from collections import Counter

    import botocore.client

    original = botocore.client.BaseClient._make_api_call
    for side, run in SIDES.items():
        counts: Counter[str] = Counter()

        def counted(client: Any, operation: str, params: Any, counts: Counter[str] = counts) -> Any:
            counts[f"{client.meta.service_model.service_name}.{operation}"] += 1
            return original(client, operation, params)

        botocore.client.BaseClient._make_api_call = counted
        try:
            with contextlib.redirect_stdout(io.StringIO()):
                figures = run(level, orders)
        finally:
            botocore.client.BaseClient._make_api_call = original
        # Provisioning and warm-up orders are counted too: per order, over every order the run started.
        started = figures["completed"] + figures["failed"] + WARM_UP_ORDERS
        print(f"\n{side}, {level} in flight: {sum(counts.values()) / started:.1f} AWS requests per order")
        rows = [
            [name, f"{count / started:.2f}"] for name, count in counts.most_common() if count / started >= 0.5
        ]
        print(table(["operation", "per order"], rows))


def summarize(level: int, engine: list[dict[str, Any]], floor: list[dict[str, Any]]) -> dict[str, Any]:
    """Medians of one level's runs, both sides."""
    rate, floor_rate = median(r["orders_per_s"] for r in engine), median(r["orders_per_s"] for r in floor)
    return {
        "in_flight": level,
        "orders_per_run": engine[0]["orders"],
        "engine_orders_per_s": rate,
        "floor_orders_per_s": floor_rate,
        "floor_over_engine": floor_rate / rate,
        "engine_latency_median_s": median(r["latency_median_s"] for r in engine),
        "engine_peak_rss_mb": median(r["peak_rss_mb"] for r in engine),
        "floor_peak_rss_mb": median(r["peak_rss_mb"] for r in floor),
        "engine_failed_orders": sum(r["failed"] for r in engine),
        "floor_failed_orders": sum(r["failed"] for r in floor),
        "engine_runs": engine,
        "floor_runs": floor,
    }


def verdict(row: dict[str, Any]) -> str:
    """At the target level: met, or by how much each part of the target is missed."""
    if row["in_flight"] != TARGET_IN_FLIGHT:
        return ""
    rate, ratio = row["engine_orders_per_s"], row["floor_over_engine"]
    misses = []
    if rate < TARGET_ORDERS_PER_SECOND:
        misses.append(f"{rate / TARGET_ORDERS_PER_SECOND * 100 - 100:+.0f}% vs {TARGET_ORDERS_PER_SECOND}/s")
    if ratio > TARGET_RATIO:
        misses.append(f"{ratio:.1f}x the floor")
    return "met" if not misses else "missed: " + "; ".join(misses)


def report(
    levels: list[int],
    runs: dict[tuple[str, int], list[dict[str, Any]]],
    args: argparse.Namespace,
    load: list[float],
) -> None:
    """Print the table and write bench/results/throughput.json."""
    figures = [summarize(level, runs[("engine", level)], runs[("floor", level)]) for level in levels]
    rows = [
        [
            f["in_flight"],
            f["orders_per_run"],
            f"{f['engine_orders_per_s']:.1f}",
            spread([r["orders_per_s"] for r in f["engine_runs"]]),
            f"{f['floor_orders_per_s']:.1f}",
            f"{f['floor_over_engine']:.2f}x",
            f"{f['engine_latency_median_s']:.1f}",
            f"{f['engine_peak_rss_mb']:.0f}",
            f"{f['floor_peak_rss_mb']:.0f}",
            f"{f['engine_failed_orders']} / {f['floor_failed_orders']}",
            verdict(f),
        ]
        for f in figures
    ]
    headers = ["in flight", "orders", "engine /s", "engine runs", "floor /s", "floor/engine", "latency s"]
    headers += [
        "engine MB",
        "floor MB",
        "failed",
        f"target ({TARGET_ORDERS_PER_SECOND}/s, <= {TARGET_RATIO}x)",
    ]
    print(f"\nLocal engine throughput: completed orders/s, median of {args.runs} runs (in-process moto)")
    print(table(headers, rows))
    print(
        f"load average (1 min) before/after: {load[0]:.1f} / {load[1]:.1f} on {os.cpu_count()} CPUs. MB: peak"
        " resident memory of the run's process. failed: orders whose execution failed or whose callback moto"
        " lost, all runs, engine / floor (bench/results/throughput.json has why)."
    )
    path = write_results(
        "throughput",
        command_line(),
        {
            "runs": args.runs,
            "orders_per_worker": args.orders_per_worker,
            "min_orders": MIN_ORDERS,
            "warm_up_orders": WARM_UP_ORDERS,
            "target": {
                "orders_per_s": TARGET_ORDERS_PER_SECOND,
                "in_flight": TARGET_IN_FLIGHT,
                "ratio": TARGET_RATIO,
            },
            "load_average_before_after": load,
            "levels": figures,
        },
    )
    print(f"\nwritten {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
