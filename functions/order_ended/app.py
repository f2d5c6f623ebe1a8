"""OrderEndedFunction: moves an order to the terminal state its workflow ended in.

Trigger: EventBridge rule on OrderProcessor.orderFinished / OrderTimeOut / ShopUnavailable / OrderCancelled.
"""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from serverlesspresso.dependencies import change_feed, order_repository
from serverlesspresso.handling import handle_workflow_event
from serverlesspresso.models import order_ended_from
from serverlesspresso.observability import logger, tracer
from serverlesspresso.tracking import record_order_end


@logger.inject_lambda_context(correlation_id_path="detail.orderId")
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, str]:
    """Record COMPLETED, TIMED_OUT, REJECTED or CANCELLED, once; announce it to the push channel."""
    return handle_workflow_event(
        event,
        order_ended_from,
        lambda ended: record_order_end(ended, orders=order_repository(), changes=change_feed()),
    )
