"""Minimal fixes to moto 5.2.5, the one place where the local engine changes moto's behaviour.

Each patch corrects one moto behaviour that differs from AWS and that the application relies on; each
has a regression test in tests/local/test_moto_patches.py that fails when the patch is skipped:

    LOCAL_MOTO_PATCHES_SKIP=<name>[,<name>...] pytest tests/local/test_moto_patches.py

Patches are process-wide monkeypatches (moto's Step Functions interpreter runs in this process for
mock_aws and for a ThreadedMotoServer/`python -m local.server`). `apply()` is idempotent; `revert()`
undoes them.
"""

from __future__ import annotations

import datetime
import functools
import os
import sys
import threading
import uuid
import warnings
from collections.abc import Callable, Iterable
from typing import Any

import moto

PINNED_MOTO_VERSION = "5.2.5"
SKIP_ENV = "LOCAL_MOTO_PATCHES_SKIP"
ALLOW_OTHER_VERSION_ENV = "LOCAL_MOTO_ALLOW_OTHER_VERSION"

# name -> undo function, for the patches currently installed
_installed: dict[str, Callable[[], None]] = {}


def _replace(owner: Any, attribute: str, replacement: Any) -> Callable[[], None]:
    """Set owner.attribute to replacement and return a function that restores the original."""
    original = owner.__dict__[attribute]
    setattr(owner, attribute, replacement)
    return lambda: setattr(owner, attribute, original)


def _undo_all(undo: list[Callable[[], None]]) -> Callable[[], None]:
    """One undo function for several replacements."""

    def restore_all() -> None:
        for restore in undo:
            restore()

    return restore_all


def _iso8601_millis(value: datetime.datetime) -> str:
    """Format like AWS's context object: 2026-11-29T14:11:37.059Z."""
    utc = value.astimezone(datetime.UTC)
    return utc.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _patch_start_time_iso() -> Callable[[], None]:
    # moto passes the execution's start datetime object into the context object, so
    # `$$.Execution.StartTime` is not the ISO-8601 string AWS documents, and intrinsics such as
    # States.StringSplit($$.Execution.StartTime, 'T') fail. Format it where moto builds the details
    # (ExecutionDetails.start_time is even annotated `str` in moto).
    from moto.stepfunctions.parser.backend.execution import Execution

    original = Execution.get_start_execution_details

    def get_start_execution_details(self: Any) -> Any:
        details = original(self)
        if isinstance(details.start_time, datetime.datetime):
            details.start_time = _iso8601_millis(details.start_time)
        return details

    return _replace(Execution, "get_start_execution_details", get_start_execution_details)


def _patch_callback_before_heartbeat() -> Callable[[], None]:
    # moto registers the task token before the task's API call (e.g. events:putEvents) but creates
    # the heartbeat endpoint only after that call returns. A SendTaskSuccess/Failure arriving in
    # between stores the outcome on the callback endpoint, finds no heartbeat endpoint to wake, and
    # the fresh heartbeat endpoint then waits the full HeartbeatSeconds and reports
    # States.HeartbeatTimeout although the task had already succeeded. Fix: when the heartbeat
    # endpoint is created after the outcome arrived, signal it at once. Race-free under the GIL:
    # notify() writes the outcome before it reads the heartbeat endpoint, and this code writes the
    # heartbeat endpoint before it reads the outcome, so at least one side sees the other.
    from moto.stepfunctions.parser.asl.eval.callback.callback import CallbackEndpoint

    original = CallbackEndpoint.setup_heartbeat_endpoint

    def setup_heartbeat_endpoint(self: Any, heartbeat_seconds: int) -> Any:
        endpoint = original(self, heartbeat_seconds)
        if self.get_outcome() is not None:
            endpoint.notify()
        return endpoint

    return _replace(CallbackEndpoint, "setup_heartbeat_endpoint", setup_heartbeat_endpoint)


