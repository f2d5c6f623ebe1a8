"""ReconcilerFunction: settles orders whose workflow ended but whose record never did.

Trigger: a schedule (template.yaml, ReconcilerFunction Events) and `make reconcile`. The scheduled event
carries nothing the reconciler needs; it is validated and its id is the correlation id.
"""

from datetime import timedelta
from typing import Any

from aws_lambda_powertools.utilities.parser import parse
from aws_lambda_powertools.utilities.parser.models import EventBridgeModel
from aws_lambda_powertools.utilities.typing import LambdaContext

from serverlesspresso.aws import dynamodb_client, sfn_client
from serverlesspresso.dependencies import order_repository
from serverlesspresso.observability import logger, tracer
from serverlesspresso.reconcile import CapacitySlots, reconcile_orders
from serverlesspresso.settings import get_settings


@logger.inject_lambda_context(correlation_id_path="id")
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Settle every overdue order; returns what was done (reconcile.ReconcileReport.as_dict)."""
    parse(event=event, model=EventBridgeModel)
    settings = get_settings()
    seconds = settings.settle_after_seconds
    report = reconcile_orders(
        orders=order_repository(),
        sfn=sfn_client(),
        slots=CapacitySlots(settings.config_table_name, dynamodb_client()),
        settle_after=timedelta(seconds=seconds) if seconds is not None else None,
    )
    return report.as_dict()
