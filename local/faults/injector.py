"""Fault injection for the local engine: nothing happens unless an engine is given a FaultInjector.

Never part of the deployed code (it lives in the engine). Each kind fails where AWS would:

- handler-transient (a function invoked with an event): the first invocation raises; the dispatcher
  retries (Lambda's async retries) and the next one runs the handler.
- handler-permanent (the same): every invocation raises, so the event goes to the function's
  on-failure destination as an invocation record.
- dynamodb-throttled (a DynamoDB call of a workflow service task): ThrottlingException; the ASL Retry
  runs the state again (the same request is never throttled twice in a row, so MaxAttempts suffices).
- put-events-failed (PutEvents in a request-driven invocation, i.e. the API): the call succeeds with
  FailedEntryCount 1 (InternalFailure) and publishes nothing.
- send-task-throttled (SendTaskSuccess/Failure in a request-driven invocation): ThrottlingException,
  as after the client's own retries.
  Neither fails a request twice in a row (the same event for the same customer or order, the same task
  token): a client that asks again as told (503 + Retry-After) gets through, as the workflow's retry
  does, and a run's outcome never hangs on how many refusals in a row the draws give one customer.
- push-connection-gone (PostToConnection, made by the push fan-out only): the
  connection the table still lists has vanished without a $disconnect: GoneException, for that call
  and every later one to the same connection (decided once per connection).

Which calls fail: each candidate with its kind's probability (`FaultRates`), decided once per event or
request by one seeded random.Random, so a run is repeatable; a test narrows the candidates with `only`.
Every fault injected is recorded (`injected`, `counts`).

How: the engine's functions are wrapped (which function runs on this thread, with what); botocore's
`BaseClient._make_api_call` is wrapped process-wide while an injector is attached. moto's ASL
interpreter makes its service tasks' calls with clients signed by the fixed key "ak"
(moto/stepfunctions/parser/asl/utils/boto_client.py): that is how a workflow's call is told apart.
"""

from __future__ import annotations

import json
import random
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from botocore.client import BaseClient
from botocore.exceptions import ClientError

if TYPE_CHECKING:
    from local.engine import LocalEngine

ASL_ACCESS_KEY = "ak"  # moto's ASL task clients' access key id
SEND_TASK_OPERATIONS = frozenset({"SendTaskSuccess", "SendTaskFailure"})


class FaultKind(StrEnum):
    """The faults the injector can make (module docstring)."""

    HANDLER_TRANSIENT = "handler-transient"
    HANDLER_PERMANENT = "handler-permanent"
    DYNAMODB_THROTTLED = "dynamodb-throttled"
    PUT_EVENTS_FAILED = "put-events-failed"
    SEND_TASK_THROTTLED = "send-task-throttled"
    PUSH_CONNECTION_GONE = "push-connection-gone"


class InjectedFault(RuntimeError):
    """What a function raises when a handler fault is injected."""


@dataclass(frozen=True)
class FaultRates:
    """Probability of each kind per candidate event or request (0: never)."""

    handler_transient: float = 0.0
    handler_permanent: float = 0.0
    dynamodb_throttled: float = 0.0
    put_events_failed: float = 0.0
    send_task_throttled: float = 0.0
    push_connection_gone: float = 0.0

    def of(self, kind: FaultKind) -> float:
        """The probability for `kind`."""
        rate: float = getattr(self, kind.value.replace("-", "_"))
        return rate

    @classmethod
    def only(cls, *kinds: FaultKind, rate: float = 1.0) -> FaultRates:
        """These kinds at `rate`, the others never."""
        return cls(**{kind.value.replace("-", "_"): rate for kind in kinds})


@dataclass(frozen=True)
class Candidate:
    """A call the injector may fail: its kind, where (function logical id or "workflow"), and what."""

    kind: FaultKind
    where: str
    detail_type: str = ""
    order_id: str = ""
    operation: str = ""
    connection: str = ""  # PostToConnection's ConnectionId


@dataclass(frozen=True)
class Injected:
    """One fault injected."""

    candidate: Candidate
    note: str

    def __str__(self) -> str:
        what = " ".join(
            p for p in (self.candidate.detail_type, self.candidate.operation, self.candidate.connection) if p
        )
        order = f" order {self.candidate.order_id}" if self.candidate.order_id else ""
        return f"{self.candidate.kind} at {self.candidate.where}: {what}{order} ({self.note})"


@dataclass
class _Invocation:
    function: str
    event_driven: bool