def _patch_send_task_failure_cause() -> Callable[[], None]:
    # moto's SendTaskFailure handler reads `error` but never `cause`, so a Catch with
    # ResultPath `$.failure` gets {"Error": ..., "Cause": ""} instead of the caller's cause. The
    # executing (parser) backend already accepts `cause`; pass it through.
    from moto.core.responses import EmptyResult
    from moto.stepfunctions.parser.models import StepFunctionsParserBackend
    from moto.stepfunctions.responses import StepFunctionResponse

    def send_task_failure(self: Any) -> Any:
        backend = self.stepfunction_backend
        task_token = self._get_param("taskToken")
        error = self._get_param("error")
        if isinstance(backend, StepFunctionsParserBackend):
            backend.send_task_failure(task_token, error=error, cause=self._get_param("cause"))
        else:  # the non-executing backend ignores failures altogether
            backend.send_task_failure(task_token, error=error)
        return EmptyResult()

    return _replace(StepFunctionResponse, "send_task_failure", send_task_failure)


def _patch_event_account_field() -> Callable[[], None]:
    # moto renders each event it delivers to a target through a default input template that leaves
    # out "account", so targets (our SQS route queues, hence the handlers) get events without the
    # `account` field every EventBridge event has; Powertools' EventBridgeModel then rejects them.
    # Add it to the default template (moto fills <account> from the event, like the other fields).
    from moto.events.utils import EventTemplateParser

    template = EventTemplateParser.DEFAULT_EVENT_INPUT_TEMPLATE
    if '"account"' in template:  # already fixed upstream: nothing to do
        return lambda: None
    patched = template.replace('"version": "0",', '"version": "0", "account": "<account>",', 1)
    return _replace(EventTemplateParser, "DEFAULT_EVENT_INPUT_TEMPLATE", patched)


def _patch_start_execution_default_name() -> Callable[[], None]:
    # StartExecution without a name (the workshop's `aws stepfunctions start-execution`, the console)
    # gets a generated UUID name on AWS. moto's executing backend keeps name None: the ARN ends
    # `:None`, $$.Execution.Name is null (our capacity slot is named after it, so the execution fails)
    # and a second unnamed start is refused as ExecutionAlreadyExists. Generate the name as AWS does.
    from moto.stepfunctions.parser.models import StepFunctionsParserBackend

    original = StepFunctionsParserBackend.start_execution

    def start_execution(
        self: Any, state_machine_arn: str, name: Any = None, *args: Any, **kwargs: Any
    ) -> Any:
        return original(self, state_machine_arn, name or str(uuid.uuid4()), *args, **kwargs)

    return _replace(StepFunctionsParserBackend, "start_execution", start_execution)


def _patch_dynamodb_atomic_requests() -> Callable[[], None]:
    # DynamoDB applies each request to an item atomically. moto checks a condition, computes an
    # UpdateItem's new values and then writes them attribute by attribute on the stored item, with no
    # lock: in-process, a request from another thread (an ASL task, a handler, a test) can read a
    # half-applied update or interleave two updates, losing one (a capacity slot ADD/DELETE, an
    # order-number increment). Serialize DynamoDB requests; none waits for another thread inside.
    from moto.dynamodb.responses import DynamoHandler

    lock = threading.RLock()
    original = DynamoHandler.call_action

    @functools.wraps(original)
    def call_action(self: Any) -> Any:
        with lock:
            return original(self)

    return _replace(DynamoHandler, "call_action", call_action)


def _patch_task_timeout_default() -> Callable[[], None]:
    # A Task with HeartbeatSeconds but no TimeoutSeconds gets a 60 s TimeoutSeconds in moto, so every
    # callback wait ends after a minute; on AWS a Task's TimeoutSeconds defaults to 99999999 and only
    # the heartbeat bounds our waits (300 s, 900 s). Restore AWS's default after moto parses a state.
    from moto.stepfunctions.parser.asl.component.common.timeouts.timeout import TimeoutSeconds
    from moto.stepfunctions.parser.asl.component.state.exec.execute_state import ExecutionState

    original = ExecutionState.from_state_props

    def from_state_props(self: Any, state_props: Any) -> None:
        original(self, state_props)
        timeout = getattr(self, "timeout", None)
        if isinstance(timeout, TimeoutSeconds) and timeout.is_default and timeout.timeout_seconds == 60:
            self.timeout = TimeoutSeconds(
                timeout_seconds=TimeoutSeconds.DEFAULT_TIMEOUT_SECONDS, is_default=True
            )

    return _replace(ExecutionState, "from_state_props", from_state_props)


