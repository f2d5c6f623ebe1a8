"""The one polling loop: the engine, the tests and the benchmarks wait for moto's threads with it."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_until(
    predicate: Callable[[], T | None], what: str, timeout: float = 30.0, interval: float = 0.05
) -> T:
    """Call `predicate` every `interval` seconds until it returns something truthy, and return that.

    TimeoutError naming `what` once `timeout` seconds have passed.
    """
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            raise TimeoutError(f"no {what} after {timeout} s")
        time.sleep(interval)
