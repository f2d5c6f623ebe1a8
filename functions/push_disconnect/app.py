"""PushDisconnectFunction: forgets a closed WebSocket connection.

Trigger: the WebSocket API's $disconnect route (best effort on API Gateway's side: a connection it
never reports is removed by the fan-out's GoneException, or by the table's TTL after 2 hours).
"""

from typing import Any

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.parser import parse
from aws_lambda_powertools.utilities.parser.models import APIGatewayWebSocketDisconnectEventModel
from aws_lambda_powertools.utilities.typing import LambdaContext

from serverlesspresso.dependencies import connection_store
from serverlesspresso.observability import logger, tracer
from serverlesspresso.push import disconnect


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Delete the connection's item."""
    request = parse(event=event, model=APIGatewayWebSocketDisconnectEventModel)
    disconnect(request.request_context.connection_id, connections=connection_store())
    return {"statusCode": 200}
