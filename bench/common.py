"""What the bench scripts share: paths, medians, the printed tables, the results files, and helpers
to drive the local engine (API handler, event capture).

Each script puts the repository root on sys.path before importing this module (two lines at its top),
so every script runs alone as `.venv/bin/python bench/<name>.py`.
"""

from __future__ import annotations

import contextlib
import cProfile
import json
import os
import platform
import pstats
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT / "functions" / "shared"
RESULTS = ROOT / "bench" / "results"
TEMPLATE = ROOT / "template.yaml"
if str(SHARED) not in sys.path:  # the layer's package, as tests and the engine import it
    sys.path.insert(1, str(SHARED))

API_DIR = ROOT / "functions" / "api"


# ------------------------------------------------------------------------------------------- numbers
def median(values: Iterable[float]) -> float:
    """Median of the values (the figure every bench reports)."""
    return float(statistics.median(list(values)))


def spread(values: Sequence[float]) -> str:
    """`min..max` of the runs, to show how far a median can be trusted."""
    return f"{min(values):.3g}..{max(values):.3g}"


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """A plain-text table: first column left-aligned, the others right-aligned."""
    text_rows = [[str(cell) for cell in row] for row in rows]
    widths = [max(len(str(h)), *(len(r[i]) for r in text_rows)) for i, h in enumerate(headers)]

    def line(cells: Sequence[str]) -> str:
        first, *rest = cells
        return "  ".join(
            [first.ljust(widths[0]), *(c.rjust(w) for c, w in zip(rest, widths[1:], strict=True))]
        )

    return "\n".join([line(list(headers)), "  ".join("-" * w for w in widths), *map(line, text_rows)])


# ------------------------------------------------------------------------------------------- results
def environment() -> dict[str, Any]:
    """Where the figures were measured: machine, interpreter, commit (figures mean nothing without it)."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=False
        ).stdout.strip()
    except OSError:
        commit = ""
    return {
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "commit": commit or None,
        "working_tree_dirty": bool(
            subprocess.run(
                ["git", "status", "--porcelain"], cwd=ROOT, capture_output=True, text=True, check=False
            ).stdout.strip()
        ),
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
    }


def write_results(name: str, command: str, figures: Mapping[str, Any]) -> Path:
    """Write bench/results/<name>.json: the command, the environment and the figures."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    document = {"bench": name, "command": command, "environment": environment(), **figures}
    path.write_text(json.dumps(document, indent=2, default=str) + "\n", encoding="utf-8")
    return path


def command_line() -> str:
    """The command that produced the figures, as someone would type it from the repository root."""
    script = Path(sys.argv[0]).resolve()
    try:
        shown = str(script.relative_to(ROOT))
    except ValueError:
        shown = str(script)
    return " ".join([".venv/bin/python", shown, *sys.argv[1:]])


# ------------------------------------------------------------------------------ driving the engine
class EventRecorder:
    """Stands in for a function in `engine.functions`: keeps the events delivered to it, runs nothing.

    The dispatcher calls `invoke(event)` exactly as it would call the real function, so what is kept is
    the event as EventBridge would deliver it to that function.
    """

    def __init__(self) -> None:
        self.events: list[Any] = []
        self._arrived = threading.Condition()

    def invoke(self, event: Any) -> None:
        """Keep the event (the dispatcher's delivery succeeds)."""
        with self._arrived:
            self.events.append(event)
            self._arrived.notify_all()

    def wait_for(self, predicate: Callable[[Any], bool], timeout: float = 30.0) -> Any:
        """The first kept event for which predicate is true, waiting up to timeout seconds."""
        with self._arrived:
            found = self._arrived.wait_for(
                lambda: next((e for e in self.events if predicate(e)), None), timeout=timeout
            )
        if found is None:
            raise TimeoutError(f"no matching event after {timeout} s")
        return found


def api_function(engine: Any) -> Any | None:
    """The engine's LocalFunction for the HTTP API (CodeUri functions/api), or None if there is none."""
    for function in engine.functions.values():
        if Path(function.spec.code_dir).resolve() == API_DIR.resolve():
            return function
    return None


