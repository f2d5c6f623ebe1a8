"""Fixtures for end-to-end scenarios: the whole application from template.yaml on moto, in-process.

`engine`: provisioned, dispatcher running (rules deliver to the real handlers and start executions).
`workflow`: provisioned, dispatcher stopped (the state machine alone; events are only recorded when a
test calls `workflow.dispatcher.collect_events()`).
`make_engine(...)`: the same with other options, e.g. `make_engine(parameter_overrides={...})`.

TIME_SCALE shortens the workflow's heartbeats (300 s -> 2 s, 900 s -> 5 s): long enough for a test
to answer a wait on a busy 2-core machine, short enough that waiting out a timeout takes seconds.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from typing import Any

import pytest

from local.engine import LocalEngine
from tests.template_tables import TEMPLATE_PATH

TIME_SCALE = 0.005


def _engine(**options: Any) -> AbstractContextManager[LocalEngine]:
    options.setdefault("time_scale", TIME_SCALE)
    return LocalEngine.in_process(options.pop("template_path", TEMPLATE_PATH), **options)


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
