"""PushConnectFunction: admits a WebSocket connection whose Cognito ID token checks out.

Trigger: the WebSocket API's $connect route. The browser offers `["serverlesspresso.v1", idToken]` as
subprotocols (a browser cannot set an Authorization header on a WebSocket, and a URL would put the
token in access logs); the answer selects `serverlesspresso.v1`, or refuses with 400/401.
"""

from typing import Any

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.parser import parse
from aws_lambda_powertools.utilities.parser.models import APIGatewayWebSocketConnectEventModel
from aws_lambda_powertools.utilities.typing import LambdaContext

from serverlesspresso.dependencies import connection_store, token_verifier
from serverlesspresso.observability import logger, tracer
from serverlesspresso.push import connect, parse_protocols

PROTOCOL_HEADER = "sec-websocket-protocol"


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Verify the offered token and store the connection; the handshake fails unless this answers 200."""
    request = parse(event=event, model=APIGatewayWebSocketConnectEventModel)
    headers = {name.lower(): value for name, value in request.headers.items()}
    answer = connect(
        request.request_context.connection_id,
        parse_protocols(headers.get(PROTOCOL_HEADER)),
        verifier=token_verifier(),
        connections=connection_store(),
    )
    if answer.subprotocol is None:
        logger.info("connection refused", extra={"status": answer.status, "reason": answer.reason})
        return {"statusCode": answer.status}
    logger.info("connected", extra={"reason": answer.reason})
    return {"statusCode": 200, "headers": {"Sec-WebSocket-Protocol": answer.subprotocol}}
