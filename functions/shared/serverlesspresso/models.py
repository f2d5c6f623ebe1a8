"""Order states and the events the workflow emits, as typed models.

The event models validate the EventBridge envelope (Powertools' EventBridgeModel) and the detail the
state machine writes; task tokens are SecretStr so they never show up in a log line or an error.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Annotated, Any, Literal

from aws_lambda_powertools.utilities.parser.models import EventBridgeModel
from pydantic import BaseModel, ConfigDict, Field, SecretStr, StrictInt, field_validator

EVENT_SOURCE = "awsserverlessda.serverlesspresso"

OrderId = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")]
UserId = Annotated[str, Field(min_length=1, max_length=128)]
# Real tokens are ~900 characters of base64; the API accepts up to 2048 (SendTaskSuccess limit is 1024 in
# older docs, 2048 today) — anything longer is not a token.
TaskToken = Annotated[SecretStr, Field(min_length=1, max_length=2048)]


class OrderState(StrEnum):
    """Where an order is. Ranks only grow, which is what makes out-of-order events harmless."""

    PLACED = "PLACED"
    WAITING_FOR_CUSTOMER = "WAITING_FOR_CUSTOMER"
    SUBMITTED = "SUBMITTED"
    WAITING_FOR_BARISTA = "WAITING_FOR_BARISTA"
    COMPLETING = "COMPLETING"
    CANCELLING = "CANCELLING"
    COMPLETED = "COMPLETED"
    CANCELLED = "CANCELLED"
    TIMED_OUT = "TIMED_OUT"
    REJECTED = "REJECTED"

    @property
    def rank(self) -> int:
        """Position in the order's life; a write never lowers it (except undoing a failed resume)."""
        return _RANKS[self]

    @property
    def is_terminal(self) -> bool:
        """True for the four states an order ends in."""
        return self.rank == TERMINAL_RANK


TERMINAL_RANK = 100
_RANKS = {
    OrderState.PLACED: 5,
    OrderState.WAITING_FOR_CUSTOMER: 10,
    OrderState.SUBMITTED: 20,
    OrderState.WAITING_FOR_BARISTA: 30,
    OrderState.COMPLETING: 40,
    OrderState.CANCELLING: 45,
    OrderState.COMPLETED: TERMINAL_RANK,
    OrderState.CANCELLED: TERMINAL_RANK,
    OrderState.TIMED_OUT: TERMINAL_RANK,
    OrderState.REJECTED: TERMINAL_RANK,
}


