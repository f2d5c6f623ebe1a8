"""Cold start of every function, side by side with its floor, and each function's built package size.

    .venv/bin/python bench/cold_start.py [--samples 7]

A sample is a fresh interpreter that imports the function's handler module and serves its first
invocation against moto (the patched moto server this script starts, reached through
AWS_ENDPOINT_URL); its time runs from process start until the response is printed. Its floor is a
fresh interpreter, in the same environment, that only imports boto3 and creates the boto3 clients the
handler created. Samples alternate handler, floor, handler, ... and the medians are compared.

Each handler sample gets a real event for a fresh order, produced by the local engine: the function is
swapped for a recorder in `engine.functions`, the order is driven (by the other, in-process handlers
and the domain's resume_order) until the workflow emits that function's event, and the recorded event
is handed to the fresh interpreter. The API gets events/api_place_order.json for a new customer.

The environment is Lambda's as far as it matters for imports: the function's template environment,
LAMBDA_TASK_ROOT and _X_AMZN_TRACE_ID (so Powertools' Tracer is on, as with `Tracing: Active`), code
and layer directories on PYTHONPATH. The interpreter is this venv's (Python 3.11, not the python3.13
runtime) with its bytecode caches warm, on this machine: absolute times differ on Lambda, ratios less.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import uuid
import zipfile
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (
    API_DIR,
    ROOT,
    EventRecorder,
    api_function,
    command_line,
    median,
    table,
    write_results,
)

TARGET_RATIO = 1.15
TARGET_PACKAGE_BYTES = 1_000_000
MARK = "BENCH-RESULT "
PROFILE_RUNS = 3  # -X importtime runs per side, for the profile printed under the table
BUILD_DIR = ROOT / ".aws-sam" / "build"
# X-Ray's own client (created by its centralized sampler outside Lambda) is the tracer's, not the
# handler's: it is never part of the floor.
NOT_FLOOR_SERVICES = {"xray"}

# What Lambda puts in every function's environment that changes what gets imported: LAMBDA_TASK_ROOT
# turns Powertools' Tracer on (aws_xray_sdk patches botocore), _X_AMZN_TRACE_ID is the invocation's
# trace header. The X-Ray daemon address has nothing listening here; segments go to UDP and vanish.
LAMBDA_RUNTIME_ENV = {
    "AWS_EXECUTION_ENV": "AWS_Lambda_python3.13",
    "AWS_XRAY_DAEMON_ADDRESS": "127.0.0.1:2000",
    "AWS_XRAY_CONTEXT_MISSING": "LOG_ERROR",
    "_X_AMZN_TRACE_ID": "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1",
    "PYTHONDONTWRITEBYTECODE": "1",  # the layer is read-only on Lambda; never write caches from here
}

# Runs in the fresh interpreter: import the handler module as Lambda's bootstrap does (by module
# name, code directory first on sys.path), serve one event, print the timings.
HANDLER_HARNESS = """
import time
T0 = time.perf_counter()
import importlib, json, sys
with open(sys.argv[1], encoding="utf-8") as source:
    event = json.load(source)
module_name, handler_name = sys.argv[2].rsplit(".", 1)

class Context:
    function_name = sys.argv[3]
    function_version = "$LATEST"
    invoked_function_arn = sys.argv[4]
    memory_limit_in_mb = int(sys.argv[5])
    aws_request_id = "00000000-0000-4000-8000-000000000001"
    log_group_name = "/aws/lambda/" + sys.argv[3]
    log_stream_name = "bench"
    identity = None
    client_context = None
    def get_remaining_time_in_millis(self):
        return 10000

handler = getattr(importlib.import_module(module_name), handler_name)
T1 = time.perf_counter()
result = handler(event, Context())
T2 = time.perf_counter()
print(MARK + json.dumps({"import": T1 - T0, "invoke": T2 - T1, "cpu": time.process_time()}), flush=True)
import gc, botocore.client
services = sorted({o.meta.service_model.service_name for o in gc.get_objects()
                   if isinstance(o, botocore.client.BaseClient)})
