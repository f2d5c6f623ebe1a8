"""Least privilege, proven at run time: every AWS call a function or the state machine makes is allowed
by that principal's IAM policy in template.yaml.

Recording (`CallRecorder`, one per engine, i.e. per test - deterministic under pytest-xdist):
- functions: a botocore `provide-client-params` hook on the default boto3 session, which is where the
  handlers' `boto3.client(...)` clients come from; the call is attributed to the function whose
  invocation runs on the calling thread (the engine's invoke is wrapped to say so). Calls made by the
  test itself (the engine's own clients, or any thread outside an invocation) are not attributed.
- the state machine: moto's ASL interpreter creates a boto3 client for every Task it runs
  (moto/stepfunctions/parser/asl/utils/boto_client.py, `boto_client_for(region, service,
  state_credentials)`); while a recorder is active that factory is wrapped so each such client gets the
  same hook, attributed through the execution role it runs with (`state_credentials.role_arn`) to the
  state machine that has that role.
Each call becomes one request per resource it touches - (principal, IAM action, resource ARN, condition
context): the table ARN (`.../index/<name>` when a Query or Scan reads an index); the bus ARN, once per
PutEvents entry, with `events:source` and `events:detail-type`; for the task-token actions the ARN of
the state machine that issued the token (looked up in the executions' histories), which is what the
template's statements for SendTaskSuccess/Failure are scoped to; for the WebSocket management API
(PostToConnection, GetConnection, DeleteConnection: IAM action `execute-api:ManageConnections`) the
ARN `arn:aws:execute-api:<region>:<account>:<api id>/<stage>/<METHOD>/@connections/<id>` of the
template's WebSocket API and stage.

Checking (`Policies`): the template is expanded by the SAM translator (tests/sam_translate.py, run with
the SAM CLI's interpreter in .venv-tools), so policy templates and the policies SAM generates count as
deployed; resource ARNs are resolved to the local names with local/template.py. Without .venv-tools
only explicit `Statement` policies can be read, and anything else fails loudly. Conditions are
evaluated for the String*/Arn* operators against the context above; a key the request does not carry,
or an operator this module does not know, makes the condition false (as IAM does for a missing key),
so an unevaluable condition can only deny. NotAction/NotResource are refused.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import json
import os
import re
import subprocess
import sys
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import boto3

from local.engine import LocalEngine
from local.template import Template

ROOT = Path(__file__).resolve().parent.parent
TOOLS_PYTHON = ROOT / ".venv-tools" / "bin" / "python"
TRANSLATE_SCRIPT = Path(__file__).resolve().with_name("sam_translate.py")
HOOK_EVENT = "provide-client-params"
TOKEN_ACTIONS = frozenset({"states:SendTaskSuccess", "states:SendTaskFailure", "states:SendTaskHeartbeat"})
PRINCIPAL_TYPES = {"AWS::Lambda::Function": "Role", "AWS::StepFunctions::StateMachine": "RoleArn"}
SAM_PRINCIPAL_TYPES = ("AWS::Serverless::Function", "AWS::Serverless::StateMachine")


class PolicyError(Exception):
    """The template's policies cannot be read or evaluated here (fails the test: extend this module)."""


# ------------------------------------------------------------------------------ thread attribution
@contextmanager
def threads_inherit(local: threading.local, attribute: str) -> Iterator[None]:
    """While active, a thread started from a thread that has `local.<attribute>` set runs with it set too.

    A handler may fan work out to threads (the push fan-out posts with a thread pool); their AWS calls
    are still that function's, so whatever attributes calls per thread must follow them there.
    """
    original_start, original_run = threading.Thread.start, threading.Thread.run

    def start(thread: threading.Thread) -> None:
        thread._inherited_attribution = getattr(local, attribute, None)  # type: ignore[attr-defined]
        original_start(thread)

    def run(thread: threading.Thread) -> None:
        inherited = getattr(thread, "_inherited_attribution", None)
        if inherited is not None:
            setattr(local, attribute, inherited)
        original_run(thread)

    # setattr: the class's methods are replaced for the duration (process-wide, like the hooks above).
    setattr(threading.Thread, "start", start)  # noqa: B010
    setattr(threading.Thread, "run", run)  # noqa: B010
    try:
        yield
    finally:
        setattr(threading.Thread, "start", original_start)  # noqa: B010
        setattr(threading.Thread, "run", original_run)  # noqa: B010