def _patch_callback_skips_starting_executions() -> Callable[[], None]:
    # SendTaskSuccess/Failure/Heartbeat look for the token in every execution's callback pool via
    # `execution.exec_worker.env`, which is None while an execution that was just started is still
    # parsing its definition. The call then fails with AttributeError (in process; a 500 from the
    # server) and the callback is lost although its own execution is waiting for it. An execution
    # without an environment has issued no token yet: leave it out of the search.
    from moto.stepfunctions.parser.models import StepFunctionsParserBackend

    original = StepFunctionsParserBackend._get_executions

    def _get_executions(self: Any, execution_status: Any = None) -> list[Any]:
        return [
            execution
            for execution in original(self, execution_status)
            if execution.exec_worker is not None and execution.exec_worker.env is not None
        ]

    return _replace(StepFunctionsParserBackend, "_get_executions", _get_executions)


def _patch_execution_status_while_starting() -> Callable[[], None]:
    # StartExecution lists the new execution before start() sets its status: a ListExecutions in
    # between read `None.value` (AttributeError; a 500 from the server) and failed the caller, e.g. a
    # test or the activity log looking at executions while an order starts. On AWS an execution is
    # RUNNING from StartExecution on.
    from moto.stepfunctions.parser.backend.execution import Execution

    original: property = Execution.__dict__["status"]

    def status(self: Any) -> str:
        return "RUNNING" if self.exec_status is None else str(original.__get__(self))

    return _replace(Execution, "status", property(status))


# Performance patches: moto 5.2.5 behaves the same with or without them, only slower. Together they
# took the bare-ASL floor of bench/throughput.py from ~5.5 to ~15 orders/s here (see bench/README.md).


def _patch_asl_parse_once() -> Callable[[], None]:
    # moto parses the definition with ANTLR and builds its evaluation tree at every execution start
    # (~40% of the engine's CPU). The tree is immutable once built (all run state lives in the
    # execution's Environment), so executions of one definition can share it. Cached per definition
    # text; the cache starts empty whenever the patch set changes (another patch may shape the tree).
    # CreateStateMachine's validation and the static analysers parse the whole definition too, the
    # latter at *every* DescribeStateMachine / DescribeExecution (variable references): they only
    # read the result, so they share the cache (a definition that fails to parse is never cached, so
    # it is still refused). In the tests, each of which creates the state machine, this was the
    # largest single cost.
    from moto.stepfunctions.parser import models as parser_models
    from moto.stepfunctions.parser.asl.static_analyser import static_analyser
    from moto.stepfunctions.parser.backend import execution_worker

    parser = execution_worker.AmazonStateLanguageParser
    original = parser.__dict__["parse"]
    cache: dict[str, Any] = {}
    lock = threading.Lock()

    def parse(definition: str) -> Any:
        with lock:
            parsed = cache.get(definition)
        if parsed is None:
            parsed = original.__func__(definition)
            with lock:
                parsed = cache.setdefault(definition, parsed)
        return parsed

    cached_parser = type("CachedAmazonStateLanguageParser", (parser,), {"parse": staticmethod(parse)})
    return _undo_all(
        [
            _replace(execution_worker, "AmazonStateLanguageParser", cached_parser),
            _replace(static_analyser, "AmazonStateLanguageParser", cached_parser),
            _replace(parser_models, "AmazonStateLanguageParser", cached_parser),
        ]
    )


