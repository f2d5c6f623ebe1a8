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
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

import pytest

from local.engine import LocalEngine
from tests.e2e.flows import Shop
from tests.least_privilege import Policies, recording
from tests.template_tables import TEMPLATE_PATH

TIME_SCALE = 0.005
PATIENT_TIME_SCALE = 0.05


@contextmanager
def _engine(*, start_dispatcher: bool = True, **options: Any) -> Iterator[LocalEngine]:
    options.setdefault("time_scale", TIME_SCALE)
    path = options.pop("template_path", TEMPLATE_PATH)
    with (
        LocalEngine.in_process(path, start_dispatcher=False, **options) as local,
        recording(local) as recorder,
    ):
        if start_dispatcher:  # only once the recorder is listening
            local.dispatcher.start()
        yield local
        policies = Policies.of(local.template)
        denied = policies.denials(recorder.calls())
        assert not denied, f"AWS calls template.yaml does not allow ({policies.source}):\n" + "\n".join(
            denied
        )


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
