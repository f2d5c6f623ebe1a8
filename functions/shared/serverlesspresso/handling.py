"""The one way our EventBridge-triggered handlers turn an event into a domain call.

A malformed event is rejected with a logged reason and a metric, and nothing is written: retrying it
would fail the same way, so it is not raised back to Lambda's retry machinery.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from aws_lambda_powertools.metrics import MetricUnit, single_metric
from pydantic import ValidationError

from serverlesspresso.observability import logger
from serverlesspresso.tracking import Outcome

Command = TypeVar("Command")


def handle_workflow_event(
    event: dict[str, Any],
    parse: Callable[[dict[str, Any]], Command],
    act: Callable[[Command], Outcome],
) -> dict[str, str]:
    """Parse `event` into a command and act on it; malformed events are logged and rejected."""
    try:
        command = parse(event)
    except ValidationError as invalid:
        # include_input=False: the input may hold a task token, which must never reach a log.
        problems = [
            {"field": ".".join(str(p) for p in error["loc"]), "problem": error["msg"]}
            for error in invalid.errors(include_input=False, include_url=False)
        ]
        context = {"detail_type": event.get("detail-type"), "event_id": event.get("id"), "problems": problems}
        logger.error("rejected malformed event", extra=context)
        with single_metric(name="MalformedEvents", unit=MetricUnit.Count, value=1):
            pass
        return {"outcome": "rejected"}
    outcome = act(command)
    # One metric, with what happened as a dimension (stored, duplicate, stale, foreign, COMPLETED, ...).
    # single_metric flushes at once (these functions publish nothing else), so the dimension never
    # leaks into another metric, and no invocation ends with an empty metric set.
    with single_metric(name="WorkflowEvents", unit=MetricUnit.Count, value=1) as metric:
        metric.add_dimension(name="outcome", value=outcome.outcome)
    return outcome.as_dict()