print(MARK + json.dumps({"services": services, "result": result}, default=str), flush=True)
""".replace("MARK", repr(MARK))

# The floor: the same interpreter and environment, importing boto3 and creating the same clients.
FLOOR_HARNESS = """
import time
T0 = time.perf_counter()
import json, sys
import boto3
T1 = time.perf_counter()
clients = [boto3.client(service) for service in sys.argv[1:]]
T2 = time.perf_counter()
print(MARK + json.dumps({"import": T1 - T0, "invoke": T2 - T1, "cpu": time.process_time()}), flush=True)
""".replace("MARK", repr(MARK))


# ------------------------------------------------------------------------------------------ sampling
@dataclass(frozen=True)
class Sample:
    """One fresh interpreter: wall time from spawn to response, and what it measured inside."""

    wall: float
    inside: dict[str, float]
    extra: dict[str, Any] = field(default_factory=dict)
    importtime: str = ""


def run_fresh(args: list[str], env: dict[str, str], profile: bool = False) -> Sample:
    """Spawn `python <args>` and time it until its first result line (not its exit)."""
    command = [sys.executable, *(["-X", "importtime"] if profile else []), *args]
    started = time.perf_counter()
    with subprocess.Popen(
        command,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=env["LAMBDA_TASK_ROOT"],
    ) as process:
        assert process.stdout is not None
        timing: dict[str, float] | None = None
        wall = 0.0
        extra: dict[str, Any] = {}
        for line in process.stdout:
            if not line.startswith(MARK):
                continue  # the handler's own log lines and metrics
            if timing is None:
                wall = time.perf_counter() - started
                timing = json.loads(line[len(MARK) :])
            else:
                extra = json.loads(line[len(MARK) :])
        stderr = process.stderr.read() if process.stderr else ""
        process.wait()
    if timing is None:
        raise RuntimeError(
            f"{' '.join(args[:2])} printed no result (exit {process.returncode}):\n{stderr[-3000:]}"
        )
    return Sample(wall, timing, extra, stderr if profile else "")


@dataclass
class Case:
    """A function to measure: how to run it and how to get a fresh first event for it."""

    name: str
    spec: Any  # local.lambdas.FunctionSpec
    next_event: Callable[[], dict[str, Any]]
    expect: Callable[[Any], bool]  # the first invocation really did the work
    handler: list[Sample] = field(default_factory=list)
    floor: list[Sample] = field(default_factory=list)
    services: list[str] = field(default_factory=list)
    profile: list[tuple[str, float]] = field(default_factory=list)

    def env(self) -> dict[str, str]:
        """The function's environment, as Lambda would set it, plus what an interpreter needs here."""
        paths = [str(self.spec.code_dir), *(str(d) for d in self.spec.layer_dirs)]
        return {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "LANG": "C.UTF-8",
            **self.spec.environment,
            **LAMBDA_RUNTIME_ENV,
            "LAMBDA_TASK_ROOT": str(self.spec.code_dir),
            "PYTHONPATH": os.pathsep.join(paths),
        }

    def run_handler(self, event: dict[str, Any], profile: bool = False) -> Sample:
        """One cold start of the handler serving `event`."""
        with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as handle:
            json.dump(event, handle)
        try:
            module = Path(self.spec.handler_file).stem + "." + self.spec.handler_name
            args = ["-c", HANDLER_HARNESS, handle.name, module, self.spec.name, self.spec.arn]
            sample = run_fresh([*args, str(self.spec.memory_mb)], self.env(), profile)
        finally:
            os.unlink(handle.name)
        if not self.expect(sample.extra.get("result")):
            raise RuntimeError(f"{self.name}: first invocation did not do its work: {sample.extra}")
        return sample

    def run_floor(self, profile: bool = False) -> Sample:
        """One fresh interpreter creating the handler's clients."""
        return run_fresh(["-c", FLOOR_HARNESS, *self.services], self.env(), profile)


