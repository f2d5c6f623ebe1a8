"""Fixtures for end-to-end scenarios: the whole application from template.yaml on moto, in-process.

`engine`: provisioned, dispatcher running (rules deliver to the real handlers and start executions).
`workflow`: provisioned, dispatcher stopped (the state machine alone; events are only recorded when a
test calls `workflow.dispatcher.collect_events()`).
`make_engine(...)`: the same with other options, e.g. `make_engine(parameter_overrides={...})`.
`shop`: the `engine` driven as customers and baristas do (tests/e2e/flows.py).
`patient_shop`: the same with long heartbeats, for scenarios whose steps must all happen while the
workflow still waits (no step may be overtaken by a timeout on a slow machine).

TIME_SCALE shortens the workflow's heartbeats (300 s -> 2 s, 900 s -> 5 s): long enough for a test
to answer a wait on a busy 2-core machine, short enough that waiting out a timeout takes seconds.
PATIENT_TIME_SCALE: 300 s -> 15 s, 900 s -> 45 s; such tests end by acting, never by waiting a
heartbeat out (the engine stops what is still running when the test ends).

Least privilege: every engine made here records the AWS calls its functions and state machine make
(tests/least_privilege.py) and, when the test has passed, checks each against that principal's policy
in template.yaml; a call the policy lacks fails the test at teardown.

Push channel: every engine made here serves the template's WebSocket API (local/push) with three
screens connected (a barista, a display and the default customer of tests/e2e/flows.py), recording
every message; when the test has passed, no message may hold a task token, an execution ARN or a
user id (scenario tests thereby check it over every scenario), and every order message must be one of
the contract's shape. `engine.push` is the LocalPush, `engine.idp` the identity provider.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from functools import cache
from typing import Any

import pytest

from local.auth import LocalIdp, user_sub
from local.engine import LocalEngine
from local.push.server import LocalPush
from serverlesspresso.ordering import PUBLIC_ORDER_FIELDS
from tests.e2e.flows import Shop
from tests.e2e.screens import Screen
from tests.least_privilege import Policies, issued_task_tokens, recording
from tests.template_tables import TEMPLATE_PATH

TIME_SCALE = 0.005
PATIENT_TIME_SCALE = 0.05


DEFAULT_CUSTOMER = "customer-1"  # Shop.place_order's default user id


@cache
def identity_provider() -> LocalIdp:
    """One signing key per test process (generating an RSA key per test would cost seconds)."""
    return LocalIdp(tempfile.mkdtemp(prefix="serverlesspresso-idp-"))


@contextmanager
def _engine(*, start_dispatcher: bool = True, **options: Any) -> Iterator[LocalEngine]:
    options.setdefault("time_scale", TIME_SCALE)
    path = options.pop("template_path", TEMPLATE_PATH)
    idp = identity_provider()
    push = LocalPush(idp)
    with (
        LocalEngine.in_process(
            path, start_dispatcher=False, function_env=push.function_env, **options
        ) as local,
        recording(local) as recorder,
    ):
        push.start(local)
        local.push = push  # type: ignore[attr-defined]
        local.idp = idp  # type: ignore[attr-defined]
        screens = [
            Screen(push.url, idp.issue_token("barista-screen", "barista"), "barista"),
            Screen(push.url, idp.issue_token("display-screen", "display"), "display"),
            # Shop's customers are ids, not names: this token's sub is the default customer's id.
            Screen(push.url, idp.issue_token("screen-customer", sub=DEFAULT_CUSTOMER), "customer"),
        ]
        try:
            if start_dispatcher:  # only once the recorder is listening
                local.dispatcher.start()
            yield local
        finally:
            for screen in screens:
                screen.close()
            push.stop()
        policies = Policies.of(local.template)
        denied = policies.denials(recorder.calls())
        assert not denied, f"AWS calls template.yaml does not allow ({policies.source}):\n" + "\n".join(
            denied
        )
        _assert_messages_hold_public_fields_only(local, screens)


def _assert_messages_hold_public_fields_only(engine: LocalEngine, screens: list[Screen]) -> None:
    """No task token, execution ARN or user id in any message any screen received."""
    secrets = set(issued_task_tokens(engine)) | {e["executionArn"] for e in engine.executions()}
    orders = engine.clients["dynamodb"].scan(TableName=engine.table_names["OrdersTable"])["Items"]
    secrets |= {item["userId"]["S"] for item in orders if "userId" in item}
    secrets |= {user_sub(name) for name in ("barista-screen", "display-screen", "screen-customer")}
    for screen in screens:
        for message in screen.received():
            text = json.dumps(message)
            leaked = [secret for secret in secrets if secret in text]
            assert not leaked, f"{screen.name} received a private value in a {message['type']} message"
            if message["type"] == "order":
                assert set(message["order"]) <= set(PUBLIC_ORDER_FIELDS), message["order"].keys()


@pytest.fixture
def make_engine() -> Callable[..., AbstractContextManager[LocalEngine]]:
    """make_engine(**options) -> context manager of an in-process engine (LocalEngine.in_process options)."""
    return _engine


@pytest.fixture
def engine() -> Iterator[LocalEngine]:
    """The application, with the dispatcher delivering events to handlers and to the state machine."""
    with _engine() as local:
        yield local


@pytest.fixture
def workflow() -> Iterator[LocalEngine]:
    """The application with nothing delivered: for driving the state machine by hand."""
    with _engine(start_dispatcher=False) as local:
        yield local


@pytest.fixture
def shop(engine: LocalEngine) -> Shop:
    """The `engine` as customers, baristas and the shop's operator use it."""
    return Shop(engine)


@pytest.fixture
def patient_shop() -> Iterator[Shop]:
    """A shop whose waits last long enough for any sequence of steps (see PATIENT_TIME_SCALE)."""
    with _engine(time_scale=PATIENT_TIME_SCALE) as local:
        yield Shop(local)