def _patch_asl_task_clients_reused() -> Callable[[], None]:
    # moto creates a new boto3 client for every service task (~30 ms of CPU each). boto3 clients are
    # thread-safe; reuse one per session, region, service and endpoint.
    # The credentials moto passes are fixed dummies, so they are not part of the key.
    import boto3
    from moto.core.models import botocore_stubber
    from moto.settings import moto_server_port
    from moto.stepfunctions.parser.asl.utils import boto_client

    from local.lambdas import ENVIRONMENT_LOCK

    original = boto_client.boto_client_for
    cache: dict[tuple[Any, ...], Any] = {}
    lock = threading.Lock()

    def boto_client_for(region: str, service: str, state_credentials: Any = None) -> Any:
        endpoint = None if botocore_stubber.enabled else moto_server_port()
        key = (boto3._get_default_session(), region, service, endpoint)
        with lock:
            client = cache.get(key)
        if client is None:
            # botocore copies os.environ while it creates a client; the local functions swap their
            # variables in and out of it (local/lambdas.py): a key removed mid-copy is a KeyError
            # that fails the task (States.Runtime). Create clients only between invocations.
            with ENVIRONMENT_LOCK:
                # Looked up again: a burst of executions all miss at first, and each would create
                # its own client (~30 ms of CPU) while the first one is being made.
                with lock:
                    client = cache.get(key)
                if client is None:
                    client = original(region, service, state_credentials)
                    with lock:
                        cache[key] = client
        return client

    # Every task module imported the function by name: replace each module's reference.
    owners = [
        module
        for name, module in list(sys.modules.items())
        if name.startswith("moto.stepfunctions.parser.asl")
        and getattr(module, "boto_client_for", None) is original
    ]
    return _undo_all([_replace(module, "boto_client_for", boto_client_for) for module in owners])


def _patch_jsonpath_parse_once() -> Callable[[], None]:
    # moto builds a new jsonpath_ng parser (ply lexer and grammar tables) for every path it
    # evaluates: several per ASL state, and nine per event delivered to each rule target (EventBridge's
    # input template). That was the local engine's largest cost. Parsed paths are immutable: parse
    # each path once. moto.events imports `jsonpath_ng.ext.parse` at call time, the ASL's json_path
    # module at import time: replace both.
    import jsonpath_ng.ext
    from moto.stepfunctions.parser.asl.utils import json_path

    cached = functools.lru_cache(maxsize=4096)(jsonpath_ng.ext.parse)
    return _undo_all([_replace(jsonpath_ng.ext, "parse", cached), _replace(json_path, "parse", cached)])


def _patch_sqs_receive_without_queue_attributes() -> Callable[[], None]:
    # For every message it receives, moto checks the retention period through get_queue_attributes,
    # which computes every attribute of the queue, ApproximateNumberOfMessages included: a pass over
    # all its messages. Receiving from a queue with a backlog is then quadratic (with 200 orders in
    # flight, half the engine's CPU went there). Read the one attribute the check needs.
    from moto.core.utils import unix_time
    from moto.sqs.models import SQSBackend

    def is_message_valid_based_on_retention_period(self: Any, queue_name: str, message: Any) -> bool:
        retention_period = int(self.get_queue(queue_name).message_retention_period)
        return bool(retention_period + message.sent_timestamp / 1000 > unix_time())

    return _replace(
        SQSBackend, "is_message_valid_based_on_retention_period", is_message_valid_based_on_retention_period
    )


def _patch_sqs_message_clock() -> Callable[[], None]:
    # Every SendMessage computes the queue's attributes, which checks each message's `visible` and
    # `delayed` and so reads the clock twice per message through naive datetimes (~15 us each):
    # milliseconds per send once a queue has a backlog. Same comparisons, on time.time().
    import time

    from moto.sqs.models import Message

    def visible(self: Any) -> bool:
        return bool(time.time() * 1000.0 > self.visible_at)

    def delayed(self: Any) -> bool:
        return bool(time.time() * 1000.0 < self.delayed_until)

    return _undo_all(
        [_replace(Message, "visible", property(visible)), _replace(Message, "delayed", property(delayed))]
    )


