"""The local engine: the application from template.yaml, running on moto.

In-process (tests)::

    with LocalEngine.in_process("template.yaml", time_scale=0.01) as engine:  # mock_aws inside
        engine.start_order("1", "testuser")
        arn = engine.wait_for_order_execution("1")
        ...

or, inside your own `mock_aws(config=MOCK_CONFIG)`, `LocalEngine.provision(...)` then
`engine.dispatcher.start()` ... `engine.close()`.

Against a moto server (`python -m local.server`), pass `endpoint_url="http://127.0.0.1:5000"`: the
same code path, only the clients' endpoint differs.
"""

from __future__ import annotations

import json
import re
import urllib.request
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import boto3

from local.dispatch import DeadLetter, Delivery, Dispatcher
from local.lambdas import LocalFunction
from local.provision import Provisioned, Route, provision
from local.template import DEFAULT_STACK_NAME, Template
from local.waiting import wait_until

if TYPE_CHECKING:
    from local.faults import FaultInjector

MOCK_CONFIG: Any = {"stepfunctions": {"execute_state_machine": True}}  # moto runs the ASL for real
SERVICES = ("dynamodb", "events", "stepfunctions", "sqs")
EVENT_SOURCE = "awsserverlessda.serverlesspresso"
NEW_ORDER = "Validator.NewOrder"

T = TypeVar("T")


def execution_name(event: Mapping[str, Any]) -> str:
    """`<orderId>-<first 8 of the event id>`: one name per event, so a duplicate start shows.

    Valid Step Functions name characters only, at most 80. The same event delivered twice gets the
    same name (StartExecution is then idempotent, as on AWS); two NewOrder events for one order get
    two executions.
    """
    detail = event.get("detail")
    detail = detail if isinstance(detail, dict) else {}
    prefix = str(detail.get("orderId", "event"))[:71]
    suffix = str(event.get("id") or uuid.uuid4())[:8]
    return re.sub(r"[^A-Za-z0-9_-]", "_", f"{prefix}-{suffix}")


