"""WaitingCompletionFunction: keeps the barista wait's token and order number, tells barista screens.

Trigger: EventBridge rule on OrderProcessor.WaitingCompletion (the seed's `Emit - Awaiting Completion TT`).
"""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from serverlesspresso.aws import events_client, sfn_client
from serverlesspresso.dependencies import order_repository
from serverlesspresso.handling import handle_workflow_event
from serverlesspresso.models import barista_wait_from
from serverlesspresso.observability import logger, tracer
from serverlesspresso.settings import get_settings
from serverlesspresso.tracking import keep_barista_token


@logger.inject_lambda_context(correlation_id_path="detail.orderId")
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, str]:
    """Store the token so the barista's complete can resume the workflow; publish the queue event."""
    return handle_workflow_event(
        event,
        barista_wait_from,
        lambda issued: keep_barista_token(
            issued,
            orders=order_repository(),
            sfn=sfn_client(),
            events=events_client(),
            bus_name=get_settings().event_bus_name,
        ),
    )