# --------------------------------------------------------------------------------------- the events
class OrderDriver:
    """Drives fresh orders through the engine up to the event a measured function receives."""

    def __init__(self, engine: Any) -> None:
        from serverlesspresso.orders import OrderRepository

        self.engine = engine
        self.orders = OrderRepository(engine.table_names["OrdersTable"], engine.clients["dynamodb"])

    @contextmanager
    def recording(self, logical_id: str) -> Iterator[EventRecorder]:
        """The function's deliveries go to a recorder for the duration (the real one runs nothing)."""
        real = self.engine.functions[logical_id]
        recorder = EventRecorder()
        self.engine.functions[logical_id] = recorder
        try:
            yield recorder
        finally:
            self.engine.functions[logical_id] = real

    def wait_state(self, order_id: str, state: str) -> None:
        """Until the in-process handlers have moved the order to `state`."""
        self.engine.wait_for(
            lambda: (self.orders.get(order_id) or {}).get("state") == state, 30, f"{order_id} {state}"
        )

    def resume(self, order_id: str, action: Any) -> None:
        """Answer the order's current wait through the domain (what the API does)."""
        from serverlesspresso.resume import resume_order

        resume_order(order_id, action, orders=self.orders, sfn=self.engine.clients["stepfunctions"])

    def event_for(self, logical_id: str, steps: int) -> dict[str, Any]:
        """A new order's event for `logical_id`, after `steps` answers (0: none, 1: submit, 2: complete)."""
        from serverlesspresso.resume import COMPLETE_ORDER, SUBMIT_ORDER

        order_id = f"cold-{uuid.uuid4().hex[:12]}"
        with self.recording(logical_id) as recorder:
            self.engine.start_order(order_id, f"user-{order_id}")
            if steps >= 1:
                self.wait_state(order_id, "WAITING_FOR_CUSTOMER")
                self.resume(order_id, SUBMIT_ORDER)
            if steps >= 2:
                self.wait_state(order_id, "WAITING_FOR_BARISTA")
                self.resume(order_id, COMPLETE_ORDER)
            event: dict[str, Any] = recorder.wait_for(lambda e: e["detail"]["orderId"] == order_id)
        return event


def api_place_event() -> dict[str, Any]:
    """events/api_place_order.json for a customer who has no order yet."""
    event: dict[str, Any] = json.loads((ROOT / "events" / "api_place_order.json").read_text(encoding="utf-8"))
    event["requestContext"]["authorizer"]["jwt"]["claims"]["sub"] = str(uuid.uuid4())
    return event


def cases(engine: Any) -> list[Case]:
    """The template's three event handlers, and the API when its handler imports."""
    driver = OrderDriver(engine)
    specs = engine.provisioned.functions

    def stored(result: Any) -> bool:
        return isinstance(result, dict) and result.get("outcome") == "stored"

    found = [
        Case("WorkflowStartedFunction", specs["WorkflowStartedFunction"],
             lambda: driver.event_for("WorkflowStartedFunction", 0), stored),
        Case("WaitingCompletionFunction", specs["WaitingCompletionFunction"],
             lambda: driver.event_for("WaitingCompletionFunction", 1), stored),
        Case("OrderEndedFunction", specs["OrderEndedFunction"],
             lambda: driver.event_for("OrderEndedFunction", 2),
             lambda result: isinstance(result, dict) and result.get("outcome") == "COMPLETED"),
    ]  # fmt: skip
    api = api_function(engine)
    if api is not None:
        found.append(
            Case(
                f"{api.spec.logical_id} (POST /orders)",
                api.spec,
                api_place_event,
                lambda result: isinstance(result, dict) and result.get("statusCode") == 202,
            )
        )
    return found


# -------------------------------------------------------------------------------------- the profile
_IMPORT_LINE = re.compile(r"^import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)")


def import_self_times(samples: list[Sample]) -> dict[str, int]:
    """{module: self import time in µs}, the lowest over several `python -X importtime` runs.

    The lowest, because the machine may be busy: a module's own import work only ever gets slower.
    """
    times: dict[str, int] = {}
    for sample in samples:
        for line in sample.importtime.splitlines():
            found = _IMPORT_LINE.match(line)
            if found:
                module, micros = found.group(4), int(found.group(1))
                times[module] = min(times.get(module, micros), micros)
    return times


