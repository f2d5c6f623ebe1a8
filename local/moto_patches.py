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


PATCHES: dict[str, Callable[[], Callable[[], None]]] = {
    "start_time_iso": _patch_start_time_iso,
    "callback_before_heartbeat": _patch_callback_before_heartbeat,
    "send_task_failure_cause": _patch_send_task_failure_cause,
    "event_account_field": _patch_event_account_field,
    "start_execution_default_name": _patch_start_execution_default_name,
    "dynamodb_atomic_requests": _patch_dynamodb_atomic_requests,
    "task_timeout_default": _patch_task_timeout_default,
}


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
    for name, install in PATCHES.items():
        if name in skipped and name in _installed:
            _installed.pop(name)()
        elif name not in skipped and name not in _installed:
            _installed[name] = install()
    return sorted(_installed)


def revert() -> None:
    """Remove every installed patch (moto back to stock behaviour)."""
    for name in list(_installed):
        _installed.pop(name)()


def installed() -> list[str]:
    """Names of the patches currently installed."""
    return sorted(_installed)