@dataclass
class FaultInjector:
    """Decides, injects and records faults for one engine; see the module docstring."""

    rates: FaultRates
    seed: int = 0
    only: Callable[[Candidate], bool] | None = None
    injected: list[Injected] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._random = random.Random(self.seed)
        self._lock = threading.Lock()
        self._current = threading.local()
        self._handler_faults: dict[tuple[str, str], FaultKind | None] = {}  # (function, event id) -> fault
        self._throttled_requests: set[str] = set()  # workflow requests whose last attempt was throttled
        self._refused_requests: set[str] = set()  # API requests whose last attempt was refused
        self._gone_connections: dict[str, bool] = {}  # push connection -> made gone (decided once)
        self._engine_clients: set[int] = set()
        self._unwrap: list[Callable[[], None]] = []

    # -------------------------------------------------------------------------------- results
    @property
    def counts(self) -> Counter[str]:
        """How many faults of each kind were injected."""
        with self._lock:
            return Counter(str(fault.candidate.kind) for fault in self.injected)

    @property
    def gone_connections(self) -> list[str]:
        """The push connections made gone (push-connection-gone)."""
        with self._lock:
            return sorted(c for c, gone in self._gone_connections.items() if gone)

    # ------------------------------------------------------------------------------ lifecycle
    def attach(self, engine: LocalEngine) -> None:
        """Start injecting into `engine` (its functions and every botocore call in the process)."""
        self._engine_clients = {id(client) for client in engine.clients.values()}
        for logical_id, function in engine.functions.items():
            self._unwrap.append(self._wrap_invoke(logical_id, function))
        _BotocoreHook.join(self)
        self._unwrap.append(lambda: _BotocoreHook.leave(self))

    def detach(self) -> None:
        """Stop injecting; what was recorded stays."""
        while self._unwrap:
            self._unwrap.pop()()

    # -------------------------------------------------------------------------------- handlers
    def _wrap_invoke(self, logical_id: str, function: Any) -> Callable[[], None]:
        original = function.invoke

        def invoke(event: Any) -> Any:
            event_driven = isinstance(event, dict) and "detail-type" in event
            previous = getattr(self._current, "invocation", None)
            self._current.invocation = _Invocation(logical_id, event_driven)
            try:
                if event_driven:
                    self._maybe_fail_handler(logical_id, event)
                return original(event)
            finally:
                self._current.invocation = previous

        function.invoke = invoke  # looked up on the instance by the engine: this one wins
        return lambda: vars(function).pop("invoke", None)

    def _maybe_fail_handler(self, logical_id: str, event: dict[str, Any]) -> None:
        key = (logical_id, str(event.get("id", "")))
        detail = event["detail"] if isinstance(event.get("detail"), dict) else {}
        candidate = {
            kind: Candidate(kind, logical_id, str(event["detail-type"]), str(detail.get("orderId", "")))
            for kind in (FaultKind.HANDLER_PERMANENT, FaultKind.HANDLER_TRANSIENT)
        }
        with self._lock:
            first_attempt = key not in self._handler_faults
            if first_attempt:  # decided once per event: a permanent fault fails every attempt
                self._handler_faults[key] = next(
                    (kind for kind, c in candidate.items() if self._decide(c)), None
                )
            fault = self._handler_faults[key]
            permanent = fault is FaultKind.HANDLER_PERMANENT
            fails = permanent or (fault is FaultKind.HANDLER_TRANSIENT and first_attempt)
            if fails and fault is not None and first_attempt:  # one record per event faulted
                note = "every attempt" if permanent else "first attempt"
                self.injected.append(Injected(candidate[fault], note))
        if fails:
            raise InjectedFault(f"injected {fault} in {logical_id}")

    # -------------------------------------------------------------------------------- botocore
    def on_call(self, client: Any, operation: str, params: dict[str, Any]) -> dict[str, Any] | None:
        """A response to return instead of calling AWS, an exception raised, or None to go ahead."""
        if id(client) in self._engine_clients:
            return None
        service = client.meta.service_model.service_name
        invocation: _Invocation | None = getattr(self._current, "invocation", None)
        if invocation is None and service == "dynamodb" and _access_key(client) == ASL_ACCESS_KEY:
            self._maybe_throttle_workflow(operation, params)  # raises when it throttles
            return None
        if (service, operation) == ("apigatewaymanagementapi", "PostToConnection"):
            # Only functions post (the engine's clients were let through above). The fan-out posts from
            # its own thread pool, where this thread's invocation is not known.
            self._maybe_gone(client, invocation, str(params.get("ConnectionId", "")))  # raises when gone
            return None
        if invocation is None or invocation.event_driven:
            return None
        if service == "events" and operation == "PutEvents":
            entries = params.get("Entries", [])
            first = entries[0] if entries else {}
            candidate = Candidate(
                FaultKind.PUT_EVENTS_FAILED,
                invocation.function,
                str(first.get("DetailType", "")),
                _order_id(first.get("Detail")),
                operation,
            )
            request = [operation, candidate.detail_type, _caller_or_order(first.get("Detail"))]
            if self._decide_unless_retry(candidate, request, f"{len(entries)} entries refused"):
                return _failed_put_events(len(entries))
        if service == "stepfunctions" and operation in SEND_TASK_OPERATIONS:
            candidate = Candidate(FaultKind.SEND_TASK_THROTTLED, invocation.function, operation=operation)
            request = [operation, str(params.get("taskToken", ""))]
            if self._decide_unless_retry(candidate, request, "ThrottlingException"):
                raise _throttling(operation)
        return None

    def _maybe_throttle_workflow(self, operation: str, params: dict[str, Any]) -> None:
        # Keyed by the request itself: moto runs each attempt of a task in a new thread, and the
        # retry of a state sends the same request (the capacity slot's requests name the execution).
        request = json.dumps([operation, params], sort_keys=True, default=str)
        with self._lock:
            if request in self._throttled_requests:  # its retry goes through
                self._throttled_requests.discard(request)
                return
        candidate = Candidate(FaultKind.DYNAMODB_THROTTLED, "workflow", operation=operation)
        if self._decide_and_record(candidate, "ThrottlingException"):
            with self._lock:
                self._throttled_requests.add(request)
            raise _throttling(operation)

    def _maybe_gone(self, client: Any, invocation: _Invocation | None, connection_id: str) -> None:
        where = invocation.function if invocation else "the push fan-out's sending thread"
        candidate = Candidate(
            FaultKind.PUSH_CONNECTION_GONE, where, operation="PostToConnection", connection=connection_id
        )
        with self._lock:
            if connection_id not in self._gone_connections:  # decided at its first post, for good
                gone = self._decide(candidate)
                self._gone_connections[connection_id] = gone
                if gone:
                    self.injected.append(Injected(candidate, "GoneException from now on"))
            gone = self._gone_connections[connection_id]
        if gone:
            error = {
                "Error": {"Code": "GoneException", "Message": "the connection is gone (injected)"},
                "ResponseMetadata": {"HTTPStatusCode": 410, "RequestId": "injected-fault"},
            }
            raise client.exceptions.GoneException(error, "PostToConnection")

    # -------------------------------------------------------------------------------- deciding
    def _decide(self, candidate: Candidate) -> bool:
        # Called with the lock held. The random draw happens for every candidate, so `only` does not
        # change which draws the other candidates get.
        draw = self._random.random()
        return draw < self.rates.of(candidate.kind) and (self.only is None or self.only(candidate))

    def _decide_unless_retry(self, candidate: Candidate, request: list[str], note: str) -> bool:
        # An API request the previous fault refused goes through this time (module docstring).
        key = json.dumps(request)
        with self._lock:
            if key in self._refused_requests:
                self._refused_requests.discard(key)
                return False
        if not self._decide_and_record(candidate, note):
            return False
        with self._lock:
            self._refused_requests.add(key)
        return True

    def _decide_and_record(self, candidate: Candidate, note: str) -> bool:
        with self._lock:
            if not self._decide(candidate):
                return False
            self.injected.append(Injected(candidate, note))
            return True