class LocalEngine:
    """A provisioned local stack: clients, names, the dispatcher and helpers to drive and observe it."""

    def __init__(
        self,
        template: Template,
        clients: dict[str, Any],
        provisioned: Provisioned,
        *,
        time_scale: float,
        endpoint_url: str | None,
        execution_namer: Callable[[Mapping[str, Any]], str] = execution_name,
        faults: FaultInjector | None = None,
    ) -> None:
        self.template = template
        self.clients = clients
        self.provisioned = provisioned
        self.time_scale = time_scale
        self.endpoint_url = endpoint_url
        self._execution_namer = execution_namer
        tag = uuid.uuid4().hex[:8]  # each engine gets its own handler modules (cold starts)
        self.functions = {lid: LocalFunction(spec, tag) for lid, spec in provisioned.functions.items()}
        # What runs the functions that events are delivered to: this process (one at a time), unless a
        # stack hands them to worker processes (local/workers: `invoke(logical_id, event)`).
        self.invoker: Callable[[str, Any], Any] = self.invoke
        self.dispatcher = Dispatcher(
            clients["sqs"], provisioned.routes, provisioned.capture_queue_url, self._deliver
        )
        # Fault injection (local/faults, issue 14): off unless an injector is given.
        self.faults = faults
        if faults is not None:
            faults.attach(self)

    @classmethod
    def provision(
        cls,
        template_path: str | Path = "template.yaml",
        time_scale: float = 1.0,
        endpoint_url: str | None = None,
        *,
        stack_name: str = DEFAULT_STACK_NAME,
        parameter_overrides: Mapping[str, str] | None = None,
        execution_namer: Callable[[Mapping[str, Any]], str] = execution_name,
        faults: FaultInjector | None = None,
        function_env: Mapping[str, str] | None = None,
    ) -> LocalEngine:
        """Create everything the template declares; see the module docstring for the two modes.

        `faults`: a local.faults.FaultInjector to fail some calls on purpose (default: none).
        `function_env` is added to every function's environment (over the template's), e.g. the local
        push server's endpoints (local/push/server.py, LocalPush.function_env).
        """
        if endpoint_url is None:  # (a server applies the patches itself: local/server.py)
            from local import moto_patches

            moto_patches.apply()
            _require_in_process_mock()
        else:
            _configure_server(endpoint_url)
        template = Template.load(
            template_path, stack_name=stack_name, parameter_overrides=parameter_overrides
        )
        session = boto3.session.Session(
            aws_access_key_id="testing", aws_secret_access_key="testing", region_name=template.region
        )
        clients = {service: session.client(service, endpoint_url=endpoint_url) for service in SERVICES}
        extra_env = {"AWS_ENDPOINT_URL": endpoint_url} if endpoint_url else {}
        extra_env |= dict(function_env or {})
        provisioned = provision(template, clients, time_scale=time_scale, function_env=extra_env)
        return cls(
            template,
            clients,
            provisioned,
            time_scale=time_scale,
            endpoint_url=endpoint_url,
            execution_namer=execution_namer,
            faults=faults,
        )

    # -------------------------------------------------------------------------------- names
    @property
    def table_names(self) -> dict[str, str]:
        """{logical id: table name}."""
        return self.provisioned.table_names

    @property
    def queue_urls(self) -> dict[str, str]:
        """{logical id: queue URL} of the template's own queues (DLQs, failure queue)."""
        return self.provisioned.queue_urls

    @property
    def bus_name(self) -> str:
        """The template's event bus (there must be exactly one)."""
        return _only(self.provisioned.bus_names, "event bus")

    @property
    def state_machine_arn(self) -> str:
        """The template's state machine (there must be exactly one)."""
        return _only(self.provisioned.state_machine_arns, "state machine")

    def function_env(self, logical_id: str) -> dict[str, str]:
        """The environment the function runs with (template Globals merged, plus Lambda's own)."""
        return dict(self.provisioned.functions[logical_id].environment)

    # ---------------------------------------------------------------------------- observing
    @property
    def delivered(self) -> list[Delivery]:
        """Every delivery attempt: rule, target, detail-type, outcome."""
        return self.dispatcher.delivered

    @property
    def dead_letters(self) -> list[DeadLetter]:
        """Events whose deliveries kept failing (also written to the template's failure queues)."""
        return self.dispatcher.dead_letters

    @property
    def events_seen(self) -> list[dict[str, Any]]:
        """Every event that reached a bus (as far as the dispatcher has polled)."""
        return self.dispatcher.events_seen

    def events_of_type(self, detail_type: str) -> list[dict[str, Any]]:
        """The events seen with this detail-type, in arrival order."""
        return [event for event in self.events_seen if event.get("detail-type") == detail_type]

    def history(self, execution_arn: str) -> list[dict[str, Any]]:
        """The full execution history, oldest first."""
        paginator = self.clients["stepfunctions"].get_paginator("get_execution_history")
        return [event for page in paginator.paginate(executionArn=execution_arn) for event in page["events"]]

    def state_path(self, execution_arn: str) -> list[str]:
        """Names of the states the execution entered, in order."""
        return [
            e["stateEnteredEventDetails"]["name"]
            for e in self.history(execution_arn)
            if "stateEnteredEventDetails" in e
        ]

    def executions(self, status: str | None = None) -> list[dict[str, Any]]:
        """Executions of the state machine (newest first), optionally with one status."""
        kwargs = {"statusFilter": status} if status else {}
        paginator = self.clients["stepfunctions"].get_paginator("list_executions")
        pages = paginator.paginate(stateMachineArn=self.state_machine_arn, **kwargs)
        return [execution for page in pages for execution in page["executions"]]

    def executions_for_order(self, order_id: str) -> list[dict[str, Any]]:
        """Executions started for an order (named `<orderId>-...` by execution_name)."""
        prefix = re.sub(r"[^A-Za-z0-9_-]", "_", str(order_id)) + "-"
        return [e for e in self.executions() if e["name"].startswith(prefix)]

    # ------------------------------------------------------------------------------ driving
    def put_event(self, detail_type: str, detail: Mapping[str, Any], source: str = EVENT_SOURCE) -> str:
        """Put one event on the bus (failing loudly on a failed entry); return its id."""
        response = self.clients["events"].put_events(
            Entries=[
                {
                    "Source": source,
                    "DetailType": detail_type,
                    "Detail": json.dumps(detail),
                    "EventBusName": self.bus_name,
                }
            ]
        )
        if response["FailedEntryCount"]:
            raise RuntimeError(f"PutEvents failed: {response['Entries']}")
        event_id: str = response["Entries"][0]["EventId"]
        return event_id

    def start_order(self, order_id: str, user_id: str, **detail: Any) -> str:
        """Emit Validator.NewOrder, so the template's rule starts the workflow exactly as on AWS."""
        return self.put_event(NEW_ORDER, {"orderId": order_id, "userId": user_id, **detail})

    def invoke(self, logical_id: str, event: Any) -> Any:
        """Invoke a function directly (synchronously), as `sam local invoke` would."""
        return self.functions[logical_id].invoke(event)

    # ------------------------------------------------------------------------------ waiting
    def wait_for(
        self, predicate: Callable[[], T | None], timeout: float = 30.0, what: str = "condition"
    ) -> T:
        """Poll predicate until truthy; TimeoutError after timeout seconds.

        Events are delivered only while the dispatcher runs (dispatcher.start()) or by an explicit
        dispatcher.drain(): waiting never delivers by itself, so a test without handlers stays so.
        """
        return wait_until(predicate, what, timeout)

    def wait_for_execution(self, execution_arn: str, timeout: float = 30.0) -> dict[str, Any]:
        """Wait until the execution is no longer RUNNING; return DescribeExecution."""

        def finished() -> dict[str, Any] | None:
            description: dict[str, Any] = self.clients["stepfunctions"].describe_execution(
                executionArn=execution_arn
            )
            return description if description["status"] != "RUNNING" else None

        return self.wait_for(finished, timeout, f"end of {execution_arn}")

    def wait_for_order_execution(self, order_id: str, timeout: float = 30.0) -> str:
        """Wait until an execution for the order exists; return its ARN (the newest)."""
        found = self.wait_for(
            lambda: self.executions_for_order(order_id), timeout, f"execution for order {order_id}"
        )
        arn: str = found[0]["executionArn"]
        return arn

    def wait_for_state(self, execution_arn: str, state_name: str, timeout: float = 30.0) -> None:
        """Wait until the execution has entered the named state."""
        self.wait_for(lambda: state_name in self.state_path(execution_arn), timeout, f"state {state_name!r}")

    def task_token(self, execution_arn: str, state_name: str, timeout: float = 30.0) -> str:
        """The task token of the latest callback task of that name (from its TaskScheduled event)."""
        return self.wait_for(
            lambda: _task_token(self.history(execution_arn), state_name),
            timeout,
            f"task token of {state_name!r}",
        )

    # ---------------------------------------------------------------------------- lifecycle
    @classmethod
    @contextmanager
    def in_process(
        cls,
        template_path: str | Path = "template.yaml",
        time_scale: float = 1.0,
        *,
        start_dispatcher: bool = True,
        **options: Any,
    ) -> Iterator[LocalEngine]:
        """mock_aws + provision + (dispatcher thread) for the duration of a with block, then close()."""
        from moto import mock_aws

        with mock_aws(config=MOCK_CONFIG):
            engine = cls.provision(template_path, time_scale, **options)
            try:
                if start_dispatcher:
                    engine.dispatcher.start()
                yield engine
            finally:
                engine.close()

    def close(self) -> None:
        """Stop the dispatcher and every running execution (so no moto thread outlives the mock)."""
        self.dispatcher.stop()
        if self.faults is not None:
            self.faults.detach()
        for arn in self.provisioned.state_machine_arns.values():
            sfn = self.clients["stepfunctions"]
            for page in sfn.get_paginator("list_executions").paginate(
                stateMachineArn=arn, statusFilter="RUNNING"
            ):
                for execution in page["executions"]:
                    sfn.stop_execution(executionArn=execution["executionArn"], error="LocalEngine.close")
        for function in self.functions.values():
            function.unload()

    def __enter__(self) -> LocalEngine:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # ------------------------------------------------------------------------------- private
    def _deliver(self, route: Route, payload: Any) -> None:
        if route.target_kind == "function":
            self.invoker(route.target, payload)
        else:
            self.clients["stepfunctions"].start_execution(
                stateMachineArn=route.target_arn,
                name=self._execution_namer(payload),
                input=json.dumps(payload),
            )


