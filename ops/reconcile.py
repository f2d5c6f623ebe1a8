"""`make reconcile`: settle overdue orders now instead of at the next scheduled run.

Deployed: invokes the stack's ReconcilerFunction (what the schedule does), so the run has the
function's own permissions and settings. Local: runs the same domain code (serverlesspresso.reconcile)
against `make local`'s endpoint, with the settle time given (default: the deployed one).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from ops.target import Target
from serverlesspresso.orders import OrderRepository
from serverlesspresso.reconcile import CapacitySlots, reconcile_orders


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
        dynamodb = target.clients["dynamodb"]
        report = reconcile_orders(
            orders=OrderRepository(target.tables["OrdersTable"], dynamodb),
            sfn=target.clients["stepfunctions"],
            slots=CapacitySlots(target.tables["ConfigTable"], dynamodb),
            settle_after=settle_after,
        ).as_dict()
    say(
        f"Reconciled {target.description}: {report['settled']} order(s) settled, "
        f"{report['slotsReleased']} capacity slot(s) released, {report['capacityInUse']} in use "
        f"(orders placed before {report['cutoff']})"
    )
    for entry in report["orders"]:
        released = ", slot released" if entry["slotReleased"] else ""
        say(f"  {entry['orderId']}: {entry['outcome']}{released}")
    return report
