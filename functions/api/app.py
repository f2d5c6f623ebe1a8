"""OrderApiFunction: the customer and barista HTTP API (API Gateway HTTP API, payload format 2.0).

Trigger: HttpApi routes (template.yaml), behind a JWT authorizer on the Cognito user pool. Routes are
thin: they take the caller from the authorizer's claims and call serverlesspresso.ordering. Each domain
error maps to one status code in the exception handlers below; bad input is always a 4xx, never a 500.

Authorization before validation: a route's role is a dependency (resolved before the route runs), and
the body is read only after it (serverlesspresso.request_body), or, on one order, only once the domain
has found the order to be the caller's. Powertools validates the path and query only.
"""

from collections.abc import Mapping
from http import HTTPStatus
from typing import Annotated, Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Depends, Response, content_types
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from aws_lambda_powertools.event_handler.openapi.params import Path, Query
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, ConfigDict, Field, field_validator

from serverlesspresso.admission import AdmissionRefused
from serverlesspresso.aws import events_client, sfn_client
from serverlesspresso.dependencies import admission_desk, change_feed, order_repository, shop_config_store
from serverlesspresso.identity import Caller, Unauthenticated, caller_from_claims
from serverlesspresso.models import OrderState
from serverlesspresso.observability import logger, metrics, tracer
from serverlesspresso.ordering import (
    DEFAULT_PAGE_SIZE,
    MAX_PAGE_SIZE,
    Forbidden,
    InvalidRequest,
    OrderNotStarted,
    TooManyOpenOrders,
    cancel_by_barista,
    cancel_by_customer,
    claim_order,
    complete_order,
    current_admission,
    get_order_for,
    get_shop_config,
    list_orders,
    place_order,
    release_order,
    require_barista,
    submit_drink,
    update_shop_config,
)
from serverlesspresso.request_body import (
    MAX_CONFIG_BODY_BYTES,
    UnacceptableBody,
    check_unread_body,
    read_body,
    read_optional_body,
)
from serverlesspresso.resume import (
    OrderNotFound,
    OrderWaitEnded,
    ResumeThrottled,
    TokenNotYetStored,
    WrongOrderState,
)
from serverlesspresso.settings import get_settings
from serverlesspresso.shop import Name, ShopConfigUpdate

# Seconds a client should wait before retrying a 409 TokenNotYetStored: the workflow's token event is
# normally stored well within a second of the previous step.
RETRY_AFTER_SECONDS = 1

app = APIGatewayHttpResolver(enable_validation=True)


# -------------------------------------------------------------------------------------- request models
class PlaceOrderRequest(BaseModel):
    """POST /orders: the admission code from the display's QR code, when the shop requires one."""

    # Other fields are ignored, as before this body existed (the owner is never taken from it anyway).
    model_config = ConfigDict(extra="ignore")

    admissionCode: str | None = Field(default=None, min_length=1, max_length=64)


class SubmitOrderRequest(BaseModel):
    """PUT /orders/{orderId}: the drink the customer wants; checked against the menu by the domain."""

    model_config = ConfigDict(extra="forbid")

    drink: Name
    modifiers: list[Name] = Field(default_factory=list, max_length=20)

    @field_validator("modifiers")
    @classmethod
    def _unique(cls, modifiers: list[str]) -> list[str]:
        if len(set(modifiers)) != len(modifiers):
            raise ValueError("modifiers must not repeat")
        return modifiers


class BaristaCancelRequest(BaseModel):
    """POST /orders/{orderId}/cancel: an optional reason, kept as the failure's cause."""

    model_config = ConfigDict(extra="forbid")

    reason: str | None = Field(default=None, min_length=1, max_length=256)