# --------------------------------------------------------------------------------------- calls
@dataclass(frozen=True)
class AwsCall:
    """One request IAM authorises: who, which action, on which resource, with which condition keys."""

    principal: str  # logical id of the function or state machine
    action: str  # e.g. dynamodb:UpdateItem
    resource: str  # ARN
    context: Mapping[str, str] = field(default_factory=dict)  # condition keys, e.g. events:detail-type

    def __str__(self) -> str:
        keys = "".join(f" {key}={value}" for key, value in sorted(self.context.items()))
        return f"{self.principal}: {self.action} on {self.resource}{keys}"


@dataclass(frozen=True)
class _RawCall:
    principal: str
    prefix: str  # IAM service prefix (the service's signing name: dynamodb, events, states)
    operation: str
    params: Mapping[str, Any] = field(repr=False)  # may hold a task token: never printed


class CallRecorder:
    """Records the AWS calls of one engine's functions and state machines; see the module docstring."""

    def __init__(self, engine: LocalEngine) -> None:
        self.engine = engine
        self._raw: list[_RawCall] = []
        self._lock = threading.Lock()
        self._invocation = threading.local()
        self._active = False
        sfn = engine.clients["stepfunctions"]
        self._roles = {
            sfn.describe_state_machine(stateMachineArn=arn)["roleArn"]: logical_id
            for logical_id, arn in engine.provisioned.state_machine_arns.items()
        }
        self._unwrap: list[Callable[[], None]] = []

    # ------------------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        """Hook the default boto3 session and the engine's functions; join the state machine hook."""
        if boto3.DEFAULT_SESSION is None:  # mock_aws resets it; the handlers' clients come from it
            boto3.setup_default_session()
        session = boto3.DEFAULT_SESSION
        assert session is not None
        session.events.register(HOOK_EVENT, self._on_function_call)
        self._unwrap.append(lambda: session.events.unregister(HOOK_EVENT, self._on_function_call))
        for logical_id, function in self.engine.functions.items():
            self._unwrap.append(self._wrap_invoke(logical_id, function))
        _StateMachineClients.join(self)
        self._unwrap.append(lambda: _StateMachineClients.leave(self))
        inheriting = contextlib.ExitStack()
        inheriting.enter_context(threads_inherit(self._invocation, "principal"))
        self._unwrap.append(inheriting.close)
        self._active = True

    def stop(self) -> None:
        """Stop recording (clients created meanwhile keep the hook, which then does nothing)."""
        self._active = False
        while self._unwrap:
            self._unwrap.pop()()

    def _wrap_invoke(self, logical_id: str, function: Any) -> Callable[[], None]:
        original = function.invoke

        def invoke(event: Any) -> Any:
            previous = getattr(self._invocation, "principal", None)
            self._invocation.principal = logical_id
            try:
                return original(event)
            finally:
                self._invocation.principal = previous

        function.invoke = invoke  # the engine looks the method up on the instance: this one wins
        return lambda: vars(function).pop("invoke", None)

    # ---------------------------------------------------------------------------------- hooks
    def _on_function_call(self, params: Mapping[str, Any], model: Any, **_: Any) -> None:
        principal = getattr(self._invocation, "principal", None)
        if principal is not None:
            self._record(principal, params, model)

    def watch_state_machine_client(self, client: Any, role_arn: str | None) -> None:
        """Attribute the calls of an ASL interpreter client to the state machine with that role."""
        principal = self._roles.get(role_arn or "")
        if principal is not None:
            client.meta.events.register(
                HOOK_EVENT, lambda params, model, **_: self._record(principal, params, model)
            )

    def _record(self, principal: str, params: Mapping[str, Any], model: Any) -> None:
        if not self._active:
            return
        # A copy of plain values (default=repr: binary values must not break the application's call)
        plain = json.loads(json.dumps(params, default=repr))
        call = _RawCall(principal, model.service_model.signing_name, model.name, plain)
        with self._lock:
            self._raw.append(call)

    # ------------------------------------------------------------------------------- results
    def calls(self) -> list[AwsCall]:
        """Everything recorded so far, one entry per resource a call touched, resolved to ARNs."""
        with self._lock:
            raw = list(self._raw)
        template = self.engine.template
        owners = _TokenOwners(self.engine) if any(_is_token_call(c) for c in raw) else None
        return [
            AwsCall(c.principal, _iam_action(c), resource, context)
            for c in raw
            for resource, context in _requests(c, template, owners)
        ]