def import_profile(handler: list[Sample], floor: list[Sample], top: int = 8) -> list[tuple[str, float]]:
    """What the handler imports beyond its floor, by top-level package: [(package, ms)], largest first."""
    ours, theirs = import_self_times(handler), import_self_times(floor)
    extra: dict[str, float] = defaultdict(float)
    for module, micros in ours.items():
        if module not in theirs:
            extra[module.split(".")[0]] += micros / 1000
    return sorted(extra.items(), key=lambda item: -item[1])[:top]


# ----------------------------------------------------------------------------------- package sizes
def package_sizes() -> list[dict[str, Any]]:
    """Size of every built function and layer under .aws-sam/build (files, and zipped as deployed)."""
    if not BUILD_DIR.is_dir():
        return []
    sizes = []
    for directory in sorted(p for p in BUILD_DIR.iterdir() if p.is_dir()):
        files = [p for p in directory.rglob("*") if p.is_file()]
        with tempfile.TemporaryFile() as archive:
            with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zipped:
                for path in files:
                    zipped.write(path, path.relative_to(directory))
            zipped_bytes = archive.tell()
        sizes.append(
            {
                "artifact": directory.name,
                "files": len(files),
                "bytes": sum(p.stat().st_size for p in files),
                "zipped_bytes": zipped_bytes,
            }
        )
    return sizes


# ---------------------------------------------------------------------------------------------- main
def main() -> None:
    """Measure, print the tables, write bench/results/cold_start.json."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--samples", type=int, default=7, help="fresh interpreters per side and function")
    args = parser.parse_args()
    load = [os.getloadavg()[0]]
    # The in-process handlers that drive the orders log and print metrics on stdout; only tables go there.
    with contextlib.redirect_stdout(io.StringIO()):
        measured = measure(args.samples)
    load.append(os.getloadavg()[0])
    report(measured, package_sizes(), args.samples, load)


def measure(samples: int) -> list[Case]:
    """Run every case's samples against a patched moto server started for the purpose."""
    from local.engine import LocalEngine
    from local.server import start_server

    server, endpoint = start_server()
    try:
        # Capacity well above the orders this bench leaves waiting, so none is rejected.
        engine = LocalEngine.provision(
            ROOT / "template.yaml", endpoint_url=endpoint, parameter_overrides={"DefaultMaxInFlight": "1000"}
        )
        measured = cases(engine)
        for case in measured:
            first = sample_handler(engine, case)  # also tells which clients the floor creates
            case.services = [s for s in first.extra.get("services", []) if s not in NOT_FLOOR_SERVICES]
            for _ in range(samples):
                case.handler.append(sample_handler(engine, case))
                case.floor.append(case.run_floor())
            case.profile = import_profile(
                [sample_handler(engine, case, profile=True) for _ in range(PROFILE_RUNS)],
                [case.run_floor(profile=True) for _ in range(PROFILE_RUNS)],
            )
            print(f"  measured {case.name}", file=sys.stderr, flush=True)
        engine.close()
    finally:
        server.stop()
    return measured


def sample_handler(engine: Any, case: Case, profile: bool = False) -> Sample:
    """Produce a fresh event with the dispatcher running, then run the sample with it stopped.

    While a sample runs, only the sample talks to moto (no polling thread competes with the server).
    """
    engine.dispatcher.start()
    event = case.next_event()
    engine.dispatcher.stop()
    return case.run_handler(event, profile)