def _only(named: Mapping[str, str], what: str) -> str:
    if len(named) != 1:
        raise LookupError(f"the template has {len(named)} {what}s ({sorted(named)}); pick one by logical id")
    return next(iter(named.values()))


def _task_token(history: list[dict[str, Any]], state_name: str) -> str | None:
    entered = [
        i for i, e in enumerate(history) if e.get("stateEnteredEventDetails", {}).get("name") == state_name
    ]
    if not entered:
        return None
    for event in history[entered[-1] :]:
        if event["type"] == "TaskScheduled":
            return _find_key(json.loads(event["taskScheduledEventDetails"]["parameters"]), "TaskToken")
    return None


def _find_key(node: Any, key: str) -> str | None:
    if isinstance(node, dict):
        for k, v in node.items():
            found = v if k == key and isinstance(v, str) else _find_key(v, key)
            if found:
                return found
    if isinstance(node, list):
        return next((found for item in node if (found := _find_key(item, key))), None)
    return None


def _require_in_process_mock() -> None:
    # Refuse to provision against real AWS: in-process means inside mock_aws with ASL execution on.
    from moto.core.config import default_user_config
    from moto.core.models import botocore_stubber

    if not botocore_stubber.enabled:
        raise RuntimeError(
            "LocalEngine.provision() without endpoint_url must run inside mock_aws(config=MOCK_CONFIG)"
        )
    if not default_user_config.get("stepfunctions", {}).get("execute_state_machine"):
        raise RuntimeError(
            "mock_aws must be started with config=MOCK_CONFIG so moto executes the state machine"
        )


def _configure_server(endpoint_url: str) -> None:
    # Turn on ASL execution in the server (idempotent; `python -m local.server` already does).
    request = urllib.request.Request(
        f"{endpoint_url.rstrip('/')}/moto-api/config", data=json.dumps(MOCK_CONFIG).encode(), method="POST"
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        response.read()