@contextmanager
def recording(engine: LocalEngine) -> Iterator[CallRecorder]:
    """Record the engine's principals' AWS calls for the duration of the with block."""
    recorder = CallRecorder(engine)
    recorder.start()
    try:
        yield recorder
    finally:
        recorder.stop()


_ASL_TASK = "moto.stepfunctions.parser.asl.component.state.exec.state_task"
_ASL_CLIENT_USERS = (f"{_ASL_TASK}.lambda_eval_utils", f"{_ASL_TASK}.service.state_task_service_factory")


class _StateMachineClients:
    """Wraps moto's `boto_client_for` while at least one recorder is active (process-wide, refcounted)."""

    _lock = threading.Lock()
    _recorders: list[CallRecorder] = []  # noqa: RUF012 - class-level registry on purpose
    _restore: list[Callable[[], None]] = []  # noqa: RUF012

    @classmethod
    def join(cls, recorder: CallRecorder) -> None:
        with cls._lock:
            if not cls._recorders:
                cls._install()
            cls._recorders.append(recorder)

    @classmethod
    def leave(cls, recorder: CallRecorder) -> None:
        with cls._lock:
            cls._recorders.remove(recorder)
            if not cls._recorders:
                while cls._restore:
                    cls._restore.pop()()

    @classmethod
    def _install(cls) -> None:
        # Every Task service module imports the factory by name, so each module's reference is wrapped;
        # the service factory imports them all, so they are loaded first.
        for module_name in _ASL_CLIENT_USERS:
            importlib.import_module(module_name)
        from moto.stepfunctions.parser.asl.utils import boto_client

        original = boto_client.boto_client_for

        @functools.wraps(original)
        def boto_client_for(*args: Any, **kwargs: Any) -> Any:
            client = original(*args, **kwargs)
            credentials = kwargs.get("state_credentials", args[2] if len(args) > 2 else None)
            for recorder in list(cls._recorders):
                recorder.watch_state_machine_client(client, getattr(credentials, "role_arn", None))
            return client

        for name, module in list(sys.modules.items()):
            if name.startswith("moto.stepfunctions") and getattr(module, "boto_client_for", None) is original:
                vars(module)["boto_client_for"] = boto_client_for
                cls._restore.append(functools.partial(setattr, module, "boto_client_for", original))


# ----------------------------------------------------------------------------------- resources
def _is_token_call(call: _RawCall) -> bool:
    return f"{call.prefix}:{call.operation}" in TOKEN_ACTIONS


def issued_task_tokens(engine: LocalEngine) -> dict[str, str]:
    """Every task token the engine's executions issued (their TaskScheduled events) -> its state machine."""
    issued: dict[str, str] = {}
    for execution in engine.executions():
        for event in engine.history(execution["executionArn"]):
            if event["type"] == "TaskScheduled":
                parameters = json.loads(event["taskScheduledEventDetails"]["parameters"])
                for token in _values_of(parameters, "TaskToken"):
                    issued[token] = execution["stateMachineArn"]
    return issued


