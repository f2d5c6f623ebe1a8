"""Who is connected to the push channel, and what each connection may see.

One item per WebSocket connection in the connections table: its audience (from the token's
`cognito:groups`, never from anything the client sends), the customer's `sub` for customer connections
only, and an expiry two hours ahead (API Gateway's maximum connection duration; DynamoDB's TTL removes
what a lost $disconnect left behind). Two indexes answer the fan-out's two questions without a
scan: ByAudience (every barista / display / customer connection) and ByCustomer (one customer's;
sparse, since only customer connections carry customerSub).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from serverlesspresso.identity import BARISTA_GROUP, DISPLAY_GROUP
from serverlesspresso.orders import timestamp, to_item

BY_AUDIENCE_INDEX = "ByAudience"  # pk audience
BY_CUSTOMER_INDEX = "ByCustomer"  # pk customerSub (customer connections only)
CONNECTION_LIFETIME = timedelta(hours=2)  # API Gateway closes every WebSocket connection after 2 hours


class Audience(StrEnum):
    """The feed a connection receives."""

    BARISTA = "barista"  # every order's public fields, and the shop
    DISPLAY = "display"  # the same (the big screen by the counter)
    CUSTOMER = "customer"  # the customer's own orders, and the shop


STAFF_AUDIENCES = (Audience.BARISTA, Audience.DISPLAY)


def audience_of(groups: Iterable[str]) -> Audience:
    """Barista group -> barista feed; display group -> display feed; anyone else -> their own orders."""
    groups = set(groups)
    if BARISTA_GROUP in groups:
        return Audience.BARISTA
    if DISPLAY_GROUP in groups:
        return Audience.DISPLAY
    return Audience.CUSTOMER


class ConnectionStore:
    """The connections table."""

    def __init__(self, table_name: str, client: Any) -> None:
        self.table_name = table_name
        self.client = client

    def add(self, connection_id: str, audience: Audience, sub: str, now: datetime | None = None) -> None:
        """Remember a connection; a customer's is indexed by their sub, staff connections are not."""
        moment = now or datetime.now(UTC)
        item: dict[str, Any] = {
            "connectionId": connection_id,
            "audience": audience.value,
            "connectedAt": timestamp(moment),
            "expiresAt": int((moment + CONNECTION_LIFETIME).timestamp()),
        }
        if audience is Audience.CUSTOMER:
            item["customerSub"] = sub
        self.client.put_item(TableName=self.table_name, Item=to_item(item))

    def remove(self, connection_id: str) -> None:
        """Forget a connection (idempotent)."""
        self.client.delete_item(TableName=self.table_name, Key=to_item({"connectionId": connection_id}))

    def of_audience(self, audience: Audience) -> Iterator[str]:
        """Ids of every connection of one audience."""
        return self._query(BY_AUDIENCE_INDEX, "audience", audience.value)

    def of_customer(self, sub: str) -> Iterator[str]:
        """Ids of one customer's connections."""
        return self._query(BY_CUSTOMER_INDEX, "customerSub", sub)

    def _query(self, index: str, key: str, value: str) -> Iterator[str]:
        request: dict[str, Any] = {
            "TableName": self.table_name,
            "IndexName": index,
            "KeyConditionExpression": "#key = :value",
            "ExpressionAttributeNames": {"#key": key},
            "ExpressionAttributeValues": to_item({":value": value}),
        }
        while True:
            response = self.client.query(**request)
            for item in response.get("Items", []):
                yield item["connectionId"]["S"]
            if "LastEvaluatedKey" not in response:
                return
            request["ExclusiveStartKey"] = response["LastEvaluatedKey"]