def summarize(case: Case) -> dict[str, Any]:
    """Medians of one function's samples and its floor's."""
    handler_wall = median(s.wall for s in case.handler)
    floor_wall = median(s.wall for s in case.floor)
    handler_cpu = median(s.inside["cpu"] for s in case.handler)
    floor_cpu = median(s.inside["cpu"] for s in case.floor)
    ratio = handler_wall / floor_wall
    return {
        "function": case.name,
        "clients": case.services,
        "handler_s": round(handler_wall, 4),
        "handler_import_s": round(median(s.inside["import"] for s in case.handler), 4),
        "handler_first_invoke_s": round(median(s.inside["invoke"] for s in case.handler), 4),
        "handler_cpu_s": round(handler_cpu, 4),
        "floor_s": round(floor_wall, 4),
        "floor_import_boto3_s": round(median(s.inside["import"] for s in case.floor), 4),
        "floor_clients_s": round(median(s.inside["invoke"] for s in case.floor), 4),
        "floor_cpu_s": round(floor_cpu, 4),
        "ratio": round(ratio, 3),
        "cpu_ratio": round(handler_cpu / floor_cpu, 3),
        "target_ratio": TARGET_RATIO,
        "met": ratio <= TARGET_RATIO,
        "handler_runs_s": [round(s.wall, 4) for s in case.handler],
        "floor_runs_s": [round(s.wall, 4) for s in case.floor],
        "imports_beyond_floor_ms": [(name, round(ms, 1)) for name, ms in case.profile],
    }


def verdict(ratio: float) -> str:
    """`yes`, or by how much the ratio misses the target."""
    return "yes" if ratio <= TARGET_RATIO else f"no, +{(ratio / TARGET_RATIO - 1) * 100:.0f}%"


def _row(f: dict[str, Any]) -> list[str]:
    return [
        f["function"],
        "+".join(f["clients"]),
        f"{f['handler_s']:.3f}",
        f"{f['handler_import_s']:.3f}",
        f"{f['handler_first_invoke_s']:.3f}",
        f"{f['floor_s']:.3f}",
        f"{f['ratio']:.2f}x",
        verdict(f["ratio"]),
        f"{f['handler_cpu_s']:.3f}",
        f"{f['floor_cpu_s']:.3f}",
        f"{f['cpu_ratio']:.2f}x",
    ]


def report(measured: list[Case], sizes: list[dict[str, Any]], samples: int, load: list[float]) -> None:
    """Print the cold-start and package tables and write the JSON."""
    figures = [summarize(case) for case in measured]
    print(f"\nCold start: fresh interpreter to first response, median of {samples} (s; CPU = process time)")
    print(
        table(
            ["function", "clients", "handler", "import", "1st call", "floor", "ratio",
             f"<= {TARGET_RATIO}x", "CPU", "floor CPU", "CPU ratio"],
            [_row(f) for f in figures],
        )
    )  # fmt: skip
    print(f"load average (1 min) before/after: {load[0]:.1f} / {load[1]:.1f} on {os.cpu_count()} CPUs")
    print(
        f"\nImported beyond the floor: own import ms by package (best of {PROFILE_RUNS} -X importtime runs)"
    )
    for f in figures:
        print(
            f"  {f['function']}: "
            + ", ".join(f"{name} {ms:.0f}" for name, ms in f["imports_beyond_floor_ms"])
        )
    if sizes:
        print(
            "\nBuilt packages (.aws-sam/build; the Powertools layer and the runtime's boto3 are not bundled)"
        )
        print(
            table(
                ["artifact", "files", "bytes", "zipped", "< 1 MB"],
                [
                    [s["artifact"], s["files"], s["bytes"], s["zipped_bytes"],
                     "yes" if max(s["bytes"], s["zipped_bytes"]) < TARGET_PACKAGE_BYTES else "no"]
                    for s in sizes
                ],
            )
        )  # fmt: skip
    else:
        print("\nBuilt packages: .aws-sam/build is missing; run `make build` first for package sizes.")
    path = write_results(
        "cold_start",
        command_line(),
        {
            "samples": samples,
            "target_ratio": TARGET_RATIO,
            "load_average_before_after": load,
            "lambda_environment": {k: v for k, v in LAMBDA_RUNTIME_ENV.items() if k != "_X_AMZN_TRACE_ID"},
            "api_handler_present": (API_DIR / "app.py").is_file(),
            "functions": figures,
            "packages": sizes,
            "package_target_bytes": TARGET_PACKAGE_BYTES,
        },
    )
    print(f"\nwritten {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
