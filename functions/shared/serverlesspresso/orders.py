"""Data access for the orders table. Every write is one conditional UpdateItem, so duplicate and
out-of-order deliveries are decided by DynamoDB, atomically, never by a read-then-write."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

from serverlesspresso.models import TERMINAL_RANK, OrderEnded, OrderState, TokenIssued

BY_STATE_INDEX = "ByState"  # pk state, sk createdAt
BY_CUSTOMER_INDEX = "ByCustomer"  # pk userId, sk createdAt
INDEX_PARTITION_KEYS = {BY_STATE_INDEX: "state", BY_CUSTOMER_INDEX: "userId"}
VERSION_ATTRIBUTE = "version"  # incremented by every write (OrderRepository.update)

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()

# Written on every transition: the state, its rank and a timeline entry, so an order's history is readable.
_TRANSITION = (
    "#state = :state, stateRank = :rank, updatedAt = :now, "
    "createdAt = if_not_exists(createdAt, :now), "
    "timeline = list_append(if_not_exists(timeline, :empty), :entry)"
)
# A workflow event may only move an order forward, and only the execution that owns the order may move it.
_WORKFLOW_GUARD = (
    "(attribute_not_exists(stateRank) OR stateRank < :rank) "
    "AND (attribute_not_exists(executionArn) OR executionArn = :arn) "
    "AND (attribute_not_exists(userId) OR userId = :user)"
)


def utc_now() -> str:
    """ISO-8601 UTC timestamp with milliseconds; sorts lexically, which the GSIs' sort keys rely on."""
    return timestamp(datetime.now(UTC))


def timestamp(moment: datetime) -> str:
    """`moment` in the stored timestamp format (ISO-8601 UTC, milliseconds, `Z`)."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def to_item(values: Mapping[str, Any]) -> dict[str, Any]:
    """Serialize plain Python values to DynamoDB attribute values."""
    return {key: _serializer.serialize(value) for key, value in values.items()}


def from_item(item: Mapping[str, Any]) -> dict[str, Any]:
    """Deserialize a DynamoDB item to plain Python values (numbers as int where whole)."""
    plain = {key: _deserializer.deserialize(value) for key, value in item.items()}
    return {key: _plain_number(value) for key, value in plain.items()}


def _plain_number(value: Any) -> Any:
    from decimal import Decimal

    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, list):
        return [_plain_number(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain_number(v) for k, v in value.items()}
    return value


class TokenStore(Enum):
    """What happened to a task token a workflow event carried."""

    STORED = "stored"
    DUPLICATE = "duplicate"  # this very token is already stored: a redelivery
    STALE = "stale"  # the order has moved past this wait, or ended
    FOREIGN = "foreign"  # the order belongs to another execution (or user): a duplicate start


@dataclass(frozen=True)
class TokenStoreResult:
    """Outcome of store_task_token, with the item as it was when a write was refused."""

    outcome: TokenStore
    current: dict[str, Any] | None = None


class ConditionFailed(Exception):
    """A conditional write was refused; `current` is the item that blocked it (None if there is none)."""

    def __init__(self, current: dict[str, Any] | None) -> None:
        super().__init__("conditional write refused")
        self.current = current


@dataclass(frozen=True)
class OrderPage:
    """One page of a query: the orders, and DynamoDB's LastEvaluatedKey (typed) when there are more."""

    orders: list[dict[str, Any]]
    last_key: dict[str, Any] | None