class _TokenOwners:
    """Task token -> ARN of the state machine whose execution issued it (from TaskScheduled events)."""

    def __init__(self, engine: LocalEngine) -> None:
        self._owners = issued_task_tokens(engine)

    def owner(self, token: str) -> str:
        if token not in self._owners:
            raise PolicyError("a task token no execution of this engine issued was used")
        return self._owners[token]


def _values_of(node: Any, key: str) -> Iterator[str]:
    if isinstance(node, dict):
        for k, value in node.items():
            if k == key and isinstance(value, str):
                yield value
            else:
                yield from _values_of(value, key)
    elif isinstance(node, list):
        for item in node:
            yield from _values_of(item, key)


Request = tuple[str, dict[str, str]]  # (resource ARN, condition context)

# The WebSocket management API's operations: one IAM action, the HTTP method in the resource ARN.
_CONNECTION_METHODS = {"PostToConnection": "POST", "GetConnection": "GET", "DeleteConnection": "DELETE"}


def _iam_action(call: _RawCall) -> str:
    """The IAM action a call is authorised as (the operation's name, except where IAM groups them)."""
    if call.prefix == "execute-api" and call.operation in _CONNECTION_METHODS:
        return "execute-api:ManageConnections"
    return f"{call.prefix}:{call.operation}"


def _connection_arn(call: _RawCall, template: Template) -> str:
    """The ARN `arn:aws:execute-api:...:<api id>/<stage>/<METHOD>/@connections/<id>` IAM checks."""
    apis = [
        logical_id
        for logical_id, resource in template.resources("AWS::ApiGatewayV2::Api").items()
        if resource.get("Properties", {}).get("ProtocolType") == "WEBSOCKET"
    ]
    stages = list(template.resources("AWS::ApiGatewayV2::Stage"))
    if len(apis) != 1 or len(stages) != 1:
        raise PolicyError(f"{call.principal}: expected one WebSocket API and stage, found {apis}, {stages}")
    api_id, stage = template.ref(apis[0]), template.ref(stages[0])
    method = _CONNECTION_METHODS[call.operation]
    return (
        f"arn:aws:execute-api:{template.region}:{template.account_id}:{api_id}/{stage}/{method}"
        f"/@connections/{call.params['ConnectionId']}"
    )


def _requests(call: _RawCall, template: Template, owners: _TokenOwners | None) -> list[Request]:
    """What IAM authorises for the call: each resource ARN with the condition keys it is checked with."""
    arn_prefix = f"arn:aws:{call.prefix}:{template.region}:{template.account_id}"
    params = call.params
    if call.prefix == "dynamodb":
        tables = [params["TableName"]] if "TableName" in params else []
        tables += list(params.get("RequestItems", {}))
        tables += [op["TableName"] for item in params.get("TransactItems", []) for op in item.values()]
        arns = [name if name.startswith("arn:") else f"{arn_prefix}:table/{name}" for name in tables]
        if "IndexName" in params:
            arns = [f"{arn}/index/{params['IndexName']}" for arn in arns]
        if arns:
            return [(arn, {}) for arn in arns]
    elif call.prefix == "events" and call.operation == "PutEvents":
        return [
            (
                bus
                if (bus := entry.get("EventBusName", "default")).startswith("arn:")
                else f"{arn_prefix}:event-bus/{bus}",
                {"events:source": entry.get("Source", ""), "events:detail-type": entry.get("DetailType", "")},
            )
            for entry in params.get("Entries", [])
        ]
    elif call.prefix == "execute-api" and call.operation in _CONNECTION_METHODS:
        return [(_connection_arn(call, template), {})]
    elif call.prefix == "states":
        if "taskToken" in params and owners is not None:
            return [(owners.owner(params["taskToken"]), {})]
        for key in ("executionArn", "stateMachineArn"):
            if key in params:
                return [(params[key], {})]
    raise PolicyError(f"{call.principal}: no resource resolution for {call.prefix}:{call.operation}")