class _Detail(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    orderId: OrderId
    userId: UserId


class TokenDetail(_Detail):
    """Detail of OrderProcessor.WorkflowStarted (the seed's first callback state)."""

    TaskToken: TaskToken


class WaitingCompletionDetail(TokenDetail):
    """Detail of OrderProcessor.WaitingCompletion: the second token and the order number."""

    orderNumber: StrictInt = Field(ge=1)


class OrderFinishedDetail(_Detail):
    """Detail of OrderProcessor.orderFinished."""

    orderNumber: StrictInt = Field(ge=1)


class OrderTimedOutDetail(_Detail):
    """Detail of OrderProcessor.OrderTimeOut; cause is the seed's Pass state result."""

    cause: Literal["Customer timedout", "Barista timedout"]


class ShopUnavailableDetail(_Detail):
    """Detail of OrderProcessor.ShopUnavailable."""

    reason: Literal["closed", "capacity"]


class WorkflowFailure(BaseModel):
    """The Catch output ({Error, Cause}) the state machine forwards when a wait ends in failure."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    Error: str = Field(min_length=1, max_length=256)
    Cause: str | None = Field(default=None, max_length=32768)


class OrderCancelledDetail(_Detail):
    """Detail of OrderProcessor.OrderCancelled."""

    failure: WorkflowFailure


class _WorkflowEvent(EventBridgeModel):
    """An event the OrderProcessorWorkflow emitted: Step Functions appends the execution ARN to resources."""

    source: Literal["awsserverlessda.serverlesspresso"]

    @field_validator("resources")
    @classmethod
    def _names_an_execution(cls, resources: list[str]) -> list[str]:
        if not any(":execution:" in arn for arn in resources):
            raise ValueError("resources must contain the emitting Step Functions execution ARN")
        return resources

    @property
    def execution_arn(self) -> str:
        """ARN of the execution that emitted this event."""
        return next(arn for arn in self.resources if ":execution:" in arn)


class WorkflowStartedEvent(_WorkflowEvent):
    """EventBridge envelope of OrderProcessor.WorkflowStarted."""

    detail_type: Literal["OrderProcessor.WorkflowStarted"] = Field(alias="detail-type")
    detail: TokenDetail


class WaitingCompletionEvent(_WorkflowEvent):
    """EventBridge envelope of OrderProcessor.WaitingCompletion."""

    detail_type: Literal["OrderProcessor.WaitingCompletion"] = Field(alias="detail-type")
    detail: WaitingCompletionDetail


class OrderFinishedEvent(_WorkflowEvent):
    """EventBridge envelope of OrderProcessor.orderFinished."""

    detail_type: Literal["OrderProcessor.orderFinished"] = Field(alias="detail-type")
    detail: OrderFinishedDetail


class OrderTimedOutEvent(_WorkflowEvent):
    """EventBridge envelope of OrderProcessor.OrderTimeOut."""

    detail_type: Literal["OrderProcessor.OrderTimeOut"] = Field(alias="detail-type")
    detail: OrderTimedOutDetail


class ShopUnavailableEvent(_WorkflowEvent):
    """EventBridge envelope of OrderProcessor.ShopUnavailable."""

    detail_type: Literal["OrderProcessor.ShopUnavailable"] = Field(alias="detail-type")
    detail: ShopUnavailableDetail


class OrderCancelledEvent(_WorkflowEvent):
    """EventBridge envelope of OrderProcessor.OrderCancelled."""

    detail_type: Literal["OrderProcessor.OrderCancelled"] = Field(alias="detail-type")
    detail: OrderCancelledDetail


OrderEndedEvent = Annotated[
    OrderFinishedEvent | OrderTimedOutEvent | ShopUnavailableEvent | OrderCancelledEvent,
    Field(discriminator="detail_type"),
]


class OrderEndedEnvelope(BaseModel):
    """Wrapper so one parse picks the right model by detail-type."""

    event: OrderEndedEvent


@dataclass(frozen=True)
class TokenIssued:
    """A wait the workflow entered: the token that resumes it, and whose order it is."""

    order_id: str
    user_id: str
    execution_arn: str
    task_token: str = field(repr=False)  # kept out of repr: a logged or raised command must not leak it
    state: OrderState
    order_number: int | None = None


@dataclass(frozen=True)
class OrderEnded:
    """How an order's workflow ended."""

    order_id: str
    user_id: str
    execution_arn: str
    state: OrderState
    reason: str
    order_number: int | None = None


def customer_wait_from(event: Any) -> TokenIssued:
    """Map an OrderProcessor.WorkflowStarted event to the customer wait it announces."""
    parsed = WorkflowStartedEvent.model_validate(event)
    return TokenIssued(
        order_id=parsed.detail.orderId,
        user_id=parsed.detail.userId,
        execution_arn=parsed.execution_arn,
        task_token=parsed.detail.TaskToken.get_secret_value(),
        state=OrderState.WAITING_FOR_CUSTOMER,
    )


def barista_wait_from(event: Any) -> TokenIssued:
    """Map an OrderProcessor.WaitingCompletion event to the barista wait it announces."""
    parsed = WaitingCompletionEvent.model_validate(event)
    return TokenIssued(
        order_id=parsed.detail.orderId,
        user_id=parsed.detail.userId,
        execution_arn=parsed.execution_arn,
        task_token=parsed.detail.TaskToken.get_secret_value(),
        state=OrderState.WAITING_FOR_BARISTA,
        order_number=parsed.detail.orderNumber,
    )


def order_ended_from(event: Any) -> OrderEnded:
    """Map one of the four terminal workflow events to the domain's OrderEnded."""
    envelope = OrderEndedEnvelope.model_validate({"event": event})
    parsed = envelope.event
    detail = parsed.detail
    order_number: int | None = None
    if isinstance(detail, OrderFinishedDetail):
        state, reason, order_number = OrderState.COMPLETED, "completed", detail.orderNumber
    elif isinstance(detail, OrderTimedOutDetail):
        state, reason = OrderState.TIMED_OUT, detail.cause
    elif isinstance(detail, ShopUnavailableDetail):
        state, reason = OrderState.REJECTED, f"shop {detail.reason}"
    else:
        state, reason = OrderState.CANCELLED, detail.failure.Error
    return OrderEnded(
        order_id=detail.orderId,
        user_id=detail.userId,
        execution_arn=parsed.execution_arn,
        state=state,
        reason=reason,
        order_number=order_number,
    )


# ------------------------------------------------------------------------------ push channel triggers
class _OrderManagerEvent(EventBridgeModel):
    """An event the API or a handler published (no execution ARN: not the workflow's)."""

    source: Literal["awsserverlessda.serverlesspresso"]


class OrderChangedDetail(BaseModel):
    """Detail of OrderManager.OrderChanged: which order, and the state the write left it in."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    orderId: OrderId
    state: OrderState


class OrderChangedEvent(_OrderManagerEvent):
    """EventBridge envelope of OrderManager.OrderChanged."""

    detail_type: Literal["OrderManager.OrderChanged"] = Field(alias="detail-type")
    detail: OrderChangedDetail


class BaristaQueueDetail(BaseModel):
    """The part of OrderManager.WaitingCompletion the push channel reads (the order is re-read)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    orderId: OrderId


class BaristaQueueEvent(_OrderManagerEvent):
    """EventBridge envelope of OrderManager.WaitingCompletion (an order joined the barista queue)."""

    detail_type: Literal["OrderManager.WaitingCompletion"] = Field(alias="detail-type")
    detail: BaristaQueueDetail


class ShopChangedEvent(_OrderManagerEvent):
    """EventBridge envelope of OrderManager.ShopChanged (PUT /config wrote the shop item)."""

    detail_type: Literal["OrderManager.ShopChanged"] = Field(alias="detail-type")
    detail: dict[str, Any]


class PushTriggerEnvelope(BaseModel):
    """Wrapper so one parse picks the right model by detail-type."""

    event: Annotated[
        OrderChangedEvent | BaristaQueueEvent | ShopChangedEvent, Field(discriminator="detail_type")
    ]