OrderId = Annotated[str, Path(alias="orderId", min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")]


def current_caller() -> Caller:
    """The signed-in caller, from the JWT authorizer's claims only (raises Unauthenticated)."""
    return caller_from_claims(app.current_event.request_context.authorizer.jwt_claim)


def current_barista() -> Caller:
    """The signed-in caller, Forbidden unless a barista: checked before the request is read."""
    caller = current_caller()
    require_barista(caller)
    return caller


CurrentCaller = Annotated[Caller, Depends(current_caller)]
CurrentBarista = Annotated[Caller, Depends(current_barista)]


def no_body() -> None:
    """A route that takes no body ignores a JSON one, and refuses one it could not read (a 4xx)."""
    check_unread_body(app.current_event)


def submitted_choice() -> SubmitOrderRequest:
    """PUT /orders/{orderId}'s body; the domain reads it once the order is known to be the caller's."""
    return read_body(app.current_event, SubmitOrderRequest)


# ----------------------------------------------------------------------------------------- customers
@app.post("/orders")
def post_order(caller: CurrentCaller) -> Response[dict[str, Any]]:
    """Start an order (body optional: PlaceOrderRequest, the admission code): 202 with the new order
    (orderId); the workflow picks it up from the event."""
    request = read_optional_body(app.current_event, PlaceOrderRequest)  # read once the caller is known
    order = place_order(
        caller,
        orders=order_repository(),
        shop=shop_config_store(),
        events=events_client(),
        bus_name=get_settings().event_bus_name,
        admission=admission_desk(),
        admission_code=request.admissionCode if request else None,
    )
    metrics.add_metric(name="OrdersPlaced", unit=MetricUnit.Count, value=1)
    return _json(HTTPStatus.ACCEPTED, order, headers={"Location": f"/orders/{order['orderId']}"})


@app.get("/orders/<orderId>")
def get_order(order_id: OrderId, caller: CurrentCaller) -> dict[str, Any]:
    """The order, for its owner or a barista."""
    return get_order_for(caller, order_id, orders=order_repository(), read_request=no_body)


@app.put("/orders/<orderId>")
def put_order(order_id: OrderId, caller: CurrentCaller) -> dict[str, Any]:
    """The owner submits the drink (SubmitOrderRequest); resumes the workflow's first wait."""
    return submit_drink(
        caller,
        order_id,
        submitted_choice,
        orders=order_repository(),
        shop=shop_config_store(),
        sfn=sfn_client(),
        changes=change_feed(),
    )


@app.delete("/orders/<orderId>")
def delete_order(order_id: OrderId, caller: CurrentCaller) -> dict[str, Any]:
    """The owner cancels, before a barista has started making it."""
    return cancel_by_customer(
        caller,
        order_id,
        orders=order_repository(),
        sfn=sfn_client(),
        changes=change_feed(),
        read_request=no_body,
    )


@app.get("/orders")
def get_orders(
    caller: CurrentCaller,
    state: Annotated[OrderState | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = DEFAULT_PAGE_SIZE,
    next_token: Annotated[str | None, Query(alias="nextToken", min_length=1, max_length=2048)] = None,
) -> dict[str, Any]:
    """Newest first: a customer's own orders; a barista's queue (?state=, default WAITING_FOR_BARISTA)."""
    no_body()
    page = list_orders(caller, orders=order_repository(), state=state, limit=limit, next_token=next_token)
    return page.as_dict()


# ------------------------------------------------------------------------------------------ baristas
@app.post("/orders/<orderId>/make")
def make_order(order_id: OrderId, caller: CurrentBarista) -> dict[str, Any]:
    """A barista claims the order (baristaId)."""
    no_body()
    return claim_order(caller, order_id, orders=order_repository(), changes=change_feed())


@app.post("/orders/<orderId>/unmake")
def unmake_order(order_id: OrderId, caller: CurrentBarista) -> dict[str, Any]:
    """The barista who claimed the order releases it."""
    no_body()
    return release_order(caller, order_id, orders=order_repository(), changes=change_feed())


@app.post("/orders/<orderId>/complete")
def post_complete(order_id: OrderId, caller: CurrentBarista) -> dict[str, Any]:
    """A barista completes the order; resumes the second wait with success."""
    no_body()
    return complete_order(
        caller, order_id, orders=order_repository(), sfn=sfn_client(), changes=change_feed()
    )


@app.post("/orders/<orderId>/cancel")
def post_cancel(order_id: OrderId, caller: CurrentBarista) -> dict[str, Any]:
    """A barista cancels the order (optional BaristaCancelRequest); resumes the current wait with failure."""
    request = read_optional_body(app.current_event, BaristaCancelRequest)
    reason = request.reason if request else None
    return cancel_by_barista(
        caller, order_id, orders=order_repository(), sfn=sfn_client(), changes=change_feed(), reason=reason
    )


# --------------------------------------------------------------------------------------- shop config
@app.get("/config")
def get_config(caller: CurrentCaller) -> dict[str, Any]:
    """Menu, open/closed, capacity (ordersInFlight is the number of taken slots)."""
    no_body()
    return get_shop_config(caller, shop=shop_config_store()).model_dump()


@app.put("/config")
def put_config(caller: CurrentBarista) -> dict[str, Any]:
    """A barista changes some of isOpen, maxInFlight, maxOpenOrdersPerCustomer, menu (ShopConfigUpdate)."""
    update = read_body(app.current_event, ShopConfigUpdate, max_bytes=MAX_CONFIG_BODY_BYTES)
    return update_shop_config(caller, update, shop=shop_config_store(), changes=change_feed()).model_dump()


@app.get("/admission")
def get_admission(caller: CurrentCaller) -> dict[str, Any]:
    """The admission code for the display's QR code (baristas and the display)."""
    return current_admission(caller, shop=shop_config_store(), admission=admission_desk()).as_dict()


# ------------------------------------------------------------------------------------------- errors
def _json(
    status: HTTPStatus, body: Mapping[str, Any], headers: Mapping[str, str] | None = None
) -> Response[dict[str, Any]]:
    return Response(
        status_code=status.value,
        content_type=content_types.APPLICATION_JSON,
        body=dict(body),
        headers=headers,
    )


def _error(
    status: HTTPStatus, message: str, headers: Mapping[str, str] | None = None, **extra: Any
) -> Response[dict[str, Any]]:
    return _json(status, {"message": message, **extra}, headers)


def _field(problem: Mapping[str, Any]) -> str:
    # Powertools locations look like ("body", "modifiers", 1) or ("query", "limit"): name the field itself.
    # Unparseable JSON is located at ("body", <character offset>): that is the body as a whole.
    location = [str(part) for part in problem["loc"]]
    if problem["type"] == "json_invalid" or len(location) == 1:
        return location[0]
    return ".".join(location[1:])


@app.exception_handler(RequestValidationError)
def _invalid_request(error: RequestValidationError) -> Response[dict[str, Any]]:
    # Only location, type and pydantic's message: never the input (it could be anything the client sent).
    problems = [
        {
            "field": _field(problem),
            "in": str(problem["loc"][0]),
            "problem": problem.get("msg", problem["type"]),
        }
        for problem in error.errors()
    ]
    return _error(HTTPStatus.BAD_REQUEST, "invalid request", errors=problems)


@app.exception_handler(UnacceptableBody)
def _unacceptable_body(error: UnacceptableBody) -> Response[dict[str, Any]]:
    return _error(error.status, str(error), errors=[{"field": "body", "in": "body", "problem": str(error)}])


@app.exception_handler(InvalidRequest)
def _refused_request(error: InvalidRequest) -> Response[dict[str, Any]]:
    return _error(HTTPStatus.BAD_REQUEST, str(error), errors=[{"field": error.field, "problem": str(error)}])


@app.exception_handler(Unauthenticated)
def _unauthenticated(error: Unauthenticated) -> Response[dict[str, Any]]:
    return _error(HTTPStatus.UNAUTHORIZED, "sign in first", headers={"WWW-Authenticate": "Bearer"})


@app.exception_handler(AdmissionRefused)
def _not_admitted(error: AdmissionRefused) -> Response[dict[str, Any]]:
    return _error(HTTPStatus.FORBIDDEN, str(error), reason=error.reason)


@app.exception_handler(Forbidden)
def _forbidden(error: Forbidden) -> Response[dict[str, Any]]:
    return _error(HTTPStatus.FORBIDDEN, str(error))


@app.exception_handler(OrderNotFound)
def _not_found(error: OrderNotFound) -> Response[dict[str, Any]]:
    return _error(HTTPStatus.NOT_FOUND, str(error))


@app.exception_handler(TokenNotYetStored)
def _not_yet(error: TokenNotYetStored) -> Response[dict[str, Any]]:
    return _error(HTTPStatus.CONFLICT, str(error), headers={"Retry-After": str(RETRY_AFTER_SECONDS)})


@app.exception_handler(WrongOrderState)
def _wrong_state(error: WrongOrderState) -> Response[dict[str, Any]]:
    return _error(HTTPStatus.CONFLICT, str(error))


@app.exception_handler(TooManyOpenOrders)
def _too_many(error: TooManyOpenOrders) -> Response[dict[str, Any]]:
    return _error(HTTPStatus.CONFLICT, str(error), maxOpenOrdersPerCustomer=error.limit)


@app.exception_handler(OrderWaitEnded)
def _gone(error: OrderWaitEnded) -> Response[dict[str, Any]]:
    return _error(HTTPStatus.GONE, str(error))


@app.exception_handler(OrderNotStarted)
def _not_started(error: OrderNotStarted) -> Response[dict[str, Any]]:
    logger.error("order could not be started", extra={"order_id": error.order_id})
    # Nothing was started (the order is REJECTED), so placing a new one is safe: say when to try.
    retry = {"Retry-After": str(RETRY_AFTER_SECONDS)}
    return _error(HTTPStatus.SERVICE_UNAVAILABLE, str(error), headers=retry, orderId=error.order_id)


@app.exception_handler(ResumeThrottled)
def _throttled(error: ResumeThrottled) -> Response[dict[str, Any]]:
    # Step Functions throttled SendTaskSuccess/Failure; the order was put back, so a retry is safe.
    logger.warning("resume throttled", extra={"order_id": (error.order or {}).get("orderId")})
    return _error(
        HTTPStatus.SERVICE_UNAVAILABLE, str(error), headers={"Retry-After": str(RETRY_AFTER_SECONDS)}
    )


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Route the API Gateway v2 event."""
    return app.resolve(event, context)
