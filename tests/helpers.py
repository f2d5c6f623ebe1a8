"""Small helpers every test suite shares: sample events, handlers loaded by path, a Lambda context,
and resetting the per-execution-environment caches of the shared package."""

from __future__ import annotations

import importlib.util
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
EVENTS_DIR = REPO_ROOT / "events"
FUNCTIONS_DIR = REPO_ROOT / "functions"

# The OrderProcessorWorkflow's two callback states (names from the workshop seed).
CUSTOMER_WAIT = "Emit - Workflow Started TT"
BARISTA_WAIT = "Emit - Awaiting Completion TT"
# The sample events of the four ways an order's workflow ends (OrderEndedFunction's triggers).
ENDING_EVENTS = ("order_finished", "order_timed_out", "shop_unavailable", "order_cancelled")


def load_event(name: str) -> dict[str, Any]:
    """events/<name>.json as a fresh dict: tests may mutate it without affecting each other."""
    event: dict[str, Any] = json.loads((EVENTS_DIR / f"{name}.json").read_text(encoding="utf-8"))
    return event


Mutation = Callable[[dict[str, Any]], None]


def without(*path: str) -> Mutation:
    """A change to an event that deletes the key at `path` (e.g. "detail", "orderId")."""

    def mutate(event: dict[str, Any]) -> None:
        target = event
        for key in path[:-1]:
            target = target[key]
        del target[path[-1]]

    return mutate


def setting(value: Any, *path: str) -> Mutation:
    """A change to an event that sets the key at `path` to `value`."""

    def mutate(event: dict[str, Any]) -> None:
        target = event
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value

    return mutate


def event_names() -> list[str]:
    """Names (without .json) of every sample event in events/."""
    return sorted(path.stem for path in EVENTS_DIR.glob("*.json"))


def eventbridge_event_names() -> list[str]:
    """The sample events that are EventBridge envelopes (the bus's events, not API Gateway requests)."""
    return [name for name in event_names() if "detail-type" in load_event(name)]


def load_handler(function_dir: str) -> ModuleType:
    """Import functions/<function_dir>/app.py under a unique module name.

    Every handler module is called `app`, so a plain import would return whichever was imported
    first; loading by file path keeps them apart (as Lambda does, one per execution environment).
    """
    path = FUNCTIONS_DIR / function_dir / "app.py"
    module_name = f"handler_{function_dir}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load handler from {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    return module


@dataclass
class LambdaContext:
    """The attributes of the Lambda context object that Powertools' inject_lambda_context reads."""

    function_name: str = "test-function"
    memory_limit_in_mb: int = 256
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:test-function"
    aws_request_id: str = "00000000-0000-4000-8000-000000000000"


def reset_clients() -> None:
    """Forget the clients, settings and repositories cached per execution environment.

    They are `functools.cache`d so a warm Lambda reuses them; a test that starts a fresh moto mock
    (or changes environment variables) needs fresh ones, as a cold start would get.
    """
    from serverlesspresso import aws, dependencies, settings

    for module in (aws, settings, dependencies):
        for value in vars(module).values():
            # Only the module's own cached functions, not ones it imported from elsewhere.
            if hasattr(value, "cache_clear") and getattr(value, "__module__", None) == module.__name__:
                value.cache_clear()