class OrderRepository:
    """The orders table: one item per order, keyed by orderId."""

    def __init__(self, table_name: str, client: Any) -> None:
        self.table_name = table_name
        self.client = client

    def get(self, order_id: str) -> dict[str, Any] | None:
        """The order as stored (strongly consistent), or None."""
        response = self.client.get_item(
            TableName=self.table_name, Key=to_item({"orderId": order_id}), ConsistentRead=True
        )
        item = response.get("Item")
        return from_item(item) if item else None

    def update(
        self,
        order_id: str,
        update_expression: str,
        condition: str | None,
        values: Mapping[str, Any],
        names: Mapping[str, str] | None = None,
        return_values: str = "ALL_NEW",
    ) -> dict[str, Any]:
        """One conditional UpdateItem; raises ConditionFailed with the blocking item on refusal.

        Every write also adds 1 to the order's `version`, so each state of the item has its own
        number: push messages carry it, and a client ignores a message not newer than what it has.
        """
        request: dict[str, Any] = {
            "TableName": self.table_name,
            "Key": to_item({"orderId": order_id}),
            "UpdateExpression": f"{update_expression} ADD {VERSION_ATTRIBUTE} :versionStep",
            "ExpressionAttributeValues": to_item({**values, ":versionStep": 1}),
            "ReturnValues": return_values,
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
        }
        if condition:
            request["ConditionExpression"] = condition
        if names:
            request["ExpressionAttributeNames"] = dict(names)
        try:
            response = self.client.update_item(**request)
        except ClientError as error:
            if error.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise
            item = error.response.get("Item")
            raise ConditionFailed(from_item(item) if item else None) from None
        return from_item(response.get("Attributes", {}))

    def store_task_token(self, issued: TokenIssued) -> TokenStoreResult:
        """Keep the token of the wait the workflow just entered, unless the order is already past it."""
        now = utc_now()
        update = (
            f"SET {_TRANSITION}, taskToken = :token, tokenState = :state, executionArn = :arn, userId = :user"
        )
        values: dict[str, Any] = _transition_values(issued.state, now) | {
            ":token": issued.task_token,
            ":arn": issued.execution_arn,
            ":user": issued.user_id,
        }
        if issued.order_number is not None:
            update += ", orderNumber = :number"
            values[":number"] = issued.order_number
        try:
            self.update(issued.order_id, update, _WORKFLOW_GUARD, values, {"#state": "state"}, "NONE")
        except ConditionFailed as refused:
            current = refused.current or {}
            if current.get("executionArn") not in (None, issued.execution_arn) or current.get(
                "userId"
            ) not in (
                None,
                issued.user_id,
            ):
                return TokenStoreResult(TokenStore.FOREIGN, current)
            if current.get("taskToken") == issued.task_token:
                return TokenStoreResult(TokenStore.DUPLICATE, current)
            return TokenStoreResult(TokenStore.STALE, current)
        return TokenStoreResult(TokenStore.STORED)

    def create(self, order_id: str, user_id: str, customer_name: str | None = None) -> dict[str, Any]:
        """Write a new PLACED order for `user_id` (with the name the counter calls them by, if known).

        ConditionFailed if the id is taken. Returns the item.
        """
        values = _transition_values(OrderState.PLACED, utc_now()) | {":user": user_id}
        update = f"SET {_TRANSITION}, userId = :user"
        if customer_name:
            update += ", customerName = :name"
            values[":name"] = customer_name
        return self.update(
            order_id,
            update,
            "attribute_not_exists(orderId)",
            values,
            {"#state": "state"},
        )

    def reject_unstarted(self, order_id: str, reason: str) -> bool:
        """End a PLACED order no workflow has touched as REJECTED; False if a workflow got to it first."""
        values = _transition_values(OrderState.REJECTED, utc_now()) | {
            ":reason": reason,
            ":placed": OrderState.PLACED.value,
        }
        try:
            self.update(
                order_id,
                f"SET {_TRANSITION}, endReason = :reason",
                "#state = :placed AND attribute_not_exists(executionArn)",
                values,
                {"#state": "state"},
                "NONE",
            )
        except ConditionFailed:
            return False
        return True

    def set_barista(self, order_id: str, barista_id: str, waiting_state: OrderState) -> dict[str, Any]:
        """Record who is making the order, while it is in `waiting_state` and unclaimed (or already theirs).

        Raises ConditionFailed with the current item otherwise.
        """
        return self.update(
            order_id,
            "SET baristaId = :barista, updatedAt = :now",
            "#state = :waiting AND (attribute_not_exists(baristaId) OR baristaId = :barista)",
            {":barista": barista_id, ":now": utc_now(), ":waiting": waiting_state.value},
            {"#state": "state"},
        )

    def clear_barista(self, order_id: str, barista_id: str, waiting_state: OrderState) -> dict[str, Any]:
        """Forget who is making the order, if it is `barista_id` (or nobody) and still in `waiting_state`."""
        return self.update(
            order_id,
            "SET updatedAt = :now REMOVE baristaId",
            "#state = :waiting AND (attribute_not_exists(baristaId) OR baristaId = :barista)",
            {":barista": barista_id, ":now": utc_now(), ":waiting": waiting_state.value},
            {"#state": "state"},
        )

    def query_index(
        self,
        index: str,
        partition_value: str,
        *,
        limit: int,
        start_key: Mapping[str, Any] | None = None,
        state: OrderState | None = None,
    ) -> OrderPage:
        """One page of an index partition, newest first; `state` filters (after Limit, as DynamoDB does)."""
        key_name = INDEX_PARTITION_KEYS[index]
        request: dict[str, Any] = {
            "TableName": self.table_name,
            "IndexName": index,
            "KeyConditionExpression": "#pk = :pk",
            "ExpressionAttributeNames": {"#pk": key_name},
            "ExpressionAttributeValues": to_item({":pk": partition_value}),
            "ScanIndexForward": False,
            "Limit": limit,
        }
        if start_key:
            request["ExclusiveStartKey"] = dict(start_key)
        if state is not None and key_name != "state":
            request["FilterExpression"] = "#state = :state"
            request["ExpressionAttributeNames"]["#state"] = "state"
            request["ExpressionAttributeValues"][":state"] = _serializer.serialize(state.value)
        response = self.client.query(**request)
        return OrderPage(
            orders=[from_item(item) for item in response.get("Items", [])],
            last_key=response.get("LastEvaluatedKey"),
        )

    def count_open_orders(self, user_id: str, created_since: str) -> int:
        """How many of the customer's orders created at or after `created_since` have not ended.

        Reads the ByCustomer index, which is eventually consistent: an order written a moment ago may
        not be counted yet (see ordering.place_order for what that allows).
        """
        request: dict[str, Any] = {
            "TableName": self.table_name,
            "IndexName": BY_CUSTOMER_INDEX,
            "KeyConditionExpression": "userId = :user AND createdAt >= :since",
            "FilterExpression": "stateRank < :terminal",
            "ExpressionAttributeValues": to_item(
                {":user": user_id, ":since": created_since, ":terminal": TERMINAL_RANK}
            ),
            "Select": "COUNT",
        }
        count = 0
        while True:
            response = self.client.query(**request)
            count += int(response["Count"])  # always there with Select=COUNT
            if "LastEvaluatedKey" not in response:
                return count
            request["ExclusiveStartKey"] = response["LastEvaluatedKey"]

    def ids_created_before(self, state: OrderState, cutoff: str) -> Iterator[str]:
        """Ids of the orders in `state` created before `cutoff`, oldest first (ByState index, every page).

        The index is eventually consistent and holds no execution ARN: read each order with get().
        """
        request: dict[str, Any] = {
            "TableName": self.table_name,
            "IndexName": BY_STATE_INDEX,
            "KeyConditionExpression": "#state = :state AND createdAt < :cutoff",
            "ExpressionAttributeNames": {"#state": "state"},
            "ExpressionAttributeValues": to_item({":state": state.value, ":cutoff": cutoff}),
            "ProjectionExpression": "orderId",
        }
        while True:
            response = self.client.query(**request)
            for item in response.get("Items", []):
                yield str(from_item(item)["orderId"])
            if "LastEvaluatedKey" not in response:
                return
            request["ExclusiveStartKey"] = response["LastEvaluatedKey"]

    def end(self, ended: OrderEnded) -> bool:
        """Move the order to its terminal state; False when it had ended already or is another execution's."""
        # The guard (_WORKFLOW_GUARD) lets this write through only where executionArn and userId are
        # absent or already these values: setting them records the owner of an order no workflow has
        # touched yet, and rewrites the same values on any other.
        update = f"SET {_TRANSITION}, endReason = :reason, executionArn = :arn, userId = :user"
        values: dict[str, Any] = _transition_values(ended.state, utc_now()) | {
            ":reason": ended.reason,
            ":arn": ended.execution_arn,
            ":user": ended.user_id,
        }
        if ended.order_number is not None:
            update += ", orderNumber = :number"
            values[":number"] = ended.order_number
        # The token of an ended wait is useless and sensitive: drop it.
        update += " REMOVE taskToken, tokenState"
        try:
            self.update(ended.order_id, update, _WORKFLOW_GUARD, values, {"#state": "state"}, "NONE")
        except ConditionFailed:
            return False
        return True


def _transition_values(state: OrderState, now: str) -> dict[str, Any]:
    return {
        ":state": state.value,
        ":rank": state.rank,
        ":now": now,
        ":empty": [],
        ":entry": [{"state": state.value, "at": now}],
    }
