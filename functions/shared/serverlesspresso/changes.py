"""Telling the push channel that an order or the shop changed: one public event per successful write.

The API and the event handlers call this after each conditional write that changed an order (and after
PUT /config); the push fan-out function consumes the events, re-reads the order and sends it to the
screens allowed to see it. The event carries no token, execution or customer identity: only the order's
id and the state the write produced.

Publishing is best effort on purpose. The write it follows has happened and must not be undone or
retried because a notification failed: a lost push costs a screen a refresh (every client re-reads over
HTTP after each reconnect), while failing the request would cost an order. A failure is logged and
counted (metric PushEventsLost, alarmed in template.yaml).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit, single_metric
from botocore.exceptions import BotoCoreError, ClientError

from serverlesspresso.observability import logger
from serverlesspresso.publisher import PublishFailed, publish_event

ORDER_CHANGED_EVENT = "OrderManager.OrderChanged"
SHOP_CHANGED_EVENT = "OrderManager.ShopChanged"
LOST_METRIC = "PushEventsLost"


@dataclass(frozen=True)
class ChangeFeed:
    """Publishes OrderManager.OrderChanged / OrderManager.ShopChanged on the order bus."""

    events: Any  # EventBridge client
    bus_name: str

    def order_changed(self, order_id: str, state: str) -> None:
        """An order was written: `state` is the state that write left it in."""
        try:
            publish_event(
                ORDER_CHANGED_EVENT,
                {"orderId": order_id, "state": state},
                bus_name=self.bus_name,
                client=self.events,
            )
        except (PublishFailed, ClientError, BotoCoreError) as failure:
            self._lost(ORDER_CHANGED_EVENT, failure)

    def shop_changed(self) -> None:
        """The shop's configuration was written (open/closed, capacity, menu)."""
        try:
            publish_event(
                SHOP_CHANGED_EVENT, {"configId": "shop"}, bus_name=self.bus_name, client=self.events
            )
        except (PublishFailed, ClientError, BotoCoreError) as failure:
            self._lost(SHOP_CHANGED_EVENT, failure)

    @staticmethod
    def _lost(detail_type: str, failure: Exception) -> None:
        logger.warning("push event lost", extra={"detail_type": detail_type, "error": type(failure).__name__})
        with single_metric(name=LOST_METRIC, unit=MetricUnit.Count, value=1):
            pass
