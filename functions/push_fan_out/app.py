"""PushFanOutFunction: sends each order or shop change to the WebSocket connections allowed to see it.

Trigger: EventBridge rule on OrderManager.OrderChanged, OrderManager.WaitingCompletion and
OrderManager.ShopChanged. The order is re-read (strongly consistent), so a message always carries the
order's latest public view and version.
"""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from serverlesspresso.dependencies import connection_store, order_repository, push_poster, shop_config_store
from serverlesspresso.handling import handle_workflow_event
from serverlesspresso.observability import logger, tracer
from serverlesspresso.push import change_from, push_change


@logger.inject_lambda_context(correlation_id_path="detail.orderId")
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, str]:
    """Fan the change out to the barista, display and (its own) customer connections."""
    return handle_workflow_event(
        event,
        change_from,
        lambda change: push_change(
            change,
            orders=order_repository(),
            shop=shop_config_store(),
            connections=connection_store(),
            poster=push_poster(),
        ),
    )
