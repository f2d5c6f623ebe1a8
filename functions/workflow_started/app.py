"""WorkflowStartedFunction: keeps the customer wait's task token with its order.

Trigger: EventBridge rule on OrderProcessor.WorkflowStarted (the seed's `Emit - Workflow Started TT`).
"""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from serverlesspresso.aws import sfn_client
from serverlesspresso.dependencies import change_feed, order_repository
from serverlesspresso.handling import handle_workflow_event
from serverlesspresso.models import customer_wait_from
from serverlesspresso.observability import logger, tracer
from serverlesspresso.tracking import keep_task_token


@logger.inject_lambda_context(correlation_id_path="detail.orderId")
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, str]:
    """Store the token so the customer's submit can resume the workflow."""
    return handle_workflow_event(
        event,
        customer_wait_from,
        lambda issued: keep_task_token(
            issued, orders=order_repository(), sfn=sfn_client(), changes=change_feed()
        ),
    )