# ------------------------------------------------------------------------------------ policies
@dataclass(frozen=True)
class Statement:
    """One IAM statement, resolved to local ARNs."""

    effect: str
    actions: tuple[str, ...]
    resources: tuple[str, ...]
    sid: str | None = None
    condition: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    @classmethod
    def parse(cls, raw: Mapping[str, Any]) -> Statement:
        """From a resolved policy statement."""
        if "NotAction" in raw or "NotResource" in raw:
            raise PolicyError(f"statement {raw.get('Sid')}: NotAction/NotResource are not evaluated here")
        return cls(
            effect=str(raw["Effect"]),
            actions=tuple(_as_list(raw["Action"])),
            resources=tuple(_as_list(raw["Resource"])),
            sid=raw.get("Sid"),
            condition=raw.get("Condition", {}),
        )

    def covers(self, call: AwsCall) -> bool:
        """Whether the statement applies: action, resource (IAM wildcards `*`, `?`) and condition."""
        return (
            any(_matches(pattern, call.action, ignore_case=True) for pattern in self.actions)
            and any(_matches(pattern, call.resource) for pattern in self.resources)
            and all(
                _condition_holds(operator, key, expected, call.context)
                for operator, keys in self.condition.items()
                for key, expected in keys.items()
            )
        )


@dataclass(frozen=True)
class Policies:
    """What each principal (function or state machine logical id) is allowed, as deployed."""

    statements: Mapping[str, tuple[Statement, ...]]
    managed_policy_arns: Mapping[str, tuple[str, ...]]
    source: str  # how they were read: "SAM translator" or "explicit statements"

    @classmethod
    def of(cls, template: Template) -> Policies:
        """The template's policies, expanded by the SAM translator when it is installed."""
        if TOOLS_PYTHON.is_file():
            return cls._from_translated(expanded_by_sam(template))
        return cls._from_explicit_statements(template)

    @classmethod
    def _from_translated(cls, expanded: Template) -> Policies:
        statements: dict[str, tuple[Statement, ...]] = {}
        managed: dict[str, tuple[str, ...]] = {}
        for logical_id, resource in expanded.resources(*PRINCIPAL_TYPES).items():
            role_ref = resource.get("Properties", {}).get(PRINCIPAL_TYPES[resource["Type"]])
            if not (isinstance(role_ref, dict) and "Fn::GetAtt" in role_ref):
                raise PolicyError(f"{logical_id}: its role is not defined in the template")
            role_id = role_ref["Fn::GetAtt"][0]
            documents = [p["PolicyDocument"] for p in expanded.properties(role_id).get("Policies", [])]
            documents += [
                expanded.properties(policy_id)["PolicyDocument"]
                for policy_id in expanded.resources("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy")
                if {"Ref": role_id} in expanded.properties(policy_id).get("Roles", [])
            ]
            statements[logical_id] = _statements(expanded, documents)
            managed[logical_id] = tuple(
                expanded.resolve(expanded.properties(role_id).get("ManagedPolicyArns", []))
            )
        return cls(statements, managed, "SAM translator")

    @classmethod
    def _from_explicit_statements(cls, template: Template) -> Policies:
        statements: dict[str, tuple[Statement, ...]] = {}
        for logical_id in template.resources(*SAM_PRINCIPAL_TYPES):
            policies = template.properties(logical_id).get("Policies", [])
            documents = [
                policy for policy in _as_list(policies) if isinstance(policy, dict) and "Statement" in policy
            ]
            if len(documents) != len(_as_list(policies)):
                raise PolicyError(
                    f"{logical_id}: policy templates and managed policies need the SAM translator "
                    f"({TOOLS_PYTHON})"
                )
            statements[logical_id] = _statements(template, documents)
        return cls(statements, {}, "explicit statements")

    def denials(self, calls: Iterable[AwsCall]) -> list[str]:
        """The calls (each distinct one once) that their principal's policy does not allow."""
        return list(dict.fromkeys(str(call) for call in calls if not self.allows(call)))

    def allows(self, call: AwsCall) -> bool:
        """IAM's rule for identity policies: an explicit Deny wins, else some Allow must cover the call."""
        statements = self.statements.get(call.principal, ())
        if any(s.effect == "Deny" and s.covers(call) for s in statements):
            return False
        return any(s.effect == "Allow" and s.covers(call) for s in statements)

    def without(self, principal: str, sid: str) -> Policies:
        """A copy with one statement removed (to show that a missing permission is caught)."""
        kept = tuple(s for s in self.statements[principal] if s.sid != sid)
        if len(kept) == len(self.statements[principal]):
            raise KeyError(f"{principal} has no statement {sid}")
        return replace(self, statements={**self.statements, principal: kept})