def _patch_dynamodb_attribute_values_direct() -> Callable[[], None]:
    # moto serializes every DynamoDB answer through its generic, shape-driven serializer, which visits
    # all ten members of the AttributeValue shape (S, N, B, SS, ..., M, L) for every attribute of every
    # item returned, with a lookup per member: ~0.5 ms per item, so a Query returning the 200
    # connections of the push channel cost ~100 ms of CPU (3 per shop broadcast). An AttributeValue
    # holds exactly one of them, already in its wire form (moto's dynamo_to_dict leaves only binary
    # values as raw bytes, which the serializer base64-encodes): write it directly, same JSON.
    import base64

    from moto.core.serialize import BaseJSONSerializer

    original = BaseJSONSerializer._serialize_type_structure

    def wire(value: Any) -> Any:
        ((kind, member),) = value.items()
        if kind == "B":
            return {kind: base64.b64encode(member).decode()}
        if kind == "BS":
            return {kind: [base64.b64encode(item).decode() for item in member]}
        if kind == "M":
            return {kind: {name: wire(item) for name, item in member.items()}}
        if kind == "L":
            return {kind: [wire(item) for item in member]}
        return {kind: member}  # S, N, SS, NS, BOOL, NULL: strings, lists of strings, booleans

    def _serialize_type_structure(self: Any, serialized: Any, value: Any, shape: Any, key: str) -> None:
        if shape.name == "AttributeValue" and key and isinstance(value, dict) and len(value) == 1:
            self._default_serialize(serialized, wire(value), shape, key)
        else:
            original(self, serialized, value, shape, key)

    return _replace(BaseJSONSerializer, "_serialize_type_structure", _serialize_type_structure)


def _patch_kms_symmetric_key_without_rsa() -> Callable[[], None]:
    # moto gives every KMS key an RSA-2048 private key, a symmetric one too (the default key that a
    # table with SSE gets in each account): 0.1 s or more of CPU per key, per test. A symmetric key's
    # private key is made the first time something uses it (nothing does for encryption).
    from moto.kms import models as kms_models

    original = kms_models.generate_private_key

    class OnFirstUse:
        def __init__(self, key_spec: str) -> None:
            self._key_spec = key_spec
            self._key: Any = None

        def __getattr__(self, name: str) -> Any:
            if self._key is None:
                self._key = original(self._key_spec)
            return getattr(self._key, name)

    def generate_private_key(key_spec: str) -> Any:
        return OnFirstUse(key_spec) if key_spec == "SYMMETRIC_DEFAULT" else original(key_spec)

    return _replace(kms_models, "generate_private_key", generate_private_key)


def _patch_response_methods_listed_once() -> Callable[[], None]:
    # Every request to moto lists its response class's methods with inspect.getmembers (to tell an
    # implemented action from a missing one): a walk over some 200 attributes per request, about a
    # tenth of a DynamoDB GetItem's cost. A class's method names do not change while it serves (the
    # patches here replace methods, never add or remove names): list them once per class.
    from moto.core import responses

    original = responses.__dict__["method_names_from_class"]
    cache: dict[type, frozenset[str]] = {}

    def method_names_from_class(clazz: Any) -> frozenset[str]:
        names = cache.get(clazz)
        if names is None:
            names = cache.setdefault(clazz, frozenset(original(clazz)))
        return names

    return _replace(responses, "method_names_from_class", method_names_from_class)


def _patch_server_backend_lookup_once() -> Callable[[], None]:
    # moto's server finds the service of every request by host: it lists moto's package directory
    # (a stat per service, ~200) and then tries every service's URL patterns, all under one lock that
    # every request thread takes. The answer depends on the host alone: find it once per host.
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication

    original = DomainDispatcherApplication.get_backend_for_host
    cache: dict[str, Any] = {}  # every instance has the same patterns (moto's backend index)

    def get_backend_for_host(self: Any, host: str | None) -> Any:
        if host is None:
            return None
        backend = cache.get(host)
        if backend is None:
            backend = original(self, host)
            if backend is not None:
                cache[host] = backend
        return backend

    return _replace(DomainDispatcherApplication, "get_backend_for_host", get_backend_for_host)


