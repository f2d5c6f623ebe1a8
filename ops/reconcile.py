"""`make reconcile`: settle overdue orders now instead of at the next scheduled run.

Deployed: invokes the stack's ReconcilerFunction (what the schedule does), so the run has the
function's own permissions and settings. Local: runs that function's handler the way the local engine
runs functions (local/lambdas.py: its template environment, `make local`'s endpoint), with the settle
time given (default: the template's ReconcileAfterSeconds). Its log lines are not shown; the report is.
"""

from __future__ import annotations

import contextlib
import io
import json
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from local.lambdas import LocalFunction, function_spec
from ops.stack import OperatorError
from ops.target import Target

RECONCILER = "ReconcilerFunction"


def scheduled_event(region: str) -> dict[str, Any]:
    """The event a schedule would send (the function validates the envelope, reads nothing from it)."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": "000000000000",
        "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": region,
        "resources": [],
        "detail": {},
    }


def reconcile(
    target: Target, settle_after: timedelta | None = None, say: Callable[[str], None] = print
) -> dict[str, Any]:
    """Run the reconciler once against `target`; print and return its report."""
    if target.reconciler_function:
        if settle_after is not None:
            say("note: a deployed reconciler uses its own ReconcileAfterSeconds; --settle-after ignored")
        client = target.clients["lambda"]
        response = client.invoke(
            FunctionName=target.reconciler_function,
            Payload=json.dumps(scheduled_event(client.meta.region_name)).encode(),
        )
        report: dict[str, Any] = json.loads(response["Payload"].read() or b"{}")
        if response.get("FunctionError"):
            raise RuntimeError(f"{target.reconciler_function} failed: {report}")
    else:
        report = _invoke_locally(target, settle_after)
    say(
        f"Reconciled {target.description}: {report['settled']} order(s) settled, "
        f"{report['slotsReleased']} capacity slot(s) released, {report['capacityInUse']} in use "
        f"(orders placed before {report['cutoff']})"
    )
    for entry in report["orders"]:
        released = ", slot released" if entry["slotReleased"] else ""
        say(f"  {entry['orderId']}: {entry['outcome']}{released}")
    return report


def _invoke_locally(target: Target, settle_after: timedelta | None) -> dict[str, Any]:
    if target.template is None:
        raise OperatorError("a local target needs the template it was provisioned from")
    environment = {"AWS_ENDPOINT_URL": target.endpoint_url} if target.endpoint_url else {}
    if settle_after is not None:
        environment["SETTLE_AFTER_SECONDS"] = str(int(settle_after.total_seconds()))
    function = LocalFunction(function_spec(target.template, RECONCILER, environment), "ops")
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # the handler's JSON log and metric lines
            report: dict[str, Any] = function.invoke(scheduled_event(target.template.region))
    finally:
        function.unload()
    return report