def _access_key(client: Any) -> str | None:
    credentials = getattr(getattr(client, "_request_signer", None), "_credentials", None)
    return getattr(credentials, "access_key", None)


def _caller_or_order(detail: Any) -> str:
    """Whose event it is: its userId (a customer's new order: each attempt has a new orderId), else
    its orderId."""
    value = _detail(detail)
    return str(value.get("userId") or value.get("orderId") or "")


def _order_id(detail: Any) -> str:
    return str(_detail(detail).get("orderId", ""))


def _detail(detail: Any) -> dict[str, Any]:
    """An entry's Detail (JSON text) as a dict; {} when it is not a JSON object."""
    try:
        value = json.loads(detail) if isinstance(detail, str) else {}
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _failed_put_events(count: int) -> dict[str, Any]:
    entry = {"ErrorCode": "InternalFailure", "ErrorMessage": "injected: the entry was not published"}
    return {"FailedEntryCount": count, "Entries": [dict(entry) for _ in range(count)]}


def _throttling(operation: str) -> ClientError:
    return ClientError(
        {
            "Error": {"Code": "ThrottlingException", "Message": "Rate exceeded (injected)"},
            "ResponseMetadata": {"HTTPStatusCode": 400, "RequestId": "injected-fault"},
        },
        operation,
    )


class _BotocoreHook:
    """Wraps BaseClient._make_api_call while at least one injector is attached (process-wide)."""

    _lock = threading.Lock()
    _injectors: list[FaultInjector] = []  # noqa: RUF012  (class-level registry on purpose)
    _original: Callable[..., Any] | None = None

    @classmethod
    def join(cls, injector: FaultInjector) -> None:
        with cls._lock:
            cls._injectors.append(injector)
            if cls._original is None:
                original = BaseClient._make_api_call
                cls._original = original

                def _make_api_call(client: Any, operation: str, params: dict[str, Any]) -> Any:
                    for active in list(cls._injectors):
                        answer = active.on_call(client, operation, params)
                        if answer is not None:
                            return answer
                    return original(client, operation, params)

                BaseClient._make_api_call = _make_api_call

    @classmethod
    def leave(cls, injector: FaultInjector) -> None:
        with cls._lock:
            if injector in cls._injectors:
                cls._injectors.remove(injector)
            if not cls._injectors and cls._original is not None:
                BaseClient._make_api_call = cls._original
                cls._original = None
