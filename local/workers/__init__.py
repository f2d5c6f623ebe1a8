"""Functions run in worker processes: several execution environments at once, as Lambda scales out.

In one process, the local engine runs one invocation at a time: a function's environment variables
and its own copies of its modules are swapped in process-wide (local/lambdas.py, ENVIRONMENT_LOCK), so
a burst of API requests waits in line behind each other and behind every event handler, and the
whole stack shares one core (the GIL). `FunctionWorkers` runs chosen functions (the HTTP API's) in a
pool of processes instead, each one execution environment started on demand and kept warm, reaching the
stack's moto server over HTTP like every client: requests are served side by side, on both cores,
and never wait for background event delivery.

Only for a stack on a moto server (`make local`): an in-process engine's moto lives in its process
(mock_aws), out of a worker's reach. What a function prints (its log lines) is handed back with the
result and written to this process's stdout, so `make local` shows it like any other handler's.
"""

from __future__ import annotations

import io
import multiprocessing
import sys
import traceback
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ProcessPoolExecutor
from typing import Any

from local.lambdas import FunctionSpec, LocalFunction
from local.template import Template

# Four environments: enough to keep two cores busy while each waits on moto for most of a request.
DEFAULT_WORKERS = 4


class FunctionError(RuntimeError):
    """The function raised in its worker (a Lambda error); the message is its traceback."""


class FunctionWorkers:
    """Invokes `pooled` functions in worker processes and every other through the engine (an Invoker)."""

    def __init__(
        self,
        engine: Any,
        pooled: Iterable[str],
        *,
        workers: int = DEFAULT_WORKERS,
        setup: Callable[[], object] | None = None,
    ) -> None:
        """`setup` (picklable) runs in each worker before its function loads, e.g. to route the push
        channel's management API calls to the stack's process (local/push/relay.py)."""
        self.engine = engine
        self.template: Template = engine.template
        self._pools: dict[str, ProcessPoolExecutor] = {}
        # spawn, not fork: this process runs moto's and the dispatcher's threads, whose locks a fork
        # could copy while held. A spawning pool starts a worker only when no idle one is left: the
        # stack is ready at once, and the first requests pay the cold starts, as on Lambda.
        context = multiprocessing.get_context("spawn")
        for logical_id in pooled:
            spec: FunctionSpec = engine.functions[logical_id].spec
            self._pools[logical_id] = ProcessPoolExecutor(
                max_workers=workers, mp_context=context, initializer=_load, initargs=(spec, setup)
            )

    def invoke(self, logical_id: str, event: Any) -> Any:
        """Invoke the function synchronously; FunctionError if it raised."""
        pool = self._pools.get(logical_id)
        if pool is None:
            return self.engine.invoke(logical_id, event)
        future: Future[tuple[bool, Any, str]] = pool.submit(_invoke, event)
        succeeded, outcome, printed = future.result()
        if printed:
            sys.stdout.write(printed)
        if not succeeded:
            raise FunctionError(outcome)
        return outcome

    def warm(self) -> None:
        """Start one worker of each function now, in the background (its cold start is then paid before
        the first invocation needs it, not by it)."""
        for pool in self._pools.values():
            pool.submit(_ready)

    def close(self) -> None:
        """Stop the workers (requests in progress finish first)."""
        for pool in self._pools.values():
            pool.shutdown(wait=True, cancel_futures=True)


# ------------------------------------------------------------------------------ in the workers
_function: LocalFunction | None = None
_printed = io.StringIO()


def _load(spec: FunctionSpec, setup: Callable[[], object] | None) -> None:
    global _function
    if setup is not None:
        setup()
    # Before the first invocation: Powertools' Logger binds to sys.stdout when the handler loads.
    sys.stdout = _printed
    _function = LocalFunction(spec, "worker")


def _ready() -> bool:
    return _function is not None


def _invoke(event: Any) -> tuple[bool, Any, str]:
    assert _function is not None, "the worker's initializer did not run"
    try:
        succeeded, outcome = True, _function.invoke(event)
    except Exception:
        succeeded, outcome = False, traceback.format_exc()
    printed = _printed.getvalue()
    _printed.seek(0)
    _printed.truncate()
    return succeeded, outcome, printed