def _statements(template: Template, documents: Iterable[Mapping[str, Any]]) -> tuple[Statement, ...]:
    return tuple(
        Statement.parse(template.resolve(raw))
        for document in documents
        for raw in _as_list(document["Statement"])
    )


def expanded_by_sam(template: Template) -> Template:
    """The template as the SAM translator expands it (needs .venv-tools), in the same stack context."""
    translate_with_sam(template.path)
    body = _translations[_version(template.path)]
    return Template(
        template.path,
        body,
        template.stack_name,
        template.parameter_overrides,
        template.region,
        template.account_id,
    )


# The SAM translator's output per template file version, for the life of the test process.
_translations: dict[tuple[Path, int], dict[str, Any]] = {}


def _version(path: Path) -> tuple[Path, int]:
    return path, path.stat().st_mtime_ns


def translate_with_sam(*paths: Path) -> None:
    """Have the SAM translator expand the templates not expanded yet, all in one translator process:
    starting one (an interpreter importing samtranslator) costs about four times a translation."""
    pending = list(dict.fromkeys(path for path in paths if _version(path) not in _translations))
    if not pending:
        return
    result = subprocess.run(
        [str(TOOLS_PYTHON), str(TRANSLATE_SCRIPT), *map(str, pending)],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "AWS_DEFAULT_REGION": os.environ.get("AWS_DEFAULT_REGION", "us-east-1")},
        timeout=120,
    )
    if result.returncode != 0:
        names = ", ".join(map(str, pending))
        raise PolicyError(f"SAM translator failed on {names}:\n{result.stderr[-2000:]}")
    translated = json.loads(result.stdout)
    for path, body in zip(pending, translated if len(pending) > 1 else [translated], strict=True):
        _translations[_version(path)] = body


# Condition operators evaluated here: how one expected value matches the request's value.
_CONDITION_OPERATORS: dict[str, Callable[[str, str], bool]] = {
    "StringEquals": lambda expected, actual: expected == actual,
    "StringEqualsIgnoreCase": lambda expected, actual: expected.lower() == actual.lower(),
    "StringLike": lambda expected, actual: _matches(expected, actual),  # noqa: PLW0108 - positional
    "ArnEquals": lambda expected, actual: expected == actual,
    "ArnLike": lambda expected, actual: _matches(expected, actual),  # noqa: PLW0108
}


def _condition_holds(operator: str, key: str, expected: Any, context: Mapping[str, str]) -> bool:
    """True if the request carries the key and one expected value matches; unknown operators never hold."""
    compare = _CONDITION_OPERATORS.get(operator)
    if compare is None or key not in context:
        return False
    return any(compare(str(value), context[key]) for value in _as_list(expected))


def _matches(pattern: str, value: str, ignore_case: bool = False) -> bool:
    regex = re.escape(pattern).replace(r"\*", ".*").replace(r"\?", ".")
    return re.fullmatch(regex, value, re.IGNORECASE if ignore_case else 0) is not None


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]