PATCHES: dict[str, Callable[[], Callable[[], None]]] = {
    "start_time_iso": _patch_start_time_iso,
    "callback_before_heartbeat": _patch_callback_before_heartbeat,
    "send_task_failure_cause": _patch_send_task_failure_cause,
    "event_account_field": _patch_event_account_field,
    "start_execution_default_name": _patch_start_execution_default_name,
    "dynamodb_atomic_requests": _patch_dynamodb_atomic_requests,
    "task_timeout_default": _patch_task_timeout_default,
    "callback_skips_starting_executions": _patch_callback_skips_starting_executions,
    "execution_status_while_starting": _patch_execution_status_while_starting,
    "asl_parse_once": _patch_asl_parse_once,
    "asl_task_clients_reused": _patch_asl_task_clients_reused,
    "jsonpath_parse_once": _patch_jsonpath_parse_once,
    "sqs_receive_without_queue_attributes": _patch_sqs_receive_without_queue_attributes,
    "sqs_message_clock": _patch_sqs_message_clock,
    "kms_symmetric_key_without_rsa": _patch_kms_symmetric_key_without_rsa,
    "dynamodb_attribute_values_direct": _patch_dynamodb_attribute_values_direct,
    "response_methods_listed_once": _patch_response_methods_listed_once,
    "server_backend_lookup_once": _patch_server_backend_lookup_once,
}


_PARSE_CACHE_PATCH = "asl_parse_once"


def _skipped_from_env() -> set[str]:
    return {name.strip() for name in os.environ.get(SKIP_ENV, "").split(",") if name.strip()}


def check_moto_version(allow_other_version: bool = False) -> None:
    """Refuse (or, when allowed, warn about) a moto other than the one these patches were written for."""
    if moto.__version__ == PINNED_MOTO_VERSION:
        return
    message = (
        f"local/moto_patches.py targets moto {PINNED_MOTO_VERSION}, found {moto.__version__}: "
        "re-check every patch (and its regression test) before relying on it"
    )
    if allow_other_version or os.environ.get(ALLOW_OTHER_VERSION_ENV) == "1":
        warnings.warn(message, RuntimeWarning, stacklevel=3)
        return
    raise RuntimeError(message)


def apply(skip: Iterable[str] | None = None, *, allow_other_version: bool = False) -> list[str]:
    """Install every patch not named in `skip` (default: $LOCAL_MOTO_PATCHES_SKIP); return what is installed.

    Idempotent. A patch that is installed but now skipped is removed, so tests can prove a
    regression test fails without its patch.
    """
    check_moto_version(allow_other_version)
    skipped = set(skip) if skip is not None else _skipped_from_env()
    unknown = skipped - PATCHES.keys()
    if unknown:
        raise ValueError(f"unknown moto patch(es) {sorted(unknown)}; known: {sorted(PATCHES)}")
    before = set(_installed)
    for name, install in PATCHES.items():
        if name in skipped and name in _installed:
            _installed.pop(name)()
        elif name not in skipped and name not in _installed:
            _installed[name] = install()
    if before and set(_installed) != before and _PARSE_CACHE_PATCH in _installed:
        # Trees parsed under the old patch set may differ (task_timeout_default shapes them).
        _installed.pop(_PARSE_CACHE_PATCH)()
        _installed[_PARSE_CACHE_PATCH] = PATCHES[_PARSE_CACHE_PATCH]()
    return sorted(_installed)


def revert() -> None:
    """Remove every installed patch (moto back to stock behaviour)."""
    for name in list(_installed):
        _installed.pop(name)()


def installed() -> list[str]:
    """Names of the patches currently installed."""
    return sorted(_installed)