def api_client(function: Any) -> Any:
    """The tests' API driver (tests/unit/api/conftest.py `Api`), invoking the API through the engine.

    Reused rather than copied: it builds each request from the events/api_*.json samples exactly as
    API Gateway would send it, for a given user's claims.
    """
    from tests.unit.api.conftest import Api

    class _Handler:
        @staticmethod
        def lambda_handler(event: Any, context: Any) -> Any:
            return function.invoke(event)

    return Api(_Handler())


# ------------------------------------------------------------------------------------------ profiling
@contextlib.contextmanager
def profiling_all_threads() -> Iterator[list[cProfile.Profile]]:
    """cProfile every thread started inside the block (and this one); yields the list of profiles.

    cProfile alone sees only the thread it was enabled in; moto runs each execution in its own thread.
    Each profile times its thread's own CPU (time.thread_time): wall-clock timers charge a thread's
    waits for a lock or for the GIL to whatever function it was in, which is most of the time with
    hundreds of threads.
    """
    profiles: list[cProfile.Profile] = []
    lock = threading.Lock()

    def start(*_: Any) -> None:
        profile = cProfile.Profile(time.thread_time)
        with lock:
            profiles.append(profile)
        profile.enable()

    main = cProfile.Profile(time.thread_time)
    profiles.append(main)
    threading.setprofile(start)
    main.enable()
    try:
        yield profiles
    finally:
        main.disable()
        threading.setprofile(None)


def own_times(profiles: list[cProfile.Profile]) -> dict[tuple[str, int, str], float]:
    """Own (tottime) seconds of every function over all the profiles, leaving out time spent blocked.

    Blocked means inside a builtin that waits (a lock, a queue, a sleep, a socket) or inside a function
    that only waits for a lock (BLOCKING_FUNCTIONS): such a thread holds no CPU. What is left is close
    to where the CPU goes.
    """
    totals: dict[tuple[str, int, str], float] = {}
    for profile in profiles:
        with contextlib.suppress(Exception):
            profile.disable()
        try:
            stats = pstats.Stats(profile)
        except TypeError:  # a thread that never ran Python code
            continue
        for key, (_, _, tottime, _, _) in stats.stats.items():  # type: ignore[attr-defined]
            filename, _, function = key
            if filename == "~" and any(wait in function for wait in _WAITING):
                continue
            if (Path(filename).name, function) in BLOCKING_FUNCTIONS:
                continue
            totals[key] = totals.get(key, 0.0) + tottime
    return totals


_WAITING = (
    "acquire",
    "sleep",
    "select",
    "poll",
    "wait",
    "join",
    "recv",
    "accept",
    "SimpleQueue",
    "__enter__",
)
# local/moto_patches.py's DynamoDB wrapper is `with lock: return original(self)`: its own time is the
# wait for the lock (the work is in `original`, counted where it runs).
BLOCKING_FUNCTIONS = {("moto_patches.py", "call_action")}


def time_by_package(profiles: list[cProfile.Profile], top: int = 12) -> list[tuple[str, float, float]]:
    """Own seconds by package over all the profiles: [(package, seconds, share)], largest first."""
    totals: dict[str, float] = {}
    for (filename, _, _), seconds in own_times(profiles).items():
        package = _package(filename)
        totals[package] = totals.get(package, 0.0) + seconds
    grand = sum(totals.values()) or 1.0
    ranked = sorted(totals.items(), key=lambda item: -item[1])[:top]
    return [(name, seconds, seconds / grand) for name, seconds in ranked]


def top_functions(profiles: list[cProfile.Profile], top: int = 10) -> list[tuple[str, float]]:
    """The functions with the most own time: [(package:function, seconds)]."""
    ranked = sorted(own_times(profiles).items(), key=lambda item: -item[1])[:top]
    return [
        (f"{_package(filename)}:{Path(filename).name}:{function}", s) for (filename, _, function), s in ranked
    ]


def _package(filename: str) -> str:
    """A readable owner for a source file: moto.<service>, a site-package, a repo directory, stdlib."""
    path = filename.replace("\\", "/")
    if "site-packages/" in path:
        parts = path.split("site-packages/", 1)[1].split("/")
        if parts[0] == "moto" and len(parts) > 2:
            return f"moto.{parts[1]}"
        return parts[0].removesuffix(".py")
    if path.startswith(str(ROOT)):
        relative = Path(path).relative_to(ROOT).parts
        return "serverlesspresso" if "serverlesspresso" in relative else relative[0]
    if path.startswith("<") or path == "~":
        return "C builtins"
    return "stdlib"
